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
from brasyn.phantom.protocol import Protocol
from brasyn.phantom.site import DEFAULT_NAME, SiteProfile, site_profile
from brasyn.phantom.tissue import (
    HEALTHY,
    TISSUE_CODES,
    TISSUES,
    TUMOUR,
    Tissue,
    TissueParams,
    post_contrast_t1,
)

logger = logging.getLogger(__name__)

# A new stream goes at the end: SeedSequence.spawn gives the earlier ones unchanged.
STREAMS = ("tumour", "deformation", "physics", "fields", "bias", "noise", "site")
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
    site: the acquisition site (`brasyn.phantom.site`): "default" (every training cohort) or
        "shifted" (a held-out site for measuring generalisation; never train or tune on it).
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
    site: str = DEFAULT_NAME

    def __post_init__(self) -> None:
        site_profile(self.site)  # a ConfigError naming the valid sites
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


class _Anatomy(NamedTuple):
    """The deformed brain, cropped to its bounding box `box` in the output grid, and its tumour.

    gm, wm, csf: tissue fractions over the crop; brain: the crop's brain mask; grown: the tumour,
    placed by its own box inside the crop.
    """

    gm: np.ndarray
    wm: np.ndarray
    csf: np.ndarray
    brain: np.ndarray
    box: tuple[slice, slice, slice]
    plan: tumour.TumourPlan
    deform: deformation.Deformation
    grown: tumour.Tumour


def _place_anatomy(
    rng: dict[str, np.random.Generator],
    config: PhantomConfig,
    template: anatomy.Template,
    affine: np.ndarray,
    vox: np.ndarray,
) -> _Anatomy:
    """Anatomy, deformation and the tumour's place: warp the template (the mass effect centred on
    the planned tumour site), crop to the brain, and grow the tumour from a white-matter voxel."""
    shape = config.shape
    plan = tumour.sample_plan(
        rng["tumour"],
        template.tumour_sites,
        p_no_necrosis=config.p_no_necrosis,
        p_no_enhancement=config.p_no_enhancement,
    )
    site = site_profile(config.site)
    if config.deformation:
        deform = deformation.sample_deformation(
            rng["deformation"],
            np.zeros(3),
            plan.mass_amplitude,
            plan.mass_radius_mm,
            site.anatomy,
            extra_rng=rng["site"],
        )
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
    if config.deformation and site.anatomy.extra:
        gm, wm, csf = _atrophy(gm, wm, csf, deform.atrophy)
    centre_vox = _tumour_seed(centre_world, affine, box, brain, wm)
    grown = tumour.grow(rng["tumour"], plan, centre_vox, brain, wm, csf, vox)
    return _Anatomy(gm=gm, wm=wm, csf=csf, brain=brain, box=box, plan=plan, deform=deform, grown=grown)


def _atrophy(gm: np.ndarray, wm: np.ndarray, csf: np.ndarray, amount: float) -> tuple[np.ndarray, ...]:
    """Tissue loss: `amount` of the grey matter and a third of it of the white matter become CSF
    (wider sulci and ventricles in partial volume)."""
    gm_loss, wm_loss = gm * amount, wm * (amount / 3.0)
    return gm - gm_loss, wm - wm_loss, csf + gm_loss + wm_loss


def _tumour_seed(
    centre_world: np.ndarray, affine: np.ndarray, box: tuple[slice, ...], brain: np.ndarray, wm: np.ndarray
) -> np.ndarray:
    """The crop voxel the tumour grows from: the planned centre, or the nearest white-matter voxel
    when the deformation moved the centre out of the white matter."""
    centre_vox = (np.linalg.inv(affine) @ np.append(centre_world, 1.0))[:3] - [s.start for s in box]
    centre_vox = np.clip(np.round(centre_vox), 0, np.asarray(brain.shape) - 1)
    if not (brain[tuple(centre_vox.astype(int))] and wm[tuple(centre_vox.astype(int))] > 0.3):
        white = brain & (wm > 0.5)
        centre_vox = _nearest(white if white.any() else brain, centre_vox)
    return centre_vox


