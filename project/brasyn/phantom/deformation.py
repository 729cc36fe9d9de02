"""Per-case deformation of the template: small affine + smooth elastic field + tumour mass effect.

The warp is a pull-back: for every output voxel it gives the template voxel to sample. It is
computed on a lattice of about 4 mm and interpolated trilinearly (the affine part exactly, the
smooth parts to well under a voxel), then the maps are sampled with `fields.sample_trilinear`.

Chain for an output voxel at world point w (RAS mm):
  mass effect   w1 = c_t + (w − c_t) · (1 − a · exp(−|w − c_t|² / R²))   (tissue pushed out of the tumour)
  affine        w2 = c + M (w1 − c) + t                                   (c: field-of-view centre)
  elastic       w3 = w2 + u(w)                                            (smooth, rms 1–2.5 mm)
  template      p  = c_tmpl + (w3 − c) / brain_scale
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial.transform import Rotation

from brasyn.phantom import fields
from brasyn.phantom.anatomy import Template, grid_affine, grid_centre, voxel_size
from brasyn.phantom.site import VENTRICLE_CENTRES_MM, AnatomyVariation

LATTICE_MM = 4.0
DEFAULT_VARIATION = AnatomyVariation()  # the default site's ranges (rotation, head size, elastic field)
ROTATION_DEG = DEFAULT_VARIATION.rotation_deg
SCALE_RANGE = DEFAULT_VARIATION.scale_range  # isotropic head-size factor
ANISOTROPY = 0.03  # per-axis scale jitter
SHEAR = 0.03
TRANSLATION_MM = 4.0
ELASTIC_RMS_MM = DEFAULT_VARIATION.elastic_rms_mm
ELASTIC_SIGMA_MM = DEFAULT_VARIATION.elastic_sigma_mm
ASYMMETRY_WIDTH_MM = 10.0  # the left-right scale changes sign over about this distance from the midline


@dataclass(frozen=True)
class Deformation:
    """One case's deformation. `mass_*` describe the mass effect (amplitude 0 = none)."""

    matrix: np.ndarray  # (3, 3) linear part, world mm
    translation: np.ndarray  # (3,) mm
    elastic_rms_mm: float
    elastic_sigma_mm: float
    mass_centre: np.ndarray  # (3,) world mm
    mass_amplitude: float
    mass_radius_mm: float
    ventricle_amplitude: float = 0.0
    """Expansion around the lateral ventricles (template-space centres), 0 = none."""
    ventricle_radius_mm: float = 22.0
    asymmetry: float = 0.0
    """Left-right size difference: x scaled by 1 + asymmetry · tanh(x / width) about the midline."""
    atrophy: float = 0.0
    """Share of the grey matter (a third of it of the white matter) turned into CSF after the warp."""

    def to_dict(self) -> dict:
        extra = {}
        if self.ventricle_amplitude or self.asymmetry or self.atrophy:  # only when present (default unchanged)
            extra = {
                "atrophy": self.atrophy,
                "ventricle_amplitude": self.ventricle_amplitude,
                "ventricle_radius_mm": self.ventricle_radius_mm,
                "asymmetry": self.asymmetry,
            }
        return {
            **extra,
            "matrix": np.round(self.matrix, 5).tolist(),
            "translation_mm": np.round(self.translation, 3).tolist(),
            "elastic_rms_mm": self.elastic_rms_mm,
            "elastic_sigma_mm": self.elastic_sigma_mm,
            "mass_centre_mm": np.round(self.mass_centre, 2).tolist(),
            "mass_amplitude": self.mass_amplitude,
            "mass_radius_mm": self.mass_radius_mm,
        }


def identity(mass_centre: np.ndarray) -> Deformation:
    """No deformation at all (for tests and for `PhantomConfig(deformation=False)`)."""
    return Deformation(np.eye(3), np.zeros(3), 0.0, ELASTIC_SIGMA_MM[0], np.asarray(mass_centre, float), 0.0, 1.0)


def sample_affine(
    rng: np.random.Generator, variation: AnatomyVariation = DEFAULT_VARIATION
) -> tuple[np.ndarray, np.ndarray]:
    """A small random affine: rotation (±6° per axis by default), scale, anisotropy, shear; translation ±4 mm."""
    angle = variation.rotation_deg
    rotation = Rotation.from_euler("xyz", rng.uniform(-angle, angle, 3), degrees=True).as_matrix()
    scale = rng.uniform(*variation.scale_range) * (1.0 + rng.uniform(-ANISOTROPY, ANISOTROPY, 3))
    shear = np.eye(3)
    shear[np.triu_indices(3, 1)] = rng.uniform(-SHEAR, SHEAR, 3)
    matrix = rotation @ shear @ np.diag(scale)
    return matrix, rng.uniform(-TRANSLATION_MM, TRANSLATION_MM, 3)


def sample_deformation(
    rng: np.random.Generator,
    mass_centre: np.ndarray,
    mass_amplitude: float,
    mass_radius_mm: float,
    variation: AnatomyVariation = DEFAULT_VARIATION,
    extra_rng: np.random.Generator | None = None,
) -> Deformation:
    """One case's deformation. The ventricle and asymmetry terms of a `variation` that has them are
    drawn from `extra_rng` (so the default site's stream is untouched)."""
    matrix, translation = sample_affine(rng, variation)
    ventricles, asymmetry, atrophy = 0.0, 0.0, 0.0
    if variation.extra and extra_rng is not None:
        atrophy = float(extra_rng.uniform(*variation.atrophy_range))
        ventricles = float(extra_rng.uniform(*variation.ventricle_range))
        asymmetry = float(extra_rng.uniform(*variation.asymmetry_range) * extra_rng.choice((-1.0, 1.0)))
    return Deformation(
        matrix=matrix,
        translation=translation,
        elastic_rms_mm=float(rng.uniform(*variation.elastic_rms_mm)),
        elastic_sigma_mm=float(rng.uniform(*variation.elastic_sigma_mm)),
        mass_centre=np.asarray(mass_centre, dtype=np.float64),
        mass_amplitude=float(mass_amplitude),
        mass_radius_mm=float(mass_radius_mm),
        ventricle_amplitude=ventricles,
        ventricle_radius_mm=variation.ventricle_radius_mm,
        asymmetry=asymmetry,
        atrophy=atrophy,
    )


