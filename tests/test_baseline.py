"""The polynomial reference baseline: the maths, the module contract, fitting and its checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from brasyn.checkpoint import Checkpoint, checkpoint_filename
from brasyn.cli import app
from brasyn.constants import MODALITIES, Modality
from brasyn.data.normalization import Normalization
from brasyn.errors import ConfigError, InputError
from brasyn.models.baseline import PolynomialBaseline, monomial_exponents
from brasyn.models.generator import GeneratorOutput
from brasyn.training.baseline_fit import BaselineFitConfig, design_matrix, fit_baseline, fit_coefficients


def test_monomials_with_cross_terms():
    assert len(monomial_exponents(2)) == 10
    assert len(monomial_exponents(3)) == 20
    assert monomial_exponents(1) == ((0, 0, 0), (0, 0, 1), (0, 1, 0), (1, 0, 0))
    assert (0, 1, 1) in monomial_exponents(2)
    x = np.array([[2.0, 3.0, 5.0]])
    row = dict(zip(monomial_exponents(2), design_matrix(x, monomial_exponents(2))[0], strict=True))
    assert row[(0, 1, 1)] == 15.0 and row[(2, 0, 0)] == 4.0 and row[(0, 0, 0)] == 1.0


def _synthetic(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(n, 3))
    a, b, c = x.T
    return x, 0.5 * a - 0.2 * b * c + 0.1


@pytest.mark.parametrize("degree", [2, 3])
def test_recovers_an_exact_polynomial(degree):
    x, y = _synthetic()
    coefficients = fit_coefficients(x, y, degree)
    terms = dict(zip(monomial_exponents(degree), coefficients, strict=True))
    assert terms[(0, 0, 0)] == pytest.approx(0.1, abs=1e-3)
    assert terms[(1, 0, 0)] == pytest.approx(0.5, abs=1e-3)
    assert terms[(0, 1, 1)] == pytest.approx(-0.2, abs=1e-3)
    others = [v for e, v in terms.items() if e not in {(0, 0, 0), (1, 0, 0), (0, 1, 1)}]
    assert np.abs(others).max() < 1e-3
    # The torch module reproduces the relation on new voxels.
    model = PolynomialBaseline.from_config({"degree": degree, "image_size": 256})
    model.coefficients.copy_(torch.from_numpy(coefficients).float())
    x_new, y_new = _synthetic(n=64, seed=1)
    sources = torch.from_numpy(x_new.T.reshape(1, 3, 8, 8)).float()
    out = model(sources)
    np.testing.assert_allclose(out.image[0, 0].numpy().ravel(), y_new, atol=1e-3)


def test_module_contract_and_background():
    model = PolynomialBaseline.from_config({"degree": 2})
    model.coefficients.fill_(0.3)
    sources = torch.rand(2, 3, 16, 16) * 2 - 1
    sources[:, :, :4, :] = -1.0  # background: every source at -1
    sources[0, 1, 8, 8] = -1.0  # one source at -1 inside the brain is not background
    out = model(sources, with_segmentation=True)
    assert isinstance(out, GeneratorOutput)
    assert out.image.shape == (2, 1, 16, 16) and out.seg_logits is None
    assert torch.all(out.image[:, :, :4] == -1.0)
    assert out.image[0, 0, 8, 8] > -1.0
    assert out.image.min() >= -1.0 and out.image.max() <= 1.0  # clamped (0.3 × 10 terms would exceed 1)
    assert out.image.max() == 1.0
    assert set(model.state_dict()) == {"exponents", "coefficients"}


def test_config_is_strict():
    with pytest.raises(ConfigError):
        PolynomialBaseline.from_config({"degree": 2, "image_size": 256, "depth": 3})
    with pytest.raises(ConfigError):
        PolynomialBaseline.from_config({"degree": 5})


def test_fit_save_load_build_gives_identical_outputs(case_factory, tmp_path):
    for k in range(3):
        case_factory(f"BraTS-GLI-0000{k}-000", with_labels=True, seed=k)
    case_factory("BraTS-GLI-00009-000", modalities=MODALITIES[:3], seed=9)  # incomplete: skipped
    fitted = fit_baseline(case_factory.root, Modality.T2W, {"degree": 2, "voxels_per_case": 500})
    assert fitted.kind == "polynomial" and fitted.target is Modality.T2W
    assert [m.value for m in fitted.sources] == ["t1n", "t1c", "t2f"]
    assert fitted.model_config == {"degree": 2, "image_size": 256}
    assert fitted.normalization == Normalization(percentile=99.5, headroom=2.0)
    assert "percentile" not in fitted.training_config  # the normalization is stored once
    assert fitted.data_summary["cases"] == 3 and fitted.data_summary["voxels"] == 1500
    assert fitted.metrics["train_r2"] > 0.5  # the tiny cases share structure across modalities
    path = fitted.save(tmp_path / "w" / checkpoint_filename(Modality.T2W))
    loaded = Checkpoint.load(path, target=Modality.T2W)
    assert loaded.normalization == fitted.normalization and loaded.training_config == fitted.training_config
    model = loaded.build_model()
    fresh = PolynomialBaseline.from_config(fitted.model_config)
    fresh.load_state_dict(fitted.state_dict)
    sources = torch.rand(2, 3, 12, 12) * 2 - 1
    assert torch.equal(model(sources).image, fresh(sources).image)


def test_fit_is_seeded(case_factory):
    for k in range(2):
        case_factory(f"BraTS-GLI-0000{k}-000", with_labels=True, seed=k)
    config = BaselineFitConfig(voxels_per_case=300, seed=3)
    first = fit_baseline(case_factory.root, Modality.T1C, config).state_dict["coefficients"]
    again = fit_baseline(case_factory.root, Modality.T1C, config).state_dict["coefficients"]
    other_config = BaselineFitConfig(voxels_per_case=300, seed=4)
    other = fit_baseline(case_factory.root, Modality.T1C, other_config).state_dict["coefficients"]
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_fit_without_complete_cases_fails(case_factory):
    case_factory("BraTS-GLI-00001-000", modalities=MODALITIES[:3])
    with pytest.raises(InputError) as info:
        fit_baseline(case_factory.root, Modality.T2W)
    assert "all 4 modalities" in str(info.value)


def test_cli_writes_the_four_checkpoints(case_factory, tmp_path):
    for k in range(2):
        case_factory(f"BraTS-GLI-0000{k}-000", with_labels=True, seed=k)
    out = tmp_path / "weights"
    result = CliRunner().invoke(app, ["baseline", "fit", str(case_factory.root), str(out), "--voxels-per-case", "200"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(checkpoint_filename(m) for m in MODALITIES)
    for modality in MODALITIES:
        assert Checkpoint.load(out / checkpoint_filename(modality), target=modality).kind == "polynomial"
    one = tmp_path / "one"
    result = CliRunner().invoke(
        app, ["baseline", "fit", str(case_factory.root), str(one), "--target", "t1c", "--degree", "3"]
    )
    assert result.exit_code == 0, result.output
    assert [p.name for p in one.iterdir()] == [checkpoint_filename(Modality.T1C)]
    assert Checkpoint.load(one / checkpoint_filename(Modality.T1C)).model_config["degree"] == 3


@pytest.mark.parametrize(("options", "expected"), [([], None), (["--no-progress"], False), (["--progress"], True)])
def test_cli_progress_option_reaches_the_fit(tmp_path, monkeypatch, options, expected):
    import brasyn.training.baseline_fit

    seen = []
    monkeypatch.setattr(
        brasyn.training.baseline_fit, "fit_baselines", lambda *a, progress=None: seen.append(progress) or {}
    )
    result = CliRunner().invoke(app, ["baseline", "fit", str(tmp_path), str(tmp_path / "out"), *options])
    assert result.exit_code == 0, result.output
    assert seen == [expected]
