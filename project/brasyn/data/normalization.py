"""Intensity normalisation to [-1, 1] with its exact inverse, and the scale model for inference.

Each volume is divided by a robust brain percentile (`scale`), clipped to [0, 1] and mapped to
[-1, 1] (ACA-GAN uses the maximum; a robust percentile ignores a few hot voxels). The background
(0) maps to -1. Inference must put the synthesized volume back on the missing modality's scanner
scale, which it cannot see: `IntensityModel` predicts log(scale_target) linearly from the sources'
log(scales), fitted on training cases (one scanner gives correlated gains across sequences).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from brasyn.constants import Modality
from brasyn.errors import CheckpointError, IntensityError

DEFAULT_PERCENTILE = 99.5


def brain_mask(volumes: Sequence[np.ndarray]) -> np.ndarray:
    """Voxels that are non-zero in any of `volumes` (BraTS backgrounds are exactly 0)."""
    mask = np.zeros(volumes[0].shape, dtype=bool)
    for volume in volumes:
        mask |= volume != 0
    return mask


def robust_scale(volume: np.ndarray, mask: np.ndarray, percentile: float = DEFAULT_PERCENTILE, *, name: str = "") -> float:
    """The `percentile` of `volume` inside `mask`: the intensity that maps to +1."""
    values = volume[mask & (volume > 0)]
    if values.size == 0:
        raise IntensityError(f"{name or 'volume'}: expected brain voxels above 0, found none")
    scale = float(np.percentile(values, percentile))
    if not scale > 0:
        raise IntensityError(f"{name or 'volume'}: expected a positive {percentile}th percentile, found {scale}")
    return scale


def case_scales(
    volumes: dict[Modality, np.ndarray], percentile: float = DEFAULT_PERCENTILE, *, name: str = ""
) -> tuple[np.ndarray, dict[Modality, float]]:
    """The shared brain mask of a case's volumes and each volume's robust scale inside it."""
    mask = brain_mask(list(volumes.values()))
    scales = {m: robust_scale(v, mask, percentile, name=f"{name}: {m}" if name else str(m)) for m, v in volumes.items()}
    return mask, scales


def normalize(volume: np.ndarray, scale: float) -> np.ndarray:
    """Scanner units → [-1, 1]: clip(volume / scale, 0, 1) · 2 − 1 (float32)."""
    return (np.clip(volume / np.float32(scale), 0.0, 1.0) * 2.0 - 1.0).astype(np.float32)


def denormalize(image: np.ndarray, scale: float) -> np.ndarray:
    """[-1, 1] → scanner units: (clip(image, -1, 1) + 1) / 2 · scale (float32). Inverse of `normalize`."""
    return ((np.clip(image, -1.0, 1.0) + 1.0) * 0.5 * np.float32(scale)).astype(np.float32)


@dataclass(frozen=True)
class IntensityModel:
    """log(scale_target) = intercept + Σ_i coefficients_i · log(scale_source_i)."""

    target: Modality
    sources: tuple[Modality, ...]
    intercept: float
    coefficients: tuple[float, ...]
    percentile: float = DEFAULT_PERCENTILE
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
        percentile: float = DEFAULT_PERCENTILE,
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
            percentile=percentile,
            n_cases=len(scales),
            residual_std=float(residual.std()),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target.value,
            "sources": [m.value for m in self.sources],
            "intercept": self.intercept,
            "coefficients": list(self.coefficients),
            "percentile": self.percentile,
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
                percentile=float(data.get("percentile", DEFAULT_PERCENTILE)),
                n_cases=int(data.get("n_cases", 0)),
                residual_std=float(data.get("residual_std", 0.0)),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise CheckpointError(f"invalid intensity model in checkpoint: {exc!r}") from exc
