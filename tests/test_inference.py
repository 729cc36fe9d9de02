"""Inference engine: the BraSyn output contract, the maths of pre/post-processing, batching, the
robustness rules (every case attempted, clear reasons, nothing stray), the Python API and the CLI."""

from __future__ import annotations

import gzip
import hashlib
import logging
import math
import os
import subprocess
import sys
import threading
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from conftest import tiny_volumes, write_case
from inference_helpers import (
    COHORT_SHAPE,
    TARGET_FACTOR,
    check_prediction_folder,
    hand_intensity_model,
    make_checkpoint,
    make_weights,
    write_cohort,
)
from torch import nn
from typer.testing import CliRunner

from brasyn.checkpoint import checkpoint_filename
from brasyn.constants import BRATS_AFFINE, MODALITIES, Modality, image_filename, sources_for
from brasyn.data.normalization import DEFAULT_HEADROOM
from brasyn.errors import ConfigError, InputError, MissingModalityError
from brasyn.inference import (
    InferenceError,
    InferenceSettings,
    OutputError,
    Predictor,
    synthesize,
    synthesize_folder,
    tuning,
)
from brasyn.inference import engine as engine_module
from brasyn.io.nifti import load_volume, new_geometry, write_volume
from brasyn.models.config import ModelConfig

T2F = Modality.T2F


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return make_weights(tmp_path_factory.mktemp("weights"))


@pytest.fixture
def cohort(tmp_path):
    data = tmp_path / "data"
    return data, write_cohort(data, 4)


def tree(root: Path) -> dict[str, str]:
    """Every file under root -> sha256 of its bytes (to prove inputs are untouched)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()
    }


class Out:
    """What a model's forward returns (the fields the engine reads)."""

    def __init__(self, image, seg_logits=None):
        self.image, self.seg_logits = image, seg_logits


class CopyChannel(nn.Module):
    """A 'model' whose synthesized image is source channel k (no with_seg keyword: kind-agnostic path)."""

    def __init__(self, k: int = 0) -> None:
        super().__init__()
        self.k = k
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        self.seen.append(x.clone())
        return Out(x[:, self.k : self.k + 1])


