"""Acquisition sites: the default site is unchanged, the shifted one meets the data contract and differs
in the intended ways (protocols, resolution, gains, anatomy), recorded in phantom.json; the varied
training site widens the default's ranges, and no training cohort comes from the held-out shifted site."""

from __future__ import annotations

import hashlib
import json

import nibabel as nib
import numpy as np
import pytest
from typer.testing import CliRunner

from brasyn.constants import BRATS_AFFINE, MODALITIES, Modality, image_filename
from brasyn.errors import ConfigError
from brasyn.phantom import PhantomConfig, acquisition, generate_case, write_training_cohort, write_validation_cohort
from brasyn.phantom import signal as sig
from brasyn.phantom.anatomy import grid_affine
from brasyn.phantom.contrast import expected_order, order_violations, sample_physics, tissue_signals
from brasyn.phantom.protocol import sample_protocol
from brasyn.phantom.site import DEFAULT, SHIFTED, VARIED, site_profile

SMALL = (48, 48, 31)
# sha256 of case 20001 of seed 2024 at 48 × 48 × 31 (the four int16 images in t1c, t1n, t2f, t2w
# order, then the seg), and of its JSON record with every float rounded to 9 significant digits,
# computed with the generator before sites existed (commit 1ab7b10): the default site must stay
# byte-identical. The record is rounded because its floats differ in the last bit between CPUs
# (the same commit gives two full-precision digests on two machines here); the int16 images do not.
DEFAULT_IMAGES_SHA256 = "ee3619ccfe7b870230de98ff819619a61a19d0f11c2b0970d7972a7ff4517072"
DEFAULT_RECORD_SHA256 = "7ece1d27ef67a8343c9620c075f58b69dd07e07bd973dd1ef50086b3e5407c72"


def _rounded(value):
    """The record with its floats at 9 significant digits (far above a last-bit difference)."""
    if isinstance(value, float):
        return float(f"{value:.9g}")
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(item) for item in value]
    return value


def _digests(case) -> tuple[str, str]:
    images = hashlib.sha256()
    for modality in sorted(case.images, key=str):
        images.update(np.ascontiguousarray(case.images[modality]).tobytes())
    images.update(case.seg.tobytes())
    record = hashlib.sha256(json.dumps(_rounded(case.protocol), sort_keys=True).encode()).hexdigest()
    return images.hexdigest(), record


def test_default_site_is_byte_identical_to_the_generator_before_sites():
    case = generate_case(20001, 2024, PhantomConfig(shape=SMALL))
    assert _digests(case) == (DEFAULT_IMAGES_SHA256, DEFAULT_RECORD_SHA256)
    assert _digests(generate_case(20001, 2024, PhantomConfig(shape=SMALL, site="default"))) == _digests(case)


def test_unknown_site_is_one_clear_error():
    with pytest.raises(ConfigError, match="phantom site 'elsewhere': expected one of default, shifted"):
        PhantomConfig(site="elsewhere")
    with pytest.raises(ConfigError, match="expected one of default, shifted"):
        site_profile("elsewhere")


@pytest.fixture(scope="module")
def shifted_cases():
    return [generate_case(40000 + k, 4242, PhantomConfig(shape=SMALL, site="shifted")) for k in range(3)]


def _assert_contract(case, site: str) -> None:
    assert set(case.images) == set(MODALITIES)
    brain = case.images[Modality.T1N] > 0
    for image in case.images.values():
        assert image.shape == SMALL and image.dtype == np.int16
        np.testing.assert_array_equal(image > 0, brain)  # one brain mask, background exactly 0
    assert case.seg.shape == SMALL and case.seg.dtype == np.uint8
    assert set(np.unique(case.seg)) <= {0, 1, 2, 3} and (case.seg > 0).any()
    assert not (case.seg > 0)[~brain].any()
    np.testing.assert_allclose(case.affine, grid_affine(SMALL))
    assert case.protocol["site"] == site


def test_shifted_cases_meet_the_data_contract(shifted_cases):
    for case in shifted_cases:
        _assert_contract(case, "shifted")


def test_varied_cases_meet_the_data_contract_and_differ_from_the_default():
    config = PhantomConfig(shape=SMALL, site="varied")
    for number in (50000, 50001):
        case = generate_case(number, 1, config)
        _assert_contract(case, "varied")
        assert _digests(case) == _digests(generate_case(number, 1, config))  # deterministic
        default = generate_case(number, 1, PhantomConfig(shape=SMALL))
        assert not np.array_equal(case.images[Modality.T1N], default.images[Modality.T1N])


