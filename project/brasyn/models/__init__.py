"""PLAVE networks: generator (ACA-GAN branches + collaborative attention), SR autoencoder,
conditional PatchGAN discriminator and PatchNCE projection heads."""

from brasyn.models.autoencoder import AutoencoderOutput, SelfRepresentationAutoencoder
from brasyn.models.config import ModelConfig
from brasyn.models.discriminator import PatchDiscriminator
from brasyn.models.generator import EncoderFeatures, Generator, GeneratorFeatures, GeneratorOutput
from brasyn.models.init import init_weights
from brasyn.models.projection import NCE_LAYERS, PatchNCEHeads

__all__ = [
    "NCE_LAYERS",
    "AutoencoderOutput",
    "EncoderFeatures",
    "Generator",
    "GeneratorFeatures",
    "GeneratorOutput",
    "ModelConfig",
    "PatchDiscriminator",
    "PatchNCEHeads",
    "SelfRepresentationAutoencoder",
    "init_weights",
]
