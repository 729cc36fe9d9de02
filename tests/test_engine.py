"""Inference engine (a folder of cases): the BraSyn output contract, the robustness rules (every case
attempted, clear reasons, nothing stray), pipelined file I/O, threads, segmentation output, any model kind."""

from __future__ import annotations

import gzip
import logging
import os
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_case
from inference_helpers import (
    COHORT_SHAPE,
    T2F,
    check_prediction_folder,
    copy_predictor,
    hand_intensity_model,
    make_checkpoint,
    make_weights,
    tree,
)

from brasyn.checkpoint import checkpoint_filename
from brasyn.constants import BRATS_AFFINE, MODALITIES, Modality, image_filename, sources_for
from brasyn.errors import InputError
from brasyn.inference import (
    InferenceSettings,
    OutputError,
    Predictor,
    synthesize_folder,
    tuning,
)
from brasyn.inference import engine as engine_module
from brasyn.io.nifti import load_volume, new_geometry, write_volume
from brasyn.models.config import ModelConfig


def test_folder_predictions_follow_the_brasyn_contract(weights, cohort, tmp_path):
    data, missing = cohort
    before = tree(data)
    summary = synthesize_folder(data, tmp_path / "out", weights, settings=InferenceSettings(batch_size=5))
    assert summary.ok
    assert [r.case_id for r in summary.done] == sorted(missing)
    assert {r.case_id: r.target for r in summary.done} == missing
    check_prediction_folder(tmp_path / "out", data, missing)
    assert tree(data) == before  # inputs never modified
    # nothing written anywhere but the output folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "out"]


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
    summary = synthesize_folder(data, out, weights, settings=InferenceSettings(overwrite=True))
    assert len(summary.done) == 4
    check_prediction_folder(out, data, missing)


def test_failed_case_with_overwrite_leaves_no_stale_prediction(weights, tmp_path):
    data, out = tmp_path / "data", tmp_path / "out"
    folder = write_case(data, "case-a", (Modality.T1N, Modality.T1C, Modality.T2W), shape=COHORT_SHAPE)
    out.mkdir()
    (out / "case-a-t2f.nii.gz").write_bytes(b"stale")
    (folder / "case-a-t1c.nii.gz").write_bytes(b"garbage")
    summary = synthesize_folder(data, out, weights, settings=InferenceSettings(overwrite=True))
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


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"model_config": {"image_size": 64, "base_channels": "lots"}}, "base_channels: expected int"),
        ({"normalization": {"percentile": "high"}}, "invalid normalization in checkpoint"),
        ({"normalization": {"percentile": 99.5, "headroom": 0.5}}, "headroom: expected >= 1"),
        ({"state_dict": {}}, "checkpoint weights do not match its model_config"),
        (
            {"model_config": {**ModelConfig.tiny().to_dict(), "base_channels": -8}},
            "base_channels: expected a positive integer",
        ),
    ],
)
def test_malformed_checkpoint_fails_only_its_target(tmp_path, cohort, change, reason):
    from brasyn.checkpoint import Checkpoint

    data, missing = cohort
    weights = make_weights(tmp_path / "weights")
    path = weights / checkpoint_filename(T2F)
    torch.save({**Checkpoint.load(path).to_payload(), **change}, path)  # a file written by someone else
    summary = synthesize_folder(data, tmp_path / "out", weights)
    failed = {r.case_id: r.reason for r in summary.failed}
    assert set(failed) == {c for c, t in missing.items() if t == T2F} and failed
    for text in failed.values():
        assert reason in text and str(path) in text and "\n" not in text
    assert {r.case_id for r in summary.done} == {c for c, t in missing.items() if t != T2F}

# ---------------------------------------------------------------------------------------------------
# Pipelining, threads, outputs, model kinds


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
    summary = synthesize_folder(data, tmp_path / "out", weights, settings=InferenceSettings(io_workers=3))
    assert len(summary.done) == 4
    for result in summary.done:
        assert list(result.timings) == list(engine_module.STAGES)
        assert all(0 < t <= result.seconds for t in result.timings.values())
        assert result.seconds == pytest.approx(sum(result.timings.values()))


