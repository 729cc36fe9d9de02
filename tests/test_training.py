"""Training: config and presets, LR schedule, both stages' steps, checkpoints, resume, CLI."""

from __future__ import annotations

import csv
import dataclasses
import warnings

import pytest
import torch
import yaml
from torch import nn
from typer.testing import CliRunner

from brasyn.checkpoint import Checkpoint, checkpoint_filename
from brasyn.cli import app
from brasyn.constants import MODALITIES, Modality, parse_targets
from brasyn.data.cases import discover_cases
from brasyn.data.normalization import IntensityModel, Normalization
from brasyn.data.slices import CacheOptions, SliceDataset, build_slice_cache, fit_intensity_model, split_cases
from brasyn.errors import ConfigError
from brasyn.losses import l1_loss, label_weighted_l1_loss
from brasyn.models import ModelConfig
from brasyn.training import load_training_setup, train
from brasyn.training.batchnorm import recalibrate_batchnorm, recalibration_batches
from brasyn.training.config import LossWeights, TrainingSetup
from brasyn.training.metrics import COLUMNS, EpochMetrics, MetricsLog
from brasyn.training.runtime import Runtime
from brasyn.training.schedule import decay_steps, linear_decay_scheduler, lr_factor, total_steps
from brasyn.training.state import trained_checkpoint, write_checkpoint
from brasyn.training.trainers import AutoencoderTrainer, Batch, TranslationTrainer

SHAPE = (48, 48, 12)
CPU = Runtime(device=torch.device("cpu"), autocast_dtype=None)


@pytest.fixture
def cohort(case_factory):
    for i in range(3):
        case_factory(f"Case-{i}", shape=SHAPE, seed=i, with_labels=True)
    return case_factory.root


@pytest.fixture
def tiny():
    return load_training_setup("tiny")


def _batch(dataset: SliceDataset, indices) -> Batch:
    samples = [dataset[i] for i in indices]
    return Batch(
        sources=torch.stack([s.sources for s in samples]),
        target=torch.stack([s.target for s in samples]),
        seg=torch.stack([s.seg for s in samples]),
    )


@pytest.fixture
def dataset(cohort, tmp_path, tiny):
    cached = build_slice_cache(discover_cases(cohort), tmp_path / "cache", CacheOptions(dtype="float32"))
    return SliceDataset(cached, Modality.T1C, tiny.model.image_size)


# ---- configuration ------------------------------------------------------------------------------


def test_paper_preset_holds_the_paper_values():
    setup = load_training_setup("paper")
    assert setup.model == ModelConfig()  # the ModelConfig defaults are the paper's
    assert (setup.model.base_channels, setup.model.image_size) == (64, 256)
    s1, s2 = setup.training.stage1, setup.training.stage2
    assert (s1.epochs, s1.lr, s1.beta1, s1.beta2, s1.l1_weight) == (200, 2e-4, 0.5, 0.999, 100.0)
    assert (s2.epochs, s2.lr, s2.head_lr, s2.batch_size, s2.beta1) == (300, 1e-4, 1e-4, 4, 0.5)
    assert s2.decay_fraction == pytest.approx(1 / 3)
    assert dataclasses.asdict(s2.loss_weights) == {
        "adversarial": 1.0, "l1": 100.0, "contrastive": 0.05, "segmentation": 0.1,
        "sr_decoder": 0.1, "sr_encoder": 0.1, "sr_fusion": 0.1,
    }
    assert setup.training.data.tumour_slices_only is True
    assert load_training_setup(None) == setup


def test_demo_preset_is_a_small_model():
    setup = load_training_setup("demo")
    assert setup.model.image_size == 256 and setup.model.base_channels <= 16
    assert setup.model.fusion_reduction == 256 and setup.training.compact_checkpoints
    # bounded so that `make checkpoints` trains all four targets on 2 CPU cores in well under an hour
    assert setup.training.stage2.max_steps is not None and setup.training.stage2.max_steps <= 1000


def test_synthetic_wide_preset_is_the_synthetic_recipe_at_16_channels():
    synthetic, wide = load_training_setup("synthetic"), load_training_setup("synthetic_wide")
    assert synthetic.model.base_channels == 8
    assert wide.model == dataclasses.replace(synthetic.model, base_channels=16)
    assert wide.training == synthetic.training


def test_mapping_overrides_a_preset_key_by_key():
    setup = load_training_setup(
        {"preset": "tiny", "model": {"base_channels": 4}, "training": {"stage2": {"max_steps": 7}}}
    )
    tiny = load_training_setup("tiny")
    assert setup.model == dataclasses.replace(tiny.model, base_channels=4)
    assert setup.training.stage2 == dataclasses.replace(tiny.training.stage2, max_steps=7)
    assert setup.training.stage1 == tiny.training.stage1


