"""Pad 2-D slices to the model's square size and crop them back exactly (no resizing).

The networks are built for `image_size` x `image_size` inputs (the fusion token length depends on it),
BraTS slices are 240 x 240: `pad_slices` centres each slice in the larger square and returns a
`PadRecord`; `crop_slices` uses that record to undo the padding exactly.

Pad value: the spec says "zero-pad". Sources and targets are normalized to [-1, 1] where scanner
intensity 0 (the background) maps to -1, so "zero intensity" padding of a normalized image is
`BACKGROUND` = -1 (the default). Pad label maps with 0 (background label) and raw scanner-unit
images with 0 by passing `value=0`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from brasyn.data.normalization import BACKGROUND
from brasyn.errors import ContractError, GeometryError

__all__ = ["BACKGROUND", "PadRecord", "crop_slices", "pad_slices"]

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


@dataclass(frozen=True)
class PadRecord:
    """How a (..., height, width) array was padded to (..., size, size): rows `top` and columns `left`
    before, the rest after."""

    height: int
    width: int
    size: int
    top: int
    left: int

    @property
    def bottom(self) -> int:
        return self.size - self.height - self.top

    @property
    def right(self) -> int:
        return self.size - self.width - self.left

    @classmethod
    def for_shape(cls, height: int, width: int, size: int) -> PadRecord:
        """The centred padding of a height x width slice to size x size (the odd pixel goes after)."""
        if height > size or width > size:
            raise GeometryError(
                f"slices of {height} x {width} do not fit the model size {size} x {size} "
                f"(expected at most {size} per side; train a model with a larger image_size)"
            )
        return cls(height=height, width=width, size=size, top=(size - height) // 2, left=(size - width) // 2)


def pad_slices(array: ArrayT, size: int, *, value: float = BACKGROUND) -> tuple[ArrayT, PadRecord]:
    """Pad the last two axes of `array` (..., H, W) with `value` to (..., size, size), centred.

    Works on numpy arrays and torch tensors (the dtype is kept). Raises `GeometryError` if H or W
    exceeds `size`.
    """
    if array.ndim < 2:
        raise ContractError(f"expected an array of slices (..., H, W), found shape {tuple(array.shape)}")
    height, width = int(array.shape[-2]), int(array.shape[-1])
    record = PadRecord.for_shape(height, width, size)
    if isinstance(array, torch.Tensor):
        padded = F.pad(array, (record.left, record.right, record.top, record.bottom), mode="constant", value=value)
        return padded, record
    widths = [(0, 0)] * (array.ndim - 2) + [(record.top, record.bottom), (record.left, record.right)]
    return np.pad(array, widths, mode="constant", constant_values=value), record


def crop_slices(array: ArrayT, record: PadRecord) -> ArrayT:
    """Undo `pad_slices`: (..., size, size) -> (..., H, W), exactly the original pixels' positions."""
    if array.ndim < 2 or tuple(array.shape[-2:]) != (record.size, record.size):
        raise ContractError(
            f"expected padded slices (..., {record.size}, {record.size}), found shape {tuple(array.shape)}"
        )
    return array[..., record.top : record.top + record.height, record.left : record.left + record.width]