class FlakyMemory(nn.Module):
    """Raises a CUDA-style out-of-memory error for batches larger than `limit`."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.sizes: list[int] = []

    def forward(self, x, *, with_seg=True):
        self.sizes.append(len(x))
        if len(x) > self.limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return Out(x[:, :1], None)


def copy_predictor(target=T2F, k=0, image_size=64, **kw) -> Predictor:
    return Predictor(CopyChannel(k), target=target, intensity_model=hand_intensity_model(target), image_size=image_size, **kw)


# ---------------------------------------------------------------------------------------------------
# The output contract and the maths


def test_folder_predictions_follow_the_brasyn_contract(weights, cohort, tmp_path):
    data, missing = cohort
    before = tree(data)
    summary = synthesize_folder(data, tmp_path / "out", weights, batch_size=5)
    assert summary.ok
    assert [r.case_id for r in summary.done] == sorted(missing)
    assert {r.case_id: r.target for r in summary.done} == missing
    check_prediction_folder(tmp_path / "out", data, missing)
    assert tree(data) == before  # inputs never modified
    # nothing written anywhere but the output folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "out"]


def test_normalisation_and_scale_restoration_match_hand_computation():
    images, _ = tiny_volumes(COHORT_SHAPE, seed=3)
    sources = {m: images[m] for m in sources_for(T2F)}  # t1n, t1c, t2w
    prediction = copy_predictor(T2F, k=1).predict(sources)  # image = normalised t1c
    brain = np.zeros(COHORT_SHAPE, bool)
    for v in sources.values():
        brain |= v != 0
    scales = {m: DEFAULT_HEADROOM * float(np.percentile(v[brain & (v > 0)], 99.5)) for m, v in sources.items()}
    target_scale = TARGET_FACTOR * math.exp(np.mean(np.log(list(scales.values()))))
    t1c = sources[Modality.T1C]
    expected = np.clip(t1c / scales[Modality.T1C], 0, 1) * target_scale
    expected[~brain] = 0
    assert prediction.target_scale == pytest.approx(target_scale, rel=1e-6)
    np.testing.assert_allclose(prediction.image, expected, rtol=1e-4, atol=1e-2 * target_scale / 1000)
    assert (prediction.image[~brain] == 0).all()
    assert prediction.segmentation is None


def test_slices_without_brain_skip_the_network_and_stay_zero():
    images, _ = tiny_volumes(COHORT_SHAPE, seed=1)
    sources = {m: images[m].copy() for m in sources_for(T2F)}
    for v in sources.values():
        v[..., [0, 5, 11]] = 0  # three empty axial slices
    predictor = copy_predictor(T2F, batch_size=4)
    prediction = predictor.predict(sources)
    seen = torch.cat(predictor.model.seen)
    assert len(seen) == COHORT_SHAPE[2] - 3
    assert [len(s) for s in predictor.model.seen] == [4, 4, 1]
    assert tuple(seen.shape[1:]) == (3, 64, 64)  # padded to the model's image_size
    assert float(seen[:, :, :8, :].max()) == -1.0  # padding is normalised background
    assert (prediction.image[..., [0, 5, 11]] == 0).all()
    assert (prediction.image[..., 1] != 0).any()


def test_padding_is_cropped_back_exactly():
    """A model that writes each pixel's own (row, col) code proves the crop returns each voxel to its place."""

    class Coordinates(nn.Module):
        def forward(self, x):
            size = x.shape[-1]
            rows = torch.arange(size).view(1, 1, size, 1).expand(len(x), 1, size, size)
            return Out((rows.float() / size) * 2 - 1)

    images, _ = tiny_volumes((40, 48, 6), seed=2)
    sources = {m: images[m] for m in sources_for(T2F)}
    predictor = Predictor(Coordinates(), target=T2F, intensity_model=hand_intensity_model(T2F), image_size=64)
    prepared = predictor.prepare(sources)
    image, _ = predictor.run(prepared.slices)
    restored = predictor.restore(prepared, image, None)
    top = (64 - 40) // 2
    scale = prepared.target_scale
    row_code = (np.arange(40) + top) / 64  # (image + 1) / 2 of the padded row index
    expected = np.broadcast_to(row_code[:, None, None] * scale, (40, 48, 6)) * prepared.mask
    np.testing.assert_allclose(restored.image, expected, rtol=1e-5)


@pytest.mark.parametrize("target", MODALITIES)
def test_batched_equals_one_slice_at_a_time(target, tmp_path):
    path = make_checkpoint(tmp_path / "m.pt", target)
    images, _ = tiny_volumes(COHORT_SHAPE, seed=5)
    sources = {m: images[m] for m in sources_for(target)}
    one = Predictor.from_checkpoint(path, settings=InferenceSettings(batch_size=1)).predict(sources, with_segmentation=True)
    many = Predictor.from_checkpoint(path, settings=InferenceSettings(batch_size=7)).predict(sources, with_segmentation=True)
    np.testing.assert_allclose(one.image, many.image, rtol=1e-4, atol=1e-3)
    assert (one.segmentation == many.segmentation).mean() > 0.999


def test_out_of_memory_halves_the_batch_and_retries(caplog):
    images, _ = tiny_volumes(COHORT_SHAPE, seed=0)
    sources = {m: images[m] for m in sources_for(T2F)}
    model = FlakyMemory(limit=3)
    predictor = Predictor(model, target=T2F, intensity_model=hand_intensity_model(T2F), image_size=64, batch_size=16)
    reference = copy_predictor(T2F, batch_size=16).predict(sources)
    with caplog.at_level(logging.WARNING):
        prediction = predictor.predict(sources)
    n = len(predictor.prepare(sources).slices)
    assert n > 8
    assert predictor.batch_size == 2
    assert model.sizes[:4] == [n, 8, 4, 2]  # 16 (all n slices) fails, 8 fails, 4 fails, 2 works
    assert sum(model.sizes[3:]) == n
    for size in (8, 4, 2):
        assert f"retrying with batch size {size}" in caplog.text
    np.testing.assert_allclose(prediction.image, reference.image, rtol=1e-6)


