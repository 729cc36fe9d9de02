"""Inference over a data folder: every case attempted, one line per case, a summary at the end.

The four dedicated checkpoints are loaded once (only those some case needs). While the network runs
on case k, background threads read and normalize case k+1 (and further with more `io_workers`) and
restore and write case k-1 (file I/O and NumPy work overlap the network; each case's stages are
timed in `SynthesisResult.timings`). Nothing is written outside `output_path` (and the optional
segmentation folder): each file goes through a temporary file in its destination folder and an
atomic rename; temporary files a killed earlier run left there are removed first.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from brasyn.checkpoint import checkpoint_filename
from brasyn.constants import Modality, image_filename, sources_for
from brasyn.data.cases import Case, CaseStatus, CaseVolumes, discover_cases, load_case
from brasyn.device import resolve_device
from brasyn.errors import BrasynError, CheckpointError, InputError
from brasyn.inference.predictor import Predictor, PreparedCase
from brasyn.inference.results import FailureCause, InferenceSummary, Outcome, SynthesisResult, failure_cause
from brasyn.inference.settings import InferenceSettings
from brasyn.inference.tuning import intra_op_threads
from brasyn.inference.weights import default_weights_dir
from brasyn.inference.writer import prepare_output_folders, write_prediction

logger = logging.getLogger(__name__)

@dataclass
class _Job:
    case: Case
    target: Modality
    output: Path
    segmentation_file: Path | None


def _plan(
    cases: list[Case], output_path: Path, segmentation_dir: Path | None, overwrite: bool
) -> tuple[list[_Job], dict[str, SynthesisResult]]:
    """Split cases into jobs and immediate results (skipped / failed before any work)."""
    jobs: list[_Job] = []
    settled: dict[str, SynthesisResult] = {}
    for case in cases:
        if case.status is CaseStatus.COMPLETE:
            settled[case.case_id] = SynthesisResult(case.case_id, Outcome.SKIPPED, reason=case.describe_missing())
            continue
        if case.status is CaseStatus.INVALID:
            settled[case.case_id] = SynthesisResult(
                case.case_id, Outcome.FAILED, reason=case.describe_missing(), cause=FailureCause.INPUT
            )
            continue
        target = case.target
        output = output_path / image_filename(case.case_id, target)
        if output.exists() and not overwrite:
            settled[case.case_id] = SynthesisResult(
                case.case_id,
                Outcome.SKIPPED,
                target,
                output,
                reason=f"{output.name} exists (use --overwrite to replace it)",
            )
            continue
        segmentation_file = (
            segmentation_dir / image_filename(case.case_id, "seg") if segmentation_dir is not None else None
        )
        jobs.append(_Job(case, target, output, segmentation_file))
    return jobs, settled


def load_predictors(
    weights: Path, targets: set[Modality], settings: InferenceSettings
) -> tuple[dict[Modality, Predictor], dict[Modality, str]]:
    """Load each needed checkpoint once; a missing or broken one is reported, not raised."""
    predictors: dict[Modality, Predictor] = {}
    problems: dict[Modality, str] = {}
    for target in sorted(targets, key=lambda m: m.value):
        path = Path(weights) / checkpoint_filename(target)
        try:
            predictors[target] = Predictor.from_checkpoint(path, target=target, settings=settings)
            plan = predictors[target].plan
            logger.info(
                "loaded %s model %s (%s, batch %d, %d network passes per slice, mirror_axes %s)",
                target, path, predictors[target].device, plan.batch_size, len(predictors[target].mirrors),
                list(settings.mirror_axes),
            )
        except BrasynError as exc:
            problems[target] = str(exc) if path.name in str(exc) else f"{path}: {exc}"
            logger.error("cannot use the %s model: %s", target, problems[target])
        except Exception as exc:  # a malformed checkpoint (TypeError, KeyError, ...) fails only its target's cases
            error = CheckpointError(f"{path}: cannot build the model: {_one_line(exc)}")
            problems[target] = str(error)
            logger.error("cannot use the %s model: %s", target, error, exc_info=logger.isEnabledFor(logging.DEBUG))
    return predictors, problems


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


STAGES = ("read", "normalize", "network", "restore", "write")
"""The stages of one case, as timed in `SynthesisResult.timings` (seconds; they overlap across cases)."""


class _Loaded(NamedTuple):
    volumes: CaseVolumes
    prepared: PreparedCase
    timings: dict[str, float]


def _load(job: _Job, predictor: Predictor) -> _Loaded:
    """Background: read and validate the case's sources, then normalize and slice them."""
    started = time.perf_counter()
    volumes = load_case(job.case, modalities=sources_for(job.target))
    read = time.perf_counter()
    prepared = predictor.prepare(volumes.images, case_id=job.case.case_id)
    return _Loaded(volumes, prepared, {"read": read - started, "normalize": time.perf_counter() - read})


