"""Shared factories: tiny BraTS-named cases written as real NIfTI files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from brasyn.constants import BRATS_AFFINE, MODALITIES, Modality, image_filename
from brasyn.io.nifti import new_geometry, write_volume

TINY_SHAPE = (32, 32, 12)


def tiny_volumes(shape=TINY_SHAPE, seed: int = 0) -> tuple[dict[Modality, np.ndarray], np.ndarray]:
    """Four smooth positive volumes inside an ellipsoid brain (background 0), plus a seg with labels 1-3."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij"))
    brain = (grid**2).sum(axis=0) < 0.8
    tumour_r = np.sqrt(((grid - np.array([0.3, 0.2, 0.0])[:, None, None, None]) ** 2).sum(axis=0))
    seg = np.zeros(shape, np.uint8)
    seg[(tumour_r < 0.45) & brain] = 2
    seg[(tumour_r < 0.3) & brain] = 3
    seg[(tumour_r < 0.15) & brain] = 1
    images = {}
    for k, modality in enumerate(MODALITIES):
        base = 300.0 * (k + 1) + 100.0 * grid[0] + 50.0 * seg + rng.normal(0, 10, shape)
        images[modality] = np.where(brain, np.clip(base, 1, None), 0).astype(np.float32)
    return images, seg


def write_case(
    root: Path,
    case_id: str,
    modalities=MODALITIES,
    *,
    shape=TINY_SHAPE,
    seed: int = 0,
    with_labels: bool = False,
    extension: str = ".nii.gz",
) -> Path:
    """Write a case folder `root/case_id/` holding `modalities` (and optionally the seg)."""
    folder = Path(root) / case_id
    folder.mkdir(parents=True, exist_ok=True)
    images, seg = tiny_volumes(shape, seed)
    geometry = new_geometry(shape, BRATS_AFFINE)
    for modality in modalities:
        write_volume(images[Modality(modality)], folder / image_filename(case_id, modality, extension), geometry)
    if with_labels:
        write_volume(seg, folder / image_filename(case_id, "seg", extension), geometry, dtype=np.uint8)
    return folder


@pytest.fixture
def case_factory(tmp_path):
    """`case_factory(case_id, modalities=..., **kw)` writes a case under `tmp_path / "data"`."""
    root = tmp_path / "data"

    def make(case_id: str, modalities=MODALITIES, **kwargs) -> Path:
        return write_case(root, case_id, modalities, **kwargs)

    make.root = root  # type: ignore[attr-defined]
    return make


# The inference tests' fixtures (predictor, engine, API, CLI). inference_helpers imports this module,
# hence the imports inside the fixtures.


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """A weights folder of tiny random-initialised checkpoints, one per target (one per test module)."""
    from inference_helpers import make_weights

    return make_weights(tmp_path_factory.mktemp("weights"))


@pytest.fixture
def cohort(tmp_path):
    """(data folder, case -> missing modality) of a 4-case validation-style cohort under `tmp_path / "data"`."""
    from inference_helpers import write_cohort

    data = tmp_path / "data"
    return data, write_cohort(data, 4)
