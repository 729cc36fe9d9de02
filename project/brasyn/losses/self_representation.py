"""Self-representation losses against the frozen autoencoder of the target modality (AE-GAN, ACA-GAN).

The SR features are a fixed target: they are detached here, so no gradient reaches the autoencoder.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def decoder_kl_loss(gen_feats: Sequence[Tensor], sr_feats: Sequence[Tensor]) -> Tensor:
    """sum_l KLDivLoss(reduction='mean')(log_softmax(G_l, dim=1), softmax(SR_l, dim=1)).

    G_l, SR_l: (B, C_l, H_l, W_l) decoder up-stage features; softmax over channels at each pixel.
    Per layer: mean over B*C*H*W of p * (log p - log q), p = softmax(SR_l), q = softmax(G_l)
    (what `nn.KLDivLoss(reduction='mean')` computes, without its per-call warning). Zero iff the
    channel distributions agree at every pixel.
    """
    if len(gen_feats) != len(sr_feats) or not gen_feats:
        raise ValueError(
            f"decoder_kl_loss: expected matching non-empty layer lists, found {len(gen_feats)} and {len(sr_feats)}"
        )
    total = gen_feats[0].new_zeros(())
    for gen, sr in zip(gen_feats, sr_feats, strict=True):
        log_q = F.log_softmax(gen, dim=1)  # (B, C, H, W)
        p = F.softmax(sr.detach(), dim=1)  # (B, C, H, W)
        total = total + (torch.xlogy(p, p) - p * log_q).mean()
    return total


def encoder_mse_loss(sr_encoding: Tensor, branch_encodings: Sequence[Tensor]) -> Tensor:
    """sum_i MSE(SR.enc(y), branch_i(x_i)): each (B, 4C, h, w), branches after SE and before mixing.

    A plain sum over the branches (the trainer multiplies by lambda_sr = 0.1).
    """
    target = sr_encoding.detach()
    total = target.new_zeros(())
    for encoding in branch_encodings:
        total = total + F.mse_loss(encoding, target)
    return total


def fusion_mse_loss(sr_encoding: Tensor, fused: Tensor) -> Tensor:
    """MSE(SR.enc(y), F_fus): both (B, 4C, h, w)."""
    return F.mse_loss(fused, sr_encoding.detach())
