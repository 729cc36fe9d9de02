"""Multi-modal (collaborative) attention fusion of the branch encodings (ACA-GAN)."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn


class FusionOutput(NamedTuple):
    """mma: the mixed branches concatenated (B, M*C, h, w); fused: F_fus (B, C, h, w)."""

    mma: Tensor
    fused: Tensor


class CollaborativeAttentionFusion(nn.Module):
    """Per-channel attention over the M branch encodings, then a 1x1 fusion conv.

    Each channel c is a token t_c = concat_i(flatten(f_i[:, c])) of length L = M*h*w;
    a = softmax_M(sigmoid(W2 relu(W1 t_c))) (B, C, M); out = sum_i a_i * f_i;
    f_i' = (1 - mix) f_i + mix * out; mma = concat_i f_i' (B, M*C, h, w);
    fused = relu(conv1x1(mma)) (B, C, h, w).
    The token length ties the module to one feature size `feature_size` = image_size / 4.
    """

    def __init__(
        self, *, channels: int, n_sources: int = 3, feature_size: int = 64, reduction: int = 16, mix: float = 0.1
    ) -> None:
        super().__init__()
        self.n_sources = n_sources
        self.feature_size = feature_size
        self.mix = mix
        length = n_sources * feature_size * feature_size
        self.token_mlp = nn.Sequential(
            nn.Linear(length, max(1, length // reduction), bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(max(1, length // reduction), n_sources, bias=False),
            nn.Sigmoid(),
        )
        self.fuse = nn.Sequential(nn.Conv2d(n_sources * channels, channels, kernel_size=1), nn.ReLU(inplace=True))

    def forward(self, branches: tuple[Tensor, ...] | list[Tensor]) -> FusionOutput:
        """M tensors (B, C, h, w) -> FusionOutput(mma (B, M*C, h, w), fused (B, C, h, w))."""
        stacked = torch.stack(tuple(branches), dim=1)  # (B, M, C, h, w)
        b, m, c, h, w = stacked.shape
        tokens = stacked.permute(0, 2, 1, 3, 4).reshape(b, c, m * h * w)  # (B, C, M*h*w)
        weights = torch.softmax(self.token_mlp(tokens), dim=-1)  # (B, C, M)
        weights = weights.permute(0, 2, 1)[:, :, :, None, None]  # (B, M, C, 1, 1)
        out = (weights * stacked).sum(dim=1, keepdim=True)  # (B, 1, C, h, w)
        mixed = (1.0 - self.mix) * stacked + self.mix * out  # (B, M, C, h, w)
        mma = mixed.reshape(b, m * c, h, w)  # (B, M*C, h, w), branch-major channel order
        return FusionOutput(mma=mma, fused=self.fuse(mma))
