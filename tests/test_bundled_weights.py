"""The weights shipped in workspace/: they load safely, are small, and synthesize a plausible volume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from brasyn.checkpoint import Checkpoint, checkpoint_filename
from brasyn.config import from_dict
from brasyn.constants import MODALITIES, Modality, sources_for
from brasyn.inference import InferenceSettings, Predictor
from brasyn.phantom import PhantomConfig, generate_case
from brasyn.training.config import PRESETS, load_training_setup

REPO = Path(__file__).resolve().parents[1]
WORKSPACE = REPO / "workspace"
MAX_BYTES = 5 * 1024 * 1024  # per checkpoint: the demo models are stored compact (float16)


@pytest.mark.parametrize("folder,kind", [("additional_files", "plave"), ("baseline", "polynomial")])
@pytest.mark.parametrize("target", MODALITIES)
def test_bundled_checkpoint_loads_with_its_record(folder, kind, target):
    path = WORKSPACE / folder / checkpoint_filename(target)
    assert path.stat().st_size < MAX_BYTES
    checkpoint = Checkpoint.load(path, target=target)  # weights_only=True inside
    assert checkpoint.kind == kind
    assert checkpoint.intensity_model.n_cases >= 10
    assert checkpoint.data_summary, "the training data must be recorded beside the weights"


def test_bundled_models_record_how_they_were_made():
    import json

    from brasyn.data.normalization import Normalization

    folder = WORKSPACE / "additional_files"
    records = json.loads((folder / "provenance.json").read_text())["targets"]
    assert sorted(records) == sorted(t.value for t in MODALITIES)
    assert (folder / "config.yaml").is_file() and (folder / "README.md").is_file()
    sizes = [(folder / checkpoint_filename(t)).stat().st_size for t in MODALITIES]
    assert sum(sizes) < 25 * 1024 * 1024  # issue 8: at most 25 MB for all four
    for target in MODALITIES:
        record = records[target.value]
        assert {"command", "config", "cohort", "wall_seconds", "machine", "torch", "code_commit"} <= set(record)
        assert record["stage2_steps"] > 0
        checkpoint = Checkpoint.load(folder / checkpoint_filename(target), target=target)
        # the recorded config is the one the weights were trained with
        assert checkpoint.model_config == load_training_setup(_recorded_config(record)).to_dict()["model"]
        assert checkpoint.normalization == Normalization()  # today's normalization
        assert (folder / "metrics" / f"metrics_{target.value}.csv").is_file()


def _recorded_config(record: dict) -> str | Path:
    """A record's config: a preset name, or a YAML path relative to the repository (e.g. a study's)."""
    return record["config"] if record["config"] in PRESETS else REPO / record["config"]


def _training_normalization(folder: str, target: Modality):
    """The normalization the bundled model of `target` was trained with, from the record beside it."""
    import json

    import torch

    from brasyn.data.normalization import Normalization
    from brasyn.training.baseline_fit import BaselineFitConfig

    if folder == "additional_files":
        record = json.loads((WORKSPACE / folder / "provenance.json").read_text())["targets"][target.value]
        return load_training_setup(_recorded_config(record)).training.data.normalization
    # the baseline records its fitting config in the checkpoint (older files: with the normalization)
    raw = torch.load(WORKSPACE / folder / checkpoint_filename(target), weights_only=True)["training_config"]
    known = {*BaselineFitConfig.__dataclass_fields__, "percentile", "headroom"}
    fields = {k: v for k, v in raw.items() if k in known}
    return from_dict(BaselineFitConfig, fields).normalization if fields else Normalization()


@pytest.mark.parametrize("folder", ["additional_files", "baseline"])
@pytest.mark.parametrize("target", MODALITIES)
def test_training_and_inference_normalize_a_case_identically(folder, target, case_factory, tmp_path):
    """The slice cache (training) and the predictor (inference) feed the network the same numbers."""
    from brasyn.data.cases import discover_cases
    from brasyn.data.slices import CacheOptions, cache_case
    from brasyn.data.slicing import crop_slices
    from brasyn.io.nifti import load_volume

    case_factory("BraTS-GLI-00001-000", with_labels=True, shape=(40, 36, 6), seed=5)
    (case,) = discover_cases(case_factory.root)
    options = CacheOptions(normalization=_training_normalization(folder, target), tumour_slices_only=False,
                           dtype="float32")
    cached = cache_case(case, tmp_path / "cache", options)
    checkpoint = Checkpoint.load(WORKSPACE / folder / checkpoint_filename(target), target=target)
    assert checkpoint.normalization == options.normalization
    predictor = Predictor.from_record(checkpoint, settings=InferenceSettings(device="cpu"))
    sources = {m: load_volume(case.images[m])[0] for m in sources_for(target)}
    prepared = predictor.prepare(sources)
    inference = crop_slices(prepared.slices, prepared.pad)  # (N, 3, H, W) at z = prepared.positions
    assert tuple(prepared.positions) == cached.slice_indices
    r0, r1, c0, c1 = cached.bbox
    channels = [MODALITIES.index(m) for m in sources_for(target)]
    training = np.asarray(cached.images())[:, channels]  # (N, 3, h, w)
    np.testing.assert_array_equal(inference[:, :, r0:r1, c0:c1], training)
    assert prepared.source_scales == {m: cached.scales[m] for m in sources_for(target)}


@pytest.fixture(scope="module")
def unseen_case():
    """A full-size synthetic case from a seed the bundled models never saw."""
    return generate_case(0, seed=99, config=PhantomConfig())


@pytest.mark.slow
@pytest.mark.parametrize("target", [Modality.T1C, Modality.T2F])
def test_bundled_model_synthesizes_a_plausible_volume(target, unseen_case):
    case = unseen_case
    sources = {m: case.images[m].astype(np.float32) for m in sources_for(target)}
    path = WORKSPACE / "additional_files" / checkpoint_filename(target)
    settings = InferenceSettings(mirror_axes=())  # the network alone, one pass (mirroring: test below)
    prediction = Predictor.from_checkpoint(path, target=target, settings=settings).predict(sources)
    brain = case.images[target] > 0
    assert prediction.image.shape == (240, 240, 155)
    assert np.isfinite(prediction.image).all()
    assert (prediction.image[~brain] == 0).all()
    truth = case.images[target][brain].astype(np.float64)
    synth = prediction.image[brain].astype(np.float64)
    # a trained model follows the truth's anatomy and lands near its scanner scale
    assert np.corrcoef(truth, synth)[0, 1] > 0.5
    assert 0.5 < np.median(synth) / np.median(truth) < 2.0


@pytest.mark.slow
def test_mirroring_makes_the_bundled_model_mirror_equivariant(unseen_case):
    """With both in-plane axes (the default) the prediction of a mirrored case is the mirrored
    prediction: its four passes are the same four, in another order. Without mirroring the trained
    network is not equivariant, so the test can tell the two apart."""
    target = Modality.T2F
    crop = (slice(72, 168), slice(64, 176), slice(70, 76))  # 96 x 112 x 6 around the brain: even padding
    sources = {m: np.ascontiguousarray(unseen_case.images[m][crop], dtype=np.float32) for m in sources_for(target)}
    mirrored = {m: np.ascontiguousarray(v[::-1, ::-1]) for m, v in sources.items()}
    path = WORKSPACE / "additional_files" / checkpoint_filename(target)
    for axes, equivariant in (((0, 1), True), ((), False)):
        predictor = Predictor.from_checkpoint(path, settings=InferenceSettings(mirror_axes=axes))
        plain, flipped = predictor.predict(sources), predictor.predict(mirrored)
        error = np.abs(flipped.image[::-1, ::-1] - plain.image).max() / plain.target_scale
        assert (error < 1e-4) if equivariant else (error > 1e-2), (axes, error)


# ----------------------------------------------------------------------------------- the bundled segmenter

SEGMENTER = WORKSPACE / "segmenter"


def test_bundled_segmenter_loads_safely_with_its_record():
    import json

    import torch

    from brasyn.segmenter import load_segmenter

    path = SEGMENTER / "segmenter.pt"
    assert path.stat().st_size < MAX_BYTES
    payload = torch.load(path, map_location="cpu", weights_only=True)
    assert payload["kind"] == "segmenter" and payload["channels"] == ["t1n", "t1c", "t2w", "t2f"]
    _, _, checkpoint = load_segmenter(path)
    record = json.loads((SEGMENTER / "record.json").read_text())
    assert (SEGMENTER / "README.md").is_file()
    assert record["model_config"] == checkpoint["model_config"]
    training = record["training_cases"]
    assert len(training) == 32 and not any(c.startswith("BraTS-GLI-2") for c in training)  # no validation case
    dice = record["validation_dice"]
    assert dice["cases"] == 16 and dice["mean"]["WT"] >= 0.8  # the real four sequences of held-out cases
    assert checkpoint["metrics"]["validation_dice"] == dice["mean"]


@pytest.mark.slow
def test_bundled_segmenter_finds_the_tumour_of_an_unseen_case(unseen_case):
    from brasyn.evaluation.dice import region_dice
    from brasyn.segmenter import load_segmenter, segment_volumes

    model, normalization, _ = load_segmenter(SEGMENTER / "segmenter.pt")
    volumes = {m: unseen_case.images[m].astype(np.float32) for m in MODALITIES}
    labels = segment_volumes(model, normalization, volumes)
    assert labels.shape == (240, 240, 155) and labels.dtype == np.uint8
    assert set(np.unique(labels)) <= {0, 1, 2, 3}
    assert region_dice(labels, unseen_case.seg)["WT"] > 0.8


def test_make_checkpoints_defaults_are_the_bundled_recipe():
    """`make checkpoints` (scripts/train_checkpoints.sh with its defaults) trains each target with the
    config its bundled checkpoint records, so the documented command reproduces the bundled set."""
    import json
    import re

    script = (REPO / "scripts" / "train_checkpoints.sh").read_text()
    default_config = re.search(r"^BUNDLED_CONFIG=(\S+)$", script, re.MULTILINE).group(1)
    assert re.search(r"^CONFIG=\$\{CONFIG:-\$BUNDLED_CONFIG\}$", script, re.MULTILINE)
    pairs = re.search(r'\$CONFIG == "\$BUNDLED_CONFIG" \]\]; then TARGET_CONFIGS=\$\{TARGET_CONFIGS-([^}]*)\}', script)
    own = dict(pair.split("=") for pair in pairs.group(1).split())  # the targets with their own config
    records = json.loads((WORKSPACE / "additional_files" / "provenance.json").read_text())["targets"]
    for target in MODALITIES:
        assert records[target.value]["config"] == own.get(target.value, default_config), target
