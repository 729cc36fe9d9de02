"""`brasyn evaluate`: score prediction folders against the MedPerf labels layout and write the report.

Outputs (in `out_dir`): `cases.csv` (one row per run and case), `summary.json` (per missing
modality means, the paper's average, every problem found), `qc/<case>.png` montages and
`overview.png`. `format_table` renders the paper's Table 1 layout for the terminal.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import tempfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from tqdm import tqdm

from brasyn.constants import MODALITIES, REGIONS, SEG_SUFFIX, Modality, image_filename
from brasyn.data.cases import CaseVolumes, load_case
from brasyn.data.normalization import brain_mask
from brasyn.errors import InputError
from brasyn.evaluation import qc
from brasyn.evaluation.dice import region_dice
from brasyn.evaluation.enhancement import COLUMNS as ENHANCEMENT_COLUMNS
from brasyn.evaluation.enhancement import enhancement_scores
from brasyn.evaluation.folder import (
    LabelCase,
    Problem,
    check_folder_names,
    check_prediction_volume,
    missing_prediction,
    read_labels,
)
from brasyn.evaluation.segmenters import Segmenter, SetResult, apply_relabel, segment_set
from brasyn.evaluation.ssim import container_ssim, percentile_scores
from brasyn.io.atomic import atomic_path, atomic_write_text
from brasyn.io.nifti import Geometry, load_volume

logger = logging.getLogger(__name__)

SSIM_COLUMNS = (
    "ssim_container", "ssim_full", "ssim_tumour", "ssim_tumour_region", "ssim_healthy", "ssim_healthy_region",
)
ERROR_COLUMNS = ("psnr_brain", "mse_brain", "psnr_tumour", "mse_tumour", "psnr_healthy", "mse_healthy")
DICE_COLUMNS = tuple(f"dice_{region}" for region in REGIONS)
# BraSyn's second criterion: an independent segmenter on the real set, on the completed set, and the difference
DOWNSTREAM_SETS = ("real", "completed", "delta")
DOWNSTREAM_COLUMNS = tuple(f"dice_{kind}_{region}" for kind in DOWNSTREAM_SETS for region in REGIONS)
SCORE_COLUMNS = SSIM_COLUMNS + ERROR_COLUMNS + DICE_COLUMNS + DOWNSTREAM_COLUMNS
SCORE_COLUMNS += ENHANCEMENT_COLUMNS  # T1-ce cases only (brasyn.evaluation.enhancement)
CSV_COLUMNS = ("run", "case", "missing", "status", *SCORE_COLUMNS, "problems")
RENAMED_COLUMNS = {
    "ssim_tumor": "ssim_tumour", "ssim_tumor_region": "ssim_tumour_region", "psnr_tumor": "psnr_tumour",
    "mse_tumor": "mse_tumour",
}
"""Column names of reports written before one spelling ("tumour") was used throughout -> today's."""


def with_current_names(scores: Mapping[str, Any]) -> dict[str, Any]:
    """A row of `cases.csv` or a score mapping of `summary.json`, old or new, with today's column names."""
    return {RENAMED_COLUMNS.get(key, key): value for key, value in scores.items()}


def read_cases_csv(path: Path) -> list[dict[str, str]]:
    """The rows of a `cases.csv` (this version's or an earlier one), keyed by today's column names."""
    with open(path, newline="") as handle:
        return [with_current_names(row) for row in csv.DictReader(handle)]

