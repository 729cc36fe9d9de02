"""Contrast enhancement of a T1-ce image: does the enhancing tumour stand out from healthy brain?

    ratio      = mean over the enhancing tumour (label 3) / median over the healthy brain (brain − tumour)
    recovered  = (ratio of the prediction − 1) / (ratio of the truth − 1)

A recovered value of 1 means the prediction's tumour enhances as much as the truth's, 0 means not at
all (the tumour is as bright as healthy brain), negative values mean darker than healthy brain.
Scale-free: a prediction multiplied by a constant has the same ratio. Undefined (NaN) without
enhancing tumour, without healthy brain, with a healthy median ≤ 0, or when the truth does not
enhance (|truth ratio − 1| < `MIN_TRUTH_CONTRAST`).
"""

from __future__ import annotations

import math

import numpy as np

ENHANCING_LABEL = 3
MIN_TRUTH_CONTRAST = 1e-3
COLUMNS = ("enhancement_ratio_pred", "enhancement_ratio_truth", "enhancement_recovered")


def enhancement_ratio(image: np.ndarray, seg: np.ndarray, brain: np.ndarray) -> float:
    """Mean of `image` over label 3 of `seg` / median over `brain` outside the tumour (seg == 0); NaN if undefined."""
    enhancing = seg == ENHANCING_LABEL
    healthy = brain & (seg == 0)
    if not enhancing.any() or not healthy.any():
        return math.nan
    reference = float(np.median(image[healthy]))
    if not reference > 0:
        return math.nan
    return float(np.mean(image[enhancing], dtype=np.float64)) / reference


def enhancement_recovered(pred_ratio: float, truth_ratio: float) -> float:
    """(pred_ratio − 1) / (truth_ratio − 1); NaN when either is undefined or the truth does not enhance."""
    if not (math.isfinite(pred_ratio) and math.isfinite(truth_ratio)) or abs(truth_ratio - 1.0) < MIN_TRUTH_CONTRAST:
        return math.nan
    return (pred_ratio - 1.0) / (truth_ratio - 1.0)


def enhancement_scores(
    prediction: np.ndarray, truth: np.ndarray, seg: np.ndarray | None, brain: np.ndarray
) -> dict[str, float]:
    """The three `COLUMNS` of one T1-ce prediction (empty without a segmentation)."""
    if seg is None:
        return {}
    pred_ratio = enhancement_ratio(prediction, seg, brain)
    truth_ratio = enhancement_ratio(truth, seg, brain)
    return dict(zip(COLUMNS, (pred_ratio, truth_ratio, enhancement_recovered(pred_ratio, truth_ratio)), strict=True))
