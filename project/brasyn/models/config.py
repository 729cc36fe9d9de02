"""Configuration of the PLAVE networks (generator, SR autoencoder, discriminator, projection heads).

Defaults are the paper's (ACA-GAN widths, 256 x 256 padded slices). Every architectural number is a
field here so that a checkpoint's `model_config` rebuilds exactly the network it was trained as.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from brasyn.config import from_dict, to_dict
from brasyn.errors import ConfigError
from brasyn.models.polynomial import MAX_DEGREE


@dataclass(frozen=True)
class ModelConfig:
    """Hyperparameters of every PLAVE network; build them with `<Network>.from_config(cfg)`."""

    base_channels: int = 64
    """Width of the first generator / autoencoder stage (ACA-GAN `ngf`); stages use 1x, 2x and 4x this."""

    image_size: int = 256
    """Side of the square (padded) slice the model is built for; fixes the fusion token length."""

    n_sources: int = 3
    """Number of source modalities, i.e. encoder branches (one per available sequence)."""

    se_reduction: int = 16
    """Channel reduction ratio of the single-modal squeeze-excitation attention."""

    fusion_reduction: int = 16
    """Reduction ratio of the collaborative-attention token MLP: Linear(L -> L / ratio),
    L = n_sources * (image_size / 4) ** 2."""

    fusion_mix: float = 0.1
    """Weight of the attention output when mixed back into each branch: f' = (1 - mix) * f + mix * out."""

    n_resnet_blocks: int = 6
    """ResNet blocks of the image decoder (and of the SR autoencoder's bottleneck)."""

    seg_resnet_blocks: int = 3
    """ResNet blocks of the segmentation decoder."""

    n_seg_classes: int = 4
    """Segmentation classes: background, necrotic core (NCR), oedema (ED), enhancing tumour (ET)."""

    use_dropout: bool = True
    """Dropout inside the ResNet blocks (active in train mode only)."""

    dropout: float = 0.5
    """Dropout probability inside the ResNet blocks when `use_dropout` is set."""

    use_seg_decoder: bool = True
    """Build the segmentation decoder beside the image decoder."""

    prior_degree: int = 0
    """Degree of a per-voxel polynomial prior (`brasyn.models.polynomial`) that the generator adds its
    decoder's output to: 0, none (the paper's model); 1..3, image = clamp(prior(sources) + decoder
    output, -1, 1), the decoder learning a residual on the polynomial baseline's prediction. The
    prior's coefficients are fitted by least squares on the training cases before stage 2 and frozen."""

    composite_background: bool = False
    """Compose the generated image with the background: -1 wherever every source is background, the
    network's output inside the sources' brain. Inference writes that anyway (`Predictor.restore`
    zeroes the outside of the brain), so the switch changes training only: no loss asks the network
    to draw the step from the brain's edge down to the background. False: the paper's model."""

    disc_base_channels: int = 64
    """Width of the first PatchGAN discriminator layer (`ndf`)."""

    disc_n_layers: int = 3
    """Strided layers of the PatchGAN discriminator (3 gives the 70 x 70 receptive field)."""

    nce_channels: int = 256
    """Output width of the PatchNCE projection heads."""

    nce_queries: int = 256
    """Query patches per image kept by QS-Attn (the lowest-entropy attention rows)."""

    nce_temperature: float = 0.07
    """Temperature tau of the PatchNCE logits."""

    init_gain: float = 0.02
    """Standard deviation of the N(0, gain) weight initialisation (BatchNorm weights: N(1, gain))."""

    def __post_init__(self) -> None:
        positive = {
            "base_channels": self.base_channels,
            "image_size": self.image_size,
            "n_sources": self.n_sources,
            "se_reduction": self.se_reduction,
            "fusion_reduction": self.fusion_reduction,
            "n_seg_classes": self.n_seg_classes,
            "disc_base_channels": self.disc_base_channels,
            "disc_n_layers": self.disc_n_layers,
            "nce_channels": self.nce_channels,
            "nce_queries": self.nce_queries,
        }
        for name, value in positive.items():
            if value < 1:
                raise ConfigError(f"model.{name}: expected a positive integer, found {value}")
        for name, value in {
            "n_resnet_blocks": self.n_resnet_blocks,
            "seg_resnet_blocks": self.seg_resnet_blocks,
        }.items():
            if value < 0:
                raise ConfigError(f"model.{name}: expected >= 0, found {value}")
        if self.image_size % 4:
            raise ConfigError(f"model.image_size: expected a multiple of 4, found {self.image_size}")
        if 2 * self.base_channels < self.se_reduction:
            raise ConfigError(
                f"model.se_reduction: {self.se_reduction} exceeds the narrowest SE width {2 * self.base_channels}"
            )
        if self.fusion_tokens_length < self.fusion_reduction:
            raise ConfigError(
                f"model.fusion_reduction: {self.fusion_reduction} exceeds the fusion token length"
                f" {self.fusion_tokens_length}"
            )
        if not 0 <= self.prior_degree <= MAX_DEGREE:
            raise ConfigError(f"model.prior_degree: expected 0 (none) .. {MAX_DEGREE}, found {self.prior_degree}")
        if not 0.0 <= self.fusion_mix <= 1.0:
            raise ConfigError(f"model.fusion_mix: expected a value in [0, 1], found {self.fusion_mix}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout: expected a value in [0, 1), found {self.dropout}")
        if self.nce_temperature <= 0:
            raise ConfigError(f"model.nce_temperature: expected > 0, found {self.nce_temperature}")
        if self.init_gain <= 0:
            raise ConfigError(f"model.init_gain: expected > 0, found {self.init_gain}")

    @property
    def feature_size(self) -> int:
        """Side of the encoder feature maps (image_size / 4)."""
        return self.image_size // 4

    @property
    def fusion_tokens_length(self) -> int:
        """Length of one collaborative-attention token: n_sources * feature_size ** 2."""
        return self.n_sources * self.feature_size**2

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ModelConfig:
        """Strict loading: unknown keys are a `ConfigError` naming the key."""
        return from_dict(cls, data)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for YAML files and checkpoints)."""
        return to_dict(self)

    @classmethod
    def tiny(cls, **overrides: Any) -> ModelConfig:
        """A ~84 k-parameter generator configuration at 64 x 64 for tests and smoke runs (`overrides`
        replace fields)."""
        values: dict[str, Any] = dict(
            base_channels=8,
            image_size=64,
            n_resnet_blocks=1,
            seg_resnet_blocks=1,
            fusion_reduction=64,
            nce_channels=32,
            nce_queries=16,
            disc_base_channels=8,
            se_reduction=4,
        )
        values.update(overrides)
        return cls(**values)
