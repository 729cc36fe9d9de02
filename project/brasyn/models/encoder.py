"""One encoder branch per source modality (ACA-GAN): ResNet stem + two strided stages with SE attention."""

from __future__ import annotations

from torch import Tensor, nn

from brasyn.models.blocks import SqueezeExcitation, conv_norm_relu


class EncoderBranch(nn.Module):
    """(B, in_channels, H, W) -> (B, 4C, H/4, W/4), C = base_channels.

    reflect-pad 3 + conv 7x7 -> C, BN, ReLU; conv 3x3 s2 -> 2C, BN, ReLU, [SE];
    conv 3x3 s2 -> 4C, BN, ReLU, [SE]. `use_attention=False` drops the SE modules (SR autoencoder).
    """

    def __init__(
        self, *, in_channels: int = 1, base_channels: int = 64, se_reduction: int = 16, use_attention: bool = True
    ) -> None:
        super().__init__()
        c = base_channels
        self.stem = conv_norm_relu(in_channels, c, kernel_size=7)
        self.down1 = conv_norm_relu(c, 2 * c, kernel_size=3, stride=2)
        self.attention1: nn.Module = (
            SqueezeExcitation(2 * c, reduction=se_reduction) if use_attention else nn.Identity()
        )
        self.down2 = conv_norm_relu(2 * c, 4 * c, kernel_size=3, stride=2)
        self.attention2: nn.Module = (
            SqueezeExcitation(4 * c, reduction=se_reduction) if use_attention else nn.Identity()
        )

    def forward(self, x: Tensor) -> Tensor:
        """(B, in_channels, H, W) -> (B, 4C, H/4, W/4)."""
        x = self.stem(x)  # (B, C, H, W)
        x = self.attention1(self.down1(x))  # (B, 2C, H/2, W/2)
        return self.attention2(self.down2(x))  # (B, 4C, H/4, W/4)
