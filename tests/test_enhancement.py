"""Enhancement of a synthesized T1-ce: hand-computed ratios, the undefined cases, and the report columns."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from brasyn.constants import Modality
from brasyn.evaluation import evaluate
from brasyn.evaluation.enhancement import enhancement_ratio, enhancement_recovered, enhancement_scores
from brasyn.evaluation.report import CSV_COLUMNS, format_table
from tests.test_evaluation import CASES, make_labels, make_predictions

# 1-D "volume": background, healthy brain, edema, enhancing tumour
SEG = np.array([0, 0, 0, 0, 0, 2, 3, 3])
BRAIN = np.array([False, True, True, True, True, True, True, True])
TRUTH = np.array([0.0, 100, 110, 90, 120, 150, 300, 260])
PRED = np.array([0.0, 200, 220, 180, 240, 300, 300, 340])


def test_ratio_is_mean_of_label_3_over_median_of_healthy_brain_by_hand():
    # truth: healthy brain {100, 110, 90, 120} (edema is tumour, background is not brain): median 105;
    # enhancing {300, 260}: mean 280; ratio 280 / 105 = 2.666667
    assert enhancement_ratio(TRUTH, SEG, BRAIN) == pytest.approx(280 / 105)
    # prediction: median of {200, 220, 180, 240} = 210; mean of {300, 340} = 320; 320 / 210 = 1.523810
    assert enhancement_ratio(PRED, SEG, BRAIN) == pytest.approx(320 / 210)
    # recovered = (1.523810 − 1) / (2.666667 − 1) = 0.523810 / 1.666667 = 0.314286
    assert enhancement_recovered(320 / 210, 280 / 105) == pytest.approx(0.314286, abs=1e-6)
    scores = enhancement_scores(PRED, TRUTH, SEG, BRAIN)
    assert scores["enhancement_recovered"] == pytest.approx(0.314286, abs=1e-6)
    assert scores["enhancement_ratio_truth"] == pytest.approx(2.666667, abs=1e-6)


def test_scale_free_and_one_for_the_truth_itself():
    assert enhancement_ratio(3.5 * PRED, SEG, BRAIN) == pytest.approx(enhancement_ratio(PRED, SEG, BRAIN))
    assert enhancement_scores(TRUTH, TRUTH, SEG, BRAIN)["enhancement_recovered"] == pytest.approx(1.0)
    flat = np.where(BRAIN, 105.0, 0.0)  # no enhancement at all
    assert enhancement_scores(flat, TRUTH, SEG, BRAIN)["enhancement_recovered"] == pytest.approx(0.0)


def test_undefined_cases_are_nan():
    assert math.isnan(enhancement_ratio(TRUTH, np.where(SEG == 3, 1, SEG), BRAIN))  # no label 3
    assert math.isnan(enhancement_ratio(np.zeros(8), SEG, BRAIN))  # healthy median 0
    assert math.isnan(enhancement_recovered(1.5, 1.0))  # the truth does not enhance
    assert math.isnan(enhancement_recovered(math.nan, 2.0))
    assert enhancement_scores(PRED, TRUTH, None, BRAIN) == {}


def test_report_has_enhancement_for_t1c_cases_only(tmp_path):
    labels = make_labels(tmp_path / "labels")
    pred = make_predictions(tmp_path / "pred")
    baseline = make_predictions(tmp_path / "baseline")
    evaluation = evaluate(pred, labels, baseline_dir=baseline, out_dir=tmp_path / "report", pictures=False)
    for run in evaluation.runs:
        for case in run.cases:
            has = "enhancement_recovered" in case.scores
            assert has == (case.missing is Modality.T1C)
            if has:  # the predictions are the truth itself
                assert case.scores["enhancement_recovered"] == pytest.approx(1.0)
                assert case.scores["enhancement_ratio_pred"] == pytest.approx(case.scores["enhancement_ratio_truth"])
    assert {"enhancement_ratio_pred", "enhancement_ratio_truth", "enhancement_recovered"} <= set(CSV_COLUMNS)
    with open(tmp_path / "report" / "cases.csv") as handle:
        rows = list(csv.DictReader(handle))
    t1c = [r for r in rows if r["missing"] == "t1c"]
    assert len(t1c) == 2 and all(float(r["enhancement_recovered"]) == pytest.approx(1.0) for r in t1c)
    assert all(r["enhancement_recovered"] == "" for r in rows if r["missing"] != "t1c")
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    for run in ("model", "baseline"):
        per = summary["runs"][run]["per_missing_modality"]
        assert per["t1c"]["enhancement_recovered"] == pytest.approx(1.0)
        assert "enhancement_recovered" not in per["t2w"] or per["t2w"]["enhancement_recovered"] is None
    lines = format_table(evaluation).splitlines()
    start = next(k for k, line in enumerate(lines) if line.startswith("Enhancement recovered"))
    model, baseline_line = lines[start + 2], lines[start + 3]
    assert model.startswith("model") and baseline_line.startswith("baseline")
    # columns T1, T1-ce, FLAIR, T2, Mean: only T1-ce (and the mean over it) has a value
    assert model.split()[1:] == ["-", "1.0000", "-", "-", "1.0000"]
    assert sum(m is Modality.T1C for m in CASES.values()) == 1