def test_a_cases_seconds_exclude_the_next_cases_network_time(weights, cohort, tmp_path, monkeypatch, caplog):
    """The pipeline finishes case k after case k+1's network pass: k's time must not include it."""
    data, _ = cohort
    real_run, pause = Predictor.run, 0.4

    def slow_run(self, *args, **kwargs):
        threading.Event().wait(pause)
        return real_run(self, *args, **kwargs)

    monkeypatch.setattr(Predictor, "run", slow_run)
    with caplog.at_level(logging.INFO, logger="brasyn.inference.engine"):
        summary = synthesize_folder(data, tmp_path / "out", weights, settings=InferenceSettings(mirror_axes=()))
    assert len(summary.done) == 4
    for result in summary.done:
        assert result.timings["network"] >= pause
        assert result.seconds < result.timings["network"] + pause  # not two network passes
    logged = [r.getMessage() for r in caplog.records if "synthesized in" in r.getMessage()]
    assert len(logged) == 4
    assert all(f"in {r.seconds:.1f} s" in line for r, line in zip(summary.done, logged, strict=True))


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
        synthesize_folder(data, tmp_path / "out", weights, settings=InferenceSettings(device="cpu"))
        assert torch.get_num_threads() == cores
    finally:
        torch.set_num_threads(before)
    assert seen and set(seen) == {network_threads}


def test_segmentation_goes_to_its_own_folder(weights, cohort, tmp_path):
    data, missing = cohort
    summary = synthesize_folder(
        data, tmp_path / "out", weights, settings=InferenceSettings(segmentation_dir=str(tmp_path / "seg"))
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
        synthesize_folder(
            data, tmp_path / "o2", weights, settings=InferenceSettings(segmentation_dir=str(tmp_path / "o2"))
        )


def test_engine_is_model_kind_agnostic_polynomial_checkpoint(tmp_path, caplog):
    """A 'polynomial' checkpoint (the non-neural baseline) runs through the same engine; image = source t1n."""
    from brasyn.checkpoint import Checkpoint
    from brasyn.data.normalization import Normalization
    from brasyn.models.baseline import PolynomialBaseline

    model = PolynomialBaseline.from_config({"degree": 1, "image_size": 64})
    exponents = [tuple(e) for e in model.exponents.tolist()]
    model.coefficients.zero_()
    model.coefficients[exponents.index((1, 0, 0))] = 1.0  # image = first source channel (t1n for t2f)
    weights = tmp_path / "weights"
    Checkpoint.of_model(
        kind="polynomial", target=T2F, model=model, model_config={"degree": 1, "image_size": 64},
        intensity_model=hand_intensity_model(T2F), normalization=Normalization(),
    ).save(weights / checkpoint_filename(T2F))
    data = tmp_path / "data"
    write_case(data, "case-p", (Modality.T1N, Modality.T1C, Modality.T2W), shape=COHORT_SHAPE, seed=4)
    with caplog.at_level(logging.WARNING):
        summary = synthesize_folder(
            data, tmp_path / "out", weights, settings=InferenceSettings(segmentation_dir=str(tmp_path / "seg"))
        )
    assert summary.ok and [r.case_id for r in summary.done] == ["case-p"]
    assert "no segmentation decoder" in caplog.text
    assert list((tmp_path / "seg").iterdir()) == []  # nothing to write there, and no failure for it
    pred, _ = load_volume(tmp_path / "out" / "case-p-t2f.nii.gz")
    reference = copy_predictor(T2F, k=0).predict(
        {m: load_volume(data / "case-p" / f"case-p-{m}.nii.gz")[0] for m in sources_for(T2F)}
    )
    np.testing.assert_allclose(pred, np.rint(reference.image), atol=1.0)
