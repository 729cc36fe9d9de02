"""Multi-modal contrastive loss: PatchNCE (CUT) with queries selected by QS-Attn attention entropy.

For each contrastive layer, F_src = features of the sources and F_gen = features of the generated
image, both (B, N, C) with N = h * w. A = softmax_row(F_src F_src^T); the rows with the lowest entropy
(the most "certain" positions) form A_QS (B, S, N); keys = A_QS F_src, queries = A_QS F_gen.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

ENTROPY_CHUNK = 1024
"""Rows of A computed at once when ranking entropies (bounds memory to B * chunk * N floats)."""


def attention_entropy(features: Tensor) -> Tensor:
    """Row entropies H_i = -sum_j A_ij log A_ij of A = softmax_row(F F^T); features (B, N, C) -> (B, N).

    Computed without gradient, in row chunks (the ranking is not differentiable anyway).
    """
    with torch.no_grad():
        chunks = []
        for start in range(0, features.shape[1], ENTROPY_CHUNK):
            rows = features[:, start : start + ENTROPY_CHUNK]  # (B, n, C)
            attn = torch.softmax(torch.bmm(rows, features.transpose(1, 2)), dim=-1)  # (B, n, N)
            chunks.append(torch.special.entr(attn).sum(dim=-1))  # (B, n)
        return torch.cat(chunks, dim=1)  # (B, N)


def qs_attention(features_src: Tensor, n_queries: int) -> tuple[Tensor, Tensor]:
    """Query-selected attention rows. features_src (B, N, C) -> (attn_qs (B, S, N), indices (B, S)).

    A = softmax_row(F F^T) (no scaling, no projections); keep per image the S = min(n_queries, N) rows
    of lowest entropy, in increasing-entropy order (stable sort: ties keep the lower index).
    attn_qs carries gradient to `features_src` (A is not detached); only the selected rows are
    materialised with gradient, which equals indexing the full softmax since softmax acts per row.
    """
    b, n, _ = features_src.shape
    s = min(n_queries, n)
    entropy = attention_entropy(features_src)  # (B, N)
    indices = torch.sort(entropy, dim=1, stable=True).indices[:, :s]  # (B, S)
    batch = torch.arange(b, device=features_src.device)[:, None]  # (B, 1)
    rows = features_src[batch, indices]  # (B, S, C)
    attn_qs = torch.softmax(torch.bmm(rows, features_src.transpose(1, 2)), dim=-1)  # (B, S, N)
    return attn_qs, indices


def patchnce_loss(queries: Tensor, keys: Tensor, temperature: float) -> Tensor:
    """InfoNCE over patches of the same image. queries, keys: (B, S, D) (unit vectors from the heads).

    logits_ij = q_i . k_j / tau (B, S, S); positive j = i, negatives the other S - 1 samples of the
    same image; loss = mean over (b, i) of CE(logits_i, target i)
      = mean[-q_i.k_i / tau + log sum_j exp(q_i.k_j / tau)].
    Keys are detached here (no gradient through the key branch or its head).
    """
    b, s, _ = queries.shape
    logits = torch.bmm(queries, keys.detach().transpose(1, 2)) / temperature  # (B, S, S)
    target = torch.arange(s, device=queries.device).repeat(b)  # (B*S,)
    return F.cross_entropy(logits.reshape(b * s, s), target)


def flatten_features(features: Tensor) -> Tensor:
    """(B, C, h, w) -> (B, N = h*w, C)."""
    return features.flatten(2).transpose(1, 2)


def contrastive_loss(
    src_layers: Sequence[Tensor],
    gen_layers: Sequence[Tensor],
    heads: Callable[[int, Tensor], Tensor],
    n_queries: int,
    temperature: float,
) -> Tensor:
    """Mean over layers l of patchnce(head_l(A_QS F_gen), head_l(A_QS F_src), tau).

    src_layers[l], gen_layers[l]: (B, C_l, h, w) features of the sources and of the generated image
    (e.g. (mma, fused) from `Generator.encode` / `encode_generated`); heads(l, x (B, S, C_l)) -> (B, S, D)
    is the layer's projection (`PatchNCEHeads`). A_QS is computed from the source features only.
    """
    if len(src_layers) != len(gen_layers) or not src_layers:
        raise ValueError(
            f"contrastive_loss: expected matching non-empty layer lists, found {len(src_layers)} and {len(gen_layers)}"
        )
    total = src_layers[0].new_zeros(())
    for layer, (src, gen) in enumerate(zip(src_layers, gen_layers, strict=True)):
        f_src = flatten_features(src)  # (B, N, C)
        f_gen = flatten_features(gen)  # (B, N, C)
        attn_qs, _ = qs_attention(f_src, n_queries)  # (B, S, N)
        keys = heads(layer, torch.bmm(attn_qs, f_src))  # (B, S, D)
        queries = heads(layer, torch.bmm(attn_qs, f_gen))  # (B, S, D)
        total = total + patchnce_loss(queries, keys, temperature)
    return total / len(src_layers)