# The paper's Table 1 order and names.
TABLE_MODALITIES: tuple[tuple[Modality, str], ...] = (
    (Modality.T1N, "T1"),
    (Modality.T1C, "T1-ce"),
    (Modality.T2F, "FLAIR"),
    (Modality.T2W, "T2"),
)
TABLE_METRICS: tuple[tuple[str, str], ...] = (
    ("ssim_container", "SSIM, MedPerf 2023 container (2-D slices, shared scale)"),
    ("ssim_full", "SSIM, organizers' script (3-D, percentile-normalized, whole volume)"),
    ("ssim_tumour_region", "SSIM inside the tumour (pred·mask vs gt·mask)"),
    ("ssim_healthy_region", "SSIM inside the healthy brain"),
    ("psnr_brain", "PSNR in the brain (dB, percentile-normalized)"),
    ("dice_ET", "Dice ET of the model's segmentation"),
    ("dice_TC", "Dice TC of the model's segmentation"),
    ("dice_WT", "Dice WT of the model's segmentation"),
    ("enhancement_ratio_pred", "Enhancement ratio of the prediction (T1-ce: mean ET / median healthy brain)"),
    ("enhancement_ratio_truth", "Enhancement ratio of the truth"),
    ("enhancement_recovered", "Enhancement recovered (T1-ce: (pred ratio - 1) / (truth ratio - 1))"),
)

CONVENTIONS = {
    "ssim_container": "2023 MedPerf cube (GaNDLF + torchmetrics 0.8.1): 2-D SSIM of each first-axis slice, both images "
    "divided by 254·P99.5(gt) and clipped at 0, data range from the data, mean of the full reflect-padded map",
    "ssim_full": "organizers' script: each image clipped to its own [max(P0.5,0), P99.5] and scaled to [0,1]; "
    "3-D SSIM 11³ σ1.5, mean of the map cropped by 5 voxels",
    "ssim_tumour / ssim_healthy": "same on pred·mask vs gt·mask (mask = seg>0) / on the complements, map cropped by 5",
    "ssim_tumour_region / ssim_healthy_region": "the same maps averaged inside the tumour / inside brain minus tumour",
    "psnr_* / mse_*": "on the percentile-normalized images, data range 1, inside brain / tumour / healthy brain",
    "dice_*": "legacy Dice of the model's segmentation vs the ground truth (both empty = 1)",
    "dice_real_* / dice_completed_* / dice_delta_*": "BraSyn's segmentation criterion: Dice (ET = 3, TC = 1+3, "
    "WT = 1+2+3; both empty = 1) of an independent segmenter run on the four real sequences, on the completed set "
    "(three real sequences + the prediction), and completed minus real",
    "enhancement_*": "missing T1-ce only: ratio = mean over label 3 / median over brain minus tumour, of the "
    "prediction and of the truth (scanner units); recovered = (pred ratio - 1) / (truth ratio - 1)",
    "mean": "average of the per-missing-modality means (the paper's 'Mean' column)",
}


@dataclass
class CaseResult:
    """Scores and problems of one prediction. status: ok | flagged (scored despite problems) | not scored."""

    case_id: str
    missing: Modality
    status: str
    scores: dict[str, float] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


@dataclass
class RunResult:
    """One prediction folder (the model, or the baseline) evaluated on every labelled case."""

    name: str
    pred_dir: Path
    cases: list[CaseResult]
    folder_problems: list[Problem]  # entries that belong to no scored case: stray files, sub-folders

    @property
    def problems(self) -> list[Problem]:
        return self.folder_problems + [p for c in self.cases for p in c.problems]

    def by_modality(self, metric: str) -> dict[Modality, float]:
        """Mean of `metric` over the scored cases of each missing modality (NaN values skipped; a
        perfect case's infinite PSNR makes the mean infinite)."""
        out = {}
        for modality, _ in TABLE_MODALITIES:
            values = [c.scores.get(metric, math.nan) for c in self.cases if c.missing == modality]
            values = [v for v in values if not math.isnan(v)]
            if values:
                out[modality] = float(np.mean(values))
        return out

    def mean_of_modalities(self, metric: str) -> float:
        values = list(self.by_modality(metric).values())  # the paper's Mean: over missing modalities
        return float(np.mean(values)) if values else math.nan

    def summary(self) -> dict[str, Any]:
        metrics = [m for m in SCORE_COLUMNS if any(m in c.scores for c in self.cases)]
        per_modality = {}
        for modality, _ in TABLE_MODALITIES:
            cases = [c for c in self.cases if c.missing == modality]
            if cases:
                entry: dict[str, Any] = {"cases": len(cases), "scored": sum(c.status != "not scored" for c in cases)}
                entry.update({m: _json_number(self.by_modality(m).get(modality, math.nan)) for m in metrics})
                per_modality[modality.value] = entry
        return {
            "predictions": str(self.pred_dir),
            "cases": len(self.cases),
            "scored": sum(c.status != "not scored" for c in self.cases),
            "clean": not self.problems,
            "mean": {m: _json_number(self.mean_of_modalities(m)) for m in metrics},
            "per_missing_modality": per_modality,
            "problems": [p._asdict() for p in self.problems],
        }


