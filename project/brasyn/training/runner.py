"""`train`: slice cache → per target, stage 1 (SR autoencoder) → stage 2 (GAN) → checkpoint.

Run folder `output_dir`:

    brasyn_<target>.pt        checkpoint per target (`brasyn.checkpoint` schema, weights only)
    warmup/brasyn_<target>.pt the generator at the warm-up's end (only with stage2.keep_warmup_checkpoint)
    config.yaml               the resolved setup (`model:`, `training:`)
    metrics_<target>.csv      one row per epoch and stage (loss means, lr, validation L1 / SSIM)
    resume/<target>.pt        optimizer / scheduler / step state to continue an interrupted run
    cache/                    uncompressed slice cache (unless training.data.cache_dir points elsewhere)
    tensorboard/<target>/     only when TensorBoard is importable
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from torch import Tensor

from brasyn.checkpoint import Checkpoint, checkpoint_filename
from brasyn.constants import Modality, parse_targets
from brasyn.data.cases import discover_cases
from brasyn.data.slices import (
    CachedCase,
    CacheOptions,
    SliceDataset,
    build_slice_cache,
    fit_intensity_model,
    split_cases,
)
from brasyn.io.atomic import atomic_write_text
from brasyn.models import SelfRepresentationAutoencoder
from brasyn.training.baseline_fit import BaselineFitConfig, fit_prior
from brasyn.training.batchnorm import recalibration_batches
from brasyn.training.config import TrainingSetup, load_training_setup
from brasyn.training.loop import StageTrainer, check_enough_slices, run_stage
from brasyn.training.metrics import EpochMetrics, MetricsLog, validate, validation_indices
from brasyn.training.runtime import Runtime, runtime, seed_everything
from brasyn.training.schedule import total_steps
from brasyn.training.state import (
    ResumeRecord,
    StageProgress,
    load_resume,
    resume_path,
    save_resume,
    set_rng_state,
    trained_checkpoint,
    write_checkpoint,
)
from brasyn.training.trainers import AutoencoderTrainer, TranslationTrainer

WARMUP_FOLDER = "warmup"  # the warm-up's checkpoints (`training.stage2.keep_warmup_checkpoint`), a weights folder

logger = logging.getLogger(__name__)

STAGE2_SEED_OFFSET = 1
"""Stage 2 is seeded with seed + 1, so its initialisation does not depend on how long stage 1 ran."""


def train(
    data_path: Path,
    output_dir: Path,
    setup: str | Path | Mapping[str, Any] | TrainingSetup | None,
    targets: Sequence[Modality | str],
    *,
    resume: bool = True,
    prepare_only: bool = False,
) -> dict[Modality, Path]:
    """Train the dedicated model of each target on the BraTS-format training folder `data_path`.

    `setup`: a preset name, a YAML path, an override mapping `{"preset": ..., "model": ...,
    "training": ...}` or a `TrainingSetup` (see `load_training_setup`). With `resume`, a target whose
    resume file exists continues where it stopped (a finished one is skipped). Returns the checkpoint
    path of each target (written by rank 0; under DDP the other ranks get the same paths).
    `prepare_only` builds the slice cache and returns {} (then runs for single targets can share it).
    """
    setup = load_training_setup(setup)
    target_list = parse_targets(targets)
    config = setup.training
    output_dir = Path(output_dir)
    with runtime(config.device, config.precision) as rt:
        if rt.is_main:
            output_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(output_dir / "config.yaml", yaml.safe_dump(setup.to_dict(), sort_keys=False))
        cache_dir = output_dir / (config.data.cache_dir or "cache")
        options = CacheOptions(
            normalization=config.data.normalization,
            tumour_slices_only=config.data.tumour_slices_only,
            dtype=config.data.cache_dtype,
        )
        cases = discover_cases(data_path)
        if rt.is_main:
            cached = build_slice_cache(cases, cache_dir, options, workers=config.num_workers, progress=config.progress)
        rt.barrier()
        if not rt.is_main:
            cached = build_slice_cache(cases, cache_dir, options, progress=False)
        if prepare_only:
            return {}
        train_ids, val_ids = split_cases([c.case_id for c in cached], config.data.validation_fraction, config.seed)
        by_id = {c.case_id: c for c in cached}
        train_cases = [by_id[i] for i in train_ids]
        val_cases = [by_id[i] for i in val_ids]
        if rt.is_main:
            logger.info("split: %d training cases, %d validation cases", len(train_cases), len(val_cases))
        results = {}
        for target in target_list:
            results[target] = _train_target(target, setup, rt, train_cases, val_cases, output_dir, resume=resume)
            rt.barrier()
    return results


def _data_summary(setup: TrainingSetup, train_ds: SliceDataset, val_ds: SliceDataset | None,
                  train_cases: list[CachedCase], val_cases: list[CachedCase]) -> dict[str, Any]:
    data = setup.training.data
    return {
        "n_train_cases": len(train_cases),
        "n_validation_cases": len(val_cases),
        "train_slices": len(train_ds),
        "validation_slices": len(val_ds) if val_ds is not None else 0,
        "train_cases": [c.case_id for c in train_cases],
        "validation_cases": [c.case_id for c in val_cases],
        "tumour_slices_only": data.tumour_slices_only,
        "image_size": setup.model.image_size,
        "split_seed": setup.training.seed,
    }


def _train_target(
    target: Modality,
    setup: TrainingSetup,
    rt: Runtime,
    train_cases: list[CachedCase],
    val_cases: list[CachedCase],
    output_dir: Path,
    *,
    resume: bool,
) -> Path:
    """Stage 1, stage 2 and the checkpoint of one target, continuing from its resume file when asked."""
    config = setup.training
    ckpt_path = output_dir / checkpoint_filename(target)
    rpath = resume_path(output_dir, target)
    train_ds = SliceDataset(
        train_cases, target, setup.model.image_size, augmentation=config.data.augmentation, seed=config.seed
    )
    val_ds = SliceDataset(val_cases, target, setup.model.image_size) if val_cases else None
    s1, s2 = config.stage1, config.stage2
    total1 = total_steps(
        s1.epochs, check_enough_slices(len(train_ds), s1.batch_size, rt.world_size, f"{target} stage 1"), s1.max_steps
    )
    total2 = total_steps(
        s2.epochs, check_enough_slices(len(train_ds), s2.batch_size, rt.world_size, f"{target} stage 2"), s2.max_steps
    )
    record = load_resume(rpath, target, setup) if (resume and rpath.exists()) else None
    if record is not None and record.finished(total2) and ckpt_path.exists():
        logger.info("%s: already trained (%d steps, %s); skipping", target, record.stage2.step, ckpt_path.name)
        return ckpt_path
    record = _resumed_or_new(record, target, setup, rpath)

    metrics = None
    if rt.is_main:
        metrics = MetricsLog(
            output_dir / f"metrics_{target.value}.csv",
            fresh=record.stage1 is None,
            tensorboard_dir=(output_dir / "tensorboard" / target.value) if config.tensorboard else None,
        )
    run = _TargetRun(target, setup, rt, train_ds, val_ds, validation_indices(val_ds, config.data.validation_slices),
                     record, rpath, metrics)
    try:
        intensity_model = fit_intensity_model(train_cases, target)
        prior = None
        if setup.model.prior_degree:
            prior = fit_prior(train_cases, target, setup.model.prior_degree, BaselineFitConfig(seed=config.seed))
            logger.info("%s: polynomial prior of degree %d fitted on %d training cases",
                        target, setup.model.prior_degree, len(train_cases))
        stage1 = run.stage1(total1)
        stage2 = run.stage2(total2, stage1.autoencoder, prior)
        if rt.is_main:
            summary = _data_summary(setup, train_ds, val_ds, train_cases, val_cases)

            def checkpoint(stage_metrics: dict[str, Any]) -> Checkpoint:  # of the generator's current weights
                return trained_checkpoint(target=target, generator=stage2.generator, setup=setup,
                                          intensity_model=intensity_model, data_summary=summary, metrics=stage_metrics)

            final = checkpoint({key: _last_row(getattr(record, key)) for key in ("stage1", "stage2")})
            write_checkpoint(ckpt_path, final, compact=config.compact_checkpoints)
            if config.stage2.keep_warmup_checkpoint:
                _write_warmup_checkpoint(run, stage2, output_dir / WARMUP_FOLDER / checkpoint_filename(target),
                                         lambda: checkpoint({"stage1": _last_row(record.stage1), "stage2": {}}))
    finally:
        if metrics is not None:
            metrics.close()
    return ckpt_path


def _write_warmup_checkpoint(
    run: _TargetRun, trainer: TranslationTrainer, path: Path, checkpoint: Callable[[], Checkpoint]
) -> None:
    """The generator as the warm-up left it (`keep_warmup_checkpoint`), its BatchNorm statistics
    recomputed for those weights as before every validation. Called after the final checkpoint is
    written: it leaves the trainer holding the warm-up's weights."""
    if trainer.warmup_state is None:
        logger.warning("%s: no warm-up checkpoint (the warm-up did not end in this run, or it was resumed "
                       "after its end)", run.target)
        return
    trainer.generator.load_state_dict(trainer.warmup_state)
    config = run.setup.training
    trainer.recalibrate_batchnorm(
        recalibration_batches(run.train_ds, config.stage2.batchnorm_recalibration_slices, config.seed)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_checkpoint(path, checkpoint(), compact=config.compact_checkpoints)
    logger.info("%s: warm-up checkpoint %s", run.target, path)


def _resumed_or_new(record: ResumeRecord | None, target: Modality, setup: TrainingSetup, rpath: Path) -> ResumeRecord:
    """The record to continue (warning when the training configuration changed since), or a fresh one;
    either way it carries the current training configuration from now on."""
    training_dict = setup.to_dict()["training"]
    if record is None:
        record = ResumeRecord(target=target.value, model_config=setup.model.to_dict())
    else:
        logger.info("%s: resuming from %s", target, rpath)
        if record.training_config != training_dict:
            logger.warning(
                "%s: the training configuration differs from the one the resume file was written with", target
            )
    record.training_config = training_dict
    return record


@dataclass
class _TargetRun:
    """What both stages of one target share: data, resume record and file, metrics log (rank 0)."""

    target: Modality
    setup: TrainingSetup
    rt: Runtime
    train_ds: SliceDataset
    val_ds: SliceDataset | None
    val_idx: list[int]
    record: ResumeRecord
    rpath: Path
    metrics: MetricsLog | None

    def stage1(self, total: int) -> AutoencoderTrainer:
        """The target's self-representation autoencoder, trained (or restored) up to `total` steps."""
        config, record = self.setup.training, self.record
        seed_everything(config.seed)
        trainer = AutoencoderTrainer(self.setup.model, config.stage1, self.rt, total)
        start = 0
        if record.stage1 is not None:
            trainer.load_state_dict(record.stage1.state)
            start = record.stage1.step
            if record.stage2 is None:
                set_rng_state(record.rng)
        if record.stage2 is None and start < total:
            on_epoch_end, on_save = self._hooks(
                "stage1", f"{self.target} stage 1", trainer, total,
                lambda: validate(trainer.predict, self.val_ds, self.val_idx, device=self.rt.device, use_sources=False),
            )
            run_stage(
                trainer, self.train_ds, rt=self.rt, batch_size=config.stage1.batch_size, total=total, start_step=start,
                seed=config.seed, num_workers=config.num_workers, progress=config.progress,
                description=f"{self.target} autoencoder", on_epoch_end=on_epoch_end,
                save_every=config.resume_every_steps, on_save=on_save, max_seconds=config.stage1.max_seconds,
            )
        return trainer

    def stage2(
        self, total: int, autoencoder: SelfRepresentationAutoencoder, prior: Tensor | None = None
    ) -> TranslationTrainer:
        """Generator, discriminator and heads against the frozen autoencoder, up to `total` steps;
        `prior`: the coefficients of the generator's polynomial prior (`model.prior_degree`)."""
        config, record = self.setup.training, self.record
        seed_everything(config.seed + STAGE2_SEED_OFFSET)
        trainer = TranslationTrainer(self.setup.model, config.stage2, self.rt, total, autoencoder, prior)
        start = 0
        if record.stage2 is not None:
            trainer.load_state_dict(record.stage2.state)
            start = record.stage2.step
            set_rng_state(record.rng)
        if start < total:
            def validate_epoch() -> dict[str, float]:
                trainer.recalibrate_batchnorm(
                    recalibration_batches(self.train_ds, config.stage2.batchnorm_recalibration_slices, config.seed)
                )
                return validate(trainer.predict, self.val_ds, self.val_idx, device=self.rt.device)

            on_epoch_end, on_save = self._hooks("stage2", f"{self.target} stage 2", trainer, total, validate_epoch)
            run_stage(
                trainer, self.train_ds, rt=self.rt, batch_size=config.stage2.batch_size, total=total, start_step=start,
                seed=config.seed + STAGE2_SEED_OFFSET, num_workers=config.num_workers, progress=config.progress,
                description=f"{self.target} GAN", on_epoch_end=on_epoch_end,
                save_every=config.resume_every_steps, on_save=on_save, max_seconds=config.stage2.max_seconds,
            )
        return trainer

    def _hooks(
        self, key: str, label: str, trainer: StageTrainer, total: int, validate_epoch: Callable[[], dict[str, float]]
    ) -> tuple[Callable[[EpochMetrics], None], Callable[[int], None]]:
        """The epoch-end and periodic-save callbacks of one stage: both store the trainer's state in
        the record's `key` stage and write the resume file; the epoch end also validates and logs (rank 0)."""
        rt, record = self.rt, self.record

        def on_epoch_end(metrics: EpochMetrics) -> None:
            if rt.is_main:  # only rank 0 reports
                metrics = metrics.validated(validate_epoch())
            setattr(record, key, StageProgress(metrics.step, total, trainer.state_dict(), metrics))
            if rt.is_main:
                self.metrics.write(metrics)
                save_resume(self.rpath, record.to_dict())
                logger.info("%s epoch %d: %s", label, metrics.epoch, _summary(metrics))

        def on_save(step: int) -> None:
            last = getattr(record, key).metrics if getattr(record, key) is not None else None
            setattr(record, key, StageProgress(step, total, trainer.state_dict(), last))
            if rt.is_main:
                save_resume(self.rpath, record.to_dict())

        return on_epoch_end, on_save


def _last_row(progress: StageProgress | None) -> dict[str, Any]:
    """A stage's last epoch as the checkpoint stores it (the CSV row's plain data; {} when none)."""
    return progress.metrics.to_row() if progress is not None and progress.metrics is not None else {}


def _summary(metrics: EpochMetrics) -> str:
    row = metrics.to_row()
    keys = ("l1", "generator", "discriminator", "val_l1", "val_ssim", "val_ssim_tumour", "val_dice_wt")
    return ", ".join(f"{k} {row[k]:.4g}" for k in keys if k in row)
