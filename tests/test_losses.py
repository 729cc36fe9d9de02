"""The loss functions against hand-computed values and brute-force references."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from brasyn.losses import (
    contrastive_loss,
    decoder_kl_loss,
    discriminator_loss,
    encoder_mse_loss,
    fusion_mse_loss,
    generator_adversarial_loss,
    l1_loss,
    label_weighted_l1_loss,
    patchnce_loss,
    qs_attention,
    segmentation_loss,
)
from brasyn.losses import patchnce as patchnce_module
from brasyn.models import Generator, ModelConfig, PatchDiscriminator, PatchNCEHeads, SelfRepresentationAutoencoder


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


# --- adversarial, reconstruction, segmentation -------------------------------------------------------


def test_discriminator_loss_by_hand():
    real = torch.tensor([[2.0, 0.0]])
    fake = torch.tensor([[-1.0, 3.0]])
    # BCE(l, 1) = softplus(-l), BCE(l, 0) = softplus(l)
    expected = 0.5 * ((softplus(-2.0) + softplus(0.0)) / 2 + (softplus(-1.0) + softplus(3.0)) / 2)
    assert discriminator_loss(real, fake).item() == pytest.approx(expected, rel=1e-6)
    assert discriminator_loss(torch.zeros(3, 1, 4, 4), torch.zeros(3, 1, 4, 4)).item() == pytest.approx(math.log(2))


def test_generator_adversarial_loss_by_hand():
    fake = torch.tensor([1.0, -2.0])
    assert generator_adversarial_loss(fake).item() == pytest.approx((softplus(-1.0) + softplus(2.0)) / 2, rel=1e-6)


def test_l1_loss_by_hand():
    assert l1_loss(torch.tensor([1.0, -1.0, 0.5, 0.0]), torch.tensor([0.0, 1.0, 0.5, -1.0])).item() == pytest.approx(
        1.0
    )


def test_label_weighted_l1_by_hand():
    prediction = torch.tensor([[[[1.0, 0.0], [0.5, 2.0]]]])  # (1, 1, 2, 2)
    target = torch.tensor([[[[0.0, 0.0], [0.0, 0.0]]]])
    seg = torch.tensor([[[0, 1], [2, 3]]])  # healthy, NCR, ED, ET
    # weights 1, 2, 2, 10: (1*1 + 2*0 + 2*0.5 + 10*2) / (1 + 2 + 2 + 10) = 22 / 15
    loss = label_weighted_l1_loss(prediction, target, seg, (1.0, 2.0, 2.0, 10.0))
    assert loss.item() == pytest.approx(22.0 / 15.0)
    # equal weights (any value) are the plain L1 mean, so lambda_L1 keeps its meaning
    torch.manual_seed(0)
    a, b = torch.randn(2, 1, 5, 5), torch.randn(2, 1, 5, 5)
    labels = torch.randint(0, 4, (2, 5, 5))
    assert label_weighted_l1_loss(a, b, labels, (3.0,) * 4).item() == pytest.approx(l1_loss(a, b).item(), rel=1e-6)


def test_segmentation_loss_is_plain_cross_entropy():
    logits = torch.tensor([[0.0, 1.0, 2.0, 3.0], [1.0, 1.0, 1.0, 1.0]])[:, :, None, None]  # (2, 4, 1, 1)
    labels = torch.tensor([3, 0])[:, None, None]  # (2, 1, 1)
    lse = math.log(sum(math.exp(v) for v in (0.0, 1.0, 2.0, 3.0)))
    expected = ((lse - 3.0) + math.log(4.0)) / 2
    assert segmentation_loss(logits, labels).item() == pytest.approx(expected, rel=1e-6)


# --- self-representation -----------------------------------------------------------------------------


def test_decoder_kl_is_zero_for_identical_features_and_positive_otherwise():
    torch.manual_seed(0)
    feats = [torch.randn(2, 4, 3, 3), torch.randn(2, 2, 6, 6)]
    assert decoder_kl_loss(feats, [f.clone() for f in feats]).abs().item() < 1e-6
    other = [f + torch.randn_like(f) for f in feats]
    assert decoder_kl_loss(feats, other).item() > 1e-3
    # a channel-constant shift leaves the per-pixel channel distribution unchanged
    assert decoder_kl_loss(feats, [f + 5.0 for f in feats]).abs().item() < 1e-5


def test_decoder_kl_matches_kldivloss_mean_summed_over_layers():
    torch.manual_seed(1)
    gen = [torch.randn(2, 4, 3, 3, requires_grad=True), torch.randn(2, 2, 6, 6, requires_grad=True)]
    sr = [torch.randn(2, 4, 3, 3, requires_grad=True), torch.randn(2, 2, 6, 6, requires_grad=True)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = sum(
            torch.nn.KLDivLoss(reduction="mean")(F.log_softmax(g, dim=1), F.softmax(s, dim=1))
            for g, s in zip(gen, sr, strict=True)
        )
    loss = decoder_kl_loss(gen, sr)
    assert loss.item() == pytest.approx(reference.item(), rel=1e-5)
    loss.backward()
    assert all(g.grad is not None for g in gen)
    assert all(s.grad is None for s in sr)  # the SR side is a fixed target


def test_encoder_and_fusion_mse_by_hand():
    sr = torch.zeros(1, 2, 2, 2)
    branches = [torch.full((1, 2, 2, 2), 1.0), torch.full((1, 2, 2, 2), 2.0), torch.full((1, 2, 2, 2), -3.0)]
    assert encoder_mse_loss(sr, branches).item() == pytest.approx(1.0 + 4.0 + 9.0)  # plain sum over branches
    fused = torch.tensor([1.0, -1.0, 3.0, 0.0]).reshape(1, 1, 2, 2)
    assert fusion_mse_loss(torch.zeros_like(fused), fused).item() == pytest.approx((1 + 1 + 9 + 0) / 4)


# --- QS-Attn ------------------------------------------------------------------------------------------


def brute_force_qs(features: np.ndarray, n_queries: int) -> tuple[np.ndarray, np.ndarray]:
    """A = softmax_row(F F^T), entropy per row, lowest-entropy rows first (numpy, float64)."""
    rows, indices = [], []
    for f in features:
        logits = f @ f.T
        a = np.exp(logits - logits.max(axis=1, keepdims=True))
        a /= a.sum(axis=1, keepdims=True)
        entropy = -(a * np.log(a)).sum(axis=1)
        keep = np.argsort(entropy, kind="stable")[:n_queries]
        rows.append(a[keep])
        indices.append(keep)
    return np.stack(rows), np.stack(indices)


@pytest.mark.parametrize("chunk", [1024, 7])
def test_qs_attention_keeps_the_lowest_entropy_rows(monkeypatch, chunk):
    monkeypatch.setattr(patchnce_module, "ENTROPY_CHUNK", chunk)
    rng = np.random.default_rng(0)
    features = rng.normal(0, 1, (2, 30, 4)) * rng.uniform(0.2, 1.5, (2, 30, 1))  # varied row norms
    attn, indices = qs_attention(torch.tensor(features, dtype=torch.float64), 8)
    ref_attn, ref_indices = brute_force_qs(features, 8)
    assert attn.shape == (2, 8, 30) and indices.shape == (2, 8)
    np.testing.assert_array_equal(indices.numpy(), ref_indices)
    np.testing.assert_allclose(attn.numpy(), ref_attn, rtol=1e-10, atol=1e-12)


def test_qs_attention_is_differentiable_and_clamps_to_n():
    features = torch.randn(1, 6, 3, requires_grad=True)
    attn, indices = qs_attention(features, 100)
    assert attn.shape == (1, 6, 6) and sorted(indices[0].tolist()) == list(range(6))
    (attn * torch.randn_like(attn)).sum().backward()
    assert features.grad is not None and features.grad.abs().sum() > 0  # A is not detached


# --- PatchNCE -----------------------------------------------------------------------------------------


def test_patchnce_exact_two_sample_case():
    queries = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    keys = torch.tensor([[[0.6, 0.8], [1.0, 0.0]]])
    # sample 0: logits (0.6, 1.0) / 0.5, positive first  -> log(1 + e^{0.8})
    # sample 1: logits (0.8, 0.0) / 0.5, positive second -> log(1 + e^{1.6})
    expected = (math.log1p(math.exp(0.8)) + math.log1p(math.exp(1.6))) / 2
    assert patchnce_loss(queries, keys, 0.5).item() == pytest.approx(expected, rel=1e-6)


def test_patchnce_unrelated_features_give_log_s():
    torch.manual_seed(0)
    s = 64
    queries = F.normalize(torch.randn(4, s, 4096), dim=-1)
    keys = F.normalize(torch.randn(4, s, 4096), dim=-1)
    assert patchnce_loss(queries, keys, 0.07).item() == pytest.approx(math.log(s), abs=0.15)


def test_patchnce_identical_separated_features_give_zero():
    s = 16
    basis = torch.eye(s, dtype=torch.float64)[None].repeat(2, 1, 1)  # orthonormal: q_i . k_j = [i == j]
    loss = patchnce_loss(basis, basis.clone(), 0.07).item()
    assert loss == pytest.approx(math.log1p((s - 1) * math.exp(-1 / 0.07)), rel=1e-4)
    assert loss < 1e-4


def test_patchnce_negatives_come_from_the_same_image_and_keys_are_detached():
    torch.manual_seed(2)
    queries = F.normalize(torch.randn(2, 5, 8), dim=-1).requires_grad_()
    keys = F.normalize(torch.randn(2, 5, 8), dim=-1).requires_grad_()
    both = patchnce_loss(queries, keys, 0.1)
    each = [patchnce_loss(queries[i : i + 1], keys[i : i + 1], 0.1) for i in range(2)]
    assert both.item() == pytest.approx((each[0].item() + each[1].item()) / 2, rel=1e-6)
    both.backward()
    assert queries.grad is not None and keys.grad is None


def test_contrastive_loss_averages_layers_and_reaches_generator_and_heads():
    torch.manual_seed(3)
    cfg = ModelConfig.tiny()
    heads = PatchNCEHeads.from_config(cfg)
    c = 4 * cfg.base_channels
    src = [torch.randn(2, 3 * c, 4, 4, requires_grad=True), torch.randn(2, c, 4, 4, requires_grad=True)]
    gen = [torch.randn(2, 3 * c, 4, 4, requires_grad=True), torch.randn(2, c, 4, 4, requires_grad=True)]
    both = contrastive_loss(src, gen, heads, 8, 0.07)

    def single(layer: int) -> float:
        return contrastive_loss([src[layer]], [gen[layer]], lambda _, x: heads(layer, x), 8, 0.07).item()

    assert both.item() == pytest.approx((single(0) + single(1)) / 2, rel=1e-6)
    both.backward()
    assert all(t.grad is not None and t.grad.abs().sum() > 0 for t in gen)
    assert all(t.grad is not None and t.grad.abs().sum() > 0 for t in src)  # through A_QS (not detached)
    assert all(p.grad is not None for p in heads.parameters())


def test_one_backward_through_all_losses_gives_finite_gradients():
    torch.manual_seed(4)
    cfg = ModelConfig.tiny()
    generator, heads = Generator.from_config(cfg), PatchNCEHeads.from_config(cfg)
    disc = PatchDiscriminator.from_config(cfg)
    autoencoder = SelfRepresentationAutoencoder.from_config(cfg).eval().requires_grad_(False)
    x, y = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 1, 64, 64) * 2 - 1
    labels = torch.randint(0, 4, (2, 64, 64))
    out = generator(x)
    generated = generator.encode_generated(out.image)
    sr = autoencoder(y)
    f = out.features
    terms = {
        "adv": generator_adversarial_loss(disc(x, out.image)),
        "l1": l1_loss(out.image, y),
        "con": contrastive_loss((f.mma, f.fused), (generated.mma, generated.fused), heads, cfg.nce_queries, 0.07),
        "seg": segmentation_loss(out.seg_logits, labels),
        "dec": decoder_kl_loss((f.up1, f.up2), (sr.up1, sr.up2)),
        "enc": encoder_mse_loss(sr.encoding, f.branches),
        "fus": fusion_mse_loss(sr.encoding, f.fused),
    }
    assert all(torch.isfinite(v) and v.ndim == 0 for v in terms.values())
    total = (
        terms["adv"]
        + 100 * terms["l1"]
        + 0.05 * terms["con"]
        + 0.1 * (terms["seg"] + terms["dec"] + terms["enc"] + terms["fus"])
    )
    total.backward()
    for name, p in list(generator.named_parameters()) + list(heads.named_parameters()):
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert all(p.grad is None for p in autoencoder.parameters())
    d_loss = discriminator_loss(disc(x, y), disc(x, out.image.detach()))
    disc.zero_grad()
    d_loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in disc.parameters())