@dataclass
class Evaluation:
    runs: list[RunResult]
    pictures: list[Path] = field(default_factory=list)
    segmenter: str | None = None  # the independent segmenter of the downstream criterion, when run

    @property
    def clean(self) -> bool:
        return not any(run.problems for run in self.runs)


def _json_number(value: float) -> float | None:
    """JSON has no NaN or infinity: both become null (an infinite PSNR means a perfect prediction)."""
    return value if math.isfinite(value) else None


def _load_prediction(
    path: Path, label: LabelCase, reference: Geometry, sources: list[np.ndarray]
) -> tuple[np.ndarray | None, list[Problem]]:
    """Load one prediction and run the content checks; the array is None when it cannot be scored."""
    try:
        data, geometry = load_volume(path, case_id=label.case_id, check_finite=False)
    except InputError as exc:
        return None, [Problem(label.case_id, "unreadable", path.name, str(exc))]
    problems = check_prediction_volume(label.case_id, path.name, data, geometry, reference, sources)
    if any(p.kind == "shape" for p in problems):
        return None, problems
    return np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0), problems


def score_case(
    prediction: np.ndarray, truth: np.ndarray, seg: np.ndarray | None, brain: np.ndarray
) -> dict[str, float]:
    """Both SSIM conventions, PSNR and MSE of one prediction (scanner units) against the truth."""
    tumour = (seg > 0) if seg is not None else np.zeros(truth.shape, dtype=bool)
    scores = {"ssim_container": container_ssim(prediction, truth)}
    scores.update(percentile_scores(prediction, truth, tumour, brain)._asdict())
    return scores


def _seg_scores(
    segmentation_dir: Path, label: LabelCase, truth_seg: np.ndarray | None, shape
) -> tuple[dict[str, float], list[Problem]]:
    name = image_filename(label.case_id, SEG_SUFFIX)
    path = Path(segmentation_dir) / name
    if not path.is_file():
        message = f"{label.case_id}: segmentation {name} not found in {segmentation_dir}"
        return {}, [Problem(label.case_id, "missing-seg", name, message)]
    if truth_seg is None:
        return {}, []
    try:
        data, geometry = load_volume(path, case_id=label.case_id, check_finite=False)
    except InputError as exc:
        return {}, [Problem(label.case_id, "unreadable", name, str(exc))]
    if geometry.shape != tuple(shape):
        message = f"{label.case_id}: {name} has shape {geometry.shape}, expected {tuple(shape)}"
        return {}, [Problem(label.case_id, "shape", name, message)]
    dice = region_dice(np.nan_to_num(data), truth_seg)
    return {f"dice_{region}": value for region, value in dice.items()}, []


class _Run(NamedTuple):
    """One prediction folder being scored: its result so far, the predictions found by case id, and
    where its segmentations are (only the model's are scored)."""

    result: RunResult
    found: dict[str, Path]
    segmentation_dir: Path | None