def _save(job: _Job, predictor: Predictor, loaded: _Loaded, image: np.ndarray, labels: np.ndarray | None) -> None:
    """Background: undo the normalization (crop, scanner scale, background) and write the prediction."""
    started = time.perf_counter()
    prediction = predictor.restore(loaded.prepared, image, labels)
    restored = time.perf_counter()
    write_prediction(prediction, loaded.volumes.geometry, job.output, job.segmentation_file)
    loaded.timings.update(restore=restored - started, write=time.perf_counter() - restored)


def _progress(jobs: list[_Job], enabled: bool) -> Iterator[_Job]:
    if not enabled:
        yield from jobs
        return
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    with logging_redirect_tqdm():
        yield from tqdm(jobs, desc="synthesizing", unit="case", file=sys.stderr)


def synthesize_folder(
    data_path: Path | str,
    output_path: Path | str,
    weights: Path | str | None = None,
    *,
    settings: InferenceSettings | None = None,
) -> InferenceSummary:
    """Synthesize the missing modality of every case folder in `data_path` into `output_path`.

    Writes `{case}-{missing}.nii.gz` (int16, the sources' geometry, 0 outside the brain) flat into
    `output_path` and, with `settings.segmentation_dir`, `{case}-seg.nii.gz` into that folder.
    `weights` is the folder holding `brasyn_{target}.pt` (default: `default_weights_dir()`).
    `settings` says how (default `InferenceSettings()`; e.g. `InferenceSettings(device="cpu", overwrite=True)`).

    Per-case problems never raise: they become failed results with a reason (see `InferenceSummary`).
    Raises `ConfigError` when the device asked for cannot be used (before any case), `InputError` when
    `data_path` holds no case folder and `OutputError` when the output folder is unusable.
    """
    settings = settings or InferenceSettings()
    # before any case or folder: "auto" warns (once) if a visible GPU is unusable, "cuda" raises why
    resolve_device(settings.device)
    data_path, output_path = Path(data_path), Path(output_path)
    weights = Path(weights) if weights is not None else default_weights_dir()
    segmentation_dir = Path(settings.segmentation_dir) if settings.segmentation_dir is not None else None

    cases = discover_cases(data_path)
    if not cases:
        raise InputError(f"{data_path}: expected case folders (one per case, e.g. BraTS-GLI-00001-000/), found none")
    prepare_output_folders(output_path, data_path, segmentation_dir)
    jobs, settled = _plan(cases, output_path, segmentation_dir, settings.overwrite)
    for result in settled.values():
        log = logger.error if result.outcome is Outcome.FAILED else logger.info
        log("%s: %s: %s", result.case_id, result.outcome.value, result.reason)

    predictors, problems = load_predictors(weights, {job.target for job in jobs}, settings)
    runnable: list[_Job] = []
    for job in jobs:
        if job.target in problems:
            reason = f"no usable {job.target} model: {problems[job.target]}"
            if settings.overwrite:  # a failed case leaves no (stale) prediction behind
                job.output.unlink(missing_ok=True)
            settled[job.case.case_id] = SynthesisResult(
                job.case.case_id, Outcome.FAILED, job.target, reason=reason, cause=FailureCause.MODEL
            )
            logger.error("%s: failed: %s", job.case.case_id, reason)
        else:
            runnable.append(job)

    show = settings.progress if settings.progress is not None else sys.stderr.isatty()
    results = _run_jobs(runnable, predictors, settings, show)
    settled.update(results)
    summary = InferenceSummary(tuple(settled[c.case_id] for c in cases), output_path)
    logger.info("summary: %s", summary.format().replace("\n", ";"))
    return summary


