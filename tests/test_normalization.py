"""Normalization to [-1, 1], its inverse, and the scanner-scale intensity model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from inference_helpers import make_checkpoint

from brasyn.checkpoint import Checkpoint
from brasyn.constants import Modality, sources_for
from brasyn.data.normalization import (
    IntensityModel,
    Normalization,
    brain_mask,
    denormalize,
    normalize,
    robust_scale,
)
from brasyn.errors import CheckpointError, ConfigError, IntensityError


def test_normalize_maps_background_to_minus_one_and_scale_to_one_without_clipping_the_tail():
    volume = np.array([-5.0, 0.0, 50.0, 100.0, 400.0], np.float32)
    out = normalize(volume, 100.0)
    np.testing.assert_allclose(out, [-1.0, -1.0, 0.0, 1.0, 7.0])  # negative noise -> background; 400 stays 7
    assert out.dtype == np.float32


def test_denormalize_inverts_normalize_exactly_above_the_scale_too():
    volume = np.linspace(0, 1600, 50, dtype=np.float32)
    np.testing.assert_allclose(denormalize(normalize(volume, 800.0), 800.0), volume, rtol=1e-5, atol=1e-3)


def test_headroom_keeps_bright_tumour_inside_the_generator_range():
    # brain at 100 (99.5th percentile), 0.4 % of the voxels an enhancing rim at 180
    volume = np.full(1000, 100.0, np.float32)
    volume[:4] = 180.0
    mask, scales, normalized = Normalization(percentile=99.5, headroom=2.0).normalize_case({Modality.T1C: volume})
    assert scales[Modality.T1C] == pytest.approx(200.0)  # 2 x the percentile (100)
    np.testing.assert_allclose(normalized[Modality.T1C][:5], [0.8, 0.8, 0.8, 0.8, 0.0], atol=1e-6)
    assert np.unique(normalized[Modality.T1C]).size == 2  # the rim stays distinct from the brain
    clipped = Normalization(percentile=99.5, headroom=1.0).normalize_case({Modality.T1C: volume})[2][Modality.T1C]
    assert clipped.max() == pytest.approx(2.6)  # headroom 1: the tail exceeds +1 (no clip), out of tanh's reach


def test_normalization_round_trips_through_a_dict_with_one_default_and_strict_keys():
    spec = Normalization(percentile=99.0, headroom=1.5)
    assert Normalization.from_dict(spec.to_dict()) == spec
    assert Normalization.from_dict({"percentile": 99.5}) == Normalization() == Normalization.from_dict({})
    with pytest.raises(ConfigError, match=r"^normalization.headroom: expected >= 1, found 0.5$"):
        Normalization.from_dict({"percentile": 99.5, "headroom": 0.5})
    with pytest.raises(ConfigError, match="unknown config key normalization.clip"):
        Normalization.from_dict({"clip": True})


def test_old_checkpoints_without_headroom_load_as_headroom_1(tmp_path):
    """The one legacy default: a checkpoint written before `headroom` existed clipped at the percentile."""
    path = make_checkpoint(tmp_path / "brasyn_t2f.pt", Modality.T2F)
    payload = torch.load(path, weights_only=True)
    payload["normalization"] = {"percentile": 99.5}
    payload["intensity_model"]["percentile"] = 99.5  # written by the intensity model of that time
    payload["training_config"] = {"data": {"percentile": 99.5, "tumour_slices_only": True}}
    payload["data_summary"] = {"cases": 3, "normalization": {"percentile": 99.5}}
    torch.save(payload, path)
    checkpoint = Checkpoint.load(path)
    assert checkpoint.normalization == Normalization(percentile=99.5, headroom=1.0)
    assert checkpoint.training_config == {"data": {"tumour_slices_only": True}}  # stored once: in normalization
    assert checkpoint.data_summary == {"cases": 3}
    assert "percentile" not in checkpoint.intensity_model.to_dict()
    payload["normalization"] = {"percentile": 99.5, "headroom": 0.5}
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="invalid normalization in checkpoint: normalization.headroom"):
        Checkpoint.load(path)


def test_the_inverse_is_a_method_of_the_record():
    spec = Normalization(percentile=99.5, headroom=2.0)
    volume = np.array([0.0, 10.0, 50.0, 230.0], dtype=np.float32)
    restored = spec.denormalize(normalize(volume, 120.0), 120.0)
    np.testing.assert_allclose(restored, volume, rtol=1e-6)
    assert spec.denormalize(np.array([-3.0], np.float32), 120.0)[0] == 0.0  # below -1: background


def test_robust_scale_uses_brain_voxels_only():
    volume = np.zeros((10, 10), np.float32)
    volume[:5] = np.arange(50).reshape(5, 10) + 1  # 1..50
    mask = brain_mask([volume])
    assert mask.sum() == 50
    assert robust_scale(volume, mask, 50.0) == pytest.approx(25.5)
    with pytest.raises(IntensityError, match="t1n: expected brain voxels above 0, found none"):
        robust_scale(np.zeros((3, 3)), np.ones((3, 3), bool), name="t1n")


def test_intensity_model_recovers_an_exact_log_linear_relation():
    target = Modality.T1C
    sources = sources_for(target)
    rng = np.random.default_rng(0)
    scales = []
    for _ in range(20):
        s = {m: float(np.exp(rng.uniform(5, 8))) for m in sources}
        s[target] = float(np.exp(0.3 + 0.5 * np.log(s[sources[0]]) + 0.4 * np.log(s[sources[2]])))
        scales.append(s)
    model = IntensityModel.fit(target, sources, scales, ridge=0.0)
    np.testing.assert_allclose(model.coefficients, [0.5, 0.0, 0.4], atol=1e-8)
    assert model.intercept == pytest.approx(0.3)
    assert model.residual_std < 1e-9
    probe = {m: 1000.0 for m in sources}
    assert model.predict_scale(probe) == pytest.approx(np.exp(0.3 + 0.9 * np.log(1000.0)))
    assert IntensityModel.from_dict(model.to_dict()) == model


def test_intensity_model_with_few_cases_keeps_the_ratio_to_the_geometric_mean():
    target = Modality.T2F
    sources = sources_for(target)
    scales = [{Modality.T1N: 100.0, Modality.T1C: 400.0, Modality.T2W: 250.0, Modality.T2F: 300.0}]
    model = IntensityModel.fit(target, sources, scales)
    assert model.predict_scale(scales[0]) == pytest.approx(300.0)
    doubled = {m: 2 * v for m, v in scales[0].items()}
    assert model.predict_scale(doubled) == pytest.approx(600.0)


def test_case_scales_share_one_mask_and_name_the_failing_modality():
    t1n = np.zeros((4, 4), np.float32)
    t1n[:2] = np.arange(1, 9).reshape(2, 4)
    t2w = np.zeros((4, 4), np.float32)
    t2w[:2, :2] = 5.0  # smaller support: the mask is the union
    spec = Normalization(percentile=50.0, headroom=1.0)
    mask, scales = spec.case_scales({Modality.T1N: t1n, Modality.T2W: t2w}, name="c1")
    assert mask.sum() == 8
    assert scales == {Modality.T1N: pytest.approx(4.5), Modality.T2W: pytest.approx(5.0)}
    with pytest.raises(IntensityError, match="c1: t2f: expected brain voxels above 0"):
        spec.case_scales({Modality.T1N: t1n, Modality.T2F: np.zeros((4, 4))}, name="c1")