def evaluate(
    pred_dir: Path,
    labels_dir: Path,
    *,
    segmentation_dir: Path | None = None,
    baseline_dir: Path | None = None,
    out_dir: Path | None = None,
    pictures: bool = True,
    progress: bool | None = None,
    segmenter: Segmenter | None = None,
) -> Evaluation:
    """Score `pred_dir` (and `baseline_dir`) against `labels_dir`; write the report into `out_dir`.

    Every case is loaded once and all runs are scored on it. Problems are collected, not raised:
    whatever can be scored is scored. Raises `InputError` only for an unusable labels layout or a
    prediction folder that does not exist.

    With a `segmenter`, BraSyn's second criterion too: the segmenter runs once on the real set (the
    four real sequences of every case) and once per run on its completed sets (three real sequences
    + the prediction), in a temporary folder and in a background thread beside the image scores
    (single-threaded SciPy: the segmenter gets the other cores), and each case gets Dice ET/TC/WT on
    both and the difference (`dice_real_*`, `dice_completed_*`, `dice_delta_*`).
    """
    labels = read_labels(labels_dir)
    folders = [("model", Path(pred_dir), segmentation_dir)]
    if baseline_dir is not None:
        folders.append(("baseline", Path(baseline_dir), None))
    runs = [_open_run(name, folder, run_segmentation_dir, labels) for name, folder, run_segmentation_dir in folders]
    pictured: dict[str, qc.CaseSlices] = {}
    scored: list[tuple[LabelCase, list[bool]]] = []  # cases whose truth was read, and which runs were scored
    with ExitStack() as stack:
        pending = None
        if segmenter is not None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="brasyn-segmenter-")))
            background = stack.enter_context(ThreadPoolExecutor(max_workers=1, thread_name_prefix="segmenter"))
            pending = background.submit(_run_segmenter, segmenter, labels, runs, workdir)
        for label in tqdm(labels, desc="evaluate", unit="case", disable=not progress if progress is not None else None):
            try:
                gt = load_case(label.case, with_labels=label.case.seg is not None)
            except InputError as exc:  # one broken ground-truth case must not stop the others
                logger.error("%s: ground truth unreadable, case not scored: %s", label.case_id, exc)
                for run in runs:
                    run.result.cases.append(_unreadable_truth(run, label, exc))
                continue
            truth = gt.images[label.missing]
            sources = [gt.images[m] for m in label.sources]
            brain = brain_mask(list(gt.images.values()))
            predictions = [_score_run(run, label, gt, truth, sources, brain) for run in runs]
            scored.append((label, [p is not None for p in predictions]))
            if out_dir is not None and pictures and predictions[0] is not None:
                pictured[label.case_id] = _qc_slices(label, gt, predictions[0], truth)
        maps: dict[str, dict[str, np.ndarray]] = {}
        if pending is not None:
            downstream = pending.result()
            for label, runs_scored in scored:
                results = [next(c for c in run.result.cases if c.case_id == label.case_id) for run in runs]
                z = pictured[label.case_id].z if label.case_id in pictured else None
                maps[label.case_id] = _score_downstream(downstream, runs, label, results, runs_scored, z)
    slices: list[qc.CaseSlices] = []
    written: list[Path] = []
    for case_id, s in pictured.items():
        s = _finish_qc(s, runs[0].result.cases, maps.get(case_id, {}))
        written.append(qc.save_png(qc.montage(s), Path(out_dir) / "qc" / f"{case_id}.png"))
        slices.append(s)
    evaluation = Evaluation(runs=[run.result for run in runs], segmenter=segmenter and segmenter.description)
    if out_dir is not None:
        written += _write_report(evaluation, Path(out_dir), slices if pictures else None)
    evaluation.pictures = written
    return evaluation


def _open_run(name: str, folder: Path, segmentation_dir: Path | None, labels: list[LabelCase]) -> _Run:
    """Check a prediction folder's file names against the labels. A missing prediction is only
    logged here (it becomes the case's problem); the other findings belong to the folder."""
    present, problems = check_folder_names(folder, labels)
    result = RunResult(
        name=name, pred_dir=folder, cases=[], folder_problems=[p for p in problems if p.kind != "missing"]
    )
    for p in problems:
        if p.kind == "missing":
            logger.warning("%s", p.message)
    return _Run(result=result, found=present, segmentation_dir=segmentation_dir)


def _unreadable_truth(run: _Run, label: LabelCase, exc: InputError) -> CaseResult:
    """The result of a case whose ground truth cannot be read (plus its missing prediction, if so)."""
    problems = [Problem(label.case_id, "unreadable-truth", label.case.folder.name, f"ground truth unreadable: {exc}")]
    if label.case_id not in run.found:
        problems.append(missing_prediction(label))
    return CaseResult(label.case_id, label.missing, "not scored", problems=problems)


