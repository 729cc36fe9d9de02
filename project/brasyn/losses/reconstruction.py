"""Pixel reconstruction loss: the paper's plain L1, and a variant that weights pixels by their label."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def l1_loss(prediction: Tensor, target: Tensor) -> Tensor:
    """mean |prediction - target| over all elements (the trainer multiplies by lambda_L1 = 100)."""
    return (prediction - target).abs().mean()


def label_weighted_l1_loss(
    prediction: Tensor, target: Tensor, seg: Tensor, label_weights: Sequence[float] | Tensor
) -> Tensor:
    """Weighted mean sum(w |prediction - target|) / sum(w), w = label_weights[seg] per pixel.

    prediction, target (B, 1, H, W); seg (B, H, W) integer labels indexing `label_weights` (BraTS:
    0 healthy or background, 1 NCR, 2 ED, 3 ET). A weighted mean, so equal weights give `l1_loss`
    exactly and lambda_L1 keeps its meaning: the weights move the term's attention between regions
    (e.g. to the small enhancing rim) without changing its overall size. A tensor of weights already
    on the prediction's device and dtype is used as it is (no copy per step).
    """
    table = torch.as_tensor(label_weights, dtype=prediction.dtype, device=prediction.device)
    weight = table[seg.long()].unsqueeze(1).expand_as(prediction)
    return (weight * (prediction - target).abs()).sum() / weight.sum()