def test_out_of_memory_at_batch_one_is_a_clear_error():
    images, _ = tiny_volumes(COHORT_SHAPE, seed=0)
    predictor = Predictor(FlakyMemory(limit=0), target=T2F, intensity_model=hand_intensity_model(T2F), image_size=64)
    with pytest.raises(InferenceError) as info:
        predictor.predict({m: images[m] for m in sources_for(T2F)})
    assert "batch size 1" in str(info.value)


def test_slices_larger_than_the_model_fail_clearly(weights, tmp_path):
    write_case(tmp_path / "data", "BraTS-GLI-00009-000", (Modality.T1N, Modality.T1C, Modality.T2W), shape=(80, 72, 4))
    summary = synthesize_folder(tmp_path / "data", tmp_path / "out", weights)
    (result,) = summary.failed
    assert "80 x 72" in result.reason and "image_size 64" in result.reason
    assert list((tmp_path / "out").iterdir()) == []


# ---------------------------------------------------------------------------------------------------
# Robustness


def _write_bad_cohort(data: Path) -> dict[str, str]:
    """One good case and one case per bad input; returns case -> expected words of its failure reason."""
    three = (Modality.T1N, Modality.T1C, Modality.T2W)
    write_case(data, "case-good", three, shape=COHORT_SHAPE)
    write_case(data, "case-two-missing", (Modality.T1N, Modality.T1C), shape=COHORT_SHAPE)
    folder = write_case(data, "case-corrupt", three, shape=COHORT_SHAPE)
    (folder / "case-corrupt-t1c.nii.gz").write_bytes(gzip.compress(b"not a nifti")[:20])
    folder = write_case(data, "case-shape", three, shape=COHORT_SHAPE)
    write_volume(np.ones((48, 48, 10)), folder / "case-shape-t2w.nii.gz", new_geometry((48, 48, 10), BRATS_AFFINE))
    folder = write_case(data, "case-affine", three, shape=COHORT_SHAPE)
    shifted = BRATS_AFFINE.copy()
    shifted[0, 3] += 5
    write_volume(np.ones(COHORT_SHAPE), folder / "case-affine-t2w.nii.gz", new_geometry(COHORT_SHAPE, shifted))
    folder = write_case(data, "case-nan", three, shape=COHORT_SHAPE)
    nan = np.ones(COHORT_SHAPE, np.float32)
    nan[3, 3, 3] = np.nan
    write_volume(nan, folder / "case-nan-t1n.nii.gz", new_geometry(COHORT_SHAPE, BRATS_AFFINE), dtype=np.float32)
    (data / "case-empty").mkdir()
    write_case(data, "case-twice", three, shape=COHORT_SHAPE)
    write_case(data, "case-twice", (Modality.T1N,), shape=COHORT_SHAPE, extension=".nii")
    return {
        "case-twice": "found t1n twice",
        "case-two-missing": "expected 3 of",
        "case-corrupt": "cannot read",
        "case-shape": "shape",
        "case-affine": "affine",
        "case-nan": "NaN",
        "case-empty": "found 0",
    }


def test_every_bad_input_fails_alone_with_its_reason(weights, tmp_path, caplog):
    data, out = tmp_path / "data", tmp_path / "out"
    expected = _write_bad_cohort(data)
    before = tree(data)
    with caplog.at_level(logging.ERROR):
        summary = synthesize_folder(data, out, weights)
    assert [r.case_id for r in summary.done] == ["case-good"]
    failed = {r.case_id: r.reason for r in summary.failed}
    assert sorted(failed) == sorted(expected)
    for case_id, words in expected.items():
        assert words in failed[case_id], (case_id, failed[case_id])
        assert case_id in failed[case_id]  # the reason names the case
        assert sum(case_id in line and "failed" in line for line in caplog.text.splitlines()) == 1
    assert sorted(p.name for p in out.iterdir()) == ["case-good-t2f.nii.gz"]
    assert tree(data) == before
    assert not summary.ok
    text = summary.format()
    assert text.splitlines()[0] == "1 done, 0 skipped, 7 failed (8 cases)"
    assert all(f"FAILED  {c}:" in text for c in expected)


