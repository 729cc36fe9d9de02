"""The non-neural reference: per-voxel polynomial regression from the three sources to the target.

Each voxel's normalized target is a polynomial (all monomials of total degree ≤ `degree`, cross
terms included: 10 terms for degree 2, 20 for degree 3) of the same voxel's three normalized
sources, in `sources_for(target)` order. Coefficients come from least squares on brain voxels
sampled from training cases (`brasyn.training.baseline_fit`). It plugs into the inference engine
like the GAN: checkpoint kind "polynomial", built by `brasyn.checkpoint.build_model`.

It sets the floor a learned model must clear: intensity relations that hold voxel by voxel (e.g.
T2 ≈ a polynomial of FLAIR, T1 and T1-ce), with no spatial context at all.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from brasyn.config import from_dict
from brasyn.data.normalization import BACKGROUND
from brasyn.errors import ConfigError, ContractError
from brasyn.models.generator import GeneratorOutput

MAX_DEGREE = 3
BACKGROUND_TOLERANCE = 1e-4  # a source at or below -1 + this counts as background


def monomial_exponents(degree: int, n_inputs: int = 3) -> tuple[tuple[int, ...], ...]:
    """Exponent tuples of every monomial of total degree ≤ `degree`, by degree then lexicographically.

    degree 2, 3 inputs: (0,0,0), (0,0,1), (0,1,0), (1,0,0), (0,0,2), (0,1,1), ..., (2,0,0): 10 terms.
    """
    terms = [e for e in itertools.product(range(degree + 1), repeat=n_inputs) if sum(e) <= degree]
    return tuple(sorted(terms, key=lambda e: (sum(e), e)))


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


class PolynomialBaseline(nn.Module):
    """sources (B, 3, H, W) in [-1, 1] → GeneratorOutput(image (B, 1, H, W) in [-1, 1], None, None)."""

    def __init__(self, config: BaselineConfig) -> None:
        super().__init__()
        self.config = config
        exponents = monomial_exponents(config.degree)
        self._exponents = exponents  # plain tuples for forward (the buffer would sync a GPU on .tolist())
        self.register_buffer("exponents", torch.tensor(exponents, dtype=torch.int64))  # (T, 3)
        self.register_buffer("coefficients", torch.zeros(len(exponents), dtype=torch.float32))  # (T,)

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
        x = sources.float()
        powers = [[torch.ones_like(x[:, c])] for c in range(3)]  # powers[c][e]: (B, H, W)
        for c in range(3):
            for _ in range(self.config.degree):
                powers[c].append(powers[c][-1] * x[:, c])
        image = torch.zeros_like(x[:, 0])  # (B, H, W)
        for coefficient, exponent in zip(self.coefficients, self._exponents, strict=True):
            term = powers[0][exponent[0]] * powers[1][exponent[1]] * powers[2][exponent[2]]
            image = image + coefficient * term
        background = (x <= BACKGROUND + BACKGROUND_TOLERANCE).all(dim=1)  # (B, H, W)
        image = torch.where(background, torch.full_like(image, BACKGROUND), image.clamp(-1.0, 1.0))
        return GeneratorOutput(
            image=image.unsqueeze(1).to(sources.dtype), seg_logits=None, features=None
        )  # (B, 1, H, W)