def test_varied_site_widens_the_default_without_the_shifted_sites_own_choices():
    rng_default, rng_varied = np.random.default_rng(1), np.random.default_rng(1)
    default = [sample_protocol(rng_default) for _ in range(400)]
    varied = [sample_protocol(rng_varied, VARIED) for _ in range(400)]
    flair = Modality.T2F
    assert 0.2 < np.mean([p.sequences[flair].acquisition == "3D" for p in varied]) < 0.4
    assert 0.2 < np.mean([bool(p.sequences[flair].post_contrast) for p in varied]) < 0.4

    def spread(protocols, values):
        return np.ptp([values(p) for p in protocols])

    for values in (lambda p: p.sequences[Modality.T2W].tr, lambda p: p.snr[Modality.T2W],
                   lambda p: np.log(p.case_gain), lambda p: np.log(p.modality_gain[Modality.T2W])):
        assert spread(varied, values) > spread(default, values)
    # what only the held-out site does: linear resampling of thick slices, a vendor gain offset
    assert not VARIED.resample_slices and VARIED.modality_gain_offset == DEFAULT.modality_gain_offset
    assert VARIED.anatomy.extra and VARIED.anatomy.atrophy_range[1] < SHIFTED.anatomy.atrophy_range[1]


def test_training_cohorts_come_from_training_sites_only(tmp_path):
    from brasyn.cli import app

    with pytest.raises(ConfigError, match="'shifted' is held out for measuring generalisation"):
        write_training_cohort(tmp_path / "held-out", 1, 0, PhantomConfig(shape=SMALL, site="shifted"))
    assert not (tmp_path / "held-out").exists()
    args = ["phantom", "train", str(tmp_path / "varied"), "--cases", "1", "--small", "--no-progress"]
    result = CliRunner().invoke(app, [*args, "--site", "varied", "--first-id", "50000"])
    assert result.exit_code == 0, result.output
    assert "site varied" in result.output
    record = json.loads((tmp_path / "varied" / "phantom.json").read_text())
    assert record["config"]["site_profile"]["name"] == "varied"
    assert (tmp_path / "varied" / "BraTS-GLI-50000-000" / "BraTS-GLI-50000-000-seg.nii.gz").is_file()
    refused = CliRunner().invoke(app, [*args, "--site", "shifted"])
    assert refused.exit_code != 0 and "held out" in str(refused.exception)


def test_shifted_site_is_deterministic_and_differs_from_the_default():
    config = PhantomConfig(shape=SMALL, site="shifted")
    a, b = generate_case(40001, 4242, config), generate_case(40001, 4242, config)
    assert _digests(a) == _digests(b)
    default = generate_case(40001, 4242, PhantomConfig(shape=SMALL))
    assert not np.array_equal(a.images[Modality.T2W], default.images[Modality.T2W])
    plan = {k: v for k, v in a.protocol["tumour"].items() if k != "label_voxels"}
    assert plan == {k: v for k, v in default.protocol["tumour"].items() if k != "label_voxels"}  # shared stream


def test_shifted_protocols_differ_the_intended_ways():
    rng_default, rng_shifted = np.random.default_rng(0), np.random.default_rng(0)
    default = [sample_protocol(rng_default) for _ in range(300)]
    shifted = [sample_protocol(rng_shifted, SHIFTED) for _ in range(300)]

    def share(protocols, test):
        return np.mean([bool(test(p)) for p in protocols])

    assert share(default, lambda p: p.field_strength == 1.5) < 0.5 < share(shifted, lambda p: p.field_strength == 1.5)
    flair = Modality.T2F
    assert share(default, lambda p: p.sequences[flair].acquisition == "3D") == 0
    assert 0.35 < share(shifted, lambda p: p.sequences[flair].acquisition == "3D") < 0.65
    assert share(default, lambda p: p.sequences[flair].post_contrast) == 0
    assert 0.35 < share(shifted, lambda p: p.sequences[flair].post_contrast) < 0.65
    assert all(p.sequences[flair].slice_thickness is None for p in shifted if p.sequences[flair].acquisition == "3D")
    thick = [p.sequences[Modality.T2W].slice_thickness for p in shifted]
    assert share(shifted, lambda p: p.sequences[Modality.T2W].slice_thickness) > 0.7
    assert min(t for t in thick if t) >= SHIFTED.slice_thickness_range[0]
    # the relation between the series' gains: t2w / t2f gain ratio shifted by the vendor offsets
    ratio = [np.log(p.modality_gain[Modality.T2W] / p.modality_gain[Modality.T2F]) for p in shifted]
    expected = np.log(SHIFTED.modality_gain_offset[Modality.T2W] / SHIFTED.modality_gain_offset[Modality.T2F])
    assert np.mean(ratio) == pytest.approx(expected, abs=0.1)
    assert np.mean([p.snr[Modality.T1N] for p in shifted]) < np.mean([p.snr[Modality.T1N] for p in default])
    assert DEFAULT.modality_gain_offset == {m: 1.0 for m in MODALITIES}


