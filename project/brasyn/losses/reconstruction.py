"""Pixel reconstruction loss."""

from __future__ import annotations

from torch import Tensor


def l1_loss(prediction: Tensor, target: Tensor) -> Tensor:
    """mean |prediction - target| over all elements (the trainer multiplies by lambda_L1 = 100)."""
    return (prediction - target).abs().mean()
