"""The PLAVE generator: three source branches, collaborative attention fusion, image + segmentation decoders."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from brasyn.data.normalization import BACKGROUND
from brasyn.errors import ContractError
from brasyn.models.blocks import frozen_batchnorm_statistics
from brasyn.models.config import ModelConfig
from brasyn.models.decoders import ImageDecoder, SegmentationDecoder
from brasyn.models.encoder import EncoderBranch
from brasyn.models.fusion import CollaborativeAttentionFusion
from brasyn.models.init import init_weights
from brasyn.models.polynomial import PolynomialMap, source_background


class EncoderFeatures(NamedTuple):
    """Encoder-side features, C = base_channels, h = w = image_size / 4.

    branches: n_sources tensors (B, 4C, h, w), each branch after SE and before the attention mixing;
    mma: the MMA output (B, n_sources*4C, h, w); fused: F_fus (B, 4C, h, w).
    """

    branches: tuple[Tensor, ...]
    mma: Tensor
    fused: Tensor


class GeneratorFeatures(NamedTuple):
    """All intermediate features the losses use: the encoder side plus the image decoder's up-stages.

    up1: (B, 2C, H/2, W/2); up2: (B, C, H, W).
    """

    branches: tuple[Tensor, ...]
    mma: Tensor
    fused: Tensor
    up1: Tensor
    up2: Tensor


class GeneratorOutput(NamedTuple):
    """image (B, 1, H, W) in [-1, 1] (tanh); seg_logits (B, K, H, W) or None; features (the
    intermediate maps the training losses read), None for models without them (the baseline)."""

    image: Tensor
    seg_logits: Tensor | None
    features: GeneratorFeatures | None


class Generator(nn.Module):
    """Maps the normalized source slices (B, n_sources, H, W) to the missing modality (B, 1, H, W);
    with `config.prior_degree`, as a residual on a fitted per-voxel polynomial of the sources.

    H = W = config.image_size (the fusion token length depends on it). Channel i of the input goes to
    branch i; branches do not share weights.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        c = config.base_channels
        dropout = config.dropout if config.use_dropout else 0.0
        self.branches = nn.ModuleList(
            EncoderBranch(in_channels=1, base_channels=c, se_reduction=config.se_reduction)
            for _ in range(config.n_sources)
        )
        self.fusion = CollaborativeAttentionFusion(
            channels=4 * c,
            n_sources=config.n_sources,
            feature_size=config.feature_size,
            reduction=config.fusion_reduction,
            mix=config.fusion_mix,
        )
        self.decoder = ImageDecoder(base_channels=c, n_blocks=config.n_resnet_blocks, dropout=dropout)
        self.seg_decoder: SegmentationDecoder | None = (
            SegmentationDecoder(
                base_channels=c, n_blocks=config.seg_resnet_blocks, dropout=dropout, n_classes=config.n_seg_classes
            )
            if config.use_seg_decoder
            else None
        )
        # the per-voxel polynomial the image is a residual on (`prior_degree`); fitted, never trained
        self.prior: PolynomialMap | None = PolynomialMap(config.prior_degree) if config.prior_degree else None

    @classmethod
    def from_config(cls, config: ModelConfig) -> Generator:
        """The one way to build a generator: architecture from `config`, weights N(0, init_gain)."""
        return init_weights(cls(config), config.init_gain)

    def _check(self, x: Tensor, channels: int, name: str) -> None:
        size = self.config.image_size
        if x.ndim != 4 or x.shape[1] != channels or x.shape[2] != size or x.shape[3] != size:
            raise ContractError(f"generator {name}: expected (B, {channels}, {size}, {size}), found {tuple(x.shape)}")

    def _fuse(self, branches: tuple[Tensor, ...]) -> EncoderFeatures:
        mma, fused = self.fusion(branches)
        return EncoderFeatures(branches=branches, mma=mma, fused=fused)

    def encode(self, images: Tensor) -> EncoderFeatures:
        """Sources (B, n_sources, H, W) -> EncoderFeatures; channel i feeds branch i."""
        self._check(images, self.config.n_sources, "sources")
        branches = tuple(branch(images[:, i : i + 1]) for i, branch in enumerate(self.branches))  # (B, 4C, h, w) each
        return self._fuse(branches)

    def encode_generated(self, image: Tensor) -> EncoderFeatures:
        """One image (B, 1, H, W) fed into every source branch, then fused: the features of y-hat that the
        contrastive loss compares with those of the sources.

        The branches' BatchNorm running statistics are not updated by this pass: eval-mode inference
        feeds them real sources only, so their statistics must come from real sources only."""
        self._check(image, 1, "image")
        with frozen_batchnorm_statistics(self.branches):
            branches = tuple(branch(image) for branch in self.branches)  # (B, 4C, h, w) each
        return self._fuse(branches)

    def forward(self, sources: Tensor, *, with_segmentation: bool = True) -> GeneratorOutput:
        """Sources (B, n_sources, H, W) in [-1, 1] -> GeneratorOutput.

        seg_logits is None when `with_segmentation` is False or the model has no segmentation decoder.
        """
        encoded = self.encode(sources)
        decoded = self.decoder(encoded.fused)
        seg_logits = self.seg_decoder(encoded.fused) if (with_segmentation and self.seg_decoder is not None) else None
        image = decoded.image if self.prior is None else (self.prior(sources) + decoded.image).clamp(-1.0, 1.0)
        if self.config.composite_background:
            image = torch.where(source_background(sources), torch.full_like(image, BACKGROUND), image)
        features = GeneratorFeatures(
            branches=encoded.branches, mma=encoded.mma, fused=encoded.fused, up1=decoded.up1, up2=decoded.up2
        )
        return GeneratorOutput(image=image, seg_logits=seg_logits, features=features)