def test_yaml_file_round_trip(tmp_path, tiny):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(tiny.to_dict()))
    assert load_training_setup(path) == tiny
    assert load_training_setup(str(path)) == tiny
    overrides = tmp_path / "overrides.yml"
    overrides.write_text("preset: tiny\ntraining:\n  seed: 3\n")
    assert load_training_setup(overrides) == dataclasses.replace(
        tiny, training=dataclasses.replace(tiny.training, seed=3)
    )


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"preset": "tiny", "training": {"stage2": {"lrr": 1.0}}}, "training.stage2.lrr"),
        ({"preset": "tiny", "model": {"base_chanels": 8}}, "model.base_chanels"),
        ({"preset": "tiny", "trainig": {}}, "trainig"),
        ({"preset": "huge"}, "huge"),
        ("huge", "huge"),
        ({"training": {"stage2": {"loss_weights": {"l1": -1.0}}}}, "loss_weights.l1"),
        ({"training": {"device": "tpu"}}, "training.device"),
        ({"training": {"stage1": {"batch_size": "four"}}}, "training.stage1.batch_size"),
        ({"training": {"stage2": {"l1_label_weights": [0.0, 1.0, 1.0, 5.0]}}}, "training.stage2.l1_label_weights"),
        ({"training": {"stage2": {"l1_label_weights": [1.0, -1.0, 1.0, 5.0]}}}, "training.stage2.l1_label_weights"),
        ({"training": {"stage2": {"keep_warmup_checkpoint": True}}}, "training.stage2.keep_warmup_checkpoint"),
    ],
)
def test_bad_configs_name_the_key(source, message):
    with pytest.raises(ConfigError) as info:
        load_training_setup(source)
    assert message in str(info.value)


def test_parse_targets():
    assert parse_targets(["all"]) == list(MODALITIES)
    assert parse_targets(["T2F", Modality.T1N, "t2f"]) == [Modality.T2F, Modality.T1N]
    with pytest.raises(ConfigError):
        parse_targets(["t3"])
    assert parse_targets(["t2w,T1C", "all"]) == [Modality.T2W, Modality.T1C, Modality.T1N, Modality.T2F]
    with pytest.raises(ConfigError) as info:
        parse_targets("t1n,t5", "train.targets")
    assert str(info.value) == "train.targets: expected t1n, t1c, t2w, t2f or all, found 't5'"


# ---- schedule -----------------------------------------------------------------------------------


def test_lr_factor_hand_values():
    assert decay_steps(9, 1 / 3) == 3
    assert [lr_factor(s, 9, 3) for s in range(9)] == [1, 1, 1, 1, 1, 1, 0.75, 0.5, 0.25]
    assert [lr_factor(s, 4, 0) for s in range(4)] == [1, 1, 1, 1]
    assert total_steps(300, 10, None) == 3000 and total_steps(300, 10, 50) == 50


def test_scheduler_applies_the_factor_per_optimizer_step():
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([parameter], lr=1e-4)
    scheduler = linear_decay_scheduler(optimizer, total=6, decay_fraction=1 / 3)
    lrs = []
    for _ in range(6):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs == pytest.approx([1e-4, 1e-4, 1e-4, 1e-4, 2e-4 / 3, 1e-4 / 3])


# ---- steps --------------------------------------------------------------------------------------


def test_stage2_leaves_the_autoencoder_untouched(dataset, tiny):
    torch.manual_seed(0)
    autoencoder = AutoencoderTrainer(tiny.model, tiny.training.stage1, CPU, 10).autoencoder
    trainer = TranslationTrainer(tiny.model, tiny.training.stage2, CPU, 10, autoencoder)
    trainer.train_mode()
    ae_before = {k: v.clone() for k, v in autoencoder.state_dict().items()}
    g_before = {k: v.clone() for k, v in trainer.generator.state_dict().items()}
    d_before = {k: v.clone() for k, v in trainer.discriminator.state_dict().items()}
    h_before = {k: v.clone() for k, v in trainer.heads.state_dict().items()}
    batch = _batch(dataset, [0, 1])
    for _ in range(2):
        terms = trainer.train_step(batch)
    assert set(terms) == {
        "discriminator", "adversarial", "l1", "contrastive", "segmentation",
        "sr_decoder", "sr_encoder", "sr_fusion", "generator",
    }
    assert all(torch.isfinite(torch.tensor(v)) for v in terms.values())
    assert not autoencoder.training
    assert all(not p.requires_grad and p.grad is None for p in autoencoder.parameters())
    for name, value in autoencoder.state_dict().items():  # weights and BN running statistics
        torch.testing.assert_close(value, ae_before[name], rtol=0, atol=0)
    for before, module in ((g_before, trainer.generator), (d_before, trainer.discriminator), (h_before, trainer.heads)):
        assert any(not torch.equal(before[k], v) for k, v in module.state_dict().items())
    assert all(p.requires_grad for p in trainer.discriminator.parameters())


def test_g_step_weights_terms_in_one_place(dataset, tiny):
    torch.manual_seed(0)
    autoencoder = AutoencoderTrainer(tiny.model, tiny.training.stage1, CPU, 10).autoencoder
    trainer = TranslationTrainer(tiny.model, tiny.training.stage2, CPU, 10, autoencoder)
    batch = _batch(dataset, [0, 1])
    forward = trainer.generator_side(batch.sources)
    trainer.d_step(batch, forward.output.image)
    terms = trainer.g_step(batch, forward)
    assert tiny.model.use_seg_decoder  # so every weighted term is computed
    assert set(terms) == {f.name for f in dataclasses.fields(LossWeights)} | {"generator"}
    weights = dataclasses.asdict(tiny.training.stage2.loss_weights)
    expected = sum(weights[name] * value for name, value in terms.items() if name != "generator")
    torch.testing.assert_close(terms["generator"], expected)


