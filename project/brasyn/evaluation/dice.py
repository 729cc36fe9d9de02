"""Legacy (whole-volume) Dice of the BraTS regions ET, TC and WT."""

from __future__ import annotations

import numpy as np

from brasyn.constants import REGIONS


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """2·|P ∩ T| / (|P| + |T|) of two boolean masks.

    Both empty → 1.0 (nothing to find and nothing found: BraTS' legacy convention, also used by the
    MedPerf BraTS metrics cube); exactly one empty → 0.0.
    """
    pred = np.asarray(pred, dtype=bool)
    truth = np.asarray(truth, dtype=bool)
    if pred.shape != truth.shape:
        raise ValueError(f"Dice needs equal shapes, found {pred.shape} and {truth.shape}")
    total = int(pred.sum()) + int(truth.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(pred, truth).sum()) / total


def region_mask(labels: np.ndarray, region: str) -> np.ndarray:
    """Voxels of a label map belonging to `region` ("ET", "TC" or "WT")."""
    return np.isin(np.rint(labels).astype(np.int64), REGIONS[region])


def region_dice(pred_labels: np.ndarray, truth_labels: np.ndarray) -> dict[str, float]:
    """Dice per region, e.g. {"ET": 0.8, "TC": 0.85, "WT": 0.9}, from two label maps (0..3)."""
    return {region: dice(region_mask(pred_labels, region), region_mask(truth_labels, region)) for region in REGIONS}
