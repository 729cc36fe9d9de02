"""Conditional PatchGAN discriminator (pix2pix 70 x 70 with 3 strided layers)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from brasyn.models.config import ModelConfig
from brasyn.models.init import init_weights


class PatchDiscriminator(nn.Module):
    """Logits of real-vs-synthetic per overlapping patch, conditioned on the sources.

    conv 4x4 s2 -> ndf, LReLU 0.2; (n_layers - 1) x [conv 4x4 s2 -> min(2^k, 8) ndf, BN, LReLU];
    conv 4x4 s1 -> min(2^n, 8) ndf, BN, LReLU; conv 4x4 s1 -> 1. Input concat(sources, image).
    """

    def __init__(self, *, in_channels: int = 4, base_channels: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        ndf = base_channels
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, ndf, kernel_size=4, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        mult = 1
        for k in range(1, n_layers + 1):
            previous, mult = mult, min(2**k, 8)
            stride = 2 if k < n_layers else 1
            layers += [
                nn.Conv2d(ndf * previous, ndf * mult, kernel_size=4, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(ndf * mult),
                nn.LeakyReLU(0.2, inplace=True),
            ]
        layers.append(nn.Conv2d(ndf * mult, 1, kernel_size=4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)

    @classmethod
    def from_config(cls, config: ModelConfig) -> PatchDiscriminator:
        """Conditional D on n_sources + 1 channels; weights N(0, init_gain)."""
        model = cls(
            in_channels=config.n_sources + 1, base_channels=config.disc_base_channels, n_layers=config.disc_n_layers
        )
        return init_weights(model, config.init_gain)

    def forward(self, sources: Tensor, image: Tensor) -> Tensor:
        """sources (B, n_sources, H, W), image (B, 1, H, W) -> logits (B, 1, H', W') (30 x 30 at 256)."""
        return self.model(torch.cat([sources, image], dim=1))
