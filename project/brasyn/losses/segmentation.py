"""Segmentation loss of the auxiliary decoder."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def segmentation_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Plain cross-entropy: logits (B, K, H, W), labels (B, H, W) integer classes in [0, K) -> mean over pixels.

    Classes: 0 background, 1 NCR, 2 ED, 3 ET (BraTS label 4 must already be mapped to 3).
    """
    return F.cross_entropy(logits, labels.long())