def test_missing_checkpoint_fails_only_the_cases_that_need_it(tmp_path, cohort):
    data, missing = cohort
    partial = make_weights(tmp_path / "partial", targets=(Modality.T1N, Modality.T1C, Modality.T2W))
    # a wrong model under the right name is refused too
    make_checkpoint(partial / checkpoint_filename(Modality.T2W), Modality.T1N)
    summary = synthesize_folder(data, tmp_path / "out", partial)
    reasons = {r.target: r.reason for r in summary.failed}
    assert set(reasons) == {Modality.T2W, Modality.T2F}
    assert "checkpoint not found" in reasons[Modality.T2F] and "brasyn_t2f.pt" in reasons[Modality.T2F]
    assert "expected a model for t2w" in reasons[Modality.T2W]
    assert {r.target for r in summary.done} == {Modality.T1C, Modality.T1N}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        image_filename(c, t) for c, t in missing.items() if t in (Modality.T1N, Modality.T1C)
    )


def test_existing_predictions_are_kept_unless_overwrite(weights, cohort, tmp_path):
    data, missing = cohort
    out = tmp_path / "out"
    out.mkdir()
    first_case = sorted(missing)[0]
    existing = out / image_filename(first_case, missing[first_case])
    existing.write_bytes(b"keep me")
    summary = synthesize_folder(data, out, weights)
    assert [r.case_id for r in summary.skipped] == [first_case]
    assert "exists" in summary.skipped[0].reason and summary.ok
    assert existing.read_bytes() == b"keep me"
    summary = synthesize_folder(data, out, weights, overwrite=True)
    assert len(summary.done) == 4
    check_prediction_folder(out, data, missing)


def test_failed_case_with_overwrite_leaves_no_stale_prediction(weights, tmp_path):
    data, out = tmp_path / "data", tmp_path / "out"
    folder = write_case(data, "case-a", (Modality.T1N, Modality.T1C, Modality.T2W), shape=COHORT_SHAPE)
    out.mkdir()
    (out / "case-a-t2f.nii.gz").write_bytes(b"stale")
    (folder / "case-a-t1c.nii.gz").write_bytes(b"garbage")
    summary = synthesize_folder(data, out, weights, overwrite=True)
    assert [r.case_id for r in summary.failed] == ["case-a"]
    assert list(out.iterdir()) == []


def test_complete_cases_are_skipped(weights, tmp_path):
    write_case(tmp_path / "data", "case-full", MODALITIES, shape=COHORT_SHAPE)
    summary = synthesize_folder(tmp_path / "data", tmp_path / "out", weights)
    assert [r.case_id for r in summary.skipped] == ["case-full"] and summary.ok
    assert "nothing to synthesize" in summary.skipped[0].reason


def test_no_case_folder_is_an_input_error(weights, tmp_path):
    (tmp_path / "data").mkdir()
    with pytest.raises(InputError) as info:
        synthesize_folder(tmp_path / "data", tmp_path / "out", weights)
    assert "found none" in str(info.value)
    assert not (tmp_path / "out").exists()


def test_read_only_output_folder(weights, cohort, tmp_path):
    data, _ = cohort
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    try:
        if os.access(out, os.W_OK):
            pytest.skip("running as root: a read-only folder is still writable")
        with pytest.raises(OutputError) as info:
            synthesize_folder(data, out, weights)
        assert "not writable" in str(info.value)
        assert list(out.iterdir()) == []
    finally:
        out.chmod(0o755)


def test_unwritable_output_is_refused_before_any_work(weights, cohort, tmp_path, monkeypatch):
    """Same rule as above, checked even as root: the permission probe (os.access) says no."""
    data, _ = cohort
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p).name == "out" else real_access(p, mode))
    with pytest.raises(OutputError) as info:
        synthesize_folder(data, tmp_path / "out", weights)
    assert "not writable" in str(info.value)
    (tmp_path / "blocker").write_text("a file")
    with pytest.raises(OutputError) as info:
        synthesize_folder(data, tmp_path / "blocker" / "out", weights)
    assert "cannot create" in str(info.value)


