"""Python API: `synthesize` one case from exactly three files, as the folder run would."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from brasyn.constants import image_filename, sources_for
from brasyn.errors import MissingModalityError
from brasyn.inference import (
    synthesize,
    synthesize_folder,
)
from brasyn.io.nifti import load_volume


def test_synthesize_single_case_matches_the_folder_run(weights, cohort, tmp_path):
    data, missing = cohort
    case_id = sorted(missing)[2]
    target = missing[case_id]
    inputs = {m.value: data / case_id / image_filename(case_id, m) for m in sources_for(target)}
    written = synthesize(**inputs, output_file=tmp_path / "single" / "x.nii.gz", weights=weights)
    synthesize_folder(data, tmp_path / "out", weights)
    single, geometry = load_volume(written)
    folder, _ = load_volume(tmp_path / "out" / image_filename(case_id, target))
    np.testing.assert_array_equal(single, folder)
    assert nib.load(str(written)).get_data_dtype() == np.int16


def test_synthesize_failed_segmentation_write_leaves_no_output(weights, cohort, tmp_path):
    data, missing = cohort
    case_id = sorted(missing)[0]
    inputs = {m.value: data / case_id / image_filename(case_id, m) for m in sources_for(missing[case_id])}
    out = tmp_path / "single"
    (out / "seg.nii.gz").mkdir(parents=True)  # a folder where the segmentation file should go
    with pytest.raises(OSError):
        synthesize(**inputs, output_file=out / "x.nii.gz", segmentation_file=out / "seg.nii.gz", weights=weights)
    assert sorted(p.name for p in out.iterdir()) == ["seg.nii.gz"]  # no image, no temporary file
    written = synthesize(
        **inputs, output_file=out / "x.nii.gz", segmentation_file=tmp_path / "new" / "seg.nii.gz", weights=weights
    )
    assert written.is_file() and (tmp_path / "new" / "seg.nii.gz").is_file()  # the segmentation's folder is created


@pytest.mark.parametrize("given", [("t1n", "t1c"), ("t1n", "t1c", "t2w", "t2f"), ()])
def test_synthesize_needs_exactly_three_inputs(given, tmp_path, weights):
    with pytest.raises(MissingModalityError) as info:
        synthesize(**{m: tmp_path / f"{m}.nii.gz" for m in given}, output_file=tmp_path / "o.nii.gz", weights=weights)
    assert f"expected exactly 3 of t1n/t1c/t2w/t2f, found {len(given)}" in str(info.value)
    assert not (tmp_path / "o.nii.gz").exists()
