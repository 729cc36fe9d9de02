"""Atomic NIfTI writing with the source geometry."""

from __future__ import annotations

import os
import stat

import nibabel as nib
import numpy as np
import pytest

from brasyn.constants import BRATS_AFFINE
from brasyn.errors import ContractError
from brasyn.io.atomic import atomic_path, atomic_write_text
from brasyn.io.nifti import load_volume, new_geometry, write_volume


def test_written_file_keeps_source_affine_shape_and_dtype(case_factory, tmp_path):
    folder = case_factory("c1")
    data, geometry = load_volume(folder / "c1-t1n.nii.gz")
    out = write_volume(data * 2.6, tmp_path / "c1-t2f.nii.gz", geometry)
    image = nib.load(str(out))
    assert image.shape == geometry.shape
    np.testing.assert_array_equal(image.affine, BRATS_AFFINE)
    assert image.get_data_dtype() == np.int16
    assert int(image.header["sform_code"]) == 1 and int(image.header["qform_code"]) == 1
    np.testing.assert_array_equal(np.asarray(image.dataobj), np.rint(data * 2.6).astype(np.int16))
    assert nib.aff2axcodes(image.affine) == ("L", "P", "S")


def test_integer_output_is_clipped_to_range(tmp_path):
    geometry = new_geometry((4, 4, 2), BRATS_AFFINE)
    data = np.full((4, 4, 2), 1e6, np.float32)
    data[0] = -1e6
    out = write_volume(data, tmp_path / "x.nii.gz", geometry)
    values = np.asarray(nib.load(str(out)).dataobj)
    assert values.max() == 32767 and values.min() == -32768


def test_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    geometry = new_geometry((4, 4, 2), BRATS_AFFINE)

    def broken_save(image, filename):
        with open(filename, "wb") as handle:
            handle.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(nib, "save", broken_save)
    with pytest.raises(OSError, match="No space left"):
        write_volume(np.zeros((4, 4, 2)), tmp_path / "c1-t1n.nii.gz", geometry)
    assert os.listdir(tmp_path) == []


def test_existing_file_is_replaced_only_when_write_succeeds(tmp_path, monkeypatch):
    geometry = new_geometry((4, 4, 2), BRATS_AFFINE)
    target = write_volume(np.ones((4, 4, 2)), tmp_path / "c1-t1n.nii.gz", geometry)
    before = target.read_bytes()
    monkeypatch.setattr(nib, "save", lambda image, filename: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        write_volume(np.zeros((4, 4, 2)), target, geometry)
    assert target.read_bytes() == before and os.listdir(tmp_path) == ["c1-t1n.nii.gz"]


def test_shape_must_match_geometry(tmp_path):
    """At write time a shape mismatch is the writer's caller's bug, not the case's input."""
    geometry = new_geometry((4, 4, 2), BRATS_AFFINE)
    with pytest.raises(ContractError, match="expected shape \\(4, 4, 2\\), found \\(4, 4, 3\\)"):
        write_volume(np.zeros((4, 4, 3)), tmp_path / "x.nii.gz", geometry)
    assert os.listdir(tmp_path) == []


def test_atomic_path_keeps_old_content_until_the_block_succeeds(tmp_path):
    target = tmp_path / "c1-t1n.nii.gz"
    target.write_text("old")
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith(".nii.gz") and tmp != target
        tmp.write_text("new")
        assert target.read_text() == "old"  # readers see the old file while the new one is written
    assert target.read_text() == "new" and os.listdir(tmp_path) == ["c1-t1n.nii.gz"]


def test_atomic_path_leaves_nothing_behind_on_failure(tmp_path):
    target = tmp_path / "summary.json"
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:
        tmp.write_text("partial")
        raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []
    target.write_text("old")
    with pytest.raises(ValueError), atomic_path(target) as tmp:
        raise ValueError("boom")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["summary.json"]


def test_atomic_files_get_mode_0644_not_mkstemps_0600(tmp_path):
    written = atomic_write_text(tmp_path / "a.json", "{}\n")
    assert written.read_text() == "{}\n"
    assert stat.S_IMODE(written.stat().st_mode) == 0o644
    with atomic_path(tmp_path / "b.txt", mode=0o600) as tmp:
        tmp.write_text("x")
    assert stat.S_IMODE((tmp_path / "b.txt").stat().st_mode) == 0o600


def test_every_atomic_writer_leaves_readable_files(tmp_path):
    import torch

    from brasyn.training.state import save_resume

    save_resume(tmp_path / "resume" / "t1n.pt", {"step": 1})
    geometry = new_geometry((4, 4, 2), BRATS_AFFINE)
    volume = write_volume(np.zeros((4, 4, 2)), tmp_path / "c1-t1n.nii.gz", geometry)
    for path in (tmp_path / "resume" / "t1n.pt", volume):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    assert torch.load(tmp_path / "resume" / "t1n.pt", weights_only=True)["step"] == 1


def test_stale_temporaries_are_recognised_by_atomic_paths_own_pattern(tmp_path):
    from brasyn.io.atomic import is_temporary_name, remove_stale_temporaries

    names = []
    for destination in ("BraTS-GLI-00001-000-t2f.nii.gz", "summary.json", "README"):
        with pytest.raises(KeyboardInterrupt), atomic_path(tmp_path / destination) as tmp:
            names.append(tmp.name)
            raise KeyboardInterrupt  # (a SIGKILL would leave the file; recreate it below)
    for name in names:
        assert is_temporary_name(name), name
        (tmp_path / name).write_text("half written")
    keep = [
        "BraTS-GLI-00001-000-t2f.nii.gz", ".hidden", ".notes.tmp", ".x.abcdefgh.tmp.txt.bak",
        ".c1-t1n.nii.gz.ABCDEFGH.tmp.nii.gz",  # mkstemp uses lower-case letters, digits and _
        ".c1-t1n.nii.gz.abcdefgh.tmp.nii",  # suffix differs from the destination's
        "c1-t1n.nii.gz.abcdefgh.tmp.nii.gz",  # not hidden
    ]
    for name in keep:
        assert not is_temporary_name(name), name
        (tmp_path / name).write_text("someone else's")
    (tmp_path / "sub").mkdir()
    nested = tmp_path / "sub" / names[0]
    nested.write_text("x")
    removed = remove_stale_temporaries(tmp_path)
    assert sorted(p.name for p in removed) == sorted(names)
    assert sorted(os.listdir(tmp_path)) == sorted([*keep, "sub"]) and nested.exists()
