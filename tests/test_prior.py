"""The generator's polynomial prior (`model.prior_degree`): the residual maths, the fit on the slice
cache, the training run that fits it and the checkpoint that carries it to inference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from brasyn.checkpoint import Checkpoint
from brasyn.constants import MODALITIES, Modality
from brasyn.data.cases import discover_cases
from brasyn.data.slices import CachedCase, CacheOptions, build_slice_cache, split_cases
from brasyn.errors import ConfigError
from brasyn.inference import InferenceSettings, Predictor
from brasyn.models import Generator, ModelConfig
from brasyn.models.baseline import PolynomialBaseline, monomial_exponents
from brasyn.training import load_training_setup, train
from brasyn.training.baseline_fit import fit_prior

TINY_MODEL = load_training_setup("tiny").model


def _generator(prior_degree: int) -> Generator:
    config = ModelConfig(**{**TINY_MODEL.__dict__, "prior_degree": prior_degree})
    return Generator.from_config(config).eval()


def test_prior_degree_is_off_in_the_paper_preset_and_checked():
    assert load_training_setup("paper").model.prior_degree == 0
    assert _generator(0).prior is None
    with pytest.raises(ConfigError, match="model.prior_degree"):
        ModelConfig(prior_degree=4)


def test_the_image_is_the_prior_plus_the_decoder_output_clamped():
    generator = _generator(2)
    generator.prior.coefficients.copy_(torch.linspace(-0.3, 0.4, len(monomial_exponents(2))))
    baseline = PolynomialBaseline.from_config({"degree": 2, "image_size": 64})
    baseline.coefficients.copy_(generator.prior.coefficients)
    sources = torch.rand(2, 3, 64, 64) * 2 - 1
    sources[:, :, :8] = -1.0  # background rows
    with torch.no_grad():
        generator.decoder.head[-1].bias.fill_(0.6)  # the 7x7 conv: a residual large enough to reach the clamp
        prior = baseline(sources).image
        residual = generator.decoder(generator.encode(sources).fused).image
        image = generator(sources).image
        assert (residual > 0.5).all()
        torch.testing.assert_close(image, (prior + residual).clamp(-1, 1))
        assert (image == 1).any() and (image < 1).any()  # clamped where prior + residual passes 1
        # a decoder that outputs 0 leaves exactly the polynomial baseline's prediction
        for parameter in generator.decoder.head.parameters():
            parameter.zero_()
        torch.testing.assert_close(generator(sources).image, prior)
    assert (prior[:, :, :8] == -1).all()


def _cached_case(folder, seed, coefficients):
    """A slice-cache case whose T1-ce channel is an exact degree-2 polynomial of its sources in the brain."""
    rng = np.random.default_rng(seed)
    images = np.full((3, 4, 20, 20), -1.0, dtype=np.float32)
    images[:, :, 2:18, 2:18] = rng.uniform(-0.9, 0.9, size=(3, 4, 16, 16))
    sources = images[:, [MODALITIES.index(m) for m in (Modality.T1N, Modality.T2W, Modality.T2F)]]
    terms = [np.prod([sources[:, c] ** e[c] for c in range(3)], axis=0) for e in monomial_exponents(2)]
    images[:, MODALITIES.index(Modality.T1C), 2:18, 2:18] = sum(
        c * t for c, t in zip(coefficients, terms, strict=True)
    )[:, 2:18, 2:18]
    seg = np.zeros((3, 20, 20), dtype=np.uint8)
    seg[:, 8:12, 8:12] = 3
    folder.mkdir()
    np.save(folder / "images.npy", images)
    np.save(folder / "seg.npy", seg)
    scales = {m: 1.0 for m in MODALITIES}
    return CachedCase(f"case-{seed}", folder, (20, 20, 3), (0, 20, 0, 20), (0, 1, 2), scales)


def test_fit_prior_recovers_the_polynomial_of_the_cached_slices(tmp_path):
    truth = np.array([0.1, 0.2, -0.3, 0.25, 0.05, 0.0, -0.1, 0.15, 0.0, 0.08])
    cases = [_cached_case(tmp_path / f"c{i}", i, truth) for i in range(2)]
    fitted = fit_prior(cases, Modality.T1C, 2)
    assert fitted.dtype == torch.float32 and fitted.shape == (10,)
    np.testing.assert_allclose(fitted.numpy(), truth, atol=2e-3)  # float16 rounding of the exact fit
    assert torch.equal(fitted, fitted.half().float())


def test_training_fits_the_prior_on_the_training_cases_and_inference_uses_it(case_factory, tmp_path):
    for i in range(3):
        case_factory(f"Case-{i}", shape=(48, 48, 12), seed=i, with_labels=True)
    setup = {"preset": "tiny", "model": {"prior_degree": 2}}
    out = tmp_path / "run"
    train(case_factory.root, out, setup, ["t1c"])
    ckpt = Checkpoint.load(out / "brasyn_t1c.pt", target=Modality.T1C)
    assert ckpt.model_config["prior_degree"] == 2
    cached = build_slice_cache(discover_cases(case_factory.root), out / "cache", CacheOptions(dtype="float32"))
    train_ids, _ = split_cases([c.case_id for c in cached], 0.34, 0)
    expected = fit_prior([c for c in cached if c.case_id in train_ids], Modality.T1C, 2)
    assert expected.abs().max() > 0.01
    torch.testing.assert_close(ckpt.state_dict["prior.coefficients"], expected)
    # inference rebuilds the generator with its prior from the checkpoint alone
    predictor = Predictor.from_checkpoint(out / "brasyn_t1c.pt", settings=InferenceSettings(device="cpu"))
    torch.testing.assert_close(predictor.model.prior.coefficients, expected)
    assert yaml.safe_load((out / "config.yaml").read_text())["model"]["prior_degree"] == 2


def test_checkpoints_from_before_the_prior_load_as_without_one(tmp_path):
    """A checkpoint written before `prior_degree` existed (its model_config lacks the key): read as
    0, built as the paper's generator. Made from the bundled T1-ce checkpoint with the key removed."""
    raw = torch.load(Path(__file__).parents[1] / "workspace" / "additional_files" / "brasyn_t1c.pt", weights_only=True)
    raw["model_config"].pop("prior_degree", None)
    path = tmp_path / "brasyn_t1c.pt"
    torch.save(raw, path)
    checkpoint = Checkpoint.load(path, target=Modality.T1C)
    assert checkpoint.model_config["prior_degree"] == 0
    assert checkpoint.build_model().prior is None
