"""Writing predictions: the output folders' checks, and one case's files (the one place that knows
the output dtypes and the roll-back).

Used by the folder engine and the one-call API alike, so a file written by `brasyn infer` and one
written by `synthesize` are the same bytes, and neither leaves half a case behind.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from brasyn.errors import OutputError
from brasyn.inference.predictor import Prediction
from brasyn.io.atomic import remove_stale_temporaries
from brasyn.io.nifti import Geometry, write_volume

IMAGE_DTYPE = np.int16
"""The synthesized image's on-disk type (BraTS images are integer; the restored scale fits int16)."""
SEGMENTATION_DTYPE = np.uint8
"""The tumour map's on-disk type (labels 0-3)."""


def write_prediction(
    prediction: Prediction, geometry: Geometry, image_path: Path, segmentation_file: Path | None
) -> None:
    """Write the image and, when `segmentation_file` is given and the model made one, the tumour
    map, both with the sources' `geometry`. If the tumour map cannot be written the image is removed
    again: a failed case has no output."""
    write_volume(prediction.image, image_path, geometry, dtype=IMAGE_DTYPE)
    if segmentation_file is None or prediction.segmentation is None:
        return
    try:
        write_volume(prediction.segmentation, segmentation_file, geometry, dtype=SEGMENTATION_DTYPE)
    except BaseException:
        image_path.unlink(missing_ok=True)
        raise


def _is_within(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def _make_folder(path: Path, what: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{path}: cannot create the {what} ({type(exc).__name__}: {exc.strerror or exc})") from exc
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: the {what} is not writable (expected write permission for uid {os.getuid()})")


def prepare_output_folders(output_path: Path, data_path: Path, segmentation_dir: Path | None) -> None:
    """Refuse overlapping folders (before creating anything), then create and check the outputs."""
    if _is_within(output_path, data_path) or _is_within(data_path, output_path):
        raise OutputError(
            f"{output_path}: the output folder must not contain or lie inside the data folder {data_path}"
        )
    if segmentation_dir is not None:
        if _is_within(segmentation_dir, output_path) or _is_within(output_path, segmentation_dir):
            raise OutputError(
                f"{segmentation_dir}: the segmentation folder must be separate from {output_path} "
                "(which holds only predictions)"
            )
        if _is_within(segmentation_dir, data_path):
            raise OutputError(
                f"{segmentation_dir}: the segmentation folder must not lie inside the data folder {data_path}"
            )
    _make_folder(output_path, "output folder")
    if segmentation_dir is not None:
        _make_folder(segmentation_dir, "segmentation folder")
    for folder in (output_path, segmentation_dir):  # a killed run's temporary files: the folder holds only results
        if folder is not None:
            remove_stale_temporaries(folder)
