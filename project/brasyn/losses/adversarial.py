"""Vanilla GAN losses on PatchGAN logits (binary cross-entropy with logits, mean over patches)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """0.5 * (BCE(D(x, y), 1) + BCE(D(x, y_hat.detach()), 0)); each BCE is the mean over all patches.

    The caller passes logits of the detached synthetic image; scalar result.
    """
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return 0.5 * (real + fake)


def generator_adversarial_loss(fake_logits: Tensor) -> Tensor:
    """BCE(D(x, y_hat), 1) = mean softplus(-logit): the generator wants its patches called real."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
