"""`brasyn evaluate`: the two SSIM conventions, Dice, prediction-folder checks and the written report."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image
from skimage.metrics import structural_similarity
from typer.testing import CliRunner

from brasyn.cli import app
from brasyn.constants import BRATS_AFFINE, MODALITIES, Modality, image_filename
from brasyn.errors import InputError
from brasyn.evaluation import (
    container_normalize,
    container_ssim,
    container_ssim_map,
    dice,
    evaluate,
    percentile_normalize,
    percentile_scores,
    read_labels,
    region_dice,
    ssim3d_map,
)
from brasyn.evaluation.report import CSV_COLUMNS
from brasyn.evaluation.ssim import cropped_mean
from brasyn.io.nifti import new_geometry, write_volume
from tests.conftest import TINY_SHAPE, tiny_volumes, write_case

SKIMAGE = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}


def _pair(shape=(40, 48), seed=0):
    rng = np.random.default_rng(seed)
    a = rng.random(shape)
    b = 0.7 * a + 0.3 * rng.random(shape)
    return a, b


# ----------------------------------------------------------------------------------- SSIM vs skimage


def test_container_ssim_matches_skimage_inside_the_border():
    truth, pred = _pair()
    data_range = 1.3
    ref_mean, ref_map = structural_similarity(truth, pred, data_range=data_range, full=True, **SKIMAGE)
    ours = container_ssim_map(pred, truth, normalize=False, data_range=data_range)
    inner = (slice(5, -5), slice(5, -5))
    np.testing.assert_allclose(ours[inner], ref_map[inner], atol=1e-10)
    assert cropped_mean(ours) == pytest.approx(ref_mean, abs=1e-10)
    # The 5-pixel border differs: torch `reflect` padding (d c b | a b c d) vs scipy "reflect" (d c b a | a b c d).
    assert np.abs(ours - ref_map).max() > 1e-6


def test_percentile_ssim_matches_skimage_on_2d_and_3d():
    truth, pred = _pair((30, 36), seed=1)
    ref = structural_similarity(truth, pred, data_range=1.0, **SKIMAGE)
    assert cropped_mean(ssim3d_map(pred, truth, data_range=1.0)) == pytest.approx(ref, abs=1e-10)
    truth3, pred3 = _pair((16, 18, 20), seed=2)
    ref3 = structural_similarity(truth3, pred3, data_range=1.0, **SKIMAGE)
    assert cropped_mean(ssim3d_map(pred3, truth3, data_range=1.0)) == pytest.approx(ref3, abs=1e-10)


def test_container_ssim_is_2d_per_first_axis_slice():
    truth, pred = _pair((3, 20, 24), seed=3)
    full = container_ssim_map(pred, truth, normalize=False, data_range=1.0)
    for i in range(3):
        np.testing.assert_allclose(full[i], container_ssim_map(pred[i], truth[i], normalize=False, data_range=1.0))


def test_container_data_range_is_taken_from_the_data():
    truth, pred = _pair((20, 24), seed=4)
    auto = container_ssim_map(pred, truth, normalize=False)
    data_range = max(np.ptp(pred), np.ptp(truth))
    np.testing.assert_allclose(auto, container_ssim_map(pred, truth, normalize=False, data_range=data_range))


# ----------------------------------------------------------------------------------- normalization


def _brain_volume():
    images, seg = tiny_volumes()
    return images[Modality.T2W].astype(np.float64), seg


def test_container_normalization_divides_both_by_254_times_the_truth_percentile():
    truth, _ = _brain_volume()
    pred = truth * 0.5 - 10.0
    constant = 254.0 * np.percentile(truth, 99.5)
    p, g = container_normalize(pred, truth)
    np.testing.assert_allclose(g, truth / constant)
    np.testing.assert_allclose(p, np.clip(pred, 0, None) / constant)


def test_percentile_normalization_clips_to_own_percentiles():
    volume = np.arange(1000, dtype=np.float64) - 100.0  # P0.5 < 0 → raised to 0
    out = percentile_normalize(volume)
    top = np.percentile(volume, 99.5)
    assert out.min() == 0.0 and out.max() == 1.0
    assert out[500] == pytest.approx(volume[500] / top)


# ----------------------------------------------------------------------------------- properties


def test_identity_scores_one():
    truth, seg = _brain_volume()
    assert container_ssim(truth, truth) == pytest.approx(1.0, abs=1e-12)
    scores = percentile_scores(truth, truth, seg > 0, truth > 0)
    assert scores.ssim_full == pytest.approx(1.0, abs=1e-12)
    assert scores.ssim_tumour_region == pytest.approx(1.0, abs=1e-12)
    assert scores.ssim_healthy_region == pytest.approx(1.0, abs=1e-12)
    assert scores.mse_brain == 0.0 and math.isinf(scores.psnr_brain)


def test_scaled_prediction_is_invariant_only_for_the_percentile_variant():
    truth, seg = _brain_volume()
    half = truth * 0.5
    assert percentile_scores(half, truth, seg > 0, truth > 0).ssim_full == pytest.approx(1.0, abs=1e-9)
    assert container_ssim(half, truth) < 0.95


def test_non_zero_background_is_penalised_by_the_container_variant():
    truth, _ = _brain_volume()
    shifted = np.where(truth == 0, 50.0, truth)
    assert container_ssim(truth, truth) - container_ssim(shifted, truth) > 0.2


def test_whole_map_tumour_ssim_hides_a_bad_tumour_but_the_region_mean_does_not():
    truth, seg = _brain_volume()
    tumour = seg > 0
    bad = np.where(tumour, truth.mean(), truth)  # tumour replaced by a flat grey
    scores = percentile_scores(bad, truth, tumour, truth > 0)
    assert scores.ssim_tumour > scores.ssim_tumour_region + 0.2
    assert scores.ssim_healthy_region > 0.99


# ----------------------------------------------------------------------------------- Dice


def test_dice_hand_computed():
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    a[0, :4] = True
    b[0, 2:] = True
    b[1, :2] = True
    assert dice(a, b) == pytest.approx(2 * 2 / 8)
    assert dice(np.zeros(5, bool), np.zeros(5, bool)) == 1.0  # both empty: defined as 1
    assert dice(np.zeros(5, bool), np.ones(5, bool)) == 0.0


def test_region_dice_uses_brats_regions():
    truth = np.array([0, 1, 2, 3, 3, 0])
    pred = np.array([0, 3, 2, 3, 0, 2])
    scores = region_dice(pred, truth)
    assert scores["ET"] == pytest.approx(2 * 1 / (2 + 2))  # pred {1,3}, truth {3,4}
    assert scores["TC"] == pytest.approx(2 * 2 / (2 + 3))  # pred {1,3}, truth {1,3,4}
    assert scores["WT"] == pytest.approx(2 * 3 / (4 + 4))  # pred {1,2,3,5}, truth {1,2,3,4}


# ----------------------------------------------------------------------------------- labels + folders

CASES = {"BraTS-GLI-00001-000": Modality.T2W, "BraTS-GLI-00002-000": Modality.T1C, "BraTS-GLI-00003-000": Modality.T2F}


def make_labels(root: Path, cases=CASES) -> Path:
    """The MedPerf labels layout: missing.json + original_data/<case>/ with all 4 images and the seg."""
    for k, case_id in enumerate(cases):
        write_case(root / "original_data", case_id, with_labels=True, seed=k)
    (root / "missing.json").write_text(json.dumps({c: m.value for c, m in cases.items()}))
    return root


def make_predictions(folder: Path, cases=CASES, *, seg_folder: Path | None = None, shape=TINY_SHAPE) -> Path:
    """Perfect predictions (the ground truth itself) and segmentations, named as the contract says."""
    folder.mkdir(parents=True, exist_ok=True)
    geometry = new_geometry(shape, BRATS_AFFINE)
    for k, (case_id, missing) in enumerate(cases.items()):
        images, seg = tiny_volumes(shape, seed=k)
        write_volume(images[missing], folder / image_filename(case_id, missing), geometry)
        if seg_folder is not None:
            seg_folder.mkdir(parents=True, exist_ok=True)
            write_volume(seg, seg_folder / image_filename(case_id, "seg"), geometry, dtype=np.uint8)
    return folder


@pytest.fixture
def layout(tmp_path):
    labels = make_labels(tmp_path / "labels")
    pred = make_predictions(tmp_path / "pred", seg_folder=tmp_path / "seg")
    return labels, pred, tmp_path / "seg"


def _kinds(evaluation, run=0):
    return {(p.case_id, p.kind) for p in evaluation.runs[run].problems}


def test_read_labels(layout):
    labels, _, _ = layout
    cases = read_labels(labels)
    assert [(c.case_id, c.missing) for c in cases] == list(CASES.items())
    assert cases[0].sources == (Modality.T1N, Modality.T1C, Modality.T2F)


def test_read_labels_without_missing_json_fails(tmp_path):
    write_case(tmp_path / "labels" / "original_data", "BraTS-GLI-00001-000")
    with pytest.raises(InputError) as info:
        read_labels(tmp_path / "labels")
    assert "missing.json" in str(info.value)


def test_clean_folder_has_no_problems_and_perfect_scores(layout):
    labels, pred, seg = layout
    evaluation = evaluate(pred, labels, segmentation_dir=seg)
    assert evaluation.clean
    run = evaluation.runs[0]
    assert [c.status for c in run.cases] == ["ok"] * 3
    for case in run.cases:
        assert case.scores["ssim_container"] == pytest.approx(1.0)
        assert case.scores["ssim_full"] == pytest.approx(1.0)
        assert case.scores["dice_WT"] == 1.0


@pytest.mark.parametrize(
    "defect, kind, case_id",
    [
        ("missing", "missing", "BraTS-GLI-00001-000"),
        ("stray", "stray", ""),
        ("subfolder", "subfolder", ""),
        ("suffix", "wrong-suffix", "BraTS-GLI-00002-000"),
        ("extension", "wrong-extension", "BraTS-GLI-00002-000"),
        ("shape", "shape", "BraTS-GLI-00001-000"),
        ("affine", "affine", "BraTS-GLI-00001-000"),
        ("background", "background", "BraTS-GLI-00001-000"),
        ("nan", "non-finite", "BraTS-GLI-00001-000"),
    ],
)
def test_each_folder_defect_is_reported(layout, defect, kind, case_id):
    labels, pred, _ = layout
    first = pred / image_filename("BraTS-GLI-00001-000", Modality.T2W)
    second = pred / image_filename("BraTS-GLI-00002-000", Modality.T1C)
    images, _ = tiny_volumes(seed=0)
    truth = images[Modality.T2W]
    geometry = new_geometry(TINY_SHAPE, BRATS_AFFINE)
    if defect == "missing":
        first.unlink()
    elif defect == "stray":
        (pred / "notes.txt").write_text("hello")
    elif defect == "subfolder":
        (pred / "BraTS-GLI-00001-000").mkdir()
    elif defect == "suffix":  # the model wrote the wrong modality for case 2
        second.rename(pred / image_filename("BraTS-GLI-00002-000", Modality.T2W))
    elif defect == "extension":
        nib.save(nib.load(second), pred / image_filename("BraTS-GLI-00002-000", Modality.T1C, ".nii"))
        second.unlink()
    elif defect == "shape":
        write_volume(truth[:, :, :10], first, new_geometry((32, 32, 10), BRATS_AFFINE))
    elif defect == "affine":
        shifted = BRATS_AFFINE.copy()
        shifted[0, 3] = 5.0
        write_volume(truth, first, new_geometry(TINY_SHAPE, shifted))
    elif defect == "background":
        write_volume(np.where(truth == 0, 50.0, truth), first, geometry)
    elif defect == "nan":
        bad = truth.copy()
        bad[16, 16, 6] = np.nan
        write_volume(bad, first, geometry, dtype=np.float32)
    evaluation = evaluate(pred, labels)
    assert (case_id, kind) in _kinds(evaluation)
    assert not evaluation.clean
    # Whatever can be scored is scored: the other cases keep their scores.
    scored = {c.case_id for c in evaluation.runs[0].cases if c.status != "not scored"}
    assert "BraTS-GLI-00003-000" in scored


def test_background_defect_lowers_the_container_score_only(layout):
    labels, pred, _ = layout
    images, _ = tiny_volumes(seed=0)
    truth = images[Modality.T2W]
    write_volume(
        np.where(truth == 0, 50.0, truth),
        pred / image_filename("BraTS-GLI-00001-000", Modality.T2W),
        new_geometry(TINY_SHAPE, BRATS_AFFINE),
    )
    case = evaluate(pred, labels).runs[0].cases[0]
    assert case.status == "flagged"
    assert case.scores["ssim_container"] < 0.9
    assert case.scores["ssim_healthy_region"] > 0.95


# ----------------------------------------------------------------------------------- CLI + report


def test_cli_writes_csv_json_and_pictures(layout, tmp_path):
    labels, pred, seg = layout
    baseline = make_predictions(tmp_path / "baseline")
    out = tmp_path / "report"
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--pred",
            str(pred),
            "--labels",
            str(labels),
            "--segmentation-dir",
            str(seg),
            "--baseline",
            str(baseline),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "T1-ce" in result.output and "FLAIR" in result.output and "baseline" in result.output
    with open(out / "cases.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0].keys()) == CSV_COLUMNS
    assert [(r["run"], r["case"], r["missing"]) for r in rows] == [
        (run, c, m.value) for run in ("model", "baseline") for c, m in CASES.items()
    ]
    assert float(rows[0]["dice_ET"]) == 1.0 and rows[3]["dice_ET"] == ""  # no segmentations for the baseline
    # a report written before "tumour" was the one spelling still reads, under today's names
    from brasyn.evaluation.report import RENAMED_COLUMNS, read_cases_csv

    assert read_cases_csv(out / "cases.csv") == rows
    old_names = {new: old for old, new in RENAMED_COLUMNS.items()}
    older = tmp_path / "older.csv"
    with open(older, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[old_names.get(c, c) for c in CSV_COLUMNS])
        writer.writeheader()
        writer.writerows({old_names.get(k, k): v for k, v in row.items()} for row in rows)
    assert "ssim_tumor_region" in older.read_text().splitlines()[0]
    assert read_cases_csv(older) == rows
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["runs"]) == {"model", "baseline"}
    model = summary["runs"]["model"]
    assert model["clean"] and model["cases"] == 3
    assert set(model["per_missing_modality"]) == {"t2w", "t1c", "t2f"}
    assert model["mean"]["ssim_container"] == pytest.approx(1.0)
    assert sorted(p.name for p in (out / "qc").iterdir()) == [f"{c}.png" for c in CASES]
    with Image.open(out / "overview.png") as overview:
        assert overview.height > 3 * 128 and overview.width >= 4 * 128  # one row of 4 panels per case
    with Image.open(out / "qc" / "BraTS-GLI-00001-000.png") as montage:
        assert montage.width > 7 * 160  # 3 sources, prediction, truth, error, tumour


def test_cli_exit_status_one_on_problems_and_report_not_inside_predictions(layout, tmp_path):
    labels, pred, _ = layout
    (pred / "stray.nii.gz").write_bytes(b"")
    result = CliRunner().invoke(app, ["evaluate", "--pred", str(pred), "--labels", str(labels)])
    assert result.exit_code == 1
    assert "[stray]" in result.output
    result = CliRunner().invoke(
        app, ["evaluate", "--pred", str(pred), "--labels", str(labels), "--out", str(pred / "report")]
    )
    assert result.exit_code != 0
    assert not (pred / "report").exists()


def test_missing_segmentation_is_reported_when_seg_folder_given(layout):
    labels, pred, seg = layout
    (seg / image_filename("BraTS-GLI-00002-000", "seg")).unlink()
    evaluation = evaluate(pred, labels, segmentation_dir=seg)
    assert ("BraTS-GLI-00002-000", "missing-seg") in _kinds(evaluation)


def test_all_modalities_in_table_order():
    from brasyn.evaluation.report import TABLE_MODALITIES

    assert {m for m, _ in TABLE_MODALITIES} == set(MODALITIES)


def test_unreadable_ground_truth_skips_only_that_case(tmp_path):
    cases = dict(list(CASES.items())[:2])
    labels = make_labels(tmp_path / "labels", cases)
    pred = make_predictions(tmp_path / "pred", cases)
    broken = "BraTS-GLI-00001-000"
    truth = labels / "original_data" / broken / image_filename(broken, "t1n")
    truth.write_bytes(truth.read_bytes()[:40])  # a truncated gzip stream
    evaluation = evaluate(pred, labels, baseline_dir=pred)
    for run in evaluation.runs:
        first, second = run.cases
        assert (first.case_id, first.status, first.scores) == (broken, "not scored", {})
        assert [p.kind for p in first.problems] == ["unreadable-truth"]
        assert truth.name in first.problems[0].message
        assert second.status == "ok" and second.scores["ssim_container"] == pytest.approx(1.0)
    result = CliRunner().invoke(
        app, ["evaluate", "--pred", str(pred), "--labels", str(labels), "--out", str(tmp_path / "report")]
    )
    assert result.exit_code == 1, result.output
    assert "[unreadable-truth]" in result.output
    rows = list(csv.DictReader((tmp_path / "report" / "cases.csv").read_text().splitlines()))
    assert [(r["case"], r["status"]) for r in rows] == [(broken, "not scored"), ("BraTS-GLI-00002-000", "ok")]