def test_l1_label_weights_weight_the_reconstruction_term_by_the_labels(dataset, tiny):
    """The trainer's L1 term is the label-weighted mean when the switch is set, in warm-up and GAN steps;
    a weight list that does not match the segmentation classes is refused by name."""
    weights = (1.0, 2.0, 2.0, 10.0)
    stage2 = dataclasses.replace(tiny.training.stage2, l1_label_weights=weights, warmup_fraction=0.5)
    autoencoder = AutoencoderTrainer(tiny.model, tiny.training.stage1, CPU, 10).autoencoder
    trainer = TranslationTrainer(tiny.model, stage2, CPU, 10, autoencoder)
    batch = _batch(dataset, [0, 3])
    assert (batch.seg == 3).any()  # the weights matter on these slices
    trainer.generator.eval()  # deterministic forward: the term can be recomputed by hand
    image = trainer.generator_side(batch.sources, with_contrastive=False).output.image
    expected = label_weighted_l1_loss(image, batch.target, batch.seg, weights)
    torch.testing.assert_close(trainer.l1(image, batch), expected)
    assert expected.item() != pytest.approx(l1_loss(image, batch.target).item(), rel=1e-3)
    trainer.train_mode()
    warm = trainer.train_step(batch)  # warm-up step: the generator's total is 100 x the weighted L1 + seg
    assert warm["generator"] == pytest.approx(100.0 * warm["l1"] + 0.1 * warm["segmentation"], rel=1e-5)
    with pytest.raises(ConfigError, match="l1_label_weights: expected one weight per segmentation class"):
        TranslationTrainer(tiny.model, dataclasses.replace(stage2, l1_label_weights=(1.0, 5.0)), CPU, 10, autoencoder)


def test_metrics_columns_follow_the_loss_weights():
    assert {f.name for f in dataclasses.fields(LossWeights)} < set(COLUMNS)