def test_post_contrast_flair_uses_the_shortened_t1_and_keeps_its_own_contrast_order():
    rng = np.random.default_rng(3)
    seen = 0
    for _ in range(60):
        protocol, tissues, uptake, _ = sample_physics(rng, SHIFTED)
        signals = tissue_signals(protocol, tissues, uptake)
        assert not order_violations(signals, order=expected_order(protocol))
        if protocol.sequences[Modality.T2F].post_contrast:
            seen += 1
            before = protocol.sequences[Modality.T2F]
            pre = float(before.signal(tissues["et"].pd, tissues["et"].t1, tissues["et"].t2))
            assert signals[Modality.T2F]["et"] > pre  # gadolinium brightened the enhancing tumour
    assert seen > 10


def test_accepted_shifted_cases_are_mostly_1_5_tesla():
    """The contrast-order check rejects draws; the cases that pass must keep the site's field mix
    (a too short T2 TR once made 1.5 T fail the T2 order, and the realised cohort all 3 T)."""
    rng = np.random.default_rng(11)
    fields = [sample_physics(rng, SHIFTED)[0].field_strength for _ in range(150)]
    assert 0.55 < np.mean(np.array(fields) == 1.5) < 0.85
    rng = np.random.default_rng(11)
    assert np.mean([sample_physics(rng)[0].field_strength == 1.5 for _ in range(150)]) < 0.5


def test_thick_slices_leave_slice_structure_along_one_axis_only():
    rng = np.random.default_rng(0)
    image = rng.standard_normal((40, 40, 40)).astype(np.float32)
    out = acquisition.thick_slices(image, 5.0, 2, 1.0)
    assert out.shape == image.shape and out.dtype == np.float32
    # between two slice centres the profile is linear: the second difference along the axis vanishes
    # away from the centres, and nothing changes along the in-plane axes
    centres = np.arange(2.0, 40, 5.0)
    assert np.allclose(out[..., 3] - out[..., 4], out[..., 4] - out[..., 5], atol=1e-5)
    assert np.allclose(out[..., int(centres[1])], acquisition.slice_blur(image, 5.0, 2, 1.0)[..., int(centres[1])])
    constant = np.full((8, 8, 30), 7.0, dtype=np.float32)
    assert np.allclose(acquisition.thick_slices(constant, 4.0, 2, 1.0)[..., 8:-8], 7.0, atol=1e-4)


def test_shifted_anatomy_varies_more_and_is_recorded(shifted_cases):
    for case in shifted_cases:
        deform = case.protocol["deformation"]
        assert SHIFTED.anatomy.atrophy_range[0] <= deform["atrophy"] <= SHIFTED.anatomy.atrophy_range[1]
        assert deform["ventricle_amplitude"] >= SHIFTED.anatomy.ventricle_range[0]
        assert abs(deform["asymmetry"]) >= SHIFTED.anatomy.asymmetry_range[0]
        assert deform["elastic_rms_mm"] >= SHIFTED.anatomy.elastic_rms_mm[0]
    default = generate_case(40000, 4242, PhantomConfig(shape=SMALL)).protocol["deformation"]
    assert "atrophy" not in default and default["elastic_rms_mm"] <= DEFAULT.anatomy.elastic_rms_mm[1]


def test_cli_site_switch_writes_a_shifted_cohort_and_records_it(tmp_path):
    from brasyn.cli import app

    data, labels = tmp_path / "data", tmp_path / "labels"
    args = ["phantom", "validation", str(data), str(labels), "--cases", "2", "--seed", "4242", "--small"]
    result = CliRunner().invoke(app, [*args, "--site", "shifted", "--first-id", "40000", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "site shifted" in result.output
    record = json.loads((labels / "phantom.json").read_text())
    assert record["config"]["site"] == "shifted" and record["config"]["site_profile"]["name"] == "shifted"
    assert all(case["site"] == "shifted" for case in record["cases"].values())
    missing = json.loads((labels / "missing.json").read_text())
    for name, dropped in missing.items():
        present = sorted(p.name for p in (data / name).iterdir())
        assert present == sorted(image_filename(name, m) for m in MODALITIES if m.value != dropped)
        seg = nib.load(str(labels / "original_data" / name / image_filename(name, "seg")))
        assert seg.shape == (48, 48, 31)
    bad = CliRunner().invoke(app, [*args, "--site", "nowhere", "--no-progress"])
    assert bad.exit_code != 0 and "expected one of default, shifted" in str(bad.exception)


def test_default_site_phantom_json_has_no_site_keys(tmp_path):
    write_validation_cohort(tmp_path / "d", tmp_path / "l", 1, 5, PhantomConfig(shape=(32, 32, 20)), progress=False)
    record = json.loads((tmp_path / "l" / "phantom.json").read_text())
    assert "site" not in record["config"] and "site_profile" not in record["config"]
    assert all("site" not in case for case in record["cases"].values())


def test_brats_affine_unchanged_at_full_size():
    np.testing.assert_allclose(grid_affine((240, 240, 155)), BRATS_AFFINE)
    flair = sig.Sequence("FLAIR", tr=9000, te=100, ti=2500)
    assert flair.to_dict() == {"kind": "FLAIR", "tr": 9000, "te": 100, "ti": 2500}  # new fields unset: not recorded
