"""One synthetic BraTS case: anatomy → deformation → tumour → physics → acquisition.

Every random decision comes from a stream derived from (seed, index) alone, so case k is the same
whatever the cohort size, and each step has its own stream (changing the tumour code does not
change the protocols).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from brasyn.constants import BRATS_SHAPE, MODALITIES, Modality
from brasyn.errors import ConfigError
from brasyn.phantom import acquisition, anatomy, deformation, fields, tumour, uptake
from brasyn.phantom.contrast import sample_physics
from brasyn.phantom.tissue import HEALTHY, TISSUE_CODES, TISSUES, TUMOUR, Tissue, post_contrast_t1

logger = logging.getLogger(__name__)

STREAMS = ("tumour", "deformation", "physics", "fields", "bias", "noise")
PD_TEXTURE = 0.03  # log-normal spread of the shared fine anatomical texture
PD_TEXTURE_MM = 1.5
TUMOUR_TEXTURE = 0.08  # log-normal spread of tumour T1/T2 heterogeneity
MIN_SHAPE = 8
PURE_FRACTION = 0.9


@dataclass(frozen=True)
class PhantomConfig:
    """How synthetic cases are made.

    shape: grid size; (240, 240, 155) is BraTS. Smaller grids cover the same field of view with larger
        voxels (the affine is scaled accordingly), e.g. (48, 48, 31) for fast tests.
    brain_scale: size of the template brain in the grid (0.93 fits the MNI brain into 155 slices).
    deformation: random affine + elastic + mass effect; off gives the bare template placement.
    bias_field, noise, slice_blur, texture: acquisition / anatomy effects, each can be switched off
        (e.g. noise-free images to measure tissue contrast).
    p_no_necrosis, p_no_enhancement: probabilities of a tumour without necrotic core, and of one
        without enhancement (then the whole core is label 1).
    """

    shape: tuple[int, int, int] = BRATS_SHAPE
    brain_scale: float = 0.93
    deformation: bool = True
    bias_field: bool = True
    noise: bool = True
    slice_blur: bool = True
    texture: bool = True
    p_no_necrosis: float = 0.15
    p_no_enhancement: float = 0.10

    def __post_init__(self) -> None:
        shape = tuple(int(s) for s in self.shape)
        if len(shape) != 3 or min(shape) < MIN_SHAPE:
            raise ConfigError(f"phantom.shape: expected 3 sizes of at least {MIN_SHAPE}, found {self.shape}")
        object.__setattr__(self, "shape", shape)
        if not 0.5 <= self.brain_scale <= 1.2:
            raise ConfigError(f"phantom.brain_scale: expected 0.5 … 1.2, found {self.brain_scale}")
        probabilities = (self.p_no_necrosis, self.p_no_enhancement)
        if min(probabilities) < 0 or sum(probabilities) > 1:
            raise ConfigError(f"phantom: expected probabilities ≥ 0 summing to ≤ 1, found {probabilities}")


class PhantomCase(NamedTuple):
    """One case: int16 scanner-unit images (background exactly 0), uint8 labels, affine, and what made it.

    `pure_tissue` (uint8, not written to disk) marks voxels made of at least `PURE_FRACTION` of one
    tissue with its `TISSUE_CODES` value (1 WM, 2 GM, 3 CSF, 4 ED, 5 ET, 6 NCR), 0 elsewhere: the
    ground truth for measuring tissue contrast.
    """

    images: dict[Modality, np.ndarray]
    seg: np.ndarray
    affine: np.ndarray
    protocol: dict[str, Any]
    pure_tissue: np.ndarray


def _rngs(seed: int, index: int) -> dict[str, np.random.Generator]:
    children = np.random.SeedSequence([int(seed), int(index)]).spawn(len(STREAMS))
    return {name: np.random.default_rng(child) for name, child in zip(STREAMS, children, strict=True)}


def _bounding_box(mask: np.ndarray) -> tuple[slice, slice, slice]:
    box = []
    for axis in range(3):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
        box.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return tuple(box)  # type: ignore[return-value]


def _nearest(mask: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Voxel of `mask` nearest to `point` (voxel coordinates)."""
    candidates = np.argwhere(mask)
    return candidates[np.argmin(((candidates - point) ** 2).sum(axis=1))].astype(np.float64)


