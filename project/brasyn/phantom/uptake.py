"""Gadolinium uptake as its own hidden spatial field (so t1c is not a voxel-wise function of the others).

ΔR1(x) per tissue = mean uptake of the tissue × a log-normal heterogeneity field (tumour: its own
noise field; healthy tissue: a broad one), plus blood in vessels: thin tubes along the intersection
of two zero level sets of smooth noise, restricted to CSF-rich voxels (sulci, cisterns, choroid).
None of these fields enters t1n, t2w or t2f.
"""

from __future__ import annotations

import numpy as np

from brasyn.phantom import fields
from brasyn.phantom.tissue import VESSEL_UPTAKE_RANGE

VESSEL_SIGMA_MM = 6.0
VESSEL_WIDTH = 0.12  # in units of the noise std: smaller gives thinner, rarer vessels
VESSEL_CSF_RANGE = (0.15, 0.5)  # CSF fraction from which vessels appear, and where they are full
HEALTHY_SIGMA_MM = 10.0
HEALTHY_SPREAD = 0.3  # log-normal sigma of the healthy-tissue uptake field
TUMOUR_SPREAD = 0.45  # log-normal sigma of the tumour uptake field


def lognormal(field: np.ndarray, spread: float) -> np.ndarray:
    """exp(spread · field − spread²/2): mean 1 for a unit-normal `field`."""
    return np.exp(spread * field - 0.5 * spread * spread).astype(np.float32)


def vessel_fraction(rng: np.random.Generator, csf: np.ndarray, vox: np.ndarray) -> tuple[np.ndarray, float]:
    """Blood fraction (0 … 1) of every voxel of the grid of `csf`, and the blood ΔR1 (1/s) of this case."""
    pair = fields.smooth_noise(rng, csf.shape, VESSEL_SIGMA_MM / vox, channels=2)
    tubes = np.exp(-(pair[0] ** 2 + pair[1] ** 2) / (2.0 * VESSEL_WIDTH**2))
    low, high = VESSEL_CSF_RANGE
    where = np.clip((csf - low) / (high - low), 0.0, 1.0)
    return (tubes * where).astype(np.float32), float(rng.uniform(*VESSEL_UPTAKE_RANGE))


def healthy_field(rng: np.random.Generator, shape: tuple[int, int, int], vox: np.ndarray) -> np.ndarray:
    """Broad log-normal (mean 1) modulation of uptake in healthy tissue."""
    return lognormal(fields.smooth_noise(rng, shape, HEALTHY_SIGMA_MM / vox), HEALTHY_SPREAD)