def test_metrics_log_appends_in_the_existing_files_column_order(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("step,l1,stage\n")
    log = MetricsLog(path)
    log.write(EpochMetrics(stage="stage2", epoch=0, step=7, lr=1e-4, seconds=1.0, elapsed=1.0,
                           losses={"l1": 0.5, "adversarial": 1.0}))
    log.close()
    assert path.read_text().splitlines() == ["step,l1,stage", "7,0.5,stage2"]


def test_epoch_metrics_are_the_csv_row_and_read_back_from_a_resume_files_row():
    metrics = EpochMetrics(stage="stage2", epoch=3, step=40, lr=1e-4, seconds=2.5, elapsed=10.0,
                           losses={"l1": 0.25, "generator": 26.0})
    validated = metrics.validated({"val_ssim": 0.8, "val_l1": 0.1})
    row = validated.to_row()
    assert list(row)[:4] == ["stage", "epoch", "step", "lr"] and list(row)[-2:] == ["seconds", "elapsed"]
    assert row["l1"] == 0.25 and row["val_ssim"] == 0.8 and metrics.validation == {}  # records are frozen
    assert set(row) <= set(COLUMNS)
    assert EpochMetrics.from_row({**row, "retired_column": 1.0}) == validated  # older rows: unknown keys dropped


def test_a_few_dozen_steps_overfit_a_few_slices(dataset, tiny):
    torch.manual_seed(0)
    stage2 = dataclasses.replace(tiny.training.stage2, lr=2e-3, head_lr=2e-3, decay_fraction=0.0)
    autoencoder = AutoencoderTrainer(tiny.model, tiny.training.stage1, CPU, 10).autoencoder
    trainer = TranslationTrainer(dataclasses.replace(tiny.model, use_dropout=False), stage2, CPU, 40, autoencoder)
    trainer.train_mode()
    batch = _batch(dataset, [0, 3])
    l1 = [trainer.train_step(batch)["l1"] for _ in range(40)]
    assert sum(l1[-5:]) / 5 < 0.5 * sum(l1[:3]) / 3, l1


def test_stage1_learns_the_identity(dataset, tiny):
    torch.manual_seed(0)
    stage1 = dataclasses.replace(tiny.training.stage1, lr=2e-3, decay_fraction=0.0)
    trainer = AutoencoderTrainer(dataclasses.replace(tiny.model, use_dropout=False), stage1, CPU, 30)
    trainer.train_mode()
    batch = _batch(dataset, [0, 3])
    l1 = [trainer.train_step(batch)["l1"] for _ in range(30)]
    assert sum(l1[-5:]) / 5 < 0.5 * l1[0], l1


# ---- checkpoints --------------------------------------------------------------------------------


@pytest.mark.parametrize("compact", [False, True])
def test_checkpoint_save_load_gives_identical_outputs(dataset, tiny, tmp_path, compact):
    torch.manual_seed(0)
    autoencoder = AutoencoderTrainer(tiny.model, tiny.training.stage1, CPU, 10).autoencoder
    trainer = TranslationTrainer(tiny.model, tiny.training.stage2, CPU, 10, autoencoder)
    batch = _batch(dataset, [0, 1])
    trainer.train_step(batch)  # move BN statistics away from their initial values
    intensity = IntensityModel.fit(Modality.T1C, (Modality.T1N, Modality.T2W, Modality.T2F),
                                   [{m: 100.0 * (i + k + 1) for k, m in enumerate(MODALITIES)} for i in range(6)])
    checkpoint = trained_checkpoint(target=Modality.T1C, generator=trainer.generator, setup=tiny,
                                 intensity_model=intensity, data_summary={"train_slices": len(dataset)},
                                 metrics={"stage2": {"val_ssim": 0.5}})
    path = write_checkpoint(tmp_path / checkpoint_filename(Modality.T1C), checkpoint, compact=compact)
    loaded = Checkpoint.load(path, target=Modality.T1C)
    model = loaded.build_model()
    trainer.generator.eval()
    with torch.no_grad():
        expected = trainer.generator(batch.sources)
        found = model(batch.sources)
    if compact:
        torch.testing.assert_close(found.image, expected.image, atol=2e-2, rtol=0)
    else:
        torch.testing.assert_close(found.image, expected.image, rtol=0, atol=0)
        torch.testing.assert_close(found.seg_logits, expected.seg_logits, rtol=0, atol=0)
    assert loaded.intensity_model == intensity
    assert loaded.kind == "plave" and loaded.normalization == Normalization(percentile=99.5, headroom=2.0)
    recorded = tiny.to_dict()["training"]
    assert {recorded["data"].pop(key) for key in ("percentile", "headroom")} == {99.5, 2.0}
    assert loaded.training_config == recorded  # the normalization is stored once, in `normalization`
    assert ModelConfig.from_dict(loaded.model_config) == tiny.model


def _rows(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def _cached_split(cohort, out, setup):
    """The run folder's slice cache (as `train` built it) and the training / validation case ids."""
    cached = build_slice_cache(discover_cases(cohort), out / "cache", CacheOptions(dtype="float32"))
    train_ids, val_ids = split_cases([c.case_id for c in cached], setup.training.data.validation_fraction, 0)
    return cached, train_ids, val_ids


def test_train_writes_checkpoints_with_the_fitted_intensity_model(cohort, tmp_path, tiny):
    out = tmp_path / "run"
    paths = train(cohort, out, "tiny", ["t2f"])
    assert paths == {Modality.T2F: out / "brasyn_t2f.pt"}
    ckpt = Checkpoint.load(paths[Modality.T2F], target=Modality.T2F)
    cached, train_ids, val_ids = _cached_split(cohort, out, tiny)
    expected = fit_intensity_model([c for c in cached if c.case_id in train_ids], Modality.T2F)
    assert ckpt.intensity_model == expected
    assert ckpt.data_summary["train_cases"] == train_ids and ckpt.data_summary["validation_cases"] == val_ids
    assert -1.0 <= ckpt.metrics["stage2"]["val_ssim"] <= 1.0
    assert set(ckpt.metrics) == {"stage1", "stage2"}
    assert yaml.safe_load((out / "config.yaml").read_text()) == tiny.to_dict()
    rows = _rows(out / "metrics_t2f.csv")
    assert [(r["stage"], r["step"]) for r in rows] == [("stage1", "2"), ("stage2", "2")]
    assert rows[1]["val_ssim"] != "" and rows[1]["contrastive"] != ""


def test_batchnorm_recalibration_averages_the_batch_statistics():
    model = nn.Sequential(nn.Linear(2, 2, bias=False), nn.BatchNorm1d(2))
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(2))  # the norm sees the batches as they are
    norm = model[1]
    norm.running_mean.fill_(5.0)
    norm.running_var.fill_(9.0)
    model.eval()
    batches = [torch.tensor([[0.0, 1.0], [2.0, 5.0]]), torch.tensor([[4.0, 0.0], [6.0, 2.0], [8.0, 4.0]])]
    # by hand: batch means (1, 3) and (6, 2); unbiased batch variances (2, 8) and (4, 4)
    assert recalibrate_batchnorm(model, batches, model) == 2
    assert torch.allclose(norm.running_mean, torch.tensor([3.5, 2.5]))
    assert torch.allclose(norm.running_var, torch.tensor([3.0, 6.0]))
    assert norm.momentum == 0.1 and not model.training and not norm.training  # restored
    assert recalibrate_batchnorm(model, [], model) == 0  # no batches: the statistics stay
    assert torch.allclose(norm.running_mean, torch.tensor([3.5, 2.5]))


def test_checkpoint_holds_batchnorm_statistics_of_its_final_weights(cohort, tmp_path, tiny):
    out = tmp_path / "run"
    train(cohort, out, "tiny", ["t2f"])
    ckpt = Checkpoint.load(out / "brasyn_t2f.pt", target=Modality.T2F)
    generator = ckpt.build_model()
    cached, train_ids, _ = _cached_split(cohort, out, tiny)
    train_ds = SliceDataset([c for c in cached if c.case_id in train_ids], Modality.T2F, tiny.model.image_size)
    saved = {k: v.clone() for k, v in generator.state_dict().items() if "running" in k}
    assert saved
    slices = tiny.training.stage2.batchnorm_recalibration_slices
    batches = recalibration_batches(train_ds, slices, tiny.training.seed)
    assert recalibrate_batchnorm(generator, batches, lambda x: generator(x, with_segmentation=True)) > 0
    # recomputing them with the final weights changes nothing: the checkpoint was recalibrated last
    for key, value in generator.state_dict().items():
        if "running" in key:
            assert torch.allclose(value, saved[key], atol=1e-5), key


def _resume_setup(tiny: TrainingSetup, resume_every_steps: int = 0) -> TrainingSetup:
    training = tiny.training
    return dataclasses.replace(
        tiny,
        model=dataclasses.replace(tiny.model, use_dropout=True),
        training=dataclasses.replace(
            training,
            resume_every_steps=resume_every_steps,
            stage1=dataclasses.replace(training.stage1, max_steps=2),
            stage2=dataclasses.replace(training.stage2, epochs=3, max_steps=None, batch_size=2),
        ),
    )


@pytest.mark.parametrize("resume_every_steps", [pytest.param(0, marks=pytest.mark.slow), 1])
def test_resume_continues_steps_and_schedule_exactly(cohort, tmp_path, tiny, monkeypatch, resume_every_steps):
    """Interrupted in epoch 2 of stage 2 and resumed from the last epoch end (0) or the last step (1)."""
    setup = _resume_setup(tiny, resume_every_steps)
    full = tmp_path / "full"
    train(cohort, full, setup, ["t1n"])

    # interrupted run: fail during the second epoch of stage 2, then resume
    part = tmp_path / "part"
    real_step = TranslationTrainer.train_step
    calls = {"n": 0}
    cached = build_slice_cache(discover_cases(cohort), part / "cache")
    train_ids, _ = split_cases([c.case_id for c in cached], setup.training.data.validation_fraction, 0)
    steps_per_epoch = sum(c.n_slices for c in cached if c.case_id in train_ids) // 2

    def failing_step(self, batch):
        calls["n"] += 1
        if calls["n"] == steps_per_epoch + 2:
            raise KeyboardInterrupt
        return real_step(self, batch)

    monkeypatch.setattr(TranslationTrainer, "train_step", failing_step)
    with pytest.raises(KeyboardInterrupt):
        train(cohort, part, setup, ["t1n"])
    assert not (part / "brasyn_t1n.pt").exists()
    saved = torch.load(part / "resume" / "t1n.pt", weights_only=True)
    assert saved["stage2"]["step"] == steps_per_epoch + resume_every_steps  # interrupted in step spe + 2
    monkeypatch.setattr(TranslationTrainer, "train_step", real_step)
    train(cohort, part, setup, ["t1n"])

    full_rows, part_rows = _rows(full / "metrics_t1n.csv"), _rows(part / "metrics_t1n.csv")
    key = [(r["stage"], r["epoch"], r["step"], r["lr"]) for r in full_rows]
    assert [(r["stage"], r["epoch"], r["step"], r["lr"]) for r in part_rows] == key
    assert key[-1][2] == str(3 * steps_per_epoch)
    a = Checkpoint.load(full / "brasyn_t1n.pt").state_dict
    b = Checkpoint.load(part / "brasyn_t1n.pt").state_dict
    for name, value in a.items():
        torch.testing.assert_close(b[name], value, rtol=0, atol=0)

    # a finished target is skipped on the next call
    monkeypatch.setattr(TranslationTrainer, "train_step", failing_step)
    calls["n"] = -100
    train(cohort, part, setup, ["t1n"])
    assert calls["n"] == -100


def test_resume_in_the_middle_of_an_epoch_skips_the_batches_done(cohort, tmp_path, tiny):
    setup = _resume_setup(tiny)
    stage2 = dataclasses.replace(setup.training.stage2, decay_fraction=0.0)  # constant LR: max_steps may grow

    def with_max_steps(n):
        return dataclasses.replace(setup, training=dataclasses.replace(
            setup.training, stage2=dataclasses.replace(stage2, max_steps=n)))

    cached = build_slice_cache(discover_cases(cohort), tmp_path / "cache")
    train_ids, _ = split_cases([c.case_id for c in cached], setup.training.data.validation_fraction, 0)
    steps_per_epoch = sum(c.n_slices for c in cached if c.case_id in train_ids) // 2
    assert steps_per_epoch >= 2
    train(cohort, tmp_path / "full", with_max_steps(2 * steps_per_epoch + 1), ["t2w"])
    train(cohort, tmp_path / "part", with_max_steps(steps_per_epoch + 1), ["t2w"])
    train(cohort, tmp_path / "part", with_max_steps(2 * steps_per_epoch + 1), ["t2w"])
    rows = _rows(tmp_path / "part" / "metrics_t2w.csv")
    assert [(r["epoch"], r["step"]) for r in rows if r["stage"] == "stage2"] == [
        ("0", str(steps_per_epoch)), ("1", str(steps_per_epoch + 1)),
        ("1", str(2 * steps_per_epoch)), ("2", str(2 * steps_per_epoch + 1)),
    ]
    a = Checkpoint.load(tmp_path / "full" / "brasyn_t2w.pt").state_dict
    b = Checkpoint.load(tmp_path / "part" / "brasyn_t2w.pt").state_dict
    for name, value in a.items():
        torch.testing.assert_close(b[name], value, rtol=0, atol=0)


def test_resume_refuses_a_different_model(cohort, tmp_path, tiny):
    out = tmp_path / "run"
    train(cohort, out, tiny, ["t1c"])
    other = dataclasses.replace(tiny, model=dataclasses.replace(tiny.model, base_channels=4))
    with pytest.raises(ConfigError) as info:
        train(cohort, out, other, ["t1c"])
    assert "--no-resume" in str(info.value)
    train(cohort, out, other, ["t1c"], resume=False)
    assert Checkpoint.load(out / "brasyn_t1c.pt").model_config["base_channels"] == 4


# ---- CLI ----------------------------------------------------------------------------------------


def test_cli_trains_the_four_targets(cohort, tmp_path):
    out = tmp_path / "weights"
    result = CliRunner().invoke(
        app, ["train", str(cohort), str(out), "--config", "tiny", "--max-steps", "1", "--device", "cpu"]
    )
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(
        [checkpoint_filename(m) for m in MODALITIES]
        + ["cache", "config.yaml", "resume"]
        + [f"metrics_{m.value}.csv" for m in MODALITIES]
    )
    assert sorted(p.name for p in (out / "resume").iterdir()) == sorted(f"{m.value}.pt" for m in MODALITIES)
    for modality in MODALITIES:
        assert Checkpoint.load(out / checkpoint_filename(modality), target=modality).target == modality.value
    assert yaml.safe_load((out / "config.yaml").read_text())["training"]["stage2"]["max_steps"] == 1


@pytest.mark.parametrize(("options", "expected"), [([], "preset"), (["--no-progress"], False), (["--progress"], True)])
def test_cli_progress_option_reaches_the_training_config(cohort, tmp_path, monkeypatch, options, expected):
    import brasyn.training

    seen = []
    monkeypatch.setattr(brasyn.training, "train", lambda data, out, setup, targets, **kw: seen.append(setup) or {})
    result = CliRunner().invoke(app, ["train", str(cohort), str(tmp_path / "o"), "--config", "tiny", *options])
    assert result.exit_code == 0, result.output
    if expected == "preset":  # left out, the config decides (tiny: no bars)
        expected = load_training_setup("tiny").training.progress
    assert seen[0].training.progress is expected


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--config", "nope"], "unknown preset 'nope'"),
        (["--config", "tiny", "--device", "tpu"], "--device"),
        (["--config", "tiny", "--target", "t3"], "--target"),
    ],
)
def test_cli_reports_bad_options(cohort, tmp_path, options, message):
    result = CliRunner().invoke(app, ["train", str(cohort), str(tmp_path / "o"), *options])
    assert result.exit_code != 0
    assert isinstance(result.exception, ConfigError) and message in str(result.exception)
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_requested_without_cuda_is_a_config_error(cohort, tmp_path):
    result = CliRunner().invoke(
        app, ["train", str(cohort), str(tmp_path / "o"), "--config", "tiny", "--device", "cuda"]
    )
    assert isinstance(result.exception, ConfigError) and "cuda" in str(result.exception)


