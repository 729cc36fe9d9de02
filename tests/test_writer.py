"""The one prediction writer of the folder engine and the Python API (`brasyn.inference.writer`)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from brasyn.inference.predictor import Prediction
from brasyn.inference.writer import write_prediction
from brasyn.io.nifti import new_geometry

SHAPE = (4, 5, 3)


def _prediction(with_segmentation: bool) -> Prediction:
    image = np.linspace(0, 900.4, np.prod(SHAPE), dtype=np.float32).reshape(SHAPE)
    seg = np.full(SHAPE, 2, dtype=np.uint8) if with_segmentation else None
    return Prediction(image=image, segmentation=seg, target_scale=1.0)


def test_writes_an_int16_image_and_a_uint8_tumour_map(tmp_path):
    geometry = new_geometry(SHAPE, np.eye(4))
    write_prediction(_prediction(True), geometry, tmp_path / "a-t1n.nii.gz", tmp_path / "a-seg.nii.gz")
    assert nib.load(tmp_path / "a-t1n.nii.gz").get_data_dtype() == np.int16
    assert nib.load(tmp_path / "a-seg.nii.gz").get_data_dtype() == np.uint8


def test_without_a_tumour_map_only_the_image_is_written(tmp_path):
    write_prediction(
        _prediction(False), new_geometry(SHAPE, np.eye(4)), tmp_path / "a-t1n.nii.gz", tmp_path / "a-seg.nii.gz"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-t1n.nii.gz"]


def test_a_failed_tumour_map_takes_the_image_back(tmp_path):
    with pytest.raises(OSError):
        write_prediction(
            _prediction(True),
            new_geometry(SHAPE, np.eye(4)),
            tmp_path / "a-t1n.nii.gz",
            tmp_path / "no" / "a-seg.nii.gz",
        )
    assert list(tmp_path.iterdir()) == []