def test_output_inside_data_is_refused(weights, cohort):
    data, _ = cohort
    with pytest.raises(OutputError):
        synthesize_folder(data, data / "predictions", weights)
    assert not (data / "predictions").exists()


def test_file_io_runs_in_background_threads(weights, cohort, tmp_path, monkeypatch):
    data, missing = cohort
    threads = {"load": set(), "save": set(), "network": set()}
    real_load, real_save, real_run = engine_module._load, engine_module._save, Predictor.run

    def load(job, predictor):
        threads["load"].add(threading.current_thread().name)
        return real_load(job, predictor)

    def save(job, predictor, loaded, image, labels):
        threads["save"].add(threading.current_thread().name)
        return real_save(job, predictor, loaded, image, labels)

    def run(self, slices, **kwargs):
        threads["network"].add(threading.current_thread().name)
        return real_run(self, slices, **kwargs)

    monkeypatch.setattr(engine_module, "_load", load)
    monkeypatch.setattr(engine_module, "_save", save)
    monkeypatch.setattr(Predictor, "run", run)
    summary = synthesize_folder(data, tmp_path / "out", weights)
    assert len(summary.done) == 4
    main = threading.main_thread().name
    assert threads["network"] == {main}
    assert threads["load"] and threads["save"]
    assert main not in threads["load"] | threads["save"]
    assert all(name.startswith("brasyn-io") for name in threads["load"] | threads["save"])


def test_each_case_reports_its_stage_timings(weights, cohort, tmp_path):
    data, _ = cohort
    summary = synthesize_folder(data, tmp_path / "out", weights, io_workers=3)
    assert len(summary.done) == 4
    for result in summary.done:
        assert list(result.timings) == list(engine_module.STAGES)
        assert all(0 < t <= result.seconds for t in result.timings.values())


@pytest.mark.parametrize("cores, network_threads", [(2, 2), (4, 3), (8, 7)])
def test_engine_leaves_a_core_to_file_io_from_4_cores_and_restores_the_threads(
    weights, cohort, tmp_path, monkeypatch, cores, network_threads
):
    data, _ = cohort
    seen = []
    real_run = Predictor.run

    def run(self, slices, **kwargs):
        seen.append(torch.get_num_threads())
        return real_run(self, slices, **kwargs)

    monkeypatch.setattr(Predictor, "run", run)
    monkeypatch.setattr(tuning, "available_cpus", lambda: cores)
    before = torch.get_num_threads()
    torch.set_num_threads(cores)
    try:
        synthesize_folder(data, tmp_path / "out", weights, device="cpu")
        assert torch.get_num_threads() == cores
    finally:
        torch.set_num_threads(before)
    assert seen and set(seen) == {network_threads}


def test_auto_batch_size_and_layout_follow_the_device():
    cpu = tuning.plan_for(torch.device("cpu"))
    assert (cpu.batch_size, cpu.channels_last) == (tuning.CPU_BATCH, True)
    expected = None if min(torch.get_num_threads(), tuning.available_cpus()) < tuning.MIN_CORES_TO_SPARE else 1
    assert cpu.threads == expected or (expected == 1 and cpu.threads >= 1)
    cuda = tuning.plan_for(torch.device("cuda"))
    assert (cuda.batch_size, cuda.channels_last, cuda.threads) == (tuning.CUDA_BATCH, True, None)
    explicit = tuning.plan_for(torch.device("cpu"), 7, channels_last=False)
    assert (explicit.batch_size, explicit.channels_last) == (7, False)
    assert InferenceSettings().batch_size == "auto"
    assert InferenceSettings.from_dict({"batch_size": "auto"}).batch_size == "auto"