@pytest.mark.slow
def test_ddp_under_torchrun_on_cpu(cohort, tmp_path):
    """Two Gloo processes: rank 0 alone writes, both see their half of the slices per epoch."""
    import os
    import shutil
    import subprocess
    import sys

    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    if torchrun is None:
        pytest.skip("torchrun not installed beside the interpreter")
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "brasyn.cli", "train", str(cohort), str(out),
         "--config", "tiny", "--target", "t1c", "--max-steps", "3"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == [
        "brasyn_t1c.pt",
        "cache",
        "config.yaml",
        "metrics_t1c.csv",
        "resume",
    ]
    cached = build_slice_cache(discover_cases(cohort), out / "cache")
    train_ids, _ = split_cases([c.case_id for c in cached], 0.34, 0)
    per_rank_steps = (sum(c.n_slices for c in cached if c.case_id in train_ids) // 2) // 2
    rows = _rows(out / "metrics_t1c.csv")
    steps = str(min(3, per_rank_steps))  # one epoch (tiny preset) of the rank's half, capped at 3
    assert [(r["stage"], r["step"]) for r in rows] == [("stage1", steps), ("stage2", steps)]
    Checkpoint.load(out / "brasyn_t1c.pt", target=Modality.T1C)


def test_bf16_autocast_steps_are_finite(dataset, tiny):
    torch.manual_seed(0)
    rt = Runtime(device=torch.device("cpu"), autocast_dtype=torch.bfloat16)
    autoencoder = AutoencoderTrainer(tiny.model, tiny.training.stage1, rt, 10)
    batch = _batch(dataset, [0, 1])
    assert all(v == v for v in autoencoder.train_step(batch).values())
    trainer = TranslationTrainer(tiny.model, tiny.training.stage2, rt, 10, autoencoder.autoencoder)
    terms = trainer.train_step(batch)
    assert all(torch.isfinite(torch.tensor(v)) for v in terms.values())
    image, logits = trainer.predict(batch.sources)
    assert image.shape == batch.target.shape and logits.shape[1] == 4


# ---- validation scores and time budget ----------------------------------------------------------


def test_validation_scores_a_perfect_and_a_blind_prediction(dataset):
    from brasyn.training.metrics import validate

    indices = [0, 2, 4]
    samples = [dataset[i] for i in indices]
    truth = torch.stack([s.target for s in samples])
    seg = torch.stack([s.seg for s in samples])
    perfect_logits = torch.nn.functional.one_hot(seg, 4).permute(0, 3, 1, 2).float()
    queue = [(truth, perfect_logits), (torch.full_like(truth, -1.0), torch.zeros_like(perfect_logits))]
    perfect = validate(lambda x: queue.pop(0), dataset, indices, device=torch.device("cpu"))
    assert perfect == {
        "val_l1": 0.0,
        "val_ssim": pytest.approx(1.0),
        "val_ssim_tumour": pytest.approx(1.0),
        "val_dice_wt": 1.0,
    }
    blind = validate(lambda x: queue.pop(0), dataset, indices, device=torch.device("cpu"))
    assert blind["val_dice_wt"] == 0.0  # every pixel predicted background (argmax of equal logits is class 0)
    assert blind["val_ssim_tumour"] < 0.1 < blind["val_ssim"]  # a flat image misses the tumour most


def test_max_seconds_stops_a_stage_at_the_next_budget_check(cohort, tmp_path, monkeypatch):
    import brasyn.training.loop as loop_module

    clock = iter(range(0, 10**6, 100))  # each perf_counter call advances 100 s
    monkeypatch.setattr(loop_module.time, "perf_counter", lambda: float(next(clock)))
    setup = {"preset": "tiny", "training": {"stage1": {"epochs": 100, "max_steps": 50},
                                            "stage2": {"epochs": 100, "max_steps": 50, "max_seconds": 1}}}
    train(cohort, tmp_path / "run", setup, ["t1c"])
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics_t1c.csv")))
    stage2 = [r for r in rows if r["stage"] == "stage2"]
    # the budget is checked every BUDGET_CHECK_STEPS (20) steps, whatever the epoch length
    assert int(stage2[-1]["step"]) == loop_module.BUDGET_CHECK_STEPS
    assert int([r for r in rows if r["stage"] == "stage1"][-1]["step"]) == 50  # no budget: ran to the end
    assert (tmp_path / "run" / "brasyn_t1c.pt").exists()


def test_time_budget_shortens_the_schedule_so_the_decay_still_happens(dataset, tiny, monkeypatch):
    import brasyn.training.loop as loop_module
    from brasyn.training.loop import run_stage

    ticks = iter(range(10**6))  # one second per perf_counter call
    monkeypatch.setattr(loop_module.time, "perf_counter", lambda: float(next(ticks)))
    stage1 = dataclasses.replace(tiny.training.stage1, decay_fraction=0.5)
    trainer = AutoencoderTrainer(tiny.model, stage1, CPU, 1000)
    rows = []
    reached = run_stage(trainer, dataset, rt=CPU, batch_size=2, total=1000, start_step=0, seed=0, num_workers=0,
                        progress=False, description="t", on_epoch_end=rows.append, max_seconds=60)
    shortened = trainer.scheduler.lr_lambdas[0].total
    assert shortened < 1000 and reached <= shortened  # far fewer steps fit in 60 "seconds" than 1000
    assert trainer.lr < stage1.lr  # the decay phase was reached inside the budget


def test_time_budget_is_not_shortened_by_slow_epoch_end_work(dataset, tiny, monkeypatch):
    """A long validation at an epoch end is time spent, not a slower pace: the steps that still fit
    at the measured step pace are all trained (the T1-ce run of docs/study/varied-robust stopped at
    4,070 s of 5,400 s because one budget interval held a validation)."""
    import brasyn.training.loop as loop_module
    from brasyn.training.loop import run_stage

    clock = [0.0]
    monkeypatch.setattr(loop_module.time, "perf_counter", lambda: clock[0])
    trainer = AutoencoderTrainer(tiny.model, tiny.training.stage1, CPU, 200)
    real_step = trainer.train_step

    def one_second_step(batch):
        clock[0] += 1.0
        return real_step(batch)

    monkeypatch.setattr(trainer, "train_step", one_second_step)
    slow_ends = []

    def epoch_end(metrics):  # the first epoch end after the pace is set takes 500 s
        if metrics.step > loop_module.BUDGET_CHECK_STEPS and not slow_ends:
            clock[0] += 500.0
            slow_ends.append(metrics.step)

    # 200 one-second steps + one 500 s epoch end fit in 1000 s
    reached = run_stage(trainer, dataset, rt=CPU, batch_size=2, total=200, start_step=0, seed=0, num_workers=0,
                        progress=False, description="t", on_epoch_end=epoch_end, max_seconds=1000)
    assert slow_ends and slow_ends[0] < 200  # the slow epoch end happened mid-stage
    assert reached == 200 and trainer.scheduler.lr_lambdas[0].total == 200


def test_warmup_trains_the_generator_on_reconstruction_only_then_every_term(dataset, tiny):
    torch.manual_seed(0)
    stage2 = dataclasses.replace(tiny.training.stage2, warmup_fraction=0.2)  # 2 of 10 steps
    autoencoder = AutoencoderTrainer(tiny.model, tiny.training.stage1, CPU, 10).autoencoder
    trainer = TranslationTrainer(tiny.model, stage2, CPU, 10, autoencoder)
    trainer.train_mode()
    frozen = {k: v.clone() for k, v in {**trainer.discriminator.state_dict(), **trainer.heads.state_dict()}.items()}
    generator_before = {k: v.clone() for k, v in trainer.generator.state_dict().items()}
    batch = _batch(dataset, [0, 3])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warm = [trainer.train_step(batch) for _ in range(2)]
    assert not [w for w in caught if "lr_scheduler" in str(w.message)]  # the shared clock is by design
    assert all(set(terms) == {"l1", "segmentation", "generator"} for terms in warm)
    assert warm[0]["generator"] == pytest.approx(100.0 * warm[0]["l1"] + 0.1 * warm[0]["segmentation"], rel=1e-5)
    after = {**trainer.discriminator.state_dict(), **trainer.heads.state_dict()}
    assert all(torch.equal(frozen[k], after[k]) for k in frozen)  # D and the heads waited
    assert any(not torch.equal(v, trainer.generator.state_dict()[k]) for k, v in generator_before.items())
    assert trainer.step == 2 and trainer.sched_d.last_epoch == 2  # one clock for the three schedules
    full = trainer.train_step(batch)
    assert {"discriminator", "adversarial", "contrastive", "sr_decoder", "sr_encoder", "sr_fusion"} <= set(full)


def test_trainer_keeps_the_generator_weights_the_warmup_ended_with(dataset, tiny):
    torch.manual_seed(0)
    stage2 = dataclasses.replace(tiny.training.stage2, warmup_fraction=0.2, keep_warmup_checkpoint=True)
    autoencoder = AutoencoderTrainer(tiny.model, tiny.training.stage1, CPU, 10).autoencoder
    trainer = TranslationTrainer(tiny.model, stage2, CPU, 10, autoencoder)
    trainer.train_mode()
    batch = _batch(dataset, [0, 3])
    for _ in range(2):  # the warm-up: 2 of 10 steps
        trainer.train_step(batch)
    assert trainer.warmup_state is None
    ended = {k: v.clone() for k, v in trainer.generator.state_dict().items()}
    trainer.train_step(batch)  # the first step with every term
    kept = trainer.warmup_state
    assert kept is not None and all(torch.equal(ended[k], kept[k]) for k in ended)
    trainer.train_step(batch)
    assert trainer.warmup_state is kept  # kept once, not overwritten by later steps
    assert any(not torch.equal(v, trainer.generator.state_dict()[k]) for k, v in kept.items())


def test_train_writes_the_warmup_checkpoint_beside_an_unchanged_final_one(cohort, tmp_path):
    """`keep_warmup_checkpoint`: warmup/brasyn_<t>.pt is a loadable checkpoint of other weights, and the
    final checkpoint is the one a run without the switch writes."""
    def setup(keep):
        return {"preset": "tiny", "training": {"stage2": {"warmup_fraction": 0.5, "keep_warmup_checkpoint": keep}}}

    train(cohort, tmp_path / "with", setup(True), ["t2f"])
    train(cohort, tmp_path / "without", setup(False), ["t2f"])
    assert not (tmp_path / "without" / "warmup").exists()
    final, plain, warm = (Checkpoint.load(tmp_path / run / "brasyn_t2f.pt", target=Modality.T2F)
                          for run in ("with", "without", "with/warmup"))
    assert warm.kind == "plave" and warm.model_config == final.model_config
    assert warm.intensity_model == final.intensity_model and warm.metrics["stage2"] == {}
    assert all(torch.equal(final.state_dict[k], plain.state_dict[k]) for k in final.state_dict)
    assert any(not torch.equal(warm.state_dict[k], final.state_dict[k]) for k in final.state_dict)


def test_training_runs_with_every_augmentation_switch_on(cohort, tmp_path):
    """The tiny preset with synthetic_robust's augmentation (workers included) trains and writes a checkpoint."""
    robust = load_training_setup("synthetic_robust").training.data.augmentation
    augmentation = {"spatial": dataclasses.asdict(robust.spatial), "intensity": dataclasses.asdict(robust.intensity)}
    setup = {"preset": "tiny", "training": {"stage1": {"max_steps": 2}, "stage2": {"max_steps": 3},
                                            "num_workers": 1, "data": {"augmentation": augmentation}}}
    assert load_training_setup(setup).training.data.augmentation == robust
    train(cohort, tmp_path / "run", setup, ["t1c"])
    assert (tmp_path / "run" / "brasyn_t1c.pt").exists()
