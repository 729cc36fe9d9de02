"""Where the entrypoint reads checkpoints from: the given folder, one folder inside it (a tarball of
the folder unpacked by MedPerf), else the image's weights with a warning naming both folders."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from brasyn.checkpoint import checkpoint_filename
from brasyn.constants import Modality
from brasyn.errors import CheckpointError
from brasyn.inference import resolve_weights


def fake_weights(folder: Path, *targets: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for target in targets or ("t1n", "t1c", "t2w", "t2f"):
        (folder / checkpoint_filename(Modality(target))).write_bytes(b"weights")
    return folder


def test_a_folder_with_checkpoints_is_used_as_given(tmp_path, caplog):
    given = fake_weights(tmp_path / "additional_files", "t2f")  # one target is enough to be a weights folder
    fake_weights(tmp_path / "additional_files" / "nested")
    with caplog.at_level(logging.INFO):
        assert resolve_weights(given, fallback=fake_weights(tmp_path / "image")) == given
    assert caplog.records == []


def test_a_tarball_unpacked_one_folder_deep(tmp_path, caplog):
    given = tmp_path / "additional_files"
    inner = fake_weights(given / "additional_files")
    (given / "README.md").parent.mkdir(exist_ok=True)
    (given / "README.md").write_text("notes")
    with caplog.at_level(logging.INFO):
        assert resolve_weights(given, fallback=fake_weights(tmp_path / "image")) == inner
    assert [r.levelno for r in caplog.records] == [logging.INFO] and str(inner) in caplog.records[0].getMessage()


def test_two_candidate_folders_inside_are_ambiguous(tmp_path):
    given = tmp_path / "additional_files"
    fake_weights(given / "v1")
    fake_weights(given / "v2")
    with pytest.raises(CheckpointError) as info:
        resolve_weights(given, fallback=fake_weights(tmp_path / "image"))
    assert "found several folders (v1, v2)" in str(info.value)


@pytest.mark.parametrize("layout", ["empty", "missing", "other-files"])
def test_an_empty_weights_folder_falls_back_to_the_image_with_a_warning(layout, tmp_path, caplog):
    """MedPerf mounts additional_files even for a cube registered without a weights tarball."""
    given = tmp_path / "additional_files"
    if layout != "missing":
        given.mkdir()
    if layout == "other-files":
        (given / "notes.txt").write_text("x")
        (given / "sub").mkdir()
    image = fake_weights(tmp_path / "mlcube_project" / "workspace" / "additional_files")
    with caplog.at_level(logging.WARNING):
        assert resolve_weights(given, fallback=image) == image
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert str(given) in record.getMessage() and str(image) in record.getMessage()


def test_no_checkpoint_anywhere_is_one_error_naming_both_folders(tmp_path):
    given, image = tmp_path / "additional_files", tmp_path / "image"
    given.mkdir()
    image.mkdir()
    with pytest.raises(CheckpointError) as info:
        resolve_weights(given, fallback=image)
    assert str(info.value) == (
        f"{given}: expected brasyn_{{t1n,t1c,t2w,t2f}}.pt (or one folder holding them), found none;"
        f" the image's {image} holds none either"
    )
    with pytest.raises(CheckpointError) as info:
        resolve_weights(image, fallback=image)  # the image's own folder: nothing to fall back to
    assert (
        str(info.value) == f"{image}: expected brasyn_{{t1n,t1c,t2w,t2f}}.pt (or one folder holding them), found none"
    )
