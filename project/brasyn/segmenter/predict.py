"""Run the bundled segmenter: four real (or completed) sequences of a case -> a BraTS label map.

Each sequence is normalized as the synthesis models normalize theirs (`Normalization`), the axial
slices holding brain are padded to a multiple of the network's stride with the background value,
run in batches, and the arg-max label is cropped back; voxels outside the brain are 0.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from brasyn.constants import MODALITIES, OUTPUT_EXTENSION, Modality
from brasyn.data.cases import discover_cases, load_case
from brasyn.data.normalization import BACKGROUND, Normalization
from brasyn.errors import InputError
from brasyn.io.nifti import write_volume
from brasyn.models.segmenter import SegmenterUNet
from brasyn.segmenter.model_file import load_segmenter

logger = logging.getLogger(__name__)

BATCH_SIZE = 16
MARGIN = 8  # voxels of background kept around the brain's bounding box


def case_input(
    volumes: Mapping[Modality, np.ndarray], normalization: Normalization, *, name: str = ""
) -> tuple[np.ndarray, np.ndarray]:
    """(brain mask (X, Y, Z), normalized input (4, X, Y, Z) float32 in MODALITIES order)."""
    absent = [m.value for m in MODALITIES if m not in volumes]
    if absent:
        raise InputError(f"{name or 'case'}: the segmenter needs all four sequences, missing {', '.join(absent)}")
    mask, _, normalized = normalization.normalize_case({m: volumes[m] for m in MODALITIES}, name=name)
    return mask, np.stack([normalized[m] for m in MODALITIES])


def pad_to_multiple(array: np.ndarray, multiple: int, value: float) -> tuple[np.ndarray, tuple[int, int]]:
    """Pad the last two axes at their end up to multiples of `multiple`; returns the array and the original (H, W)."""
    height, width = array.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if pad_h or pad_w:
        widths = [(0, 0)] * (array.ndim - 2) + [(0, pad_h), (0, pad_w)]
        array = np.pad(array, widths, constant_values=value)
    return array, (height, width)


@torch.inference_mode()
def segment_volumes(
    model: SegmenterUNet, normalization: Normalization, volumes: Mapping[Modality, np.ndarray], *, name: str = ""
) -> np.ndarray:
    """The label map (X, Y, Z) uint8 of one case's four sequences (scanner units)."""
    mask, inputs = case_input(volumes, normalization, name=name)
    labels = np.zeros(mask.shape, dtype=np.uint8)
    slices = np.flatnonzero(mask.any(axis=(0, 1)))
    if slices.size == 0:
        return labels
    # only the in-plane bounding box of the brain goes through the network (a margin keeps its context)
    (x0, x1), (y0, y1) = (_extent(mask.any(axis=(1, 2)), MARGIN), _extent(mask.any(axis=(0, 2)), MARGIN))
    model.eval()
    for start in range(0, len(slices), BATCH_SIZE):
        chosen = slices[start : start + BATCH_SIZE]
        batch = np.moveaxis(inputs[:, x0:x1, y0:y1, chosen], 3, 0)  # (B, 4, x1 - x0, y1 - y0)
        batch, (height, width) = pad_to_multiple(batch, model.multiple, BACKGROUND)
        logits = model(torch.from_numpy(np.ascontiguousarray(batch)))
        predicted = logits.argmax(dim=1)[:, :height, :width].numpy().astype(np.uint8)  # (B, X', Y')
        labels[x0:x1, y0:y1, chosen] = np.moveaxis(predicted, 0, 2)
    labels[~mask] = 0
    return labels


def _extent(present: np.ndarray, margin: int) -> tuple[int, int]:
    """[first, last + 1) of the True entries of a 1-D mask, widened by `margin` within its bounds."""
    found = np.flatnonzero(present)
    return max(int(found[0]) - margin, 0), min(int(found[-1]) + 1 + margin, present.size)


def segment_folder(checkpoint: Path, input_dir: Path, output_dir: Path) -> list[str]:
    """Segment every case folder of `input_dir` (BraTS naming, four sequences) into `output_dir/{case}.nii.gz`.

    Returns the problems (one line per case that could not be segmented); the other cases are written.
    """
    model, normalization, _ = load_segmenter(checkpoint)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    problems = []
    for case in discover_cases(input_dir):
        try:
            volumes = load_case(case, modalities=MODALITIES)
            labels = segment_volumes(model, normalization, volumes.images, name=case.case_id)
        except InputError as exc:
            logger.error("%s", exc)
            problems.append(str(exc))
            continue
        write_volume(labels, output_dir / f"{case.case_id}{OUTPUT_EXTENSION}", volumes.geometry, dtype=np.uint8)
        logger.info("%s: segmented (%d tumour voxels)", case.case_id, int((labels > 0).sum()))
    return problems