def test_segmentation_goes_to_its_own_folder(weights, cohort, tmp_path):
    data, missing = cohort
    summary = synthesize_folder(
        data, tmp_path / "out", weights, write_segmentation=True, segmentation_path=str(tmp_path / "seg")
    )
    assert summary.ok
    check_prediction_folder(tmp_path / "out", data, missing)
    assert sorted(p.name for p in (tmp_path / "seg").iterdir()) == sorted(f"{c}-seg.nii.gz" for c in missing)
    for case_id, target in missing.items():
        seg, geometry = load_volume(tmp_path / "seg" / f"{case_id}-seg.nii.gz")
        pred, _ = load_volume(tmp_path / "out" / image_filename(case_id, target))
        assert set(np.unique(seg)) <= {0, 1, 2, 3}
        assert geometry.shape == COHORT_SHAPE
        brain = np.zeros(COHORT_SHAPE, bool)
        for m in sources_for(target):
            brain |= load_volume(data / case_id / image_filename(case_id, m))[0] != 0
        assert (seg[~brain] == 0).all()
    with pytest.raises(OutputError):
        synthesize_folder(data, tmp_path / "o2", weights, write_segmentation=True, segmentation_path=str(tmp_path / "o2"))


def test_settings_are_strict():
    with pytest.raises(ConfigError) as info:
        InferenceSettings.from_dict({"batch_sise": 4})
    assert "infer.batch_sise" in str(info.value)
    for bad in ({"batch_size": 0}, {"batch_size": "many"}, {"batch_size": True}, {"device": "gpu"}, {"precision": "int8"}, {"write_segmentation": True}):
        with pytest.raises(ConfigError):
            InferenceSettings.from_dict(bad)
    assert InferenceSettings.from_dict({"device": "cuda:1", "precision": "bf16"}).device == "cuda:1"


# ---------------------------------------------------------------------------------------------------
# Python API and CLI


def test_synthesize_single_case_matches_the_folder_run(weights, cohort, tmp_path):
    data, missing = cohort
    case_id = sorted(missing)[2]
    target = missing[case_id]
    inputs = {m.value: data / case_id / image_filename(case_id, m) for m in sources_for(target)}
    written = synthesize(**inputs, output_file=tmp_path / "single" / "x.nii.gz", weights=weights)
    synthesize_folder(data, tmp_path / "out", weights)
    single, geometry = load_volume(written)
    folder, _ = load_volume(tmp_path / "out" / image_filename(case_id, target))
    np.testing.assert_array_equal(single, folder)
    assert nib.load(str(written)).get_data_dtype() == np.int16


def test_synthesize_failed_segmentation_write_leaves_no_output(weights, cohort, tmp_path):
    data, missing = cohort
    case_id = sorted(missing)[0]
    inputs = {m.value: data / case_id / image_filename(case_id, m) for m in sources_for(missing[case_id])}
    out = tmp_path / "single"
    (out / "seg.nii.gz").mkdir(parents=True)  # a folder where the segmentation file should go
    with pytest.raises(OSError):
        synthesize(**inputs, output_file=out / "x.nii.gz", segmentation_file=out / "seg.nii.gz", weights=weights)
    assert sorted(p.name for p in out.iterdir()) == ["seg.nii.gz"]  # no image, no temporary file
    written = synthesize(**inputs, output_file=out / "x.nii.gz", segmentation_file=tmp_path / "new" / "seg.nii.gz", weights=weights)
    assert written.is_file() and (tmp_path / "new" / "seg.nii.gz").is_file()  # the segmentation's folder is created


@pytest.mark.parametrize("given", [("t1n", "t1c"), ("t1n", "t1c", "t2w", "t2f"), ()])
def test_synthesize_needs_exactly_three_inputs(given, tmp_path, weights):
    with pytest.raises(MissingModalityError) as info:
        synthesize(**{m: tmp_path / f"{m}.nii.gz" for m in given}, output_file=tmp_path / "o.nii.gz", weights=weights)
    assert f"expected exactly 3 of t1n/t1c/t2w/t2f, found {len(given)}" in str(info.value)
    assert not (tmp_path / "o.nii.gz").exists()


