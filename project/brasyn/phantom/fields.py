"""Smooth random fields and fast trilinear resampling (torch on CPU), shared by the phantom modules.

A smooth field is drawn as white noise on a coarse lattice (a point every `stride` voxels), smoothed
there and interpolated trilinearly onto the full grid: far cheaper than filtering at full size and
visually the same for correlation lengths of a few voxels or more.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

Shape3 = tuple[int, int, int]
MAX_STRIDE = 8


def coarse_shape(shape: Sequence[int], stride: Sequence[int]) -> Shape3:
    """Lattice size whose points `n · stride` cover indices 0 … shape − 1."""
    return tuple(int(math.ceil((n - 1) / s)) + 1 for n, s in zip(shape, stride, strict=True))  # type: ignore[return-value]


def upsample(coarse: np.ndarray, stride: Sequence[int], shape: Sequence[int]) -> np.ndarray:
    """Trilinear interpolation of lattice values `coarse` (..., a, b, c) onto the full grid.

    Lattice point n sits on voxel n · stride. Leading axes are channels. Returns float32 (..., *shape).
    """
    coarse = np.ascontiguousarray(coarse, dtype=np.float32)
    lead = coarse.shape[:-3]
    stride = tuple(int(s) for s in stride)
    shape = tuple(int(n) for n in shape)
    if stride == (1, 1, 1):
        return coarse[..., : shape[0], : shape[1], : shape[2]]
    size = tuple((c - 1) * s + 1 for c, s in zip(coarse.shape[-3:], stride, strict=True))
    if any(n > m for n, m in zip(shape, size, strict=True)):
        raise ValueError(f"lattice {coarse.shape[-3:]} with stride {stride} covers {size}, not {shape}")
    tensor = torch.from_numpy(coarse.reshape(1, -1, *coarse.shape[-3:]))  # (1, C, a, b, c)
    with torch.no_grad():
        full = F.interpolate(tensor, size=size, mode="trilinear", align_corners=True)
    full = full[0, :, : shape[0], : shape[1], : shape[2]].numpy()
    return np.ascontiguousarray(full.reshape(*lead, *shape))


def noise_stride(sigma_vox: Sequence[float]) -> Shape3:
    """Lattice stride for a field of correlation length `sigma_vox`: about half of it, 1 … MAX_STRIDE."""
    return tuple(int(min(MAX_STRIDE, max(1, s // 2))) for s in sigma_vox)  # type: ignore[return-value]


def smooth_noise(
    rng: np.random.Generator, shape: Sequence[int], sigma_vox: Sequence[float], channels: int = 1
) -> np.ndarray:
    """Gaussian-smoothed white noise with unit standard deviation per channel.

    Returns float32 (channels, *shape), or (*shape) when `channels` is 1.
    """
    stride = noise_stride(sigma_vox)
    lattice = coarse_shape(shape, stride)
    white = rng.standard_normal((channels, *lattice), dtype=np.float32)
    sigma = [s / st for s, st in zip(sigma_vox, stride, strict=True)]
    for c in range(channels):
        white[c] = ndimage.gaussian_filter(white[c], sigma, mode="reflect", truncate=3.0)
        white[c] /= max(float(white[c].std()), 1e-6)
    field = upsample(white, stride, shape)
    return field[0] if channels == 1 else field


def sample_trilinear(volumes: np.ndarray, coordinates: np.ndarray) -> np.ndarray:
    """Values of `volumes` (C, X, Y, Z) at fractional voxel `coordinates` (3, *out); zero outside.

    Returns float32 (C, *out). Uses `torch.nn.functional.grid_sample` (align_corners=True).
    """
    volumes = np.ascontiguousarray(volumes, dtype=np.float32)
    dims = volumes.shape[1:]
    out_shape = coordinates.shape[1:]
    grid = np.empty((*out_shape, 3), dtype=np.float32)
    # grid_sample's last axis is (x, y, z) = (W, H, D): our axes in reverse order, normalized to [-1, 1]
    for k in range(3):
        grid[..., 2 - k] = coordinates[k] * (2.0 / (dims[k] - 1)) - 1.0
    with torch.no_grad():
        out = F.grid_sample(
            torch.from_numpy(volumes)[None],
            torch.from_numpy(grid)[None],
            mode="bilinear",
            padding_mode="zeros",
            align_corners=True,
        )
    return out[0].numpy()
