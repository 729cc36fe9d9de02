"""Self-representation (SR) autoencoder of the target modality (AE-GAN / ACA-GAN stage 1)."""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor, nn

from brasyn.models.config import ModelConfig
from brasyn.models.decoders import ImageDecoder
from brasyn.models.encoder import EncoderBranch
from brasyn.models.init import init_weights


class AutoencoderOutput(NamedTuple):
    """image (B, 1, H, W) tanh; encoding (B, 4C, H/4, W/4) (SR.enc_2); up1 (B, 2C, H/2, W/2); up2 (B, C, H, W)."""

    image: Tensor
    encoding: Tensor
    up1: Tensor
    up2: Tensor


class SelfRepresentationAutoencoder(nn.Module):
    """One branch without attention, the image decoder's layer pattern: trained as an identity map on the
    target modality, then frozen (eval mode) and used for the SR losses. Works at any H, W divisible by 4."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        c = config.base_channels
        self.encoder = EncoderBranch(in_channels=1, base_channels=c, use_attention=False)
        self.decoder = ImageDecoder(
            base_channels=c, n_blocks=config.n_resnet_blocks, dropout=config.dropout if config.use_dropout else 0.0
        )

    @classmethod
    def from_config(cls, config: ModelConfig) -> SelfRepresentationAutoencoder:
        """Architecture from `config`, weights N(0, init_gain)."""
        return init_weights(cls(config), config.init_gain)

    def forward(self, image: Tensor) -> AutoencoderOutput:
        """(B, 1, H, W) -> AutoencoderOutput."""
        encoding = self.encoder(image)  # (B, 4C, H/4, W/4)
        decoded = self.decoder(encoding)
        return AutoencoderOutput(image=decoded.image, encoding=encoding, up1=decoded.up1, up2=decoded.up2)
