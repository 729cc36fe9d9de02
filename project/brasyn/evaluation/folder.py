"""The ground-truth labels layout and checks of a prediction folder against the BraSyn output contract.

Labels (MedPerf layout):

    <labels>/missing.json                              {"<case>": "<missing modality>", ...}
    <labels>/original_data/<case>/<case>-{t1n,t1c,t2w,t2f,seg}.nii.gz

Predictions: exactly one `{case}-{missing}.nii.gz` per case, flat, nothing else in the folder
(the evaluator reads the case id from the file name and asserts the modality suffix).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from brasyn.constants import MODALITIES, OUTPUT_EXTENSION, SEG_SUFFIX, Modality, image_filename
from brasyn.data.cases import Case, read_case_folder
from brasyn.errors import InputError
from brasyn.io.nifti import AFFINE_TOLERANCE, Geometry

MISSING_JSON = "missing.json"
ORIGINAL_DATA = "original_data"


class Problem(NamedTuple):
    """One defect of a prediction folder or file. `case_id` is "" for entries that match no case."""

    case_id: str
    # missing | subfolder | wrong-suffix | wrong-extension | stray | unreadable | shape | affine | background |
    # non-finite | missing-seg | unreadable-truth
    kind: str
    path: str  # file name (relative to the checked folder)
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class LabelCase:
    """One ground-truth case: the modality that was dropped and the complete original folder."""

    case_id: str
    missing: Modality
    case: Case

    @property
    def sources(self) -> tuple[Modality, ...]:
        return tuple(m for m in MODALITIES if m != self.missing)

    @property
    def prediction_name(self) -> str:
        return image_filename(self.case_id, self.missing)


def missing_prediction(case: LabelCase) -> Problem:
    """The problem of a case whose prediction file is absent (one wording for the folder check and the scores)."""
    message = f"{case.case_id}: prediction {case.prediction_name} not found"
    return Problem(case.case_id, "missing", case.prediction_name, message)


def read_labels(labels: Path) -> list[LabelCase]:
    """The cases listed in `<labels>/missing.json`, sorted by id, each with its complete folder.

    Raises `InputError` naming the file when the layout is incomplete (no missing.json, a listed case
    without folder, an unknown modality, or a folder lacking the dropped modality's ground truth).
    """
    labels = Path(labels)
    listing = labels / MISSING_JSON
    if not listing.is_file():
        raise InputError(f"{labels}: expected the MedPerf labels layout with {MISSING_JSON}, found no such file")
    try:
        mapping = json.loads(listing.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{listing}: cannot read ({exc})") from exc
    if not isinstance(mapping, dict) or not mapping:
        raise InputError(f"{listing}: expected a non-empty mapping case → modality, found {type(mapping).__name__}")
    cases = []
    for case_id in sorted(mapping):
        try:
            missing = Modality.parse(str(mapping[case_id]))
        except ValueError as exc:
            raise InputError(f"{listing}: case {case_id}: {exc}") from None
        folder = labels / ORIGINAL_DATA / case_id
        if not folder.is_dir():
            raise InputError(f"{case_id}: listed in {MISSING_JSON} but {folder} is not a folder")
        case = read_case_folder(folder)
        if missing not in case.images:
            raise InputError(f"{case_id}: ground truth {image_filename(case_id, missing)} not found in {folder}")
        cases.append(LabelCase(case_id=case_id, missing=missing, case=case))
    return cases


def _strip_extension(name: str) -> tuple[str, str]:
    for ext in (".nii.gz", ".nii", ".gz"):
        if name.endswith(ext):
            return name[: -len(ext)], ext
    stem, dot, ext = name.rpartition(".")
    return (stem, "." + ext) if dot else (name, "")


def _classify_stray(name: str, is_dir: bool, expected: dict[str, Modality]) -> Problem:
    """Name the kind of an unexpected folder entry, matching the longest case id it starts with."""
    if is_dir:
        return Problem(
            "",
            "subfolder",
            name,
            f"{name}/: sub-folder in the prediction folder (predictions must be flat, nothing else)",
        )
    stem, ext = _strip_extension(name)
    owners = [c for c in expected if stem.startswith(f"{c}-") or stem == c]
    if not owners:
        return Problem(
            "", "stray", name, f"{name}: stray file matching no case (the folder must hold only predictions)"
        )
    case_id = max(owners, key=len)
    missing = expected[case_id]
    wanted = image_filename(case_id, missing)
    suffix = stem[len(case_id) + 1 :].lower()
    if suffix == missing.value and ext != OUTPUT_EXTENSION:
        return Problem(
            case_id, "wrong-extension", name, f"{case_id}: {name} has extension {ext or 'none'}, expected {wanted}"
        )
    if suffix in {m.value for m in MODALITIES} | {SEG_SUFFIX}:
        what = "a copy of an input" if suffix != missing.value else "a duplicate"
        if suffix == SEG_SUFFIX:
            what = "a segmentation"
        return Problem(
            case_id, "wrong-suffix", name, f"{case_id}: {name} ends with -{suffix} ({what}); expected only {wanted}"
        )
    return Problem(case_id, "wrong-suffix", name, f"{case_id}: {name} has suffix -{suffix}; expected {wanted}")


def check_folder_names(pred_dir: Path, cases: list[LabelCase]) -> tuple[dict[str, Path], list[Problem]]:
    """Inventory `pred_dir`: the expected prediction of each case that is present, and every problem
    (missing prediction, sub-folder, wrong suffix or extension, stray file, hidden files included)."""
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise InputError(
            f"{pred_dir}: expected a folder of predictions, found {'a file' if pred_dir.exists() else 'nothing'}"
        )
    expected = {c.case_id: c.missing for c in cases}
    wanted = {c.prediction_name: c.case_id for c in cases}
    found: dict[str, Path] = {}
    problems: list[Problem] = []
    for entry in sorted(pred_dir.iterdir()):
        if entry.name in wanted and entry.is_file():
            found[wanted[entry.name]] = entry
        else:
            problems.append(_classify_stray(entry.name, entry.is_dir(), expected))
    for case in cases:
        if case.case_id not in found:
            problems.append(missing_prediction(case))
    return found, problems


def check_prediction_volume(
    case_id: str,
    name: str,
    data: np.ndarray,
    geometry: Geometry,
    reference: Geometry,
    sources: list[np.ndarray],
) -> list[Problem]:
    """Content checks of one loaded prediction: shape and affine as the ground truth, finite values,
    background exactly 0 wherever all sources are 0. Shape problems stop the other checks."""
    if geometry.shape != reference.shape:
        return [
            Problem(
                case_id,
                "shape",
                name,
                f"{case_id}: {name} has shape {geometry.shape}, expected {reference.shape} like the ground truth",
            )
        ]
    problems = []
    if not np.allclose(geometry.affine, reference.affine, atol=AFFINE_TOLERANCE):
        diff = float(np.abs(geometry.affine - reference.affine).max())
        problems.append(
            Problem(
                case_id,
                "affine",
                name,
                f"{case_id}: {name} affine differs from the ground truth's by up to {diff:.3g} mm",
            )
        )
    finite = np.isfinite(data)
    if not finite.all():
        problems.append(
            Problem(
                case_id,
                "non-finite",
                name,
                f"{case_id}: {name} holds {int((~finite).sum())} NaN/infinite voxels (scored as 0)",
            )
        )
    background = np.ones(reference.shape, dtype=bool)
    for source in sources:
        background &= source == 0
    outside = background & (data != 0)
    if outside.any():
        values = np.abs(data[outside & finite])
        largest = f", |value| up to {values.max():.4g}" if values.size else ""
        problems.append(
            Problem(
                case_id,
                "background",
                name,
                f"{case_id}: {name} is non-zero in {int(outside.sum())} background voxels (sources all 0){largest};"
                " expected exactly 0",
            )
        )
    return problems