def test_cli_infer(weights, cohort, tmp_path):
    from brasyn.cli import app

    data, missing = cohort
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["infer", str(data), str(out), "--weights", str(weights), "--batch-size", "3", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "4 done, 0 skipped, 0 failed" in result.output
    check_prediction_folder(out, data, missing)
    # a failing case makes the exit status non-zero; the others are still done
    write_case(data, "BraTS-GLI-09999-000", (Modality.T1N,), shape=COHORT_SHAPE)
    result = CliRunner().invoke(app, ["infer", str(data), str(out), "--weights", str(weights), "--no-progress"])
    assert result.exit_code == 1
    assert "0 done, 4 skipped, 1 failed" in result.output
    assert "FAILED  BraTS-GLI-09999-000: expected 3 of t1c/t1n/t2f/t2w, found 1 (t1n)" in result.output
    # the console entry point turns that into exit status 1 too
    proc = subprocess.run(
        [sys.executable, "-m", "brasyn.cli", "infer", str(data), str(tmp_path / "o2"), "--weights", str(weights), "--no-progress"],
        capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    assert proc.returncode == 1, proc.stderr
    assert "4 done, 0 skipped, 1 failed" in proc.stdout
    assert len(list((tmp_path / "o2").iterdir())) == 4


def test_device_and_precision_resolution():
    from brasyn.inference import resolve_device, resolve_precision

    cpu = torch.device("cpu")
    assert resolve_device("cpu") == cpu
    assert resolve_precision("auto", cpu) is None and resolve_precision("fp32", cpu) is None
    assert resolve_precision("bf16", cpu) is torch.bfloat16 and resolve_precision("fp16", cpu) is torch.float16
    if not torch.cuda.is_available():
        assert resolve_device("auto") == cpu
        with pytest.raises(ConfigError) as info:
            resolve_device("cuda")
        assert "CUDA is not available" in str(info.value)


@pytest.mark.parametrize(
    "capability, expected",
    [((7, 0), torch.float16), ((7, 5), torch.float16), ((8, 0), torch.bfloat16), ((8, 9), torch.bfloat16), ((9, 0), torch.bfloat16)],
    ids=["V100", "T4", "A100", "L4", "H100"],
)
def test_auto_precision_follows_the_compute_capability(monkeypatch, capability, expected):
    """bf16 only from Ampere (8.0) on: `is_bf16_supported()` is also true on T4/V100, where cuDNN lacks bf16 convolutions."""
    from brasyn.inference import resolve_precision

    asked = []
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # what T4 and V100 report too
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: asked.append(device) or capability)
    device = torch.device("cuda:1")
    assert resolve_precision("auto", device) is expected
    assert asked == [device]  # the capability of the device that runs the model, not of cuda:0
    assert resolve_precision("bf16", device) is torch.bfloat16 and resolve_precision("fp16", device) is torch.float16
    assert resolve_precision("fp32", device) is None


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_autocast_agrees_with_cpu(tmp_path):
    path = make_checkpoint(tmp_path / "m.pt", T2F)
    images, _ = tiny_volumes(COHORT_SHAPE, seed=5)
    sources = {m: images[m] for m in sources_for(T2F)}
    cpu = Predictor.from_checkpoint(path, settings=InferenceSettings(device="cpu")).predict(sources)
    gpu_predictor = Predictor.from_checkpoint(path, settings=InferenceSettings(device="cuda", precision="auto"))
    assert gpu_predictor.autocast_dtype in (torch.bfloat16, torch.float16)
    gpu = gpu_predictor.predict(sources)
    assert np.abs(gpu.image - cpu.image).max() < 0.05 * cpu.target_scale
    assert (gpu.image[cpu.image == 0] == 0).all()


def test_engine_is_model_kind_agnostic_polynomial_checkpoint(tmp_path, caplog):
    """A 'polynomial' checkpoint (the non-neural baseline) runs through the same engine; image = source t1n."""
    from brasyn.checkpoint import CHECKPOINT_FORMAT, save_checkpoint
    from brasyn.data.normalization import Normalization
    from brasyn.models.baseline import PolynomialBaseline

    model = PolynomialBaseline.from_config({"degree": 1, "image_size": 64})
    exponents = [tuple(e) for e in model.exponents.tolist()]
    model.coefficients.zero_()
    model.coefficients[exponents.index((1, 0, 0))] = 1.0  # image = first source channel (t1n for t2f)
    weights = tmp_path / "weights"
    save_checkpoint(weights / checkpoint_filename(T2F), {
        "format": CHECKPOINT_FORMAT, "kind": "polynomial", "target": "t2f", "sources": ["t1n", "t1c", "t2w"],
        "model_config": {"degree": 1, "image_size": 64}, "state_dict": model.state_dict(),
        "intensity_model": hand_intensity_model(T2F).to_dict(), "normalization": Normalization().to_dict(),
    })
    data = tmp_path / "data"
    write_case(data, "case-p", (Modality.T1N, Modality.T1C, Modality.T2W), shape=COHORT_SHAPE, seed=4)
    with caplog.at_level(logging.WARNING):
        summary = synthesize_folder(data, tmp_path / "out", weights, write_segmentation=True, segmentation_path=str(tmp_path / "seg"))
    assert summary.ok and [r.case_id for r in summary.done] == ["case-p"]
    assert "no segmentation decoder" in caplog.text
    assert list((tmp_path / "seg").iterdir()) == []  # nothing to write there, and no failure for it
    pred, _ = load_volume(tmp_path / "out" / "case-p-t2f.nii.gz")
    reference = copy_predictor(T2F, k=0).predict({m: load_volume(data / "case-p" / f"case-p-{m}.nii.gz")[0] for m in sources_for(T2F)})
    np.testing.assert_allclose(pred, np.rint(reference.image), atol=1.0)


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"model_config": {"image_size": 64, "base_channels": "lots"}}, "base_channels: expected int"),
        ({"normalization": {"percentile": "high"}}, "invalid normalization in checkpoint"),
        ({"normalization": {"percentile": 99.5, "headroom": 0.5}}, "headroom: expected >= 1"),
        ({"state_dict": {}}, "checkpoint weights do not match its model_config"),
        ({"model_config": {**ModelConfig.tiny().to_dict(), "base_channels": -8}}, "base_channels: expected a positive integer"),
    ],
)
def test_malformed_checkpoint_fails_only_its_target(tmp_path, cohort, change, reason):
    from brasyn.checkpoint import load_checkpoint, save_checkpoint

    data, missing = cohort
    weights = make_weights(tmp_path / "weights")
    path = weights / checkpoint_filename(T2F)
    save_checkpoint(path, {**load_checkpoint(path), **change})
    summary = synthesize_folder(data, tmp_path / "out", weights)
    failed = {r.case_id: r.reason for r in summary.failed}
    assert set(failed) == {c for c, t in missing.items() if t == T2F} and failed
    for text in failed.values():
        assert reason in text and str(path) in text and "\n" not in text
    assert {r.case_id for r in summary.done} == {c for c, t in missing.items() if t != T2F}


