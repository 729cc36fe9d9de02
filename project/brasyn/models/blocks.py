"""Building blocks shared by the generator, the SR autoencoder and the decoders."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor, nn


def conv_norm_relu(in_channels: int, out_channels: int, *, kernel_size: int, stride: int = 1) -> nn.Sequential:
    """Conv (no bias, BN follows) -> BatchNorm -> ReLU. A 7x7 kernel uses reflect padding 3 (ResNet stem),
    other kernels zero padding kernel_size // 2. Stride 2 halves H and W."""
    if kernel_size == 7:
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, out_channels, kernel_size=7, stride=stride, bias=False),
        ]
    else:
        layers = [
            nn.Conv2d(
                in_channels, out_channels, kernel_size=kernel_size, stride=stride, padding=kernel_size // 2, bias=False
            )
        ]
    layers += [nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


def up_stage(in_channels: int, out_channels: int) -> nn.Sequential:
    """ConvTranspose 3x3 stride 2 (no bias) -> BatchNorm -> ReLU: (B, C_in, H, W) -> (B, C_out, 2H, 2W)."""
    return nn.Sequential(
        nn.ConvTranspose2d(in_channels, out_channels, kernel_size=3, stride=2, padding=1, output_padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class OutputConv(nn.Sequential):
    """Reflect-pad 3 + conv 7x7 (with bias), no activation: the last layer of a decoder.

    Always float32, also under bf16/fp16 autocast: the output is the synthesized intensity (or the
    class logits), and a bf16 result keeps only 8 significant bits (~900 distinct levels in [-1, 1]).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(nn.ReflectionPad2d(3), nn.Conv2d(in_channels, out_channels, kernel_size=7))

    def forward(self, x: Tensor) -> Tensor:
        """(B, C_in, H, W) any float dtype -> (B, C_out, H, W) float32."""
        with torch.autocast(device_type=x.device.type, enabled=False):
            return super().forward(x.float())


def output_conv(in_channels: int, out_channels: int) -> OutputConv:
    return OutputConv(in_channels, out_channels)


@contextlib.contextmanager
def frozen_batchnorm_statistics(module: nn.Module) -> Iterator[None]:
    """Inside: the BatchNorm layers of `module` still normalize with the batch's statistics (train
    mode) but do not update their running statistics (nor `num_batches_tracked`).

    For forward passes on inputs that eval-mode inference never sees, e.g. the generated image fed
    through the source branches for the contrastive loss.
    """
    layers = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    for layer in layers:
        layer.track_running_stats = False
    try:
        yield
    finally:
        for layer in layers:
            layer.track_running_stats = True


class ResnetBlock(nn.Module):
    """x + [reflect-pad, conv 3x3, BN, ReLU, (dropout), reflect-pad, conv 3x3, BN](x); shape preserved."""

    def __init__(self, channels: int, *, dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, kernel_size=3, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
        ]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, kernel_size=3, bias=False),
            nn.BatchNorm2d(channels),
        ]
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        return x + self.body(x)


class SqueezeExcitation(nn.Module):
    """Single-modal channel attention: w = sigmoid(W2 relu(W1 avgpool(x))); output x + x * w."""

    def __init__(self, channels: int, *, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc = nn.Sequential(
            nn.Linear(channels, hidden, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, channels, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        weights = self.fc(x.mean(dim=(2, 3)))  # (B, C)
        return x + x * weights[:, :, None, None]  # (B, C, H, W)
