"""The step loop shared by both stages: seeded epoch order, exact resume, progress bar, epoch metrics.

Optimizer step `step` (0-based) belongs to epoch step // steps_per_epoch. Each epoch's order is a
`DistributedSampler` permutation seeded with (seed, epoch) (one replica outside DDP), so a resumed
run skips the batches already done in its epoch and then sees exactly the slices it would have seen.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any, Protocol

import torch
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from brasyn.data.slices import SliceDataset, collate_slices
from brasyn.errors import InputError
from brasyn.training.metrics import EpochMetrics
from brasyn.training.runtime import Runtime, seed_everything
from brasyn.training.trainers import Batch

logger = logging.getLogger(__name__)


class StageTrainer(Protocol):
    stage: str
    config: Any  # the stage's config (AutoencoderStage or TranslationStage)

    def train_mode(self) -> None: ...

    def train_step(self, batch: Batch) -> dict[str, float]: ...

    def set_total_steps(self, total: int) -> None: ...

    @property
    def lr(self) -> float: ...


def steps_per_epoch(n_slices: int, batch_size: int, world_size: int = 1) -> int:
    """Full batches per epoch and process: floor(floor(n / world) / batch) (both drop the remainder)."""
    return (n_slices // world_size) // batch_size


def check_enough_slices(n_slices: int, batch_size: int, world_size: int, what: str) -> int:
    spe = steps_per_epoch(n_slices, batch_size, world_size)
    if spe < 1:
        raise InputError(
            f"{what}: expected at least {batch_size * world_size} training slices for one batch of {batch_size}"
            f" per process, found {n_slices}"
        )
    return spe


BUDGET_CHECK_STEPS = 20
"""Steps between two re-estimates of a stage's time budget."""


class _TimeBudget:
    """Wall-time budget of one `run_stage` call: fits the trainer's schedule to what the time allows.

    Every check estimates the steps that still fit at the pace of the steps since the previous
    check (the first interval only sets the pace: it holds start-up costs); the epoch-end work
    (validation, BatchNorm recalibration, checkpoints) counts as time spent but not in the pace
    (`restart_pace`), since one interval that holds it would otherwise read as a slow machine and
    shorten the schedule for good once it is past its first half. The schedule is shortened
    to that, or lengthened back (never past the configured total) while it is in its first half,
    before any warm-up or decay phase has begun, so the learning rate never rises once it decays.
    """

    def __init__(self, seconds: float, step: int, limit: int) -> None:
        self.seconds = seconds
        self.limit = limit
        self.started = self.mark = time.perf_counter()
        self.mark_step = step
        self.paced = False

    def restart_pace(self, step: int) -> None:
        """Measure the next pace from here: what ran since the last check was not only training steps."""
        self.mark, self.mark_step = time.perf_counter(), step

    def fit(self, step: int, total: int, trainer: StageTrainer, rt: Runtime, description: str) -> int:
        """The new total after `step` steps (logged when the budget is spent)."""
        now = time.perf_counter()
        spent = now - self.started
        pace = (step - self.mark_step) / max(now - self.mark, 1e-9)  # recent steps/s: dearer after a warm-up
        self.mark, self.mark_step = now, step
        if spent >= self.seconds:
            fits = step
        elif not self.paced:
            fits = total
        else:
            fits = min(self.limit, step + int(pace * (self.seconds - spent)))
        self.paced = True
        fits = rt.broadcast_int(fits)  # every rank calls this at the same step: rank 0 decides
        if fits == total or (fits > total and step >= total // 2):
            return total
        if fits > step:
            trainer.set_total_steps(fits)
        else:
            logger.info("%s: time budget of %.0f s spent at step %d", description, self.seconds, step)
        return max(step, fits)


def _seed_worker(worker_id: int) -> None:
    seed_everything(torch.initial_seed() % 2**32)


def _epoch_loader(
    dataset: SliceDataset, rt: Runtime, batch_size: int, seed: int, epoch: int, offset: int, num_workers: int
) -> DataLoader:
    """This process's batches of `epoch` (seeded with seed and epoch), from batch `offset` on (resume)."""
    sampler = DistributedSampler(
        dataset, num_replicas=rt.world_size, rank=rt.rank, shuffle=True, seed=seed, drop_last=True
    )
    sampler.set_epoch(epoch)
    dataset.set_epoch(epoch)  # the augmentation draws of this epoch (workers copy the dataset at start)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=list(sampler)[offset * batch_size :],
        drop_last=True,
        num_workers=num_workers,
        collate_fn=collate_slices,
        pin_memory=rt.device.type == "cuda",
        worker_init_fn=_seed_worker,
        generator=torch.Generator().manual_seed(seed + epoch),
    )