def _score_run(
    run: _Run, label: LabelCase, gt: CaseVolumes, truth: np.ndarray, sources: list[np.ndarray], brain: np.ndarray
) -> np.ndarray | None:
    """Score one run's prediction of one case and append the result; returns the prediction (None
    when it could not be scored)."""
    path = run.found.get(label.case_id)
    if path is None:
        run.result.cases.append(
            CaseResult(label.case_id, label.missing, "not scored", problems=[missing_prediction(label)])
        )
        return None
    prediction, problems = _load_prediction(path, label, gt.geometry, sources)
    if prediction is None:
        run.result.cases.append(CaseResult(label.case_id, label.missing, "not scored", problems=problems))
        return None
    scores = score_case(prediction, truth, gt.seg, brain)
    if label.missing is Modality.T1C:
        scores.update(enhancement_scores(prediction, truth, gt.seg, brain))
    if run.segmentation_dir is not None:
        dice, seg_problems = _seg_scores(run.segmentation_dir, label, gt.seg, truth.shape)
        scores.update(dice)
        problems += seg_problems
    status = "flagged" if problems else "ok"
    run.result.cases.append(CaseResult(label.case_id, label.missing, status, scores=scores, problems=problems))
    logger.info(
        "%s %s (%s): SSIM container %.4f, whole %.4f, tumour %.4f, healthy %.4f%s",
        run.result.name,
        label.case_id,
        label.missing,
        scores["ssim_container"],
        scores["ssim_full"],
        scores["ssim_tumour_region"],
        scores["ssim_healthy_region"],
        f" [{len(problems)} problem(s)]" if problems else "",
    )
    return prediction


def _qc_slices(label: LabelCase, gt: CaseVolumes, prediction: np.ndarray, truth: np.ndarray) -> qc.CaseSlices:
    """The QC slices of the model's prediction of one case (captioned later, by `_finish_qc`)."""
    return qc.case_slices(
        label.case_id, label.missing.value, {m.value: gt.images[m] for m in label.sources}, prediction, truth, gt.seg
    )


def _finish_qc(s: qc.CaseSlices, results: list[CaseResult], maps: dict[str, np.ndarray]) -> qc.CaseSlices:
    """Caption the slices with both SSIM conventions (and the downstream WT / ET Dice, real -> completed,
    when the independent segmenter ran) and add the segmenter's maps at the picture's slice (X, Y)."""
    scores = next(c.scores for c in results if c.case_id == s.case_id)
    caption = f"SSIM {scores['ssim_container']:.3f} / {scores['ssim_full']:.3f}"
    if "dice_completed_WT" in scores and "dice_real_WT" in scores:
        caption += "  seg Dice real->completed " + ", ".join(
            f"{r} {scores[f'dice_real_{r}']:.2f}->{scores[f'dice_completed_{r}']:.2f}" for r in ("WT", "ET")
        )
    segmentations = {name: np.asarray(m).astype(np.uint8) for name, m in maps.items()}
    return dataclasses.replace(s, caption=caption, segmentations=segmentations)


class _Downstream(NamedTuple):
    """The independent segmenter's runs: on the real set, and on each prediction run's completed set."""

    real: SetResult
    completed: dict[str, SetResult]
    relabel: tuple[tuple[int, int], ...] = ()


def _run_segmenter(segmenter: Segmenter, labels: list[LabelCase], runs: list[_Run], workdir: Path) -> _Downstream:
    """Run the segmenter once on the real set and once per run on its completed set (all cases in each call)."""
    real_sets = {label.case_id: {m: label.case.images[m] for m in MODALITIES} for label in labels}
    logger.info("segmenter %s: real set, %d cases", segmenter.description, len(real_sets))
    real = segment_set(segmenter, real_sets, workdir, "real")
    completed = {}
    for run in runs:
        sets = {}
        for label in labels:
            if label.case_id in run.found:
                images = {m: label.case.images[m] for m in label.sources}
                images[label.missing] = run.found[label.case_id]
                sets[label.case_id] = images
        logger.info("segmenter %s: %s completed set, %d cases", segmenter.description, run.result.name, len(sets))
        completed[run.result.name] = segment_set(segmenter, sets, workdir, f"completed-{run.result.name}")
    return _Downstream(real=real, completed=completed, relabel=tuple(segmenter.relabel))


