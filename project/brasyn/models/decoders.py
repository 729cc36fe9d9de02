"""Decoders from F_fus: the image decoder (exposing its up-stage features) and the segmentation decoder."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from brasyn.models.blocks import ResnetBlock, output_conv, up_stage


class DecoderOutput(NamedTuple):
    """image (B, 1, H, W) in [-1, 1]; up1 (B, 2C, H/2, W/2) and up2 (B, C, H, W): up-stage outputs."""

    image: Tensor
    up1: Tensor
    up2: Tensor


class ImageDecoder(nn.Module):
    """(B, 4C, H/4, W/4) -> n ResNet blocks -> up-stage 1 -> up-stage 2 -> 7x7 conv -> tanh."""

    def __init__(self, *, base_channels: int = 64, n_blocks: int = 6, dropout: float = 0.5, out_channels: int = 1):
        super().__init__()
        c = base_channels
        self.blocks = nn.Sequential(*[ResnetBlock(4 * c, dropout=dropout) for _ in range(n_blocks)])
        self.up1 = up_stage(4 * c, 2 * c)
        self.up2 = up_stage(2 * c, c)
        self.head = output_conv(c, out_channels)

    def forward(self, x: Tensor) -> DecoderOutput:
        """(B, 4C, h, w) -> DecoderOutput(image (B, 1, 4h, 4w), up1 (B, 2C, 2h, 2w), up2 (B, C, 4h, 4w))."""
        up1 = self.up1(self.blocks(x))  # (B, 2C, 2h, 2w)
        up2 = self.up2(up1)  # (B, C, 4h, 4w)
        return DecoderOutput(image=torch.tanh(self.head(up2)), up1=up1, up2=up2)


class SegmentationDecoder(nn.Module):
    """(B, 4C, H/4, W/4) -> n ResNet blocks -> two up-stages -> 7x7 conv -> class logits (B, K, H, W)."""

    def __init__(self, *, base_channels: int = 64, n_blocks: int = 3, dropout: float = 0.5, n_classes: int = 4):
        super().__init__()
        c = base_channels
        self.blocks = nn.Sequential(*[ResnetBlock(4 * c, dropout=dropout) for _ in range(n_blocks)])
        self.up1 = up_stage(4 * c, 2 * c)
        self.up2 = up_stage(2 * c, c)
        self.head = output_conv(c, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        """(B, 4C, h, w) -> logits (B, K, 4h, 4w)."""
        return self.head(self.up2(self.up1(self.blocks(x))))