def output_point(
    template_point: np.ndarray,
    deformation: Deformation,
    shape: tuple[int, int, int],
    template: Template,
    brain_scale: float,
) -> np.ndarray:
    """Approximate world point in the output grid that samples `template_point` (elastic part ignored)."""
    centre = grid_centre(shape)
    w2 = centre + brain_scale * (np.asarray(template_point) - template.centre)
    return centre + np.linalg.solve(deformation.matrix, w2 - centre - deformation.translation)


def template_coordinates(
    rng: np.random.Generator,
    shape: tuple[int, int, int],
    template: Template,
    deformation: Deformation,
    brain_scale: float,
) -> tuple[np.ndarray, tuple[slice, slice, slice]]:
    """Template voxel coordinates to sample for the output voxels of the box that can hold brain.

    Returns float32 (3, *box shape) and the box (slices of the `shape` grid); voxels outside the box
    map outside the template's brain.
    """
    vox = voxel_size(shape)
    stride = tuple(max(1, int(round(LATTICE_MM / v))) for v in vox)
    lattice = fields.coarse_shape(shape, stride)
    index = np.stack(
        np.meshgrid(*[np.arange(n) * s for n, s in zip(lattice, stride, strict=True)], indexing="ij")
    ).reshape(3, -1)
    affine = grid_affine(shape)
    world = affine[:3, :3] @ index + affine[:3, 3:4]  # (3, P)

    if deformation.mass_amplitude > 0:
        offset = world - deformation.mass_centre[:, None]
        r2 = (offset**2).sum(axis=0) / deformation.mass_radius_mm**2
        world = deformation.mass_centre[:, None] + offset * (1.0 - deformation.mass_amplitude * np.exp(-r2))

    centre = grid_centre(shape)[:, None]
    world = centre + deformation.matrix @ (world - centre) + deformation.translation[:, None]

    if deformation.elastic_rms_mm > 0:
        sigma_lattice = [deformation.elastic_sigma_mm / (v * s) for v, s in zip(vox, stride, strict=True)]
        white = rng.standard_normal((3, *lattice))
        smooth = np.stack([ndimage.gaussian_filter(white[k], sigma_lattice, mode="reflect") for k in range(3)])
        rms = float(np.sqrt((smooth**2).sum(axis=0).mean()))
        world = world + smooth.reshape(3, -1) * (deformation.elastic_rms_mm / max(rms, 1e-9))

    template_world = template.centre[:, None] + (world - centre) / brain_scale
    template_world = _anatomy_variation(template_world, deformation)
    inverse = np.linalg.inv(template.affine)
    coords = (inverse[:3, :3] @ template_world + inverse[:3, 3:4]).reshape(3, *lattice)

    # lattice points that land near the template brain, plus one lattice step on every side
    margin = float(np.max(vox * np.asarray(stride)) / brain_scale / template.voxel_mm.min()) + 1.0
    near = np.ones(lattice, dtype=bool)
    for k in range(3):
        near &= (coords[k] >= template.brain_low[k] - margin) & (coords[k] <= template.brain_high[k] + margin)
    low, high, box = [], [], []
    for k in range(3):
        hit = np.flatnonzero(near.any(axis=tuple(a for a in range(3) if a != k)))
        lo, hi = (max(int(hit[0]) - 1, 0), min(int(hit[-1]) + 1, lattice[k] - 1)) if hit.size else (0, lattice[k] - 1)
        low.append(lo)
        high.append(hi)
        box.append(slice(lo * stride[k], min(hi * stride[k] + 1, shape[k])))
    sub = coords[:, low[0] : high[0] + 1, low[1] : high[1] + 1, low[2] : high[2] + 1]
    box_shape = tuple(s.stop - s.start for s in box)
    return fields.upsample(sub, stride, box_shape), tuple(box)  # type: ignore[return-value]


def _anatomy_variation(points: np.ndarray, deformation: Deformation) -> np.ndarray:
    """Template-space pull-back of the enlarged ventricles (tissue pushed out of each ventricle centre,
    the mass-effect form) and of the hemispheric asymmetry. Identity when both are 0."""
    if deformation.ventricle_amplitude > 0:
        for centre in VENTRICLE_CENTRES_MM:
            offset = points - np.asarray(centre)[:, None]
            r2 = (offset**2).sum(axis=0) / deformation.ventricle_radius_mm**2
            points = np.asarray(centre)[:, None] + offset * (1.0 - deformation.ventricle_amplitude * np.exp(-r2))
    if deformation.asymmetry:
        x = points[0]
        points = points.copy()
        points[0] = x / (1.0 + deformation.asymmetry * np.tanh(x / ASYMMETRY_WIDTH_MM))
    return points


def warp_template(coordinates: np.ndarray, template: Template) -> np.ndarray:
    """Template maps (GM, WM, mask) pulled back onto the voxels of `coordinates`: float32 (3, *box shape)."""
    return fields.sample_trilinear(template.maps, coordinates)
