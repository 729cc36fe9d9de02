"""What the scanner adds to the ideal signal: slice-thickness blur, receive-coil bias, gain, Rician noise."""

from __future__ import annotations

import itertools

import numpy as np
from scipy import ndimage

from brasyn.phantom import fields

FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))
BIAS_DEGREE = 3
BIAS_LATTICE_MM = 8.0
INT16_CEILING = 30000.0  # leave head-room for noise below 32767


def slice_blur(image: np.ndarray, thickness_mm: float, axis: int, voxel_mm: float) -> np.ndarray:
    """Blur along `axis` as a 2-D acquisition with `thickness_mm` slices (Gaussian of that FWHM)."""
    sigma = thickness_mm * FWHM_TO_SIGMA / voxel_mm
    if sigma < 0.25:
        return image
    return ndimage.gaussian_filter1d(image, sigma, axis=axis, mode="constant", truncate=3.0)


def _linear_along(volume: np.ndarray, positions: np.ndarray, axis: int) -> np.ndarray:
    """Linear interpolation of `volume` at fractional indices `positions` (clipped to the axis) along `axis`."""
    n = volume.shape[axis]
    positions = np.clip(positions, 0.0, n - 1.0)
    low = np.floor(positions).astype(int)
    high = np.minimum(low + 1, n - 1)
    shape = [1] * volume.ndim
    shape[axis] = len(positions)
    weight = (positions - low).reshape(shape).astype(volume.dtype)
    return np.take(volume, low, axis=axis) * (1 - weight) + np.take(volume, high, axis=axis) * weight


def thick_slices(image: np.ndarray, thickness_mm: float, axis: int, voxel_mm: float) -> np.ndarray:
    """A 2-D acquisition of `thickness_mm` slices along `axis`, resampled back to the grid.

    Each slice integrates its slab (Gaussian profile of that FWHM); slices are `thickness_mm` apart
    (no gap), the first centred half a slice from the start; the grid is then filled by linear
    interpolation between slice centres, as a resampling to the 1 mm BraTS grid does. Unlike
    `slice_blur` this leaves the staircase and partial-volume pattern of the slice positions.
    """
    spacing = thickness_mm / voxel_mm
    if spacing < 1.5:
        return slice_blur(image, thickness_mm, axis, voxel_mm)
    slab = slice_blur(image, thickness_mm, axis, voxel_mm)
    n = image.shape[axis]
    centres = np.arange(0.5 * spacing - 0.5, n - 0.5, spacing)
    slices = _linear_along(slab, centres, axis)
    grid = (np.arange(n) - centres[0]) / spacing  # grid index in units of slices
    return _linear_along(slices, grid, axis).astype(image.dtype, copy=False)


def _monomials(points: np.ndarray, degree: int) -> np.ndarray:
    """All monomials x^a y^b z^c with 1 ≤ a + b + c ≤ degree of `points` (3, N): (M, N)."""
    terms = []
    for total in range(1, degree + 1):
        for a, b in itertools.product(range(total + 1), repeat=2):
            c = total - a - b
            if c >= 0:
                terms.append(points[0] ** a * points[1] ** b * points[2] ** c)
    return np.stack(terms)


def bias_field(
    rng: np.random.Generator,
    lattice_mm: np.ndarray,
    stride: tuple[int, int, int],
    shape: tuple[int, int, int],
    where: np.ndarray,
    amplitude: float,
) -> np.ndarray:
    """Smooth multiplicative field exp(cubic polynomial) at the flat indices `where` of a `shape` grid.

    The polynomial is evaluated on a lattice (`lattice_mm`: (3, a, b, c) positions in mm from the head
    centre, one point every `stride` voxels) and interpolated; its extreme deviation from its mean
    over `where` is log(1 + amplitude), i.e. a ±amplitude (e.g. ±25 %) non-uniformity. Returns float32.
    """
    basis = _monomials(lattice_mm.reshape(3, -1) / 80.0, BIAS_DEGREE)
    degrees = np.concatenate([[d] * ((d + 1) * (d + 2) // 2) for d in range(1, BIAS_DEGREE + 1)])
    coarse = ((rng.standard_normal(len(basis)) / degrees) @ basis).reshape(lattice_mm.shape[1:])
    log_field = fields.upsample(coarse, stride, shape).ravel()[where].astype(np.float64)
    log_field -= log_field.mean()
    peak = float(np.abs(log_field).max())
    if peak > 0:
        log_field *= np.log1p(amplitude) / peak
    return np.exp(log_field).astype(np.float32)


def rician(rng: np.random.Generator, signal: np.ndarray, sigma: float) -> np.ndarray:
    """Magnitude of the signal plus complex Gaussian noise: |S + σ(n1 + i·n2)|."""
    real = signal + sigma * rng.standard_normal(signal.shape, dtype=np.float32)
    imaginary = sigma * rng.standard_normal(signal.shape, dtype=np.float32)
    return np.sqrt(real * real + imaginary * imaginary)


def to_int16(values: np.ndarray) -> np.ndarray:
    """Scanner units inside the brain: rounded and kept in 1 … 32767 so the brain mask stays non-zero."""
    return np.clip(np.rint(values), 1, np.iinfo(np.int16).max).astype(np.int16)