def _accumulate(sums: dict[str, float], terms: dict[str, float], where: str) -> None:
    """Add one step's loss terms to the epoch sums; a non-finite term is logged (and kept, so the
    epoch mean shows it too)."""
    for name, value in terms.items():
        if not math.isfinite(value):
            logger.warning("%s: %s is %s", where, name, value)
        sums[name] = sums.get(name, 0.0) + value


def run_stage(
    trainer: StageTrainer,
    dataset: SliceDataset,
    *,
    rt: Runtime,
    batch_size: int,
    total: int,
    start_step: int,
    seed: int,
    num_workers: int,
    progress: bool | None,
    description: str,
    on_epoch_end: Callable[[EpochMetrics], None],
    save_every: int = 0,
    on_save: Callable[[int], None] | None = None,
    max_seconds: float | None = None,
) -> int:
    """Train from `start_step` to `total` steps; call `on_epoch_end(metrics)` after every (possibly partial) epoch
    and `on_save(step)` every `save_every` steps inside an epoch (0: never).

    With `max_seconds` (a time budget for this call), every `BUDGET_CHECK_STEPS` steps the schedule
    is fitted to the steps that still fit (`_TimeBudget`), so that a fraction-based warm-up's GAN phase
    and the learning-rate decay still happen inside the budget. Once it is spent the stage ends.

    The `EpochMetrics` hold stage, epoch, step, lr, seconds (the epoch's), elapsed (since this call
    started) and the epoch means of the loss terms. Returns the step reached.
    """
    spe = steps_per_epoch(len(dataset), batch_size, rt.world_size)
    step = start_step
    stage_started = time.perf_counter()
    budget = _TimeBudget(max_seconds, step, total) if max_seconds is not None else None
    trainer.train_mode()
    bar = tqdm(
        total=total,
        initial=step,
        desc=description,
        unit="step",
        dynamic_ncols=True,
        disable=(not rt.is_main) or (None if progress is None else not progress),
    )
    try:
        while step < total:
            epoch, offset = divmod(step, spe)
            loader = _epoch_loader(dataset, rt, batch_size, seed, epoch, offset, num_workers)
            sums: dict[str, float] = {}
            n = 0
            started = time.perf_counter()
            lr = trainer.lr
            for sample in loader:
                lr = trainer.lr
                terms = trainer.train_step(Batch.from_sample(sample, rt.device))
                _accumulate(sums, terms, f"{description} step {step}")
                n += 1
                step += 1
                bar.update(1)
                bar.set_postfix({k: f"{v:.3g}" for k, v in terms.items()}, refresh=False)
                if budget is not None and step % BUDGET_CHECK_STEPS == 0:
                    total = budget.fit(step, total, trainer, rt, description)
                    bar.total = total
                if step >= total:
                    break
                if save_every > 0 and on_save is not None and step % save_every == 0 and step % spe != 0:
                    on_save(step)  # the epoch end saves anyway
                    if budget is not None:
                        budget.restart_pace(step)
            now = time.perf_counter()
            on_epoch_end(EpochMetrics(
                stage=trainer.stage, epoch=epoch, step=step, lr=lr, seconds=now - started,
                elapsed=now - stage_started, losses={name: value / max(n, 1) for name, value in sums.items()},
            ))
            trainer.train_mode()
            if budget is not None:
                budget.restart_pace(step)
    finally:
        bar.close()
    return step
