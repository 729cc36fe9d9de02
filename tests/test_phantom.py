"""Synthetic cohort generator: determinism, BraTS conformance, physics and contrast, cohort layouts, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from typer.testing import CliRunner

from brasyn.constants import BRATS_AFFINE, BRATS_SHAPE, MODALITIES, Modality, image_filename
from brasyn.errors import ConfigError
from brasyn.phantom import (
    PhantomConfig,
    acquisition,
    assign_missing,
    case_id,
    fields,
    generate_case,
    write_training_cohort,
    write_validation_cohort,
)
from brasyn.phantom import signal as sig
from brasyn.phantom.anatomy import grid_affine, load_template
from brasyn.phantom.contrast import EXPECTED_ORDER, order_violations, sample_physics, tissue_signals
from brasyn.phantom.protocol import sample_protocol
from brasyn.phantom.tissue import TISSUE_CODES, Tissue, post_contrast_t1

SMALL = PhantomConfig(shape=(32, 32, 20))
CLEAN = dict(noise=False, bias_field=False, slice_blur=False)  # noise-free, for contrast measurements


def load(path: Path) -> np.ndarray:
    return np.asarray(nib.load(str(path)).dataobj)


# --- signal equations against hand computation and brute-force simulation ---------------------------


def test_spin_echo_matches_hand_computation():
    # 0.69 · (1 − e^(−500/800)) · e^(−10/75) = 0.69 · 0.464739 · 0.875173 = 0.280641
    assert sig.spin_echo(0.69, 800.0, 75.0, tr=500.0, te=10.0) == pytest.approx(0.280641, rel=1e-5)


def test_flair_nulls_the_tissue_it_is_timed_for():
    ti = sig.flair_null_ti(9000.0, 4300.0)
    assert 2400.0 < ti < 2600.0  # ≈ 2450–2500 ms for TR 9000 (mri-physics.md)
    assert sig.flair(1.0, 4300.0, 2000.0, tr=9000.0, te=100.0, ti=ti) == pytest.approx(0.0, abs=1e-9)
    assert sig.flair(0.86, 1350.0, 165.0, tr=9000.0, te=100.0, ti=ti) > 0.2


def _simulate_mprage(t1: float, *, tr, ti, flip_deg, echo_spacing, n_readouts, repetitions=60) -> float:
    """Longitudinal magnetisation followed pulse by pulse until steady state; signal at read-out n/2."""
    alpha = np.deg2rad(flip_deg)
    ta = ti - n_readouts / 2 * echo_spacing
    tb = tr - ta - n_readouts * echo_spacing
    mz, signal = 1.0, 0.0
    for _ in range(repetitions):
        mz = -mz  # inversion
        mz = 1 - (1 - mz) * np.exp(-ta / t1)
        for k in range(n_readouts):
            if k == n_readouts // 2:
                signal = np.sin(alpha) * mz
            mz = mz * np.cos(alpha)
            mz = 1 - (1 - mz) * np.exp(-echo_spacing / t1)
        mz = 1 - (1 - mz) * np.exp(-tb / t1)
    return abs(signal)


@pytest.mark.parametrize("t1", [800.0, 1300.0, 4300.0])
def test_mprage_closed_form_matches_pulse_by_pulse_simulation(t1):
    timing = dict(tr=2300.0, ti=900.0, flip_deg=9.0, echo_spacing=7.0, n_readouts=176)
    expected = _simulate_mprage(t1, **timing)
    assert sig.mprage(1.0, t1, 1e12, te=0.0, **timing) == pytest.approx(expected, rel=1e-6)


def test_spoiled_gradient_echo_matches_steady_state_iteration():
    tr, t1, alpha = 20.0, 900.0, np.deg2rad(30.0)
    mz = 1.0
    for _ in range(5000):
        mz = 1 - (1 - mz * np.cos(alpha)) * np.exp(-tr / t1)
    assert sig.spoiled_gradient_echo(1.0, t1, 1e12, tr=tr, te=0.0, flip_deg=30.0) == pytest.approx(
        np.sin(alpha) * mz, rel=1e-6
    )


def test_gadolinium_shortens_t1_as_one_over_t1_plus_delta_r1():
    # 1 / (1/1450 ms + 0.7/s · 1e-3) = 721.1 ms
    assert post_contrast_t1(1450.0, 0.7) == pytest.approx(1.0 / (1.0 / 1450.0 + 0.0007))
    assert post_contrast_t1(1450.0, 0.0) == pytest.approx(1450.0)


def test_rician_noise_on_zero_signal_is_rayleigh():
    rng = np.random.default_rng(0)
    values = acquisition.rician(rng, np.zeros(200_000, np.float32), 10.0)
    assert values.mean() == pytest.approx(10.0 * np.sqrt(np.pi / 2), rel=0.01)  # Rayleigh mean σ√(π/2)
    strong = acquisition.rician(rng, np.full(200_000, 1000.0, np.float32), 10.0)
    assert strong.mean() == pytest.approx(1000.05, rel=1e-3) and strong.std() == pytest.approx(10.0, rel=0.02)


def test_bias_field_has_the_requested_amplitude():
    shape, stride = (40, 40, 30), (4, 4, 4)
    lattice = np.stack(
        np.meshgrid(*[np.arange(n) * 4.0 - 60 for n in fields.coarse_shape(shape, stride)], indexing="ij")
    )
    where = np.arange(np.prod(shape))
    field = acquisition.bias_field(np.random.default_rng(1), lattice, stride, shape, where, 0.25)
    log_field = np.log(field.astype(np.float64))
    assert np.abs(log_field - log_field.mean()).max() == pytest.approx(np.log(1.25), rel=1e-4)
    assert field.std() > 0.02


def test_slice_blur_acts_along_one_axis_with_the_slice_thickness_as_fwhm():
    volume = np.zeros((9, 9, 41), np.float32)
    volume[4, 4, 20] = 1.0
    blurred = acquisition.slice_blur(volume, 5.0, axis=2, voxel_mm=1.0)
    profile = blurred[4, 4]
    assert blurred[3, 4].max() == 0 and blurred[4, 3].max() == 0  # nothing leaks across the other axes
    half = profile.max() / 2
    above = np.flatnonzero(profile >= half)
    assert above[-1] - above[0] + 1 in (5, 6)  # FWHM ≈ 5 voxels
    assert profile.sum() == pytest.approx(1.0, rel=1e-3)


def test_contrast_order_is_reached_by_the_parameter_ranges_not_by_rejection():
    rng = np.random.default_rng(0)
    draws = [sample_physics(rng)[3] for _ in range(300)]
    assert np.mean(draws) < 1.1  # > 90 % of raw draws already follow the textbook order


def test_order_violations_flags_an_inverted_contrast():
    rng = np.random.default_rng(0)
    protocol, tissues, uptake, _ = sample_physics(rng)
    signals = tissue_signals(protocol, tissues, uptake)
    assert order_violations(signals) == []
    signals[Modality.T1N][Tissue.GM] = 2 * signals[Modality.T1N][Tissue.WM]
    assert "t1n: wm !> gm" in order_violations(signals)


def test_gains_share_a_case_factor_larger_than_the_modality_factors():
    rng = np.random.default_rng(0)
    protocols = [sample_protocol(rng) for _ in range(200)]
    case_spread = np.std(np.log([p.case_gain for p in protocols]))
    modality_spread = np.mean([np.std(np.log(list(p.modality_gain.values()))) for p in protocols])
    assert case_spread > 3 * modality_spread > 0


# --- generation -----------------------------------------------------------------------------------


def test_same_seed_same_case_other_seed_other_case():
    a, b = generate_case(3, 7, SMALL), generate_case(3, 7, SMALL)
    for modality in MODALITIES:
        np.testing.assert_array_equal(a.images[modality], b.images[modality])
    np.testing.assert_array_equal(a.seg, b.seg)
    assert json.dumps(a.protocol, sort_keys=True) == json.dumps(b.protocol, sort_keys=True)
    c, d = generate_case(3, 8, SMALL), generate_case(4, 7, SMALL)
    for other in (c, d):
        assert not np.array_equal(a.images[Modality.T2W], other.images[Modality.T2W])


def test_switching_off_the_noise_changes_only_the_noise():
    noisy = generate_case(2, 4, SMALL)
    clean = generate_case(2, 4, PhantomConfig(shape=SMALL.shape, noise=False))
    np.testing.assert_array_equal(noisy.seg, clean.seg)
    assert noisy.protocol == clean.protocol
    for modality in MODALITIES:
        brain = clean.images[modality] > 0
        a, b = noisy.images[modality][brain].astype(float), clean.images[modality][brain].astype(float)
        assert not np.array_equal(a, b)
        relative = np.abs(a - b) / np.median(b)
        assert np.median(relative) < 0.1  # SNR ≥ 15: noise of a few percent of the typical intensity


def test_small_grid_keeps_the_brats_field_of_view():
    case = generate_case(0, 0, SMALL)
    assert case.affine.shape == (4, 4)
    np.testing.assert_allclose(grid_affine(BRATS_SHAPE), BRATS_AFFINE)
    corners = np.array([[-0.5, -0.5, -0.5, 1.0], [31.5, 31.5, 19.5, 1.0]])  # outer voxel faces
    full_corners = np.array([[-0.5, -0.5, -0.5, 1.0], [239.5, 239.5, 154.5, 1.0]])
    np.testing.assert_allclose(corners @ case.affine.T, full_corners @ BRATS_AFFINE.T, atol=1e-9)
    assert nib.aff2axcodes(case.affine) == ("L", "P", "S")


def test_images_share_one_brain_mask_with_a_zero_background():
    case = generate_case(1, 0, SMALL)
    masks = [case.images[m] != 0 for m in MODALITIES]
    for mask in masks[1:]:
        np.testing.assert_array_equal(mask, masks[0])
    assert 0.05 < masks[0].mean() < 0.6
    assert (case.images[Modality.T1N] >= 0).all()
    assert set(np.unique(case.seg)) <= {0, 1, 2, 3} and (case.seg > 0).any()
    assert not (case.seg > 0)[~masks[0]].any()


def test_anatomy_is_placed_with_the_template_orientation():
    """Pure white matter of an undeformed case maps (through both affines) onto template white matter."""
    config = PhantomConfig(shape=(96, 96, 62), deformation=False, **CLEAN)
    case = generate_case(0, 0, config)
    template = load_template(1)
    out_vox = np.argwhere(case.pure_tissue == TISSUE_CODES[Tissue.WM])
    world = nib.affines.apply_affine(case.affine, out_vox)
    centre = nib.affines.apply_affine(case.affine, (np.array(config.shape) - 1) / 2)
    template_world = template.centre + (world - centre) / config.brain_scale

    def wm_fraction_at(points: np.ndarray) -> float:
        t_vox = np.rint(nib.affines.apply_affine(np.linalg.inv(template.affine), points)).astype(int)
        return float(np.mean(template.maps[1][tuple(t_vox.T)] > 0.5))

    assert wm_fraction_at(template_world) > 0.95
    # control: mirrored front-to-back or top-to-bottom about the brain centre, the match is poor
    for axis in (1, 2):
        mirrored = template_world.copy()
        mirrored[:, axis] = 2 * template.centre[axis] - mirrored[:, axis]
        assert wm_fraction_at(mirrored) < 0.75


def _pure_medians(case) -> dict[Modality, dict[Tissue, float]]:
    out = {}
    for modality in MODALITIES:
        out[modality] = {}
        for tissue, code in TISSUE_CODES.items():
            values = case.images[modality][case.pure_tissue == code]
            if values.size >= 20:
                out[modality][tissue] = float(np.median(values))
    return out


# seed 1: SE 1.5 T, MPRAGE 1.5 T, SE 3 T, GRE 3 T, GRE 1.5 T, MPRAGE 3 T T1 protocols
@pytest.mark.parametrize("index", [0, 2, 5, 9, 12, 3])
def test_tissue_contrast_order_of_each_modality(index):
    case = generate_case(index, 1, PhantomConfig(shape=(96, 96, 62), **CLEAN))
    medians = _pure_medians(case)
    checked = 0
    for modality, chains in EXPECTED_ORDER.items():
        for chain in chains:
            present = [t for t in chain if t in medians[modality]]
            for brighter, darker in zip(present, present[1:], strict=False):
                assert medians[modality][brighter] > medians[modality][darker], (
                    modality,
                    brighter,
                    darker,
                    medians[modality],
                )
                checked += 1
    assert checked >= 12
    # the three healthy tissues are always measurable
    for modality in MODALITIES:
        assert {Tissue.WM, Tissue.GM, Tissue.CSF} <= set(medians[modality])


def _r2(target: np.ndarray, features: list[np.ndarray]) -> float:
    """R² of a quadratic least-squares fit of `target` on `features` (with interactions)."""
    x = [np.ones_like(target)] + features + [a * b for i, a in enumerate(features) for b in features[i:]]
    design = np.stack(x, axis=1)
    coef, *_ = np.linalg.lstsq(design, target, rcond=None)
    residual = target - design @ coef
    return 1.0 - residual.var() / target.var()


def test_t1c_is_not_a_voxelwise_function_of_the_other_three():
    case = generate_case(2, 1, PhantomConfig(shape=(96, 96, 62), **CLEAN))
    et = case.pure_tissue == TISSUE_CODES[Tissue.ET]
    assert et.sum() > 300
    values = {m: case.images[m][et].astype(np.float64) for m in MODALITIES}
    r2_t1c = _r2(values[Modality.T1C], [values[Modality.T1N], values[Modality.T2W], values[Modality.T2F]])
    # control: a native contrast is largely explained by the other natives (shared T1/T2/PD texture)
    r2_t2w = _r2(values[Modality.T2W], [values[Modality.T1N], values[Modality.T2F]])
    assert r2_t1c < 0.5
    assert r2_t2w > 0.8


def test_gains_vary_per_case_and_white_matter_lands_on_a_scanner_scale():
    cases = [generate_case(i, 0, PhantomConfig(shape=(48, 48, 31))) for i in range(6)]
    gains = [c.protocol["case_gain"] for c in cases]
    assert len(set(gains)) == 6
    medians = [np.median(c.images[Modality.T2W][c.images[Modality.T2W] > 0]) for c in cases]
    assert max(medians) / min(medians) > 1.5
    for case in cases:
        wm = case.pure_tissue == TISSUE_CODES[Tissue.WM]
        assert wm.sum() > 20
        for modality in MODALITIES:
            assert 100 < np.median(case.images[modality][wm]) < 6000  # "WM ~150–4000" (mri-physics.md)


def test_config_rejects_bad_values():
    with pytest.raises(ConfigError) as info:
        PhantomConfig(shape=(4, 64, 64))
    assert "shape" in str(info.value)
    with pytest.raises(ConfigError):
        PhantomConfig(p_no_necrosis=0.8, p_no_enhancement=0.5)


# --- cohorts on disk ------------------------------------------------------------------------------


def test_case_ids_are_brats_like():
    assert case_id(10003) == "BraTS-GLI-10003-000"
    with pytest.raises(ConfigError):
        case_id(100000)


def test_training_cohort_case_k_does_not_depend_on_cohort_size(tmp_path):
    write_training_cohort(tmp_path / "a", 1, 5, SMALL, first_id=100, progress=False)
    write_training_cohort(tmp_path / "b", 3, 5, SMALL, first_id=100, progress=False)
    name = case_id(100)
    for suffix in ("t1n", "t1c", "t2w", "t2f", "seg"):
        file = image_filename(name, suffix)
        np.testing.assert_array_equal(load(tmp_path / "a" / name / file), load(tmp_path / "b" / name / file))
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == sorted(
        [case_id(k) for k in (100, 101, 102)] + ["phantom.json"]
    )


def test_missing_assignment_is_balanced_and_seeded():
    drops = assign_missing(10, seed=3)
    counts = [drops.count(m) for m in MODALITIES]
    assert sorted(counts) == [2, 2, 3, 3]
    assert drops == assign_missing(10, seed=3)
    assert drops != assign_missing(10, seed=4)


def test_validation_cohort_layout(tmp_path):
    data, labels = tmp_path / "data", tmp_path / "labels"
    result = write_validation_cohort(data, labels, 8, 2, SMALL, first_id=500, progress=False)
    ids = [case_id(k) for k in range(500, 508)]
    assert result.case_ids == ids
    assert sorted(p.name for p in data.iterdir()) == ids  # nothing else in the data folder
    missing = json.loads((labels / "missing.json").read_text())
    assert sorted(missing) == ids
    assert sorted(missing.values()) == sorted([m.value for m in MODALITIES] * 2)
    for name in ids:
        drop = missing[name]
        present = sorted(p.name for p in (data / name).iterdir())
        assert present == sorted(image_filename(name, m) for m in MODALITIES if m.value != drop)
        truth = sorted(p.name for p in (labels / "original_data" / name).iterdir())
        assert truth == sorted([image_filename(name, m) for m in MODALITIES] + [image_filename(name, "seg")])
        kept = next(m for m in MODALITIES if m.value != drop)
        np.testing.assert_array_equal(
            load(data / name / image_filename(name, kept)),
            load(labels / "original_data" / name / image_filename(name, kept)),
        )
    assert sorted(p.name for p in labels.iterdir()) == ["missing.json", "original_data", "phantom.json"]


def test_validation_cohort_removes_a_stale_dropped_modality(tmp_path):
    data, labels = tmp_path / "data", tmp_path / "labels"
    drop = assign_missing(1, 0)[0]
    name = case_id(700)
    (data / name).mkdir(parents=True)
    (data / name / image_filename(name, drop)).write_bytes(b"left by an earlier run")
    write_validation_cohort(data, labels, 1, 0, SMALL, first_id=700, progress=False)
    assert len(list((data / name).iterdir())) == 3
    assert not (data / name / image_filename(name, drop)).exists()


def test_cli_writes_exactly_the_announced_files(tmp_path):
    from brasyn.cli import app

    runner = CliRunner()
    result = runner.invoke(
        app, ["phantom", "train", str(tmp_path / "t"), "--cases", "2", "--shape", "32,32,20", "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    assert "BraTS-GLI-10000-000" in result.output and "BraTS-GLI-10001-000" in result.output
    written = sorted(str(p.relative_to(tmp_path / "t")) for p in (tmp_path / "t").rglob("*") if p.is_file())
    expected = ["phantom.json"] + [
        f"{c}/{image_filename(c, s)}"
        for c in ("BraTS-GLI-10000-000", "BraTS-GLI-10001-000")
        for s in ("seg", "t1c", "t1n", "t2f", "t2w")
    ]
    assert written == sorted(expected)

    result = runner.invoke(
        app,
        [
            "phantom",
            "validation",
            str(tmp_path / "d"),
            str(tmp_path / "l"),
            "--cases",
            "4",
            "--shape",
            "32,32,20",
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    assert [len(list(p.iterdir())) for p in sorted((tmp_path / "d").iterdir())] == [3, 3, 3, 3]
    assert sorted(p.name for p in (tmp_path / "d").iterdir())[0] == "BraTS-GLI-20000-000"


def test_cli_rejects_a_malformed_shape(tmp_path):
    import sys

    from brasyn.cli import main

    argv = sys.argv
    sys.argv = ["brasyn", "phantom", "train", str(tmp_path / "t"), "--cases", "1", "--shape", "32,32"]
    try:
        with pytest.raises(SystemExit) as info:
            main()
    finally:
        sys.argv = argv
    assert info.value.code == 1
    assert not (tmp_path / "t").exists()


# --- BraTS conformance at full size (about 3 s) ------------------------------------------------------


def test_full_size_case_conforms_to_brats(tmp_path):
    write_training_cohort(tmp_path, 1, 0, PhantomConfig(), progress=False)
    name = case_id(10000)
    masks = []
    for modality in MODALITIES:
        image = nib.load(str(tmp_path / name / image_filename(name, modality)))
        assert image.shape == BRATS_SHAPE
        np.testing.assert_array_equal(image.affine, BRATS_AFFINE)
        assert nib.aff2axcodes(image.affine) == ("L", "P", "S")
        assert image.get_data_dtype() == np.int16
        assert int(image.header["sform_code"]) == 1 and int(image.header["qform_code"]) == 1
        data = np.asarray(image.dataobj)
        assert data.min() == 0 and data.max() < 32767
        masks.append(data != 0)
    for mask in masks[1:]:
        np.testing.assert_array_equal(mask, masks[0])
    assert 1_000_000 < masks[0].sum() < 2_500_000  # ~1.2–1.9 L of brain at 1 mm
    seg_image = nib.load(str(tmp_path / name / image_filename(name, "seg")))
    np.testing.assert_array_equal(seg_image.affine, BRATS_AFFINE)
    seg = np.asarray(seg_image.dataobj)
    assert set(np.unique(seg)) <= {0, 1, 2, 3}
    assert (seg == 2).sum() > 1000 and ((seg == 1) | (seg == 3)).sum() > 1000
    assert not (seg > 0)[~masks[0]].any()


def test_phantom_depends_only_on_the_data_contract_not_on_the_model_side():
    """The generator is a product of its own: it may use the data contract and the shared plumbing
    (constants, errors, config, io, data) but not models, training, inference or evaluation."""
    import ast

    import brasyn.phantom

    allowed = {"phantom", "constants", "errors", "config", "io", "data"}
    found = set()
    for path in Path(brasyn.phantom.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            found |= {name.split(".")[1] for name in names if name.startswith("brasyn.")}
    assert found <= allowed, f"brasyn.phantom imports {sorted(found - allowed)}"
