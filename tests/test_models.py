"""Contract tests of the PLAVE networks: parameter counts from the spec, shapes, determinism, save/load."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from brasyn.config import to_dict
from brasyn.errors import ConfigError, ContractError, InputError
from brasyn.models import (
    NCE_LAYERS,
    Generator,
    GeneratorOutput,
    ModelConfig,
    PatchDiscriminator,
    PatchNCEHeads,
    SelfRepresentationAutoencoder,
    init_weights,
)
from brasyn.models.blocks import SqueezeExcitation
from brasyn.models.fusion import CollaborativeAttentionFusion


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def expected_generator_params(cfg: ModelConfig) -> int:
    """Parameter count written out from the specification, layer by layer."""
    c, m = cfg.base_channels, cfg.n_sources

    def se(ch: int) -> int:
        return 2 * ch * (ch // cfg.se_reduction)

    def resblock(ch: int) -> int:
        return 2 * (ch * ch * 9 + 2 * ch)

    branch = (1 * c * 49 + 2 * c) + (c * 2 * c * 9 + 4 * c) + se(2 * c) + (2 * c * 4 * c * 9 + 8 * c) + se(4 * c)
    length = m * (cfg.image_size // 4) ** 2
    hidden = length // cfg.fusion_reduction
    fusion = length * hidden + hidden * m + (m * 4 * c * 4 * c + 4 * c)
    ups = (4 * c * 2 * c * 9 + 4 * c) + (2 * c * c * 9 + 2 * c)
    decoder = cfg.n_resnet_blocks * resblock(4 * c) + ups + (c * 49 + 1)
    seg = cfg.seg_resnet_blocks * resblock(4 * c) + ups + (c * cfg.n_seg_classes * 49 + cfg.n_seg_classes)
    return m * branch + fusion + decoder + (seg if cfg.use_seg_decoder else 0)


@pytest.fixture(scope="module")
def tiny() -> ModelConfig:
    return ModelConfig.tiny()


def test_paper_generator_has_about_18m_parameters_of_which_fusion_holds_9_4m():
    cfg = ModelConfig(use_seg_decoder=False)
    generator = Generator.from_config(cfg)
    count = n_params(generator)
    assert count == expected_generator_params(cfg)
    assert 17_500_000 < count < 19_000_000  # the spec's "~18 M" (ACA-GAN generator without seg decoder)
    assert n_params(generator.fusion.token_mlp[0]) == 12288 * 768 == 9_437_184
    with_decoder = Generator.from_config(ModelConfig())
    assert n_params(with_decoder) == expected_generator_params(ModelConfig())
    assert 21_000_000 < n_params(with_decoder) < 23_000_000  # + 3 ResNet blocks and two up-stages


def test_fusion_reduction_shrinks_the_model_for_demo_configs():
    small = ModelConfig(base_channels=16, fusion_reduction=256, use_seg_decoder=False)
    generator = Generator(small)
    assert n_params(generator.fusion.token_mlp[0]) == 12288 * 48  # 0.6 M
    assert n_params(generator) == expected_generator_params(small)


def test_tiny_generator_counts_and_output_shapes(tiny):
    generator = Generator.from_config(tiny)
    assert n_params(generator) == expected_generator_params(tiny)
    out = generator(torch.randn(2, 3, 64, 64))
    assert isinstance(out, GeneratorOutput)
    c = tiny.base_channels
    assert out.image.shape == (2, 1, 64, 64)
    assert out.image.abs().max() <= 1.0
    assert out.seg_logits is not None and out.seg_logits.shape == (2, 4, 64, 64)
    f = out.features
    assert len(f.branches) == 3 and all(b.shape == (2, 4 * c, 16, 16) for b in f.branches)
    assert f.mma.shape == (2, 12 * c, 16, 16)
    assert f.fused.shape == (2, 4 * c, 16, 16)
    assert f.up1.shape == (2, 2 * c, 32, 32)
    assert f.up2.shape == (2, c, 64, 64)
    assert (f.fused >= 0).all()  # conv 1x1 + ReLU


def test_seg_logits_absent_when_not_asked_or_not_built(tiny):
    generator = Generator.from_config(tiny).eval()
    x = torch.randn(1, 3, 64, 64)
    assert generator(x, with_segmentation=False).seg_logits is None
    no_seg = Generator.from_config(ModelConfig.tiny(use_seg_decoder=False)).eval()
    assert no_seg.seg_decoder is None
    assert no_seg(x).seg_logits is None


def test_encode_generated_feeds_the_image_to_every_branch(tiny):
    generator = Generator.from_config(tiny).eval()
    image = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        generated = generator.encode_generated(image)
        repeated = generator.encode(image.repeat(1, 3, 1, 1))
    for a, b in zip(generated, repeated, strict=True):
        if isinstance(a, tuple):
            assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
        else:
            assert torch.equal(a, b)
    # the branches differ in weights, so their encodings of the same image differ
    assert not torch.allclose(generated.branches[0], generated.branches[1])


def _bn_statistics(module: nn.Module) -> list[torch.Tensor]:
    return [
        buffer.clone()
        for layer in module.modules()
        if isinstance(layer, nn.BatchNorm2d)
        for buffer in (layer.running_mean, layer.running_var, layer.num_batches_tracked)
    ]


def test_encode_generated_leaves_the_branches_running_statistics_to_real_sources(tiny):
    generator = Generator.from_config(tiny).train()
    before = _bn_statistics(generator.branches)
    generated_image = torch.randn(2, 1, 64, 64) * 3 + 2  # statistics unlike any real source
    features = generator.encode_generated(generated_image)
    after = _bn_statistics(generator.branches)
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    # ... while still normalizing with the batch's own statistics (train-mode BN) and keeping the gradient
    features.fused.sum().backward()
    assert generator.branches[0].stem[1].weight.grad is not None
    assert all(layer.track_running_stats for layer in generator.modules() if isinstance(layer, nn.BatchNorm2d))
    # the real-source pass does update them
    generator.encode(torch.randn(2, 3, 64, 64))
    assert not all(torch.equal(a, b) for a, b in zip(before, _bn_statistics(generator.branches), strict=True))


def test_output_layers_run_in_float32_under_bf16_autocast(tiny):
    generator = Generator.from_config(tiny).eval()
    seen = {}
    generator.decoder.head.register_forward_hook(lambda m, inputs, output: seen.update(x=inputs[0], y=output))
    with torch.no_grad(), torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        out = generator(torch.randn(2, 3, 64, 64))
    assert out.image.dtype == torch.float32 and out.seg_logits.dtype == torch.float32
    conv = generator.decoder.head[1]
    padded = torch.nn.functional.pad(seen["x"].double(), (3, 3, 3, 3), mode="reflect")
    exact = torch.nn.functional.conv2d(padded, conv.weight.double(), conv.bias.double())
    # a bf16 convolution is off by ~1e-2; the float32 one agrees with float64 to ~1e-6
    assert torch.allclose(seen["y"].double(), exact, atol=1e-5)
    assert torch.allclose(out.image.double(), torch.tanh(exact), atol=1e-5)


def test_eval_is_deterministic_and_train_mode_uses_dropout(tiny):
    torch.manual_seed(0)
    generator = Generator.from_config(tiny).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        first, second = generator(x), generator(x)
        assert torch.equal(first.image, second.image)
        assert torch.equal(first.seg_logits, second.seg_logits)
        generator.train()
        a, b = generator(x).image, generator(x).image
    assert not torch.equal(a, b)


def test_state_dict_round_trip_gives_identical_output(tiny, tmp_path):
    torch.manual_seed(1)
    original = Generator.from_config(tiny).eval()
    path = tmp_path / "g.pt"
    torch.save({"model_config": tiny.to_dict(), "state_dict": original.state_dict()}, path)
    torch.manual_seed(2)
    payload = torch.load(path, weights_only=True)
    restored = Generator.from_config(ModelConfig.from_dict(payload["model_config"]))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert not torch.equal(original(x).image, restored.eval()(x).image)
        restored.load_state_dict(payload["state_dict"])
        assert torch.equal(original(x).image, restored(x).image)
        assert torch.equal(original(x).seg_logits, restored(x).seg_logits)


def test_wrong_input_size_is_a_contract_error_not_a_cases_input_error(tiny):
    generator = Generator.from_config(tiny)
    with pytest.raises(ContractError) as info:
        generator(torch.randn(1, 3, 60, 60))
    assert not isinstance(info.value, InputError)  # the caller's bug: never counted as a case's own input
    assert "(B, 3, 64, 64)" in str(info.value) and "(1, 3, 60, 60)" in str(info.value)
    with pytest.raises(ContractError):
        generator.encode_generated(torch.randn(1, 3, 64, 64))


def test_config_round_trip_is_strict_and_validated():
    cfg = ModelConfig.tiny()
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    assert to_dict(ModelConfig())["fusion_reduction"] == 16
    with pytest.raises(ConfigError) as info:
        ModelConfig.from_dict({"base_channel": 8})
    assert "base_channel" in str(info.value)
    with pytest.raises(ConfigError):
        ModelConfig.from_dict({"image_size": 250})
    with pytest.raises(ConfigError):
        ModelConfig(fusion_mix=1.5)
    with pytest.raises(ConfigError):
        ModelConfig(nce_temperature=0.0)


def test_squeeze_excitation_is_residual_channel_gating():
    se = SqueezeExcitation(8, reduction=4)
    nn.init.zeros_(se.fc[2].weight)  # w = sigmoid(0) = 0.5 for every channel
    x = torch.randn(2, 8, 5, 5)
    assert torch.allclose(se(x), 1.5 * x)


def test_fusion_of_identical_branches_keeps_them_and_weights_sum_to_one():
    fusion = init_weights(CollaborativeAttentionFusion(channels=4, n_sources=3, feature_size=4, reduction=4, mix=0.1))
    f = torch.randn(2, 4, 4, 4)
    mma, _ = fusion((f, f, f))
    assert torch.allclose(mma, f.repeat(1, 3, 1, 1), atol=1e-6)  # 0.9 f + 0.1 * (sum_i a_i) f = f
    # distinct branches: mixed = 0.9 f_i + 0.1 * out with out a convex combination of the branches
    g, h = torch.randn_like(f), torch.randn_like(f)
    mma, fused = fusion((f, g, h))
    out = (mma[:, :4] - 0.9 * f) / 0.1
    assert torch.allclose((mma[:, 4:8] - 0.9 * g) / 0.1, out, atol=1e-5)
    lo, hi = torch.minimum(torch.minimum(f, g), h), torch.maximum(torch.maximum(f, g), h)
    assert (out >= lo - 1e-4).all() and (out <= hi + 1e-4).all()
    assert fused.shape == (2, 4, 4, 4)


def test_init_weights_follows_pix2pix_normal_init(tiny):
    torch.manual_seed(0)
    generator = Generator.from_config(ModelConfig.tiny(base_channels=16))
    bn = torch.cat([m.weight for m in generator.modules() if isinstance(m, nn.BatchNorm2d)]).detach()
    assert abs(bn.mean().item() - 1.0) < 0.01 and 0.015 < bn.std().item() < 0.025
    convs = torch.cat([m.weight.flatten() for m in generator.modules() if isinstance(m, nn.Conv2d)]).detach()
    assert abs(convs.mean().item()) < 0.002 and 0.019 < convs.std().item() < 0.021
    biases = [m.bias for m in generator.modules() if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None]
    assert biases and all(torch.count_nonzero(b) == 0 for b in biases)


def test_autoencoder_shapes(tiny):
    ae = SelfRepresentationAutoencoder.from_config(tiny).eval()
    out = ae(torch.randn(2, 1, 64, 64))
    c = tiny.base_channels
    assert out.image.shape == (2, 1, 64, 64)
    assert out.encoding.shape == (2, 4 * c, 16, 16)
    assert out.up1.shape == (2, 2 * c, 32, 32) and out.up2.shape == (2, c, 64, 64)
    assert not any(isinstance(m, SqueezeExcitation) for m in ae.modules())


def test_discriminator_is_a_70x70_patchgan():
    cfg = ModelConfig.tiny()
    disc = PatchDiscriminator.from_config(cfg).eval()
    assert disc(torch.randn(1, 3, 256, 256), torch.randn(1, 1, 256, 256)).shape == (1, 1, 30, 30)
    x = torch.randn(1, 3, 128, 128, requires_grad=True)
    y = torch.randn(1, 1, 128, 128, requires_grad=True)
    logits = disc(x, y)
    logits[0, 0, 7, 7].backward()
    rows = torch.nonzero(y.grad[0, 0].abs().sum(dim=1)).flatten()
    assert rows.max() - rows.min() + 1 == 70  # receptive field of one output patch
    assert x.grad.abs().sum() > 0  # conditioned on the sources


def test_projection_heads_are_built_eagerly_and_normalize(tiny):
    heads = PatchNCEHeads.from_config(tiny)
    assert heads.names == NCE_LAYERS == ("mma", "fused")
    assert n_params(heads) > 0
    c = tiny.base_channels
    a = heads(0, torch.randn(2, 5, 12 * c))
    b = heads("fused", torch.randn(2, 5, 4 * c))
    assert a.shape == b.shape == (2, 5, tiny.nce_channels)
    assert torch.allclose(a.norm(dim=-1), torch.ones(2, 5), atol=1e-5)
    assert torch.allclose(heads(1, torch.ones(1, 1, 4 * c)), heads("fused", torch.ones(1, 1, 4 * c)))