def _run_jobs(
    jobs: list[_Job], predictors: dict[Modality, Predictor], settings: InferenceSettings, show_progress: bool
) -> dict[str, SynthesisResult]:
    """The pipeline: background threads read and normalize the next cases (up to io_workers - 1 ahead)
    and restore and write the previous one while this thread runs the network. On CPU the network's
    intra-op threads leave a core to them (`brasyn.inference.tuning`)."""
    results: dict[str, SynthesisResult] = {}
    if not jobs:
        return results

    def fail(job: _Job, exc: BaseException, started: float) -> None:
        if isinstance(exc, BrasynError):
            reason = str(exc)
        else:
            reason = f"unexpected {type(exc).__name__}: {exc}"
            logger.error("%s: unexpected error", job.case.case_id, exc_info=exc)
        if settings.overwrite:  # a failed case leaves no (stale) prediction behind
            job.output.unlink(missing_ok=True)
        results[job.case.case_id] = SynthesisResult(
            job.case.case_id, Outcome.FAILED, job.target, reason=reason, seconds=time.perf_counter() - started,
            cause=failure_cause(exc),
        )
        logger.error("%s: failed: %s", job.case.case_id, reason)

    ahead = max(1, settings.io_workers - 1)
    threads = next(iter(predictors.values())).plan.threads if predictors else None
    with (
        ThreadPoolExecutor(max_workers=settings.io_workers, thread_name_prefix="brasyn-io") as pool,
        intra_op_threads(threads),
    ):
        loads: dict[int, Future[_Loaded]] = {}
        pending: _Pending | None = None
        for index, job in enumerate(_progress(jobs, show_progress)):
            started = time.perf_counter()
            for k in range(index, min(len(jobs), index + 1 + ahead)):
                if k not in loads:
                    loads[k] = pool.submit(_load, jobs[k], predictors[jobs[k].target])
            predictor = predictors[job.target]
            try:
                loaded = loads.pop(index).result()
                network = time.perf_counter()
                wanted = job.segmentation_file is not None
                image, labels = predictor.run(loaded.prepared.slices, with_segmentation=wanted)
                loaded.timings["network"] = time.perf_counter() - network
            except Exception as exc:  # every case is attempted; the reason is reported
                fail(job, exc, started)
                continue
            if pending is not None:
                _finish(pending, results, fail)
            pending = _Pending(job, pool.submit(_save, job, predictor, loaded, image, labels), started, loaded.timings)
        if pending is not None:
            _finish(pending, results, fail)
    return results


class _Pending(NamedTuple):
    job: _Job
    future: Future[None]
    started: float
    timings: dict[str, float]


def _finish(pending: _Pending, results: dict[str, SynthesisResult], fail) -> None:
    job = pending.job
    try:
        pending.future.result()
    except Exception as exc:
        fail(job, exc, pending.started)
        return
    # the case's own work: its stages overlap other cases' (the wall time between two completions
    # would include the next case's network time)
    timings = {stage: pending.timings[stage] for stage in STAGES}
    seconds = sum(timings.values())
    results[job.case.case_id] = SynthesisResult(
        job.case.case_id, Outcome.DONE, job.target, job.output, seconds=seconds, timings=timings
    )
    logger.info(
        "%s: %s synthesized in %.1f s of its own stages (%s) -> %s", job.case.case_id, job.target, seconds,
        ", ".join(f"{stage} {t:.2f}" for stage, t in timings.items()), job.output.name,
    )
