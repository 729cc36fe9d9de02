"""Cohorts on disk: BraTS training folders, and challenge-style validation folders with MedPerf labels.

Training:   <out>/<case>/<case>-{t1n,t1c,t2w,t2f,seg}.nii.gz, plus <out>/phantom.json (protocols).
Validation: <data>/<case>/ with exactly 3 images (one modality dropped, balanced over the four);
            <labels>/original_data/<case>/ with all 4 + seg, <labels>/missing.json (case → modality),
            <labels>/phantom.json (protocols).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import numpy as np
from tqdm import tqdm

from brasyn.constants import MODALITIES, SEG_SUFFIX, Modality, image_filename
from brasyn.errors import ConfigError
from brasyn.io.atomic import atomic_write_text
from brasyn.io.nifti import new_geometry, write_volume
from brasyn.phantom.generator import PhantomCase, PhantomConfig, generate_case
from brasyn.phantom.site import DEFAULT_NAME, site_profile, training_site

logger = logging.getLogger(__name__)

CASE_PREFIX = "BraTS-GLI"
TRAINING_FIRST_ID = 10000
VALIDATION_FIRST_ID = 20000
MISSING_STREAM = 0x6D697373  # "miss": separates the drop assignment from the case streams
PROTOCOLS_FILE = "phantom.json"
MISSING_FILE = "missing.json"
ORIGINAL_DATA = "original_data"


class CohortResult(NamedTuple):
    """What was written: case ids in order, their folders, and for validation the dropped modality."""

    case_ids: list[str]
    folders: list[Path]
    missing: dict[str, Modality]


def case_id(number: int, prefix: str = CASE_PREFIX) -> str:
    """BraTS-like id, e.g. `BraTS-GLI-10003-000`."""
    if not 0 <= number <= 99999:
        raise ConfigError(f"case number {number}: expected 0 … 99999 (5 digits)")
    return f"{prefix}-{number:05d}-000"


def assign_missing(n_cases: int, seed: int) -> list[Modality]:
    """Dropped modality per case: a seeded permutation of t1n, t1c, t2w, t2f, t1n, … (balanced)."""
    cyclic = np.arange(n_cases) % len(MODALITIES)
    order = np.random.default_rng([int(seed), MISSING_STREAM]).permutation(n_cases)
    return [MODALITIES[int(k)] for k in cyclic[order]]


def _write_json(data: dict, path: Path) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_case(
    folder: Path, name: str, case: PhantomCase, modalities: Iterable[Modality], *, with_labels: bool
) -> list[Path]:
    """Write `modalities` (int16) and optionally the seg (uint8) of `case` into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    geometry = new_geometry(case.seg.shape, case.affine)
    written = [write_volume(case.images[m], folder / image_filename(name, m), geometry) for m in modalities]
    if with_labels:
        written.append(write_volume(case.seg, folder / image_filename(name, SEG_SUFFIX), geometry, dtype=np.uint8))
    return written


def _check(n_cases: int, first_id: int) -> None:
    if n_cases < 1:
        raise ConfigError(f"--cases: expected at least 1, found {n_cases}")
    case_id(first_id)
    case_id(first_id + n_cases - 1)


def write_training_cohort(
    out_dir: Path,
    n_cases: int,
    seed: int,
    config: PhantomConfig = PhantomConfig(),
    *,
    first_id: int = TRAINING_FIRST_ID,
    prefix: str = CASE_PREFIX,
    progress: bool | None = None,
) -> CohortResult:
    """Write `n_cases` complete cases (4 images + seg). Case k uses index `first_id + k` of `seed`.
    A training site only (`brasyn.phantom.site.TRAINING_SITES`): the shifted site is held out."""
    _check(n_cases, first_id)
    training_site(config.site)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ids, folders, protocols = [], [], {}
    bar = tqdm(
        range(first_id, first_id + n_cases),
        desc="phantom train",
        unit="case",
        disable=not progress if progress is not None else None,  # None: only on a terminal
    )
    for number in bar:
        name = case_id(number, prefix)
        case = generate_case(number, seed, config)
        write_case(out_dir / name, name, case, MODALITIES, with_labels=True)
        ids.append(name)
        folders.append(out_dir / name)
        protocols[name] = case.protocol
        logger.info("%s: written (%s)", name, _summary(case))
    _write_json({"seed": seed, "config": _config_dict(config), "cases": protocols}, out_dir / PROTOCOLS_FILE)
    return CohortResult(ids, folders, {})


def write_validation_cohort(
    data_dir: Path,
    labels_dir: Path,
    n_cases: int,
    seed: int,
    config: PhantomConfig = PhantomConfig(),
    *,
    first_id: int = VALIDATION_FIRST_ID,
    prefix: str = CASE_PREFIX,
    progress: bool | None = None,
) -> CohortResult:
    """Write challenge-style cases with one modality dropped, and the MedPerf ground truth aside."""
    _check(n_cases, first_id)
    data_dir, labels_dir = Path(data_dir), Path(labels_dir)
    if data_dir.resolve() == labels_dir.resolve():
        raise ConfigError(f"{data_dir}: the data and labels folders must differ")
    data_dir.mkdir(parents=True, exist_ok=True)
    (labels_dir / ORIGINAL_DATA).mkdir(parents=True, exist_ok=True)
    dropped = assign_missing(n_cases, seed)
    ids, folders, protocols, missing = [], [], {}, {}
    numbers = range(first_id, first_id + n_cases)
    for number, drop in tqdm(
        list(zip(numbers, dropped, strict=True)), desc="phantom validation", unit="case",
        disable=not progress if progress is not None else None,
    ):
        name = case_id(number, prefix)
        case = generate_case(number, seed, config)
        folder = data_dir / name
        write_case(folder, name, case, [m for m in MODALITIES if m is not drop], with_labels=False)
        for stale in (image_filename(name, drop), image_filename(name, SEG_SUFFIX)):
            if (folder / stale).exists():  # left by an earlier run into the same folder
                (folder / stale).unlink()
                logger.warning("%s: removed stale %s so the case holds exactly 3 images", name, stale)
        write_case(labels_dir / ORIGINAL_DATA / name, name, case, MODALITIES, with_labels=True)
        ids.append(name)
        folders.append(folder)
        missing[name] = drop
        protocols[name] = {**case.protocol, "missing": str(drop)}
        logger.info("%s: written without %s (%s)", name, drop, _summary(case))
    _write_json({name: str(m) for name, m in missing.items()}, labels_dir / MISSING_FILE)
    _write_json({"seed": seed, "config": _config_dict(config), "cases": protocols}, labels_dir / PROTOCOLS_FILE)
    return CohortResult(ids, folders, missing)


def _summary(case: PhantomCase) -> str:
    labels = case.protocol["tumour"]["label_voxels"]
    t1 = case.protocol["sequences"]["t1n"]["kind"]
    return f"{case.protocol['field_strength']} T, T1 {t1}, NCR/ED/ET voxels {labels['1']}/{labels['2']}/{labels['3']}"


def _config_dict(config: PhantomConfig) -> dict:
    """The config as recorded in phantom.json; a non-default site adds its name and its ranges (the
    default site's record is exactly what it was before sites existed)."""
    from brasyn.config import to_dict

    data = to_dict(config)
    if config.site == DEFAULT_NAME:
        del data["site"]
    else:
        data["site_profile"] = site_profile(config.site).to_dict()
    return data
