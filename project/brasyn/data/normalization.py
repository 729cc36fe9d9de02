"""Intensity normalization to [-1, 1] with its exact inverse, and the scale model for inference.

`Normalization` is the one definition of how a volume becomes network input, used by the slice
cache (training), the predictor (inference) and the polynomial baseline alike. Each volume is divided
by its `scale` = `headroom` x a robust brain percentile (ACA-GAN divides by the maximum; a robust
percentile ignores a few hot voxels) and mapped linearly: 0 (the background) -> -1 (`BACKGROUND`),
`scale` -> +1. Nothing above is clipped (the spec: bright tumour above the percentile must stay
representable): with the default headroom 2 the percentile itself lands at 0, and intensities up to
twice the percentile stay inside the range of the generator's tanh. Negative scanner values (noise)
are clipped to 0, so `denormalize(normalize(v))` is exact for every v >= 0.

Inference must put the synthesized volume back on the missing modality's scanner scale, which it
cannot see: `IntensityModel` predicts log(scale_target) linearly from the sources' log(scales),
fitted on training cases (one scanner gives correlated gains across sequences).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from brasyn.config import from_dict, to_dict
from brasyn.constants import Modality
from brasyn.errors import ConfigError, IntensityError

DEFAULT_PERCENTILE = 99.5
DEFAULT_HEADROOM = 2.0
BACKGROUND = -1.0
"""Normalized intensity of the background (scanner value 0), also the pad value of normalized slices."""


def brain_mask(volumes: Sequence[np.ndarray]) -> np.ndarray:
    """Voxels that are non-zero in any of `volumes` (BraTS backgrounds are exactly 0)."""
    mask = np.zeros(volumes[0].shape, dtype=bool)
    for volume in volumes:
        mask |= volume != 0
    return mask


def robust_scale(
    volume: np.ndarray, mask: np.ndarray, percentile: float = DEFAULT_PERCENTILE, *, name: str = ""
) -> float:
    """The `percentile` of `volume` inside `mask` (positive voxels only), in scanner units."""
    values = volume[mask & (volume > 0)]
    if values.size == 0:
        raise IntensityError(f"{name or 'volume'}: expected brain voxels above 0, found none")
    scale = float(np.percentile(values, percentile))
    if not scale > 0:
        raise IntensityError(f"{name or 'volume'}: expected a positive {percentile}th percentile, found {scale}")
    return scale


def normalize(volume: np.ndarray, scale: float) -> np.ndarray:
    """Scanner units -> network input: max(volume, 0) / scale * 2 - 1 (float32; no upper clip)."""
    return (np.maximum(volume, 0.0) / np.float32(scale) * 2.0 - 1.0).astype(np.float32)


def denormalize(image: np.ndarray, scale: float) -> np.ndarray:
    """Network output -> scanner units: (max(image, -1) + 1) / 2 * scale (float32). Inverse of `normalize`."""
    return ((np.maximum(image, BACKGROUND) + 1.0) * 0.5 * np.float32(scale)).astype(np.float32)


@dataclass(frozen=True)
class Normalization:
    """How a case's volumes are scaled to network input, and back: the one record of it, nested in the
    training and baseline configs (YAML keys `percentile` and `headroom`) and stored once in every
    checkpoint (`brasyn.checkpoint.Checkpoint.normalization`)."""

    percentile: float = DEFAULT_PERCENTILE
    """Robust brain percentile of each volume (of its positive voxels inside the case's brain mask)."""
    headroom: float = DEFAULT_HEADROOM
    """scale = headroom x percentile: the percentile maps to 2 / headroom - 1, brighter voxels above it."""

    def __post_init__(self) -> None:
        if not 0.0 < self.percentile <= 100.0:
            raise ConfigError(f"percentile: expected a value in (0, 100], found {self.percentile}")
        if not self.headroom >= 1.0:
            raise ConfigError(f"headroom: expected >= 1, found {self.headroom}")

    def case_scales(
        self, volumes: Mapping[Modality, np.ndarray], *, name: str = ""
    ) -> tuple[np.ndarray, dict[Modality, float]]:
        """The shared brain mask of a case's volumes (non-zero in any) and each volume's scale inside it."""
        mask = brain_mask(list(volumes.values()))
        scales = {
            m: self.headroom * robust_scale(v, mask, self.percentile, name=f"{name}: {m}" if name else str(m))
            for m, v in volumes.items()
        }
        return mask, scales

    def normalize_case(
        self, volumes: Mapping[Modality, np.ndarray], *, name: str = ""
    ) -> tuple[np.ndarray, dict[Modality, float], dict[Modality, np.ndarray]]:
        """(mask, scales, normalized volumes): what training and inference both feed the network."""
        mask, scales = self.case_scales(volumes, name=name)
        return mask, scales, {m: normalize(v, scales[m]) for m, v in volumes.items()}

    def denormalize(self, image: np.ndarray, scale: float) -> np.ndarray:
        """The inverse for one volume: network output -> scanner units, given the volume's `scale`."""
        return denormalize(image, scale)

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in to_dict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Normalization:
        """Strict: unknown keys and invalid values are `ConfigError`s; missing keys take today's defaults
        (a checkpoint's older layout is migrated by `brasyn.checkpoint`, not here)."""
        return from_dict(cls, dict(data or {}), "normalization")


@dataclass(frozen=True)
class IntensityModel:
    """log(scale_target) = intercept + Σ_i coefficients_i · log(scale_source_i)."""

    target: Modality
    sources: tuple[Modality, ...]
    intercept: float
    coefficients: tuple[float, ...]
    n_cases: int = 0
    residual_std: float = 0.0  # std of the log-residuals on the fitted cases

    def predict_scale(self, source_scales: dict[Modality, float]) -> float:
        logs = np.log([source_scales[m] for m in self.sources])
        return float(np.exp(self.intercept + float(np.dot(self.coefficients, logs))))

    @classmethod
    def fit(
        cls,
        target: Modality,
        sources: Sequence[Modality],
        scales: Sequence[dict[Modality, float]],
        *,
        ridge: float = 1e-3,
    ) -> IntensityModel:
        """Least squares (small ridge on the slopes) over cases; `scales[k][m]` = scale of modality m in case k.

        With fewer than len(sources) + 2 cases the slopes are not identifiable: it falls back to
        slope 1/len(sources) each (the target's scale is a fixed multiple of the sources' geometric mean).
        """
        sources = tuple(sources)
        if not scales:
            raise IntensityError(f"cannot fit the {target} intensity model without training cases")
        x = np.log(np.array([[s[m] for m in sources] for s in scales], dtype=np.float64))
        y = np.log(np.array([s[target] for s in scales], dtype=np.float64))
        if len(scales) >= len(sources) + 2:
            x_mean, y_mean = x.mean(axis=0), y.mean()
            xc, yc = x - x_mean, y - y_mean
            slopes = np.linalg.solve(xc.T @ xc + ridge * len(scales) * np.eye(len(sources)), xc.T @ yc)
            intercept = float(y_mean - x_mean @ slopes)
        else:
            slopes = np.full(len(sources), 1.0 / len(sources))
            intercept = float(np.mean(y - x @ slopes))
        residual = y - (intercept + x @ slopes)
        return cls(
            target=target,
            sources=sources,
            intercept=intercept,
            coefficients=tuple(float(c) for c in slopes),
            n_cases=len(scales),
            residual_std=float(residual.std()),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target.value,
            "sources": [m.value for m in self.sources],
            "intercept": self.intercept,
            "coefficients": list(self.coefficients),
            "n_cases": self.n_cases,
            "residual_std": self.residual_std,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IntensityModel:
        try:
            return cls(
                target=Modality(data["target"]),
                sources=tuple(Modality(m) for m in data["sources"]),
                intercept=float(data["intercept"]),
                coefficients=tuple(float(c) for c in data["coefficients"]),
                n_cases=int(data.get("n_cases", 0)),
                residual_std=float(data.get("residual_std", 0.0)),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise ConfigError(f"intensity_model: {exc!r}") from exc
