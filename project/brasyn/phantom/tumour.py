"""Glioma-like tumours: nested irregular regions from level sets of smoothed noise.

Necrotic core (label 1) inside an enhancing rim (label 3) inside edema (label 2). The core is the
level set {1 − r/R + A·n > 0} of a noisy radial function (steeper beyond R); the necrosis a deeper level of the same
function (perturbed, so the rim thickness varies); edema a wider level set that reaches further into
white matter. Some tumours have no necrosis, some no enhancement (then the whole core is label 1).
All work happens in a box around the tumour, in the output grid (after the mass effect).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy import ndimage

from brasyn.constants import LABEL_ED, LABEL_ET, LABEL_NCR
from brasyn.phantom import fields
from brasyn.phantom.tissue import Tissue

CORE_RADIUS_MM = (8.0, 22.0)
EDEMA_MARGIN_MM = (6.0, 28.0)
CORE_IRREGULARITY = (0.25, 0.5)
NECROSIS_LEVEL = (0.3, 0.55)
EDEMA_IRREGULARITY = (0.2, 0.4)
EDEMA_WM_PREFERENCE = (0.4, 0.9)
MASS_AMPLITUDE = (0.3, 0.65)
EDEMA_MAX_CSF = 0.5  # edema does not fill ventricles or sulci
RADIAL_FALLOFF = 10.0  # beyond the nominal radius: f drops by a further 1.6 at 1.4 R
PARTIAL_VOLUME_MM = 0.6  # blur of the label indicators that gives partial-volume fractions


@dataclass(frozen=True)
class TumourPlan:
    """What is decided before the warp: where the tumour sits (template world mm), its size and type."""

    site: np.ndarray
    core_radius_mm: float
    edema_margin_mm: float
    mass_amplitude: float
    necrosis: bool
    enhancement: bool

    @property
    def mass_radius_mm(self) -> float:
        return 1.2 * self.core_radius_mm + 5.0

    def to_dict(self) -> dict:
        return {
            "site_mni_mm": np.round(self.site, 2).tolist(),
            "core_radius_mm": self.core_radius_mm,
            "edema_margin_mm": self.edema_margin_mm,
            "mass_amplitude": self.mass_amplitude,
            "necrosis": self.necrosis,
            "enhancement": self.enhancement,
        }


class Tumour(NamedTuple):
    """Labels and partial-volume fractions inside `box` (a tuple of slices of the output grid).

    `seg`: uint8 box-shaped labels; `fractions`: Tissue → float32 box arrays (ED, ET, NCR; sum ≤ 1);
    `texture`: float32 box field (unit std) modulating tumour T1/T2; `uptake`: float32 box field
    (unit std) of contrast-uptake heterogeneity, hidden from the native sequences.
    """

    box: tuple[slice, slice, slice]
    seg: np.ndarray
    fractions: dict[Tissue, np.ndarray]
    texture: np.ndarray
    uptake: np.ndarray


def sample_plan(
    rng: np.random.Generator, sites: np.ndarray, *, p_no_necrosis: float, p_no_enhancement: float
) -> TumourPlan:
    site = sites[int(rng.integers(len(sites)))] + rng.uniform(-1.0, 1.0, 3)
    kind = rng.random()
    return TumourPlan(
        site=site,
        core_radius_mm=float(rng.uniform(*CORE_RADIUS_MM)),
        edema_margin_mm=float(rng.uniform(*EDEMA_MARGIN_MM)),
        mass_amplitude=float(rng.uniform(*MASS_AMPLITUDE)),
        necrosis=not (kind < p_no_necrosis),
        enhancement=not (p_no_necrosis <= kind < p_no_necrosis + p_no_enhancement),
    )


def _box(centre: np.ndarray, half_mm: float, vox: np.ndarray, shape: tuple[int, ...]) -> tuple[slice, slice, slice]:
    half = np.ceil(half_mm / vox).astype(int)
    c = np.round(centre).astype(int)
    return tuple(slice(max(0, c[k] - half[k]), min(shape[k], c[k] + half[k] + 1)) for k in range(3))  # type: ignore[return-value]


def _radial(r: np.ndarray, radius: float) -> np.ndarray:
    """1 − r/R, falling much faster beyond R so that noise cannot carry a region far out (or to the box edge)."""
    excess = np.maximum(r / radius - 1.0, 0.0)
    return 1.0 - r / radius - RADIAL_FALLOFF * excess * excess


def _component_with(mask: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """Connected components of `mask` that touch `seed` (26-connectivity)."""
    labels, count = ndimage.label(mask, structure=np.ones((3, 3, 3)))
    if count <= 1:
        return mask
    keep = np.unique(labels[seed & mask])
    return np.isin(labels, keep[keep > 0])


def grow(
    rng: np.random.Generator,
    plan: TumourPlan,
    centre_vox: np.ndarray,
    brain: np.ndarray,
    wm: np.ndarray,
    csf: np.ndarray,
    vox: np.ndarray,
) -> Tumour:
    """Grow the tumour of `plan` around voxel `centre_vox` of a grid with voxel size `vox` (mm).

    `brain` (bool), `wm`, `csf` (fractions) are full-grid arrays of the deformed anatomy.
    """
    shape = brain.shape
    reach = plan.core_radius_mm + plan.edema_margin_mm
    box = _box(centre_vox, 1.6 * reach + 6.0, vox, shape)
    box_shape = tuple(s.stop - s.start for s in box)
    axes = [(np.arange(s.start, s.stop) - centre_vox[k]) * vox[k] for k, s in enumerate(box)]
    r = np.sqrt(axes[0][:, None, None] ** 2 + axes[1][None, :, None] ** 2 + axes[2][None, None, :] ** 2).astype(
        np.float32
    )

    def noise(sigma_mm: float) -> np.ndarray:
        return fields.smooth_noise(rng, box_shape, sigma_mm / vox)

    core_sigma = float(np.clip(0.35 * plan.core_radius_mm, 3.0, 8.0))
    f_core = _radial(r, plan.core_radius_mm) + rng.uniform(*CORE_IRREGULARITY) * noise(core_sigma)
    inner = f_core + 0.12 * noise(3.0)
    f_edema = (
        _radial(r, reach)
        + rng.uniform(*EDEMA_IRREGULARITY) * noise(6.0)
        + rng.uniform(*EDEMA_WM_PREFERENCE) * (ndimage.gaussian_filter(wm[box], 1.5 / vox) - 0.5)
    )
    texture = noise(2.5)
    uptake = noise(3.0)

    in_brain = brain[box]
    centre_mask = np.zeros(box_shape, dtype=bool)
    centre_mask[tuple(int(round(centre_vox[k])) - box[k].start for k in range(3))] = True
    core = _component_with((f_core > 0) & in_brain, centre_mask) | (centre_mask & in_brain)
    if plan.enhancement:
        necrosis = core & (inner > rng.uniform(*NECROSIS_LEVEL)) if plan.necrosis else np.zeros_like(core)
        enhancing = core & ~necrosis
    else:
        necrosis, enhancing = core, np.zeros_like(core)
    edema = (f_edema > 0) & in_brain & (csf[box] < EDEMA_MAX_CSF) & ~core
    edema = _component_with(edema | core, core) & ~core

    seg = np.zeros(box_shape, dtype=np.uint8)
    seg[edema] = LABEL_ED
    seg[enhancing] = LABEL_ET
    seg[necrosis] = LABEL_NCR

    sigma = PARTIAL_VOLUME_MM / vox
    fractions = {}
    for tissue, region in ((Tissue.ED, edema), (Tissue.ET, enhancing), (Tissue.NCR, necrosis)):
        u = region.astype(np.float32)
        if sigma.max() >= 0.25:
            u = ndimage.gaussian_filter(u, sigma)
        fractions[tissue] = u * in_brain
    return Tumour(box=box, seg=seg, fractions=fractions, texture=texture, uptake=uptake)
