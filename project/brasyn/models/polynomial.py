"""A per-voxel polynomial of the three normalized sources: the polynomial baseline's model, and the
prior the generator can add its output to (`ModelConfig.prior_degree`).

Each voxel's value is a polynomial (all monomials of total degree ≤ `degree`, cross terms included:
10 terms for degree 2, 20 for degree 3) of the same voxel's three sources, in `sources_for(target)`
order, clamped to [-1, 1]; -1 (background) wherever every source is background. The coefficients are
a buffer: least squares fits them (`brasyn.training.baseline_fit`), nothing trains them.
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor, nn

from brasyn.data.normalization import BACKGROUND
from brasyn.errors import ConfigError

MAX_DEGREE = 3
BACKGROUND_TOLERANCE = 1e-4  # a source at or below -1 + this counts as background


def source_background(sources: Tensor) -> Tensor:
    """(B, n, H, W) normalized sources → (B, 1, H, W) bool: where every source is background (the
    voxels inference writes as 0, `Predictor.restore`)."""
    return (sources <= BACKGROUND + BACKGROUND_TOLERANCE).all(dim=1, keepdim=True)


def monomial_exponents(degree: int, n_inputs: int = 3) -> tuple[tuple[int, ...], ...]:
    """Exponent tuples of every monomial of total degree ≤ `degree`, by degree then lexicographically.

    degree 2, 3 inputs: (0,0,0), (0,0,1), (0,1,0), (1,0,0), (0,0,2), (0,1,1), ..., (2,0,0): 10 terms.
    """
    terms = [e for e in itertools.product(range(degree + 1), repeat=n_inputs) if sum(e) <= degree]
    return tuple(sorted(terms, key=lambda e: (sum(e), e)))


class PolynomialMap(nn.Module):
    """sources (B, 3, H, W) in [-1, 1] → (B, 1, H, W) in [-1, 1]; buffers `exponents` (T, 3) and
    `coefficients` (T,), zero until fitted."""

    def __init__(self, degree: int) -> None:
        super().__init__()
        if not 1 <= degree <= MAX_DEGREE:
            raise ConfigError(f"degree: expected 1..{MAX_DEGREE}, found {degree}")
        self.degree = degree
        exponents = monomial_exponents(degree)
        self._exponents = exponents  # plain tuples for forward (the buffer would sync a GPU on .tolist())
        self.register_buffer("exponents", torch.tensor(exponents, dtype=torch.int64))  # (T, 3)
        self.register_buffer("coefficients", torch.zeros(len(exponents), dtype=torch.float32))  # (T,)

    def forward(self, sources: Tensor) -> Tensor:
        x = sources.float()
        powers = [[torch.ones_like(x[:, c])] for c in range(3)]  # powers[c][e]: (B, H, W)
        for c in range(3):
            for _ in range(self.degree):
                powers[c].append(powers[c][-1] * x[:, c])
        image = torch.zeros_like(x[:, 0])  # (B, H, W)
        for coefficient, exponent in zip(self.coefficients, self._exponents, strict=True):
            term = powers[0][exponent[0]] * powers[1][exponent[1]] * powers[2][exponent[2]]
            image = image + coefficient * term
        background = source_background(x)[:, 0]  # (B, H, W)
        image = torch.where(background, torch.full_like(image, BACKGROUND), image.clamp(-1.0, 1.0))
        return image.unsqueeze(1).to(sources.dtype)  # (B, 1, H, W)