def _read_map(
    found: SetResult, label: LabelCase, shape: tuple[int, ...], relabel: tuple[tuple[int, int], ...] = ()
) -> tuple[np.ndarray | None, str | None]:
    """(label map in BraTS 2023 labels, None) or (None, one-line reason) of one case in one segmenter run."""
    if label.case_id in found.errors:
        return None, found.errors[label.case_id]
    path = found.maps[label.case_id]
    try:
        data, geometry = load_volume(path, case_id=label.case_id, check_finite=False)
    except InputError as exc:
        return None, f"{label.case_id}: segmenter output unreadable: {exc}"
    if geometry.shape != tuple(shape):
        expected = tuple(shape)
        return None, f"{label.case_id}: segmenter output {path.name} has shape {geometry.shape}, expected {expected}"
    labels = apply_relabel(np.rint(np.nan_to_num(data)).astype(np.int64), relabel)
    return np.clip(labels, 0, 255).astype(np.uint8), None


def _truth_seg(label: LabelCase) -> tuple[np.ndarray | None, tuple[int, ...]]:
    """The ground-truth label map (None without one) and the case's shape."""
    if label.case.seg is None:
        _, geometry = load_volume(label.case.images[label.missing], case_id=label.case_id)
        return None, geometry.shape
    data, geometry = load_volume(label.case.seg, case_id=label.case_id)
    return np.rint(data).astype(np.uint8), geometry.shape


def _score_downstream(
    downstream: _Downstream,
    runs: list[_Run],
    label: LabelCase,
    results: list[CaseResult],
    scored: list[bool],
    z: int | None = None,
) -> dict[str, np.ndarray]:
    """Add the downstream Dice (real, completed, delta) to each scored run's result of this case; returns
    the model run's maps at axial slice `z` for the QC picture ({"real set": ..., "completed set": ...};
    nothing without `z`)."""
    seg, shape = _truth_seg(label)
    real, real_error = _read_map(downstream.real, label, shape, downstream.relabel)
    maps: dict[str, np.ndarray] = {}
    if real is not None and z is not None:
        maps["real set"] = real[:, :, z]
    for index, (run, result, was_scored) in enumerate(zip(runs, results, scored, strict=True)):
        if not was_scored:
            continue  # not scored: its problem is already reported
        completed, completed_error = _read_map(downstream.completed[run.result.name], label, shape, downstream.relabel)
        errors = [e for e in (real_error, completed_error) if e is not None]
        if seg is None:
            errors.append(f"{label.case_id}: no ground-truth segmentation, downstream Dice not computed")
        for message in dict.fromkeys(errors):
            result.problems.append(Problem(label.case_id, "segmenter", label.prediction_name, message))
            result.status = "flagged"
            logger.error("%s: %s", run.result.name, message)
        if seg is None:
            continue
        on_real = region_dice(real, seg) if real is not None else {}
        on_completed = region_dice(completed, seg) if completed is not None else {}
        for region in REGIONS:
            if region in on_real:
                result.scores[f"dice_real_{region}"] = on_real[region]
            if region in on_completed:
                result.scores[f"dice_completed_{region}"] = on_completed[region]
            if region in on_real and region in on_completed:
                result.scores[f"dice_delta_{region}"] = on_completed[region] - on_real[region]
        if index == 0 and completed is not None and z is not None:
            maps["completed set"] = completed[:, :, z]
    return maps


