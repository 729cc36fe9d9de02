"""Real anatomy: the MNI152 (ICBM 2009a symmetric) tissue maps that ship inside the nilearn wheel.

The files are found with `importlib.util.find_spec("nilearn")` and read with nibabel; nilearn itself
is never imported (its dependencies are not installed). The maps are RAS, 1 mm, 197 × 233 × 189.
Placement into the BraTS grid (L, P, S) goes through both affines, so orientation is handled by the
world (RAS mm) coordinates rather than by flipping arrays.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from brasyn.constants import BRATS_AFFINE, BRATS_SHAPE
from brasyn.errors import ConfigError

logger = logging.getLogger(__name__)

TEMPLATE_FILES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}
GM, WM, MASK = 0, 1, 2  # channel order of Template.maps
# Tumour centres: deep hemispheric white matter above the tentorium (MNI mm): frontal, parietal,
# occipital and temporal lobes; not the cerebellum (below z = 0 behind y = −45) nor the brainstem.
CENTRE_MIN_WM = 0.9
CENTRE_Z_RANGE = (-20.0, 50.0)
CENTRE_ABS_X_RANGE = (15.0, 50.0)
INFRATENTORIAL_Y = -45.0


@dataclass(frozen=True)
class Template:
    """Tissue maps in template space: `maps` (3, X, Y, Z) float32 = GM, WM, brain mask (GM, WM ≤ mask).

    `affine` maps template voxels to RAS mm; `centre` is the world centre of the brain's bounding box;
    `brain_low`, `brain_high` (3,) the voxel bounds of that box in `maps`; `tumour_sites` (N, 3) are
    world points of deep supratentorial white matter.
    """

    maps: np.ndarray
    affine: np.ndarray
    centre: np.ndarray
    brain_low: np.ndarray
    brain_high: np.ndarray
    tumour_sites: np.ndarray

    @property
    def voxel_mm(self) -> np.ndarray:
        return np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))


def template_dir() -> Path:
    """Folder of the MNI152 maps inside the installed nilearn package (not imported)."""
    spec = importlib.util.find_spec("nilearn")
    if spec is None or spec.origin is None:
        raise ConfigError(
            "phantom anatomy needs the MNI152 maps shipped in the nilearn wheel: pip install --no-deps nilearn;"
            " not installed"
        )
    folder = Path(spec.origin).parent / "datasets" / "data"
    missing = [name for name in TEMPLATE_FILES.values() if not (folder / name).is_file()]
    if missing:
        raise ConfigError(f"{folder}: expected the MNI152 maps {', '.join(missing)} from the nilearn wheel, not found")
    return folder


def _block_mean(volume: np.ndarray, factor: int) -> np.ndarray:
    pad = [(0, (-n) % factor) for n in volume.shape]
    volume = np.pad(volume, pad)
    x, y, z = (n // factor for n in volume.shape)
    return volume.reshape(x, factor, y, factor, z, factor).mean(axis=(1, 3, 5))


@functools.lru_cache(maxsize=4)
def load_template(downsample: int = 1) -> Template:
    """Read (once per process) the maps, optionally block-averaged by an integer `downsample` factor."""
    folder = template_dir()
    images = {key: nib.load(str(folder / name)) for key, name in TEMPLATE_FILES.items()}
    affine = np.asarray(images["t1"].affine, dtype=np.float64)
    mask = (np.asarray(images["t1"].dataobj) > 0).astype(np.float32)
    gm = np.asarray(images["gm"].dataobj, dtype=np.float32) / 255.0 * mask
    wm = np.asarray(images["wm"].dataobj, dtype=np.float32) / 255.0 * mask
    total = gm + wm
    over = total > 1.0  # never the case in the 2009a maps; keeps CSF = mask − GM − WM ≥ 0 regardless
    gm[over] /= total[over]
    wm[over] /= total[over]

    inside = np.argwhere(mask > 0)
    low, high = inside.min(axis=0), inside.max(axis=0)
    centre = (affine @ np.append((low + high) / 2.0, 1.0))[:3]

    maps = np.stack([gm, wm, mask])
    if downsample > 1:
        maps = np.stack([_block_mean(m, downsample) for m in maps])
        step = np.diag([downsample, downsample, downsample, 1.0]).astype(np.float64)
        step[:3, 3] = (downsample - 1) / 2.0
        affine = affine @ step

    world = affine @ np.c_[np.argwhere(maps[WM] >= CENTRE_MIN_WM), np.ones(int((maps[WM] >= CENTRE_MIN_WM).sum()))].T
    world = world[:3].T
    keep = (
        (world[:, 2] >= CENTRE_Z_RANGE[0])
        & (world[:, 2] <= CENTRE_Z_RANGE[1])
        & (np.abs(world[:, 0]) >= CENTRE_ABS_X_RANGE[0])
        & (np.abs(world[:, 0]) <= CENTRE_ABS_X_RANGE[1])
        & ~((world[:, 2] < 0.0) & (world[:, 1] < INFRATENTORIAL_Y))
    )
    sites = world[keep]
    inside = np.argwhere(maps[MASK] > 0)
    logger.debug("MNI152 template loaded (downsample %d): %d tumour sites", downsample, len(sites))
    return Template(
        maps=np.ascontiguousarray(maps, dtype=np.float32),
        affine=affine,
        centre=centre,
        brain_low=inside.min(axis=0).astype(np.float64),
        brain_high=inside.max(axis=0).astype(np.float64),
        tumour_sites=sites,
    )


def grid_affine(shape: tuple[int, int, int]) -> np.ndarray:
    """Affine of a `shape` grid covering the BraTS field of view (BRATS_AFFINE when shape is BRATS_SHAPE)."""
    zoom = [b / s for b, s in zip(BRATS_SHAPE, shape, strict=True)]
    step = np.diag([*zoom, 1.0])
    step[:3, 3] = [(z - 1.0) / 2.0 for z in zoom]
    return BRATS_AFFINE @ step


def voxel_size(shape: tuple[int, int, int]) -> np.ndarray:
    """Voxel edge lengths (mm) of a `shape` grid over the BraTS field of view."""
    return np.array([b / s for b, s in zip(BRATS_SHAPE, shape, strict=True)], dtype=np.float64)


def grid_centre(shape: tuple[int, int, int]) -> np.ndarray:
    """World (RAS mm) centre of the BraTS field of view (independent of `shape`)."""
    return (grid_affine(shape) @ np.append((np.asarray(shape) - 1) / 2.0, 1.0))[:3]


def downsample_factor(shape: tuple[int, int, int], brain_scale: float) -> int:
    """Template block-averaging factor that avoids aliasing when sampling onto a coarse grid."""
    template_mm = float(voxel_size(shape).min()) / brain_scale
    return max(1, int(template_mm // 1.5))