def generate_case(index: int, seed: int, config: PhantomConfig = PhantomConfig()) -> PhantomCase:
    """Synthesize case number `index` of the cohort of `seed`. Deterministic in (index, seed, config)."""
    rng = _rngs(seed, index)
    shape = config.shape
    vox = anatomy.voxel_size(shape)
    affine = anatomy.grid_affine(shape)
    template = anatomy.load_template(anatomy.downsample_factor(shape, config.brain_scale))

    # --- anatomy, deformation and the tumour's place -------------------------------------------
    plan = tumour.sample_plan(
        rng["tumour"], template.tumour_sites, p_no_necrosis=config.p_no_necrosis, p_no_enhancement=config.p_no_enhancement
    )
    if config.deformation:
        deform = deformation.sample_deformation(rng["deformation"], np.zeros(3), plan.mass_amplitude, plan.mass_radius_mm)
    else:
        deform = deformation.identity(np.zeros(3))
    centre_world = deformation.output_point(plan.site, deform, shape, template, config.brain_scale)
    deform = dataclasses.replace(deform, mass_centre=centre_world)
    coords, outer = deformation.template_coordinates(rng["deformation"], shape, template, deform, config.brain_scale)
    gm, wm, mask = deformation.warp_template(coords, template)
    del coords
    inner = _bounding_box(mask > 0.5)
    box = tuple(slice(o.start + i.start, o.start + i.stop) for o, i in zip(outer, inner, strict=True))
    gm, wm, mask = gm[inner], wm[inner], mask[inner]
    brain = mask > 0.5
    csf = np.clip(mask - gm - wm, 0.0, None)

    centre_vox = (np.linalg.inv(affine) @ np.append(centre_world, 1.0))[:3] - [s.start for s in box]
    centre_vox = np.clip(np.round(centre_vox), 0, np.asarray(brain.shape) - 1)
    if not (brain[tuple(centre_vox.astype(int))] and wm[tuple(centre_vox.astype(int))] > 0.3):
        white = brain & (wm > 0.5)
        centre_vox = _nearest(white if white.any() else brain, centre_vox)
    grown = tumour.grow(rng["tumour"], plan, centre_vox, brain, wm, csf, vox)

    # --- per-voxel tissue fractions, as vectors over brain voxels -------------------------------
    where = np.flatnonzero(brain)
    total = np.maximum(gm + wm + csf, 1e-6)
    tumour_full = {}
    for tissue in TUMOUR:
        full = np.zeros(brain.shape, dtype=np.float32)
        full[grown.box] = grown.fractions[tissue]
        tumour_full[tissue] = full.ravel()[where]
    tumour_total = sum(tumour_full.values())
    healthy_share = (1.0 - np.clip(tumour_total, 0.0, 1.0)) / total.ravel()[where]
    fraction = {
        Tissue.WM: wm.ravel()[where] * healthy_share,
        Tissue.GM: gm.ravel()[where] * healthy_share,
        Tissue.CSF: csf.ravel()[where] * healthy_share,
        **tumour_full,
    }

    def in_box(values: np.ndarray) -> np.ndarray:
        full = np.zeros(brain.shape, dtype=np.float32)
        full[grown.box] = values
        return full.ravel()[where]

    pd_texture = fields.smooth_noise(rng["fields"], brain.shape, PD_TEXTURE_MM / vox).ravel()[where]
    texture_on = 1.0 if config.texture else 0.0  # drawn either way, so switching it off changes nothing else
    tumour_mod = np.exp(texture_on * TUMOUR_TEXTURE * in_box(grown.texture))
    pd_mod = np.exp(texture_on * PD_TEXTURE * pd_texture)

    # --- physics ---------------------------------------------------------------------------------
    protocol, tissues, mean_uptake, draws = sample_physics(rng["physics"])
    vessels, vessel_uptake = uptake.vessel_fraction(rng["fields"], csf, vox)
    healthy_uptake = uptake.healthy_field(rng["fields"], brain.shape, vox).ravel()[where]
    tumour_uptake = uptake.lognormal(in_box(grown.uptake), uptake.TUMOUR_SPREAD)
    blood = vessels.ravel()[where] * vessel_uptake
    delta_r1 = {t: mean_uptake[t] * healthy_uptake + blood for t in HEALTHY}
    delta_r1.update({t: mean_uptake[t] * tumour_uptake for t in TUMOUR})

    ideal: dict[Modality, np.ndarray] = {}
    for modality in MODALITIES:
        sequence = protocol.sequences[modality]
        signal = np.zeros(len(where), dtype=np.float64)
        for tissue in HEALTHY + TUMOUR:
            share = fraction[tissue]
            sel = np.flatnonzero(share > 1e-4)
            if sel.size == 0:
                continue
            p = tissues[tissue]
            t1: np.ndarray | float = p.t1
            t2: np.ndarray | float = p.t2
            if tissue in TUMOUR:
                t1, t2 = p.t1 * tumour_mod[sel], p.t2 * tumour_mod[sel]
            if modality is Modality.T1C:
                t1 = post_contrast_t1(t1, delta_r1[tissue][sel])
            signal[sel] += share[sel] * sequence.signal(p.pd, t1, t2)
        ideal[modality] = (signal * pd_mod).astype(np.float32)

    # --- acquisition -----------------------------------------------------------------------------
    bias_stride = tuple(max(1, int(acquisition.BIAS_LATTICE_MM // v)) for v in vox)
    lattice = fields.coarse_shape(brain.shape, bias_stride)
    points = np.stack(np.meshgrid(*[np.arange(n) * st + b.start for n, st, b in zip(lattice, bias_stride, box, strict=True)], indexing="ij"))
    lattice_mm = np.einsum("ij,j...->i...", affine[:3, :3], points) + (affine[:3, 3] - anatomy.grid_centre(shape))[:, None, None, None]
    scaled: dict[Modality, np.ndarray] = {}
    for modality in MODALITIES:
        sequence = protocol.sequences[modality]
        values = ideal[modality]
        if config.slice_blur and sequence.slice_thickness is not None:
            volume = np.zeros(brain.shape, dtype=np.float32)
            volume.ravel()[where] = values
            volume = acquisition.slice_blur(volume, sequence.slice_thickness, sequence.slice_axis, float(vox[sequence.slice_axis]))
            values = volume.ravel()[where]
        if config.bias_field:
            values = values * acquisition.bias_field(
                rng["bias"], lattice_mm, bias_stride, brain.shape, where, protocol.bias_amplitude[modality]
            )
        scaled[modality] = values * protocol.gain(modality)
    peak = max(float(v.max()) for v in scaled.values())
    correction = min(1.0, acquisition.INT16_CEILING / peak)

    images: dict[Modality, np.ndarray] = {}
    for modality in MODALITIES:
        values = scaled[modality] * correction
        if config.noise:
            sigma = float(values.mean()) / protocol.snr[modality]
            values = acquisition.rician(rng["noise"], values, sigma)
        image = np.zeros(shape, dtype=np.int16)
        crop = np.zeros(brain.shape, dtype=np.int16)
        crop.ravel()[where] = acquisition.to_int16(values)
        image[box] = crop
        images[modality] = image

    seg = np.zeros(shape, dtype=np.uint8)
    seg_crop = np.zeros(brain.shape, dtype=np.uint8)
    seg_crop[grown.box] = grown.seg
    seg[box] = seg_crop

    shares = np.stack([fraction[t] for t in TISSUES])
    codes = np.array([TISSUE_CODES[t] for t in TISSUES], dtype=np.uint8)[shares.argmax(axis=0)]
    pure_crop = np.zeros(brain.shape, dtype=np.uint8)
    pure_crop.ravel()[where] = np.where(shares.max(axis=0) >= PURE_FRACTION, codes, 0)
    pure = np.zeros(shape, dtype=np.uint8)
    pure[box] = pure_crop

    counts = {str(label): int((seg == label).sum()) for label in (1, 2, 3)}
    record = {
        "index": int(index),
        "seed": int(seed),
        "shape": list(shape),
        **protocol.to_dict(),
        "gain_correction": correction,
        "physics_draws": draws,
        "tissues": {str(t): dataclasses.asdict(p) for t, p in tissues.items()},
        "uptake_per_s": {str(t): v for t, v in mean_uptake.items()},
        "vessel_uptake_per_s": vessel_uptake,
        "tumour": {**plan.to_dict(), "label_voxels": counts},
        "deformation": deform.to_dict(),
    }
    logger.debug("phantom case %d (seed %d): labels %s, gain %.0f", index, seed, counts, protocol.case_gain)
    return PhantomCase(images=images, seg=seg, affine=affine, protocol=record, pure_tissue=pure)