def _in_tumour_box(anat: _Anatomy, where: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Values given over the tumour's box, as a vector over the brain voxels (0 outside the box)."""
    full = np.zeros(anat.brain.shape, dtype=np.float32)
    full[anat.grown.box] = values
    return full.ravel()[where]


def _tissue_fractions(anat: _Anatomy, where: np.ndarray) -> dict[Tissue, np.ndarray]:
    """Per-voxel tissue fractions as vectors over the brain voxels: the tumour displaces healthy
    tissue, which keeps its template proportions."""
    total = np.maximum(anat.gm + anat.wm + anat.csf, 1e-6)
    tumour_full = {tissue: _in_tumour_box(anat, where, anat.grown.fractions[tissue]) for tissue in TUMOUR}
    tumour_total = sum(tumour_full.values())
    healthy_share = (1.0 - np.clip(tumour_total, 0.0, 1.0)) / total.ravel()[where]
    return {
        Tissue.WM: anat.wm.ravel()[where] * healthy_share,
        Tissue.GM: anat.gm.ravel()[where] * healthy_share,
        Tissue.CSF: anat.csf.ravel()[where] * healthy_share,
        **tumour_full,
    }


def _textures(
    rng: np.random.Generator, config: PhantomConfig, anat: _Anatomy, where: np.ndarray, vox: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Multiplicative texture over the brain voxels: (proton density, tumour T1/T2)."""
    pd_texture = fields.smooth_noise(rng, anat.brain.shape, PD_TEXTURE_MM / vox).ravel()[where]
    texture_on = 1.0 if config.texture else 0.0  # drawn either way, so switching it off changes nothing else
    tumour_mod = np.exp(texture_on * TUMOUR_TEXTURE * _in_tumour_box(anat, where, anat.grown.texture))
    pd_mod = np.exp(texture_on * PD_TEXTURE * pd_texture)
    return pd_mod, tumour_mod


def _delta_r1(
    rng: np.random.Generator, anat: _Anatomy, where: np.ndarray, vox: np.ndarray, mean_uptake: dict[Tissue, float]
) -> tuple[dict[Tissue, np.ndarray], float]:
    """Gadolinium's R1 increase per tissue over the brain voxels (healthy tissue also carries the
    blood in its vessels), and the vessels' own uptake."""
    vessels, vessel_uptake = uptake.vessel_fraction(rng, anat.csf, vox)
    healthy_uptake = uptake.healthy_field(rng, anat.brain.shape, vox).ravel()[where]
    tumour_uptake = uptake.lognormal(_in_tumour_box(anat, where, anat.grown.uptake), uptake.TUMOUR_SPREAD)
    blood = vessels.ravel()[where] * vessel_uptake
    delta_r1 = {t: mean_uptake[t] * healthy_uptake + blood for t in HEALTHY}
    delta_r1.update({t: mean_uptake[t] * tumour_uptake for t in TUMOUR})
    return delta_r1, vessel_uptake


def _ideal_signals(
    protocol: Protocol,
    tissues: dict[Tissue, TissueParams],
    fraction: dict[Tissue, np.ndarray],
    delta_r1: dict[Tissue, np.ndarray],
    pd_mod: np.ndarray,
    tumour_mod: np.ndarray,
) -> dict[Modality, np.ndarray]:
    """Noise-free signal of each modality over the brain voxels: the fraction-weighted sum of the
    sequence's signal equation over the tissues (T1 shortened by gadolinium in t1c)."""
    n_voxels = len(pd_mod)
    ideal: dict[Modality, np.ndarray] = {}
    for modality in MODALITIES:
        sequence = protocol.sequences[modality]
        signal = np.zeros(n_voxels, dtype=np.float64)
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
            if modality is Modality.T1C or sequence.post_contrast:
                t1 = post_contrast_t1(t1, delta_r1[tissue][sel])
            signal[sel] += share[sel] * sequence.signal(p.pd, t1, t2)
        ideal[modality] = (signal * pd_mod).astype(np.float32)
    return ideal


def _bias_lattice(
    affine: np.ndarray, shape: tuple[int, int, int], vox: np.ndarray, anat: _Anatomy
) -> tuple[np.ndarray, tuple[int, ...]]:
    """The coarse lattice the bias field is drawn on, in mm from the grid centre, and its stride in voxels."""
    bias_stride = tuple(max(1, int(acquisition.BIAS_LATTICE_MM // v)) for v in vox)
    lattice = fields.coarse_shape(anat.brain.shape, bias_stride)
    axes = [np.arange(n) * st + b.start for n, st, b in zip(lattice, bias_stride, anat.box, strict=True)]
    points = np.stack(np.meshgrid(*axes, indexing="ij"))
    offset = affine[:3, 3] - anatomy.grid_centre(shape)
    lattice_mm = np.einsum("ij,j...->i...", affine[:3, :3], points) + offset[:, None, None, None]
    return lattice_mm, bias_stride


def _scanner_signals(
    rng: np.random.Generator,
    config: PhantomConfig,
    protocol: Protocol,
    ideal: dict[Modality, np.ndarray],
    anat: _Anatomy,
    where: np.ndarray,
    vox: np.ndarray,
    lattice: tuple[np.ndarray, tuple[int, ...]],
) -> dict[Modality, np.ndarray]:
    """Acquisition before noise: slice blur, bias field and the scanner gain of each modality."""
    lattice_mm, bias_stride = lattice
    site = site_profile(config.site)
    scaled: dict[Modality, np.ndarray] = {}
    for modality in MODALITIES:
        sequence = protocol.sequences[modality]
        values = ideal[modality]
        if config.slice_blur and sequence.slice_thickness is not None:
            volume = _to_crop(anat, where, values, np.float32)
            axis = sequence.slice_axis
            if site.resample_slices:
                volume = acquisition.thick_slices(volume, sequence.slice_thickness, axis, float(vox[axis]))
            else:
                volume = acquisition.slice_blur(volume, sequence.slice_thickness, axis, float(vox[axis]))
            values = volume.ravel()[where]
        if config.bias_field:
            values = values * acquisition.bias_field(
                rng, lattice_mm, bias_stride, anat.brain.shape, where, protocol.bias_amplitude[modality]
            )
        scaled[modality] = values * protocol.gain(modality)
    return scaled


def _digitise(
    rng: np.random.Generator,
    config: PhantomConfig,
    protocol: Protocol,
    scaled: dict[Modality, np.ndarray],
    anat: _Anatomy,
    where: np.ndarray,
) -> tuple[dict[Modality, np.ndarray], float]:
    """Rician noise and int16 images on the full grid; one gain correction for all modalities keeps
    the brightest below the int16 ceiling (returned, it goes into the record)."""
    peak = max(float(v.max()) for v in scaled.values())
    correction = min(1.0, acquisition.INT16_CEILING / peak)
    images: dict[Modality, np.ndarray] = {}
    for modality in MODALITIES:
        values = scaled[modality] * correction
        if config.noise:
            sigma = float(values.mean()) / protocol.snr[modality]
            values = acquisition.rician(rng, values, sigma)
        images[modality] = _to_grid(config.shape, anat, where, acquisition.to_int16(values), np.int16)
    return images, correction


def _to_crop(anat: _Anatomy, where: np.ndarray, values: np.ndarray, dtype: type) -> np.ndarray:
    """A vector over the brain voxels as a volume over the crop (0 outside the brain)."""
    crop = np.zeros(anat.brain.shape, dtype=dtype)
    crop.ravel()[where] = values
    return crop


def _to_grid(
    shape: tuple[int, int, int], anat: _Anatomy, where: np.ndarray, values: np.ndarray, dtype: type
) -> np.ndarray:
    """A vector over the brain voxels as a volume over the full output grid (0 outside the brain)."""
    grid = np.zeros(shape, dtype=dtype)
    grid[anat.box] = _to_crop(anat, where, values, dtype)
    return grid


def _segmentation(shape: tuple[int, int, int], anat: _Anatomy) -> np.ndarray:
    """The tumour labels on the full output grid."""
    seg_crop = np.zeros(anat.brain.shape, dtype=np.uint8)
    seg_crop[anat.grown.box] = anat.grown.seg
    seg = np.zeros(shape, dtype=np.uint8)
    seg[anat.box] = seg_crop
    return seg


def _pure_tissue(
    shape: tuple[int, int, int], anat: _Anatomy, where: np.ndarray, fraction: dict[Tissue, np.ndarray]
) -> np.ndarray:
    """`PhantomCase.pure_tissue`: the code of the tissue making up at least `PURE_FRACTION` of a voxel."""
    shares = np.stack([fraction[t] for t in TISSUES])
    codes = np.array([TISSUE_CODES[t] for t in TISSUES], dtype=np.uint8)[shares.argmax(axis=0)]
    return _to_grid(shape, anat, where, np.where(shares.max(axis=0) >= PURE_FRACTION, codes, 0), np.uint8)


def _site_record(site: SiteProfile) -> dict[str, Any]:
    """The site's name, recorded for a non-default site only (the default cases' records are unchanged)."""
    return {} if site.name == DEFAULT_NAME else {"site": site.name}


def generate_case(index: int, seed: int, config: PhantomConfig = PhantomConfig()) -> PhantomCase:
    """Synthesize case number `index` of the cohort of `seed`. Deterministic in (index, seed, config).

    The steps draw from their own streams in a fixed order: anatomy and tumour, tissue fractions
    and textures, physics (protocol, tissue parameters, contrast uptake), acquisition.
    """
    rng = _rngs(seed, index)
    shape = config.shape
    vox = anatomy.voxel_size(shape)
    affine = anatomy.grid_affine(shape)
    template = anatomy.load_template(anatomy.downsample_factor(shape, config.brain_scale))

    anat = _place_anatomy(rng, config, template, affine, vox)
    where = np.flatnonzero(anat.brain)  # the brain voxels of the crop; the steps below work on vectors over them
    fraction = _tissue_fractions(anat, where)
    pd_mod, tumour_mod = _textures(rng["fields"], config, anat, where, vox)

    site = site_profile(config.site)
    protocol, tissues, mean_uptake, draws = sample_physics(rng["physics"], site)
    delta_r1, vessel_uptake = _delta_r1(rng["fields"], anat, where, vox, mean_uptake)
    ideal = _ideal_signals(protocol, tissues, fraction, delta_r1, pd_mod, tumour_mod)

    lattice = _bias_lattice(affine, shape, vox, anat)
    scaled = _scanner_signals(rng["bias"], config, protocol, ideal, anat, where, vox, lattice)
    images, correction = _digitise(rng["noise"], config, protocol, scaled, anat, where)
    seg = _segmentation(shape, anat)
    pure = _pure_tissue(shape, anat, where, fraction)

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
        "tumour": {**anat.plan.to_dict(), "label_voxels": counts},
        "deformation": anat.deform.to_dict(),
        **_site_record(site),
    }
    logger.debug("phantom case %d (seed %d): labels %s, gain %.0f", index, seed, counts, protocol.case_gain)
    return PhantomCase(images=images, seg=seg, affine=affine, protocol=record, pure_tissue=pure)
