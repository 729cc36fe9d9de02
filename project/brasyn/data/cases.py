"""Case discovery and classification: the only module that knows BraTS folder and file naming.

A case is a sub-folder `A/` of a data folder holding `A-{mod}.nii.gz` (or `.nii`) files, mod in
t1n, t1c, t2w, t2f (and `A-seg.nii.gz` in training data). Folder names need not be BraTS ids.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np

from brasyn.constants import MODALITIES, NIFTI_EXTENSIONS, SEG_SUFFIX, Modality
from brasyn.errors import GeometryError, InputError, MissingModalityError
from brasyn.io.nifti import Geometry, load_volume

logger = logging.getLogger(__name__)


class CaseStatus(str, Enum):
    SYNTHESIS = "synthesis"  # exactly one modality missing: a synthesis target
    COMPLETE = "complete"  # all four present: nothing to synthesize
    INVALID = "invalid"  # two or more missing (or no images at all)


@dataclass(frozen=True)
class Case:
    """One case folder and the files found in it."""

    case_id: str
    folder: Path
    images: dict[Modality, Path]
    seg: Path | None = None
    ignored: tuple[Path, ...] = field(default=())
    problem: str | None = None  # why the folder itself is unusable (then the status is INVALID)

    @property
    def missing(self) -> tuple[Modality, ...]:
        return tuple(m for m in MODALITIES if m not in self.images)

    @property
    def status(self) -> CaseStatus:
        if self.problem is not None:
            return CaseStatus.INVALID
        n_missing = len(self.missing)
        if n_missing == 0:
            return CaseStatus.COMPLETE
        if n_missing == 1:
            return CaseStatus.SYNTHESIS
        return CaseStatus.INVALID

    @property
    def target(self) -> Modality:
        """The missing modality; raises `MissingModalityError` unless exactly one is missing."""
        if self.status is not CaseStatus.SYNTHESIS:
            raise MissingModalityError(self.describe_missing())
        return self.missing[0]

    def describe_missing(self) -> str:
        """One line on what the case holds: why it is invalid, or that nothing is missing."""
        if self.problem is not None:
            return self.problem
        found = ", ".join(sorted(m.value for m in self.images)) or "none"
        expected = "/".join(sorted(m.value for m in MODALITIES))
        if self.status is CaseStatus.COMPLETE:
            return f"{self.case_id}: all 4 modalities present ({found}); nothing to synthesize"
        return f"{self.case_id}: expected 3 of {expected}, found {len(self.images)} ({found})"


def _match(filename: str, case_id: str) -> str | None:
    """The suffix ("t1n", "seg", ...) of `{case_id}-{suffix}.nii[.gz]`, or None if not such a file."""
    for ext in NIFTI_EXTENSIONS:
        if filename.endswith(ext):
            stem = filename[: -len(ext)]
            prefix = f"{case_id}-"
            if stem.startswith(prefix):
                return stem[len(prefix) :].lower()
    return None


def read_case_folder(folder: Path) -> Case:
    """Inventory one case folder; unrelated files are ignored (logged at debug level).

    A modality present both as `.nii.gz` and `.nii` is an `InputError` (ambiguous input).
    """
    folder = Path(folder)
    case_id = folder.name
    images: dict[Modality, Path] = {}
    seg: Path | None = None
    ignored: list[Path] = []
    for path in sorted(folder.iterdir()):
        suffix = _match(path.name, case_id) if path.is_file() else None
        if suffix == SEG_SUFFIX:
            seg = path
            continue
        try:
            modality = Modality(suffix) if suffix is not None else None
        except ValueError:
            modality = None
        if modality is None:
            logger.debug("%s: ignoring unrelated entry %s", case_id, path.name)
            ignored.append(path)
            continue
        if modality in images:
            raise InputError(
                f"{case_id}: found {modality} twice ({images[modality].name}, {path.name}); keep one"
            )
        images[modality] = path
    return Case(case_id=case_id, folder=folder, images=images, seg=seg, ignored=tuple(ignored))


def discover_cases(data_path: Path) -> list[Case]:
    """All case folders under `data_path`, sorted by name. Hidden folders are skipped.

    A folder that cannot be inventoried (unreadable, a modality given twice) becomes an INVALID case
    carrying the reason, so that the other cases still run. Raises `InputError` if `data_path` is
    not a folder.
    """
    data_path = Path(data_path)
    if not data_path.is_dir():
        raise InputError(
            f"{data_path}: expected a folder of case folders, found {'a file' if data_path.exists() else 'nothing'}"
        )
    cases = []
    for entry in sorted(data_path.iterdir()):
        if entry.is_dir() and not entry.name.startswith("."):
            try:
                cases.append(read_case_folder(entry))
            except InputError as exc:
                cases.append(Case(case_id=entry.name, folder=entry, images={}, problem=str(exc)))
            except OSError as exc:
                problem = f"{entry.name}: cannot list the case folder ({exc.strerror or exc})"
                cases.append(Case(case_id=entry.name, folder=entry, images={}, problem=problem))
        else:
            logger.debug("ignoring %s (not a case folder)", entry.name)
    return cases


@dataclass
class CaseVolumes:
    """The volumes of one case, validated against each other, and their shared geometry."""

    case_id: str
    images: dict[Modality, np.ndarray]
    geometry: Geometry
    seg: np.ndarray | None = None


def load_case(case: Case, *, modalities: tuple[Modality, ...] | None = None, with_labels: bool = False) -> CaseVolumes:
    """Load the case's images (all present, or `modalities`) as float32 and validate them.

    Checks: every file readable, 3-D, finite; same shape and affine (within tolerance) as the first.
    Each failure raises an `InputError` subclass whose one-line message names case, file, expected
    and found.
    """
    wanted = modalities if modalities is not None else tuple(m for m in MODALITIES if m in case.images)
    absent = [m.value for m in wanted if m not in case.images]
    if absent:
        raise MissingModalityError(f"{case.case_id}: required {', '.join(absent)} not found in {case.folder}")
    if case.problem is not None:
        raise InputError(case.problem)
    if not wanted:
        raise MissingModalityError(case.describe_missing())
    images: dict[Modality, np.ndarray] = {}
    reference: Geometry | None = None
    reference_name = ""
    for modality in wanted:
        path = case.images[modality]
        data, geometry = load_volume(path, case_id=case.case_id)
        if reference is None:
            reference, reference_name = geometry, path.name
        else:
            _check_same_geometry(case.case_id, path.name, geometry, reference_name, reference)
        images[modality] = data
    assert reference is not None
    seg = None
    if with_labels:
        if case.seg is None:
            raise MissingModalityError(f"{case.case_id}: expected a segmentation {case.case_id}-seg.nii.gz, found none")
        seg_data, seg_geometry = load_volume(case.seg, case_id=case.case_id)
        _check_same_geometry(case.case_id, case.seg.name, seg_geometry, reference_name, reference)
        seg = np.rint(seg_data).astype(np.uint8)
    return CaseVolumes(case_id=case.case_id, images=images, geometry=reference, seg=seg)


def _check_same_geometry(case_id: str, name: str, geometry: Geometry, reference_name: str, reference: Geometry) -> None:
    if geometry.shape != reference.shape:
        raise GeometryError(
            f"{case_id}: {name} has shape {geometry.shape}, expected {reference.shape} like {reference_name}"
        )
    if not geometry.matches(reference):
        diff = float(np.abs(geometry.affine - reference.affine).max())
        raise GeometryError(
            f"{case_id}: {name} affine differs from {reference_name}'s by up to {diff:.3g} mm"
            " (expected the same affine)"
        )
