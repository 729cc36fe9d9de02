"""Case discovery, classification and validation (the BraTS data contract)."""

from __future__ import annotations

import gzip
import logging

import nibabel as nib
import numpy as np
import pytest

from brasyn.constants import BRATS_AFFINE, MODALITIES, Modality
from brasyn.data.cases import CaseStatus, discover_cases, load_case, read_case_folder
from brasyn.errors import GeometryError, InputError, IntensityError, MissingModalityError, ReadError

THREE = (Modality.T1N, Modality.T1C, Modality.T2W)


def test_discovers_cases_sorted_and_classifies_each_scenario(case_factory):
    case_factory("BraTS-GLI-00002-000", THREE)  # t2f missing
    case_factory("BraTS-GLI-00001-000")  # complete
    case_factory("patient_A", (Modality.T1N,))  # three missing
    cases = discover_cases(case_factory.root)
    assert [c.case_id for c in cases] == ["BraTS-GLI-00001-000", "BraTS-GLI-00002-000", "patient_A"]
    assert [c.status for c in cases] == [CaseStatus.COMPLETE, CaseStatus.SYNTHESIS, CaseStatus.INVALID]
    assert cases[1].target is Modality.T2F
    assert "nothing to synthesize" in cases[0].describe_missing()


@pytest.mark.parametrize("missing", MODALITIES)
def test_target_is_the_one_missing_modality(case_factory, missing):
    folder = case_factory("case1", tuple(m for m in MODALITIES if m != missing))
    assert read_case_folder(folder).target is missing


def test_two_missing_is_an_error_naming_case_and_found_modalities(case_factory):
    folder = case_factory("BraTS-GLI-00012-000", (Modality.T1C, Modality.T2W))
    case = read_case_folder(folder)
    assert case.status is CaseStatus.INVALID
    with pytest.raises(MissingModalityError) as info:
        _ = case.target
    assert str(info.value) == "BraTS-GLI-00012-000: expected 3 of t1c/t1n/t2f/t2w, found 2 (t1c, t2w)"


def test_accepts_plain_nii_and_non_brats_names(case_factory):
    folder = case_factory("my scan 7", THREE, extension=".nii")
    case = read_case_folder(folder)
    assert case.target is Modality.T2F
    assert all(p.suffix == ".nii" for p in case.images.values())
    volumes = load_case(case)
    assert set(volumes.images) == set(THREE)


def test_ignores_stray_files_and_logs_them_at_debug(case_factory, caplog):
    folder = case_factory("c1", THREE)
    (folder / "notes.txt").write_text("hello")
    (folder / "c1-t1n.json").write_text("{}")
    (folder / "other-t2f.nii.gz").write_bytes(b"")  # another case's name: not ours
    (case_factory.root / "README.md").write_text("stray file beside the case folders")
    with caplog.at_level(logging.DEBUG, logger="brasyn.data.cases"):
        cases = discover_cases(case_factory.root)
    assert len(cases) == 1 and cases[0].target is Modality.T2F
    assert {p.name for p in cases[0].ignored} == {"notes.txt", "c1-t1n.json", "other-t2f.nii.gz"}
    assert "notes.txt" in caplog.text


def test_duplicate_modality_in_two_formats_is_an_error(case_factory):
    folder = case_factory("c1", THREE)
    case_factory("c1", (Modality.T1N,), extension=".nii")
    with pytest.raises(InputError, match="c1: found t1n twice"):
        read_case_folder(folder)


def test_a_bad_folder_becomes_an_invalid_case_and_the_others_are_still_found(case_factory):
    case_factory("a", THREE)
    case_factory("b", THREE)
    case_factory("b", (Modality.T1N,), extension=".nii")
    cases = discover_cases(case_factory.root)
    assert [c.case_id for c in cases] == ["a", "b"]
    assert cases[0].status is CaseStatus.SYNTHESIS
    assert cases[1].status is CaseStatus.INVALID
    assert cases[1].describe_missing() == "b: found t1n twice (b-t1n.nii, b-t1n.nii.gz); keep one"
    with pytest.raises(InputError, match="b: found t1n twice"):
        load_case(cases[1])


