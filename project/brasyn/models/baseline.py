"""The non-neural reference: per-voxel polynomial regression from the three sources to the target.

Each voxel's normalized target is a polynomial of the same voxel's three normalized sources
(`brasyn.models.polynomial`). Coefficients come from least squares on brain voxels sampled from
training cases (`brasyn.training.baseline_fit`). It plugs into the inference engine
like the GAN: checkpoint kind "polynomial", built by `brasyn.checkpoint.build_model`.

It sets the floor a learned model must clear: intensity relations that hold voxel by voxel (e.g.
T2 ≈ a polynomial of FLAIR, T1 and T1-ce), with no spatial context at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor

from brasyn.config import from_dict
from brasyn.errors import ConfigError, ContractError
from brasyn.models.generator import GeneratorOutput
from brasyn.models.polynomial import MAX_DEGREE, PolynomialMap, monomial_exponents

__all__ = ["MAX_DEGREE", "BaselineConfig", "PolynomialBaseline", "monomial_exponents"]


@dataclass(frozen=True)
class BaselineConfig:
    """The polynomial model's architecture (its `model_config` in checkpoints)."""

    degree: int = 2  # total degree of the polynomial, cross terms included (1..3)
    image_size: int = 256  # slice size the inference engine pads to (the model itself works on any size)

    def __post_init__(self) -> None:
        if not 1 <= self.degree <= MAX_DEGREE:
            raise ConfigError(f"degree: expected 1..{MAX_DEGREE}, found {self.degree}")
        if self.image_size < 1:
            raise ConfigError(f"image_size: expected a positive integer, found {self.image_size}")


class PolynomialBaseline(PolynomialMap):
    """sources (B, 3, H, W) in [-1, 1] → GeneratorOutput(image (B, 1, H, W) in [-1, 1], None, None)."""

    def __init__(self, config: BaselineConfig) -> None:
        super().__init__(config.degree)
        self.config = config

    @classmethod
    def from_config(cls, cfg: dict[str, Any] | BaselineConfig) -> PolynomialBaseline:
        """Build from a `model_config` dict ({"degree": 2, "image_size": 256}); unknown keys fail."""
        config = cfg if isinstance(cfg, BaselineConfig) else from_dict(BaselineConfig, cfg)
        return cls(config)

    def forward(self, sources: Tensor, *, with_segmentation: bool = False) -> GeneratorOutput:
        """sources (B, 3, H, W) → image (B, 1, H, W), clamped to [-1, 1]; -1 wherever every source is
        background (-1). There is no segmentation head: `seg_logits` is None whatever `with_segmentation`."""
        if sources.ndim != 4 or sources.shape[1] != 3:
            raise ContractError(f"polynomial baseline: expected sources (B, 3, H, W), found {tuple(sources.shape)}")
        return GeneratorOutput(image=super().forward(sources), seg_logits=None, features=None)
