"""nnU-Net-style data augmentation of one training slice, each transform a switch with its probability.

Spatial (`SpatialAugmentation`): flips, rotation, scaling and an elastic deformation, drawn once per
slice and applied identically to the sources, the target and the labels (images bilinear, labels
nearest-neighbour, so they stay integers; what moves in from outside the frame is background).
Intensity (`IntensityAugmentation`): gamma, brightness, contrast, a smooth multiplicative bias field,
Gaussian noise, blur and simulated low resolution, drawn per source channel and applied to the
sources only (never to the target or the labels); background stays exactly -1.

Every probability defaults to 0: `Augmentation()` is the identity (no random numbers are drawn).
Randomness comes from the generator passed in, so a seeded generator gives the same slice twice.
Images are in the normalized range [-1, 1] with background -1 (`brasyn.data.normalization`); the
intensity transforms act on (x + 1) / 2, i.e. on the scanner signal divided by a constant.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from brasyn.data.normalization import BACKGROUND
from brasyn.errors import ConfigError

ELASTIC_LATTICE = 8  # control points per side of the elastic displacement field
BIAS_LATTICE = 4  # control points per side of the bias field


def _check_probability(prefix: str, name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{prefix}.{name}: expected a probability in [0, 1], found {value}")


def _check_range(prefix: str, name: str, value: tuple[float, float], low: float = -math.inf) -> None:
    if len(value) != 2 or not low <= value[0] <= value[1]:
        raise ConfigError(f"{prefix}.{name}: expected [min, max] with {low} <= min <= max, found {list(value)}")


@dataclass(frozen=True)
class SpatialAugmentation:
    """Same transform for sources, target and labels. Probabilities per slice (flip: per in-plane axis)."""

    p_flip: float = 0.0
    """Probability of mirroring along each in-plane axis."""
    p_rotation: float = 0.0
    rotation_deg: float = 15.0
    """Rotation angle drawn uniformly in ±rotation_deg."""
    p_scale: float = 0.0
    scale_range: tuple[float, float] = (0.85, 1.15)
    """Zoom factor (> 1 enlarges the anatomy)."""
    p_elastic: float = 0.0
    elastic_magnitude_px: float = 4.0
    """RMS displacement of the smooth elastic field, in pixels."""

    def __post_init__(self) -> None:
        prefix = "training.data.augmentation.spatial"
        for name in ("p_flip", "p_rotation", "p_scale", "p_elastic"):
            _check_probability(prefix, name, getattr(self, name))
        _check_range(prefix, "scale_range", self.scale_range, low=1e-3)
        if self.rotation_deg < 0 or self.elastic_magnitude_px < 0:
            raise ConfigError(f"{prefix}: rotation_deg and elastic_magnitude_px must be >= 0")

    @property
    def enabled(self) -> bool:
        return max(self.p_flip, self.p_rotation, self.p_scale, self.p_elastic) > 0


@dataclass(frozen=True)
class IntensityAugmentation:
    """Per source channel; the target and the labels are never touched. Values act on (x + 1) / 2."""

    p_gamma: float = 0.0
    gamma_range: tuple[float, float] = (0.7, 1.5)
    """x ← max · (x / max)^γ inside the brain (max: the channel's brain maximum)."""
    p_brightness: float = 0.0
    brightness_range: tuple[float, float] = (0.75, 1.25)
    """Multiplicative factor."""
    p_contrast: float = 0.0
    contrast_range: tuple[float, float] = (0.75, 1.25)
    """x ← mean + c · (x − mean) over the brain, clipped to the channel's former range."""
    p_bias: float = 0.0
    bias_amplitude: float = 0.3
    """Smooth multiplicative field with extremes of about ±bias_amplitude."""
    p_noise: float = 0.0
    noise_std_range: tuple[float, float] = (0.0, 0.03)
    """Gaussian noise standard deviation (units of (x + 1) / 2)."""
    p_blur: float = 0.0
    blur_sigma_range: tuple[float, float] = (0.5, 1.5)
    """Gaussian blur sigma in pixels."""
    p_low_resolution: float = 0.0
    low_resolution_range: tuple[float, float] = (0.5, 1.0)
    """Downsampling factor: the channel is reduced to this size (area) and interpolated back (bilinear)."""

    def __post_init__(self) -> None:
        prefix = "training.data.augmentation.intensity"
        for name in ("p_gamma", "p_brightness", "p_contrast", "p_bias", "p_noise", "p_blur", "p_low_resolution"):
            _check_probability(prefix, name, getattr(self, name))
        for name in ("gamma_range", "brightness_range", "contrast_range", "low_resolution_range"):
            _check_range(prefix, name, getattr(self, name), low=1e-3)
        for name in ("noise_std_range", "blur_sigma_range"):
            _check_range(prefix, name, getattr(self, name), low=0.0)
        if self.low_resolution_range[1] > 1.0:
            found = list(self.low_resolution_range)
            raise ConfigError(f"{prefix}.low_resolution_range: expected factors <= 1, found {found}")
        if not 0.0 <= self.bias_amplitude < 1.0:
            raise ConfigError(f"{prefix}.bias_amplitude: expected a value in [0, 1), found {self.bias_amplitude}")

    @property
    def enabled(self) -> bool:
        probabilities = (self.p_gamma, self.p_brightness, self.p_contrast, self.p_bias, self.p_noise, self.p_blur,
                         self.p_low_resolution)
        return max(probabilities) > 0


@dataclass(frozen=True)
class Augmentation:
    """Training-time augmentation of each slice (all off by default: the paper's training)."""

    spatial: SpatialAugmentation = field(default_factory=SpatialAugmentation)
    intensity: IntensityAugmentation = field(default_factory=IntensityAugmentation)

    @property
    def enabled(self) -> bool:
        return self.spatial.enabled or self.intensity.enabled


def augment_slice(
    sources: np.ndarray, target: np.ndarray, labels: np.ndarray, augmentation: Augmentation, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Augment one slice: sources (3, S, S), target (1, S, S) float32 in [-1, 1], labels (S, S) integers.

    Returns new arrays (the inputs are not modified); with every switch off, the inputs themselves.
    """
    if augmentation.spatial.enabled:
        sources, target, labels = _spatial(sources, target, labels, augmentation.spatial, rng)
    if augmentation.intensity.enabled:
        sources = np.stack([_intensity(channel, augmentation.intensity, rng) for channel in sources])
    return sources, target, labels


# --------------------------------------------------------------------------------------------- spatial


def _spatial(
    sources: np.ndarray, target: np.ndarray, labels: np.ndarray, config: SpatialAugmentation, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    size = sources.shape[-1]
    flips = [axis for axis in (-2, -1) if rng.random() < config.p_flip]
    rotate = rng.random() < config.p_rotation
    angle = math.radians(rng.uniform(-config.rotation_deg, config.rotation_deg)) if rotate else 0.0
    scale = rng.uniform(*config.scale_range) if rng.random() < config.p_scale else 1.0
    elastic = rng.random() < config.p_elastic
    displacement = _smooth_field(rng, (2, ELASTIC_LATTICE), size) if elastic else None
    if flips:
        sources, target, labels = (np.flip(a, axis=flips).copy() for a in (sources, target, labels))
    if angle == 0.0 and scale == 1.0 and displacement is None:
        return sources, target, labels
    cos, sin = math.cos(angle) / scale, math.sin(angle) / scale  # pull-back: output point → input point
    x, y = _pixel_centres(size)  # normalized coordinates (grid_sample, align_corners=False)
    grid = np.empty((1, size, size, 2), dtype=np.float32)  # (x, y) = (column, row)
    grid[0, ..., 0] = cos * x - sin * y
    grid[0, ..., 1] = sin * x + cos * y
    if displacement is not None:
        rms = float(np.sqrt((displacement**2).sum(axis=0).mean()))
        step = config.elastic_magnitude_px / max(rms, 1e-9) * 2.0 / size  # pixels → normalized coordinates
        grid[0] += (displacement * step).transpose(1, 2, 0)
    grid = torch.from_numpy(grid)
    images = torch.from_numpy(np.concatenate([sources, target]) - BACKGROUND)[None]  # background → 0 for padding
    warped = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0].numpy()
    warped = warped + BACKGROUND
    seg = torch.from_numpy(labels.astype(np.float32))[None, None]
    seg = F.grid_sample(seg, grid, mode="nearest", padding_mode="zeros", align_corners=False)[0, 0].numpy()
    n = sources.shape[0]
    return warped[:n], warped[n:], np.rint(seg).astype(labels.dtype)


@functools.lru_cache(maxsize=4)
def _pixel_centres(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Normalized x (columns) and y (rows) of the pixel centres of a size × size frame, (S, S) each."""
    centres = ((2.0 * np.arange(size) + 1.0) / size - 1.0).astype(np.float32)
    return np.broadcast_to(centres[None, :], (size, size)), np.broadcast_to(centres[:, None], (size, size))


def _smooth_field(rng: np.random.Generator, lattice: tuple[int, int], size: int) -> np.ndarray:
    """(channels, size, size) smooth random field: unit normals on a `lattice` grid, bicubic upsampling."""
    channels, points = lattice
    coarse = torch.from_numpy(rng.standard_normal((1, channels, points, points)).astype(np.float32))
    return F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=True)[0].numpy()


# ------------------------------------------------------------------------------------------- intensity


def _intensity(channel: np.ndarray, config: IntensityAugmentation, rng: np.random.Generator) -> np.ndarray:
    """One source channel (S, S); the brain (> background) keeps its support, background stays -1."""
    brain = channel > BACKGROUND
    if not brain.any():
        return channel
    x = (channel.astype(np.float32) - BACKGROUND) / 2.0  # the signal / a constant: background 0
    if rng.random() < config.p_noise:
        x = x + np.float32(rng.uniform(*config.noise_std_range)) * rng.standard_normal(x.shape, dtype=np.float32)
    if rng.random() < config.p_blur:
        x = ndimage.gaussian_filter(np.where(brain, x, 0.0), rng.uniform(*config.blur_sigma_range), mode="constant")
    if rng.random() < config.p_brightness:
        x = x * np.float32(rng.uniform(*config.brightness_range))
    if rng.random() < config.p_contrast:
        values = x[brain]
        mean, factor = np.float32(values.mean()), np.float32(rng.uniform(*config.contrast_range))
        x = np.clip(mean + factor * (x - mean), values.min(), values.max())
    if rng.random() < config.p_low_resolution:
        x = _low_resolution(x, rng.uniform(*config.low_resolution_range))
    if rng.random() < config.p_bias:
        field = _smooth_field(rng, (1, BIAS_LATTICE), x.shape[-1])[0]
        field = field / max(float(np.abs(field[brain]).max()), 1e-9)
        x = x * np.exp(np.float32(math.log1p(config.bias_amplitude)) * field)
    if rng.random() < config.p_gamma:
        x = np.clip(x, 0.0, None)
        top = max(float(x[brain].max()), 1e-9)
        x = top * (x / top) ** np.float32(rng.uniform(*config.gamma_range))
    out = np.clip(2 * x + BACKGROUND, BACKGROUND, 1.0)
    return np.where(brain, out, BACKGROUND).astype(channel.dtype)


def _low_resolution(x: np.ndarray, factor: float) -> np.ndarray:
    size = x.shape[-1]
    small = max(1, round(size * factor))
    tensor = torch.from_numpy(x.astype(np.float32))[None, None]
    down = F.interpolate(tensor, size=(small, small), mode="area")
    return F.interpolate(down, size=x.shape, mode="bilinear", align_corners=False)[0, 0].numpy()