def test_data_path_must_be_a_folder(tmp_path):
    with pytest.raises(InputError, match="expected a folder of case folders, found nothing"):
        discover_cases(tmp_path / "absent")


def test_seg_is_found_and_loaded_as_labels(case_factory):
    folder = case_factory("c1", with_labels=True)
    volumes = load_case(read_case_folder(folder), with_labels=True)
    assert volumes.seg is not None and volumes.seg.dtype == np.uint8
    assert set(np.unique(volumes.seg)) == {0, 1, 2, 3}


def _rewrite(path, data, affine=BRATS_AFFINE):
    nib.save(nib.Nifti1Image(data, affine), str(path))


def test_shape_mismatch_names_case_file_expected_and_found(case_factory):
    folder = case_factory("c1", THREE)
    _rewrite(folder / "c1-t2w.nii.gz", np.ones((30, 32, 12), np.float32))
    with pytest.raises(GeometryError) as info:
        load_case(read_case_folder(folder))
    assert str(info.value) == "c1: c1-t2w.nii.gz has shape (30, 32, 12), expected (32, 32, 12) like c1-t1n.nii.gz"


def test_affine_mismatch_is_rejected_beyond_tolerance_only(case_factory):
    folder = case_factory("c1", THREE)
    images = {m: np.asarray(nib.load(str(folder / f"c1-{m}.nii.gz")).dataobj) for m in THREE}
    nudged = BRATS_AFFINE.copy()
    nudged[0, 3] += 1e-5
    _rewrite(folder / "c1-t2w.nii.gz", images[Modality.T2W], nudged)
    load_case(read_case_folder(folder))  # float noise is tolerated
    shifted = BRATS_AFFINE.copy()
    shifted[0, 3] += 2.0
    _rewrite(folder / "c1-t2w.nii.gz", images[Modality.T2W], shifted)
    with pytest.raises(GeometryError, match="c1: c1-t2w.nii.gz affine differs from c1-t1n.nii.gz's by up to 2 mm"):
        load_case(read_case_folder(folder))


def test_nan_voxels_are_rejected(case_factory):
    folder = case_factory("c1", THREE)
    data = np.ones((32, 32, 12), np.float32)
    data[3, 4, 5] = np.nan
    data[1, 1, 1] = np.inf
    _rewrite(folder / "c1-t1c.nii.gz", data)
    with pytest.raises(IntensityError, match="c1: c1-t1c.nii.gz: expected finite values, found 2 NaN/infinite voxels"):
        load_case(read_case_folder(folder))


def test_corrupt_gzip_is_a_read_error(case_factory):
    folder = case_factory("c1", THREE)
    path = folder / "c1-t1n.nii.gz"
    path.write_bytes(gzip.compress(path.read_bytes()[:200])[:-30])  # truncated stream
    with pytest.raises(ReadError, match="c1: c1-t1n.nii.gz: cannot read NIfTI"):
        load_case(read_case_folder(folder))


def test_four_d_file_is_rejected(case_factory):
    folder = case_factory("c1", THREE)
    _rewrite(folder / "c1-t2w.nii.gz", np.ones((32, 32, 12, 2), np.float32))
    with pytest.raises(
        GeometryError, match="c1: c1-t2w.nii.gz: expected a 3-D volume, found shape \\(32, 32, 12, 2\\)"
    ):
        load_case(read_case_folder(folder))


def test_empty_case_folder_is_invalid(tmp_path):
    (tmp_path / "empty").mkdir()
    case = discover_cases(tmp_path)[0]
    assert case.status is CaseStatus.INVALID
    with pytest.raises(MissingModalityError, match="found 0 \\(none\\)"):
        load_case(case)