def test_cli_infer_defaults_are_the_settings_defaults(monkeypatch, tmp_path):
    import brasyn.inference
    from brasyn.cli import app
    from brasyn.inference.engine import InferenceSummary

    seen = []

    def fake(data, output, weights, *, settings):
        seen.append(settings)
        return InferenceSummary((), Path(output))

    monkeypatch.setattr(brasyn.inference, "synthesize_folder", fake)
    assert CliRunner().invoke(app, ["infer", str(tmp_path), str(tmp_path / "o")]).exit_code == 0
    assert CliRunner().invoke(app, ["infer", str(tmp_path), str(tmp_path / "o"), "--batch-size", "3", "--device", "cpu"]).exit_code == 0
    defaults = InferenceSettings()
    assert (seen[0].batch_size, seen[0].device, seen[0].precision) == (defaults.batch_size, defaults.device, defaults.precision)
    assert (seen[1].batch_size, seen[1].device, seen[1].precision) == (3, "cpu", defaults.precision)
    assert CliRunner().invoke(app, ["infer", str(tmp_path), str(tmp_path / "o"), "--batch-size", "auto"]).exit_code == 0
    assert seen[2].batch_size == "auto"
    for bad in ("0", "-2", "four"):
        result = CliRunner().invoke(app, ["infer", str(tmp_path), str(tmp_path / "o"), "--batch-size", bad])
        assert result.exit_code == 2 and "--batch-size" in result.output
    assert len(seen) == 3