def _write_report(evaluation: Evaluation, out_dir: Path, slices: list[qc.CaseSlices] | None) -> list[Path]:
    """cases.csv, summary.json and (given the slices) overview.png; returns the pictures written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(evaluation, out_dir / "cases.csv")
    write_summary(evaluation, out_dir / "summary.json")
    if slices is None:
        return []
    return [qc.save_png(qc.overview(slices), out_dir / "overview.png")]


def _csv_value(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "" if value is None or math.isnan(value) else str(value)
    return f"{value:.6g}"


def write_csv(evaluation: Evaluation, path: Path) -> Path:
    """One row per (run, case) with every score column (empty when not computed)."""
    with atomic_path(Path(path)) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for run in evaluation.runs:
            for case in run.cases:
                writer.writerow(
                    [run.name, case.case_id, case.missing.value, case.status]
                    + [_csv_value(case.scores.get(m)) for m in SCORE_COLUMNS]
                    + ["; ".join(p.message for p in case.problems)]
                )
    return path


def write_summary(evaluation: Evaluation, path: Path) -> Path:
    payload: dict[str, Any] = {"conventions": CONVENTIONS}
    if evaluation.segmenter is not None:
        payload["segmenter"] = evaluation.segmenter
    payload["runs"] = {run.name: run.summary() for run in evaluation.runs}
    atomic_write_text(Path(path), json.dumps(payload, indent=2, allow_nan=False) + "\n")
    return path


def format_table(evaluation: Evaluation) -> str:
    """The paper's Table 1 layout: one block per metric, one line per run, columns T1, T1-ce, FLAIR, T2, Mean."""
    counts = {m: sum(1 for c in evaluation.runs[0].cases if c.missing == m) for m, _ in TABLE_MODALITIES}
    headers = [f"{title} ({m.value}, n={counts[m]})" for m, title in TABLE_MODALITIES] + ["Mean"]
    name_width = max(10, *(len(r.name) for r in evaluation.runs))
    widths = [max(8, len(h)) for h in headers]
    lines = []
    for metric, title in TABLE_METRICS:
        if not any(metric in c.scores for run in evaluation.runs for c in run.cases):
            continue
        lines.append(title)
        lines.append(" " * name_width + "  " + "  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True)))
        digits = 2 if metric.startswith("psnr") else 4
        for run in evaluation.runs:
            per = run.by_modality(metric)
            values = [per.get(m, math.nan) for m, _ in TABLE_MODALITIES] + [run.mean_of_modalities(metric)]
            texts = ["-" if math.isnan(v) else f"{v:.{digits}f}" for v in values]
            cells = [text.rjust(w) for text, w in zip(texts, widths, strict=True)]
            lines.append(run.name.ljust(name_width) + "  " + "  ".join(cells))
        lines.append("")
    lines += _downstream_table(evaluation, headers, widths)
    return "\n".join(lines).rstrip() + "\n"


def _downstream_table(evaluation: Evaluation, headers: list[str], widths: list[int]) -> list[str]:
    """BraSyn's second criterion: per region, the segmenter's Dice on the real set (once: it is the same
    for every run), on each run's completed set, and the difference completed - real."""
    if not any(c.scores.keys() & set(DOWNSTREAM_COLUMNS) for run in evaluation.runs for c in run.cases):
        return []
    rows: list[tuple[str, RunResult, str]] = [("real set", evaluation.runs[0], "real")]
    for run in evaluation.runs:
        rows += [(f"{run.name} completed", run, "completed"), (f"{run.name} difference", run, "delta")]
    name_width = max(len(name) for name, _, _ in rows)
    lines = [f"Downstream segmentation, independent segmenter {evaluation.segmenter}:"]
    for region in REGIONS:
        lines.append(f"Dice {region} of the segmenter (real set, completed set, completed - real)")
        lines.append(" " * name_width + "  " + "  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True)))
        for name, run, kind in rows:
            metric = f"dice_{kind}_{region}"
            per = run.by_modality(metric)
            values = [per.get(m, math.nan) for m, _ in TABLE_MODALITIES] + [run.mean_of_modalities(metric)]
            sign = "+" if kind == "delta" else ""
            texts = ["-" if math.isnan(v) else f"{v:{sign}.4f}" for v in values]
            cells = [text.rjust(w) for text, w in zip(texts, widths, strict=True)]
            lines.append(name.ljust(name_width) + "  " + "  ".join(cells))
        lines.append("")
    return lines
