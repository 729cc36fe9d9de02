"""Weight initialisation (pix2pix / ACA-GAN 'normal' init)."""

from __future__ import annotations

from torch import nn


def init_weights(module: nn.Module, gain: float = 0.02) -> nn.Module:
    """Conv / ConvTranspose / Linear weights ~ N(0, gain); BatchNorm weights ~ N(1, gain); biases 0.

    Applied in place to every sub-module; returns `module` for chaining.
    """

    def apply(m: nn.Module) -> None:
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            if m.weight is not None:
                nn.init.normal_(m.weight, 1.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    module.apply(apply)
    return module
