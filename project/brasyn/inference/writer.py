"""Writing one case's prediction: the one place that knows the output dtypes and the roll-back.

Used by the folder engine and the one-call API alike, so a file written by `brasyn infer` and one
written by `synthesize` are the same bytes, and neither leaves half a case behind.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from brasyn.inference.predictor import Prediction
from brasyn.io.nifti import Geometry, write_volume

IMAGE_DTYPE = np.int16
"""The synthesized image's on-disk type (BraTS images are integer; the restored scale fits int16)."""
SEGMENTATION_DTYPE = np.uint8
"""The tumour map's on-disk type (labels 0-3)."""


def write_prediction(
    prediction: Prediction, geometry: Geometry, image_path: Path, segmentation_path: Path | None
) -> None:
    """Write the image and, when `segmentation_path` is given and the model made one, the tumour
    map, both with the sources' `geometry`. If the tumour map cannot be written the image is removed
    again: a failed case has no output."""
    write_volume(prediction.image, image_path, geometry, dtype=IMAGE_DTYPE)
    if segmentation_path is None or prediction.segmentation is None:
        return
    try:
        write_volume(prediction.segmentation, segmentation_path, geometry, dtype=SEGMENTATION_DTYPE)
    except BaseException:
        image_path.unlink(missing_ok=True)
        raise
