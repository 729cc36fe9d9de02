"""A small 2-D U-Net tumour segmenter, independent of the synthesis model (BraSyn's second criterion).

Four normalized real sequences of an axial slice in (channels t1n, t1c, t2w, t2f), logits of the four
BraTS labels out (0 background, 1 NCR, 2 ED, 3 ET). Fully convolutional: any H and W divisible by
`2 ** depth` (training uses crops, inference whole padded slices).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

from brasyn.errors import ConfigError, ContractError


@dataclass(frozen=True)
class SegmenterConfig:
    """Hyperparameters of `SegmenterUNet`; stored in its checkpoint (`model_config`)."""

    in_channels: int = 4
    """Input sequences, in `MODALITIES` order (t1n, t1c, t2w, t2f)."""
    n_classes: int = 4
    """Output labels: 0 background, 1 NCR, 2 ED, 3 ET."""
    base_channels: int = 8
    """Width of the first stage; stage k has base_channels * 2 ** k channels."""
    depth: int = 3
    """Number of 2x down-samplings (inputs need H and W divisible by 2 ** depth)."""

    def __post_init__(self) -> None:
        for name in ("in_channels", "n_classes", "base_channels", "depth"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"segmenter.{name}: expected a positive integer, found {value!r}")

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SegmenterConfig:
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"segmenter: unknown key(s) {', '.join(unknown)}")
        return cls(**data)


def _double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    """(Conv 3x3 -> BatchNorm -> ReLU) twice; keeps H and W."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class SegmenterUNet(nn.Module):
    """Encoder (double conv, max-pool) x depth, bottleneck, decoder (transposed conv, skip concat, double conv)."""

    def __init__(self, *, in_channels: int = 4, n_classes: int = 4, base_channels: int = 8, depth: int = 3) -> None:
        super().__init__()
        widths = [base_channels * 2**k for k in range(depth + 1)]
        self.down = nn.ModuleList()
        previous = in_channels
        for width in widths[:-1]:
            self.down.append(_double_conv(previous, width))
            previous = width
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = _double_conv(widths[-2], widths[-1])
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for k in range(depth - 1, -1, -1):
            self.up.append(nn.ConvTranspose2d(widths[k + 1], widths[k], kernel_size=2, stride=2))
            self.merge.append(_double_conv(2 * widths[k], widths[k]))
        self.head = nn.Conv2d(widths[0], n_classes, kernel_size=1)
        self.multiple = 2**depth

    @classmethod
    def from_config(cls, config: SegmenterConfig) -> SegmenterUNet:
        return cls(
            in_channels=config.in_channels,
            n_classes=config.n_classes,
            base_channels=config.base_channels,
            depth=config.depth,
        )

    def forward(self, x: Tensor) -> Tensor:
        """(B, in_channels, H, W) normalized sequences -> (B, n_classes, H, W) float32 logits."""
        if x.shape[-2] % self.multiple or x.shape[-1] % self.multiple:
            shape = tuple(x.shape[-2:])
            raise ContractError(f"segmenter input H, W must be multiples of {self.multiple}, found {shape}")
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips), strict=True):
            x = merge(torch.cat([up(x), skip], dim=1))  # (B, 2 * C_k, H_k, W_k)
        return self.head(x).float()
