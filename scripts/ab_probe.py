#!/usr/bin/env python3
"""Score several checkpoints of one target side by side on training-format cohorts (all four
modalities and the tumour labels per case, e.g. a validation cohort's `labels/original_data/`), so
that every case can be scored for any target: the image metrics of `brasyn evaluate`, the
enhancement recovered (for t1c) and the scale drift, median(prediction) / median(truth) in the brain.

    python scripts/ab_probe.py t1c --run wide=runs/robust-probe/wide --run robust=runs/robust-probe/robust \
        --cohort indist=runs/issue17/indist/labels/original_data \
        --cohort shifted=runs/issue17/shifted/labels/original_data [--baseline workspace/baseline] [--json OUT]

Each `--run NAME=FOLDER` is a folder holding `brasyn_{target}.pt`, run with the inference defaults
(test-time mirroring over both axes; `--mirror-axes none` for a 4x cheaper ranking of variants, all
runs alike); the baseline runs with one pass (it is per-voxel, mirroring
leaves it unchanged). Use cohorts that no run was trained or tuned on.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from study_cases import load_training_case, named

from brasyn.checkpoint import checkpoint_filename
from brasyn.constants import Modality
from brasyn.evaluation.enhancement import enhancement_scores
from brasyn.evaluation.report import score_case
from brasyn.inference import InferenceSettings, Predictor

REPO = Path(__file__).resolve().parents[1]
METRICS = ("ssim_healthy_region", "ssim_container", "ssim_tumour_region", "psnr_brain")
EXTRA = ("enhancement_recovered", "scale_ratio")


def score_cohort(folder: Path, target: Modality, runs: dict[str, Predictor], cases: int) -> dict[str, list[dict]]:
    scores: dict[str, list[dict]] = {run: [] for run in runs}
    for case in sorted(p for p in folder.iterdir() if p.is_dir())[:cases]:
        started = time.perf_counter()
        volumes, seg, brain = load_training_case(case)
        truth = volumes[target]
        for run, predictor in runs.items():
            image = predictor.predict({m: volumes[m] for m in predictor.sources}, case_id=case.name).image
            row = {"case": case.name, **score_case(image, truth, seg, brain)}
            if target is Modality.T1C:
                row["enhancement_recovered"] = enhancement_scores(image, truth, seg, brain)["enhancement_recovered"]
            row["scale_ratio"] = float(np.median(image[brain]) / np.median(truth[brain]))
            scores[run].append(row)
        print(f"{folder.parent.parent.name}/{case.name}: {time.perf_counter() - started:.0f} s", flush=True)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", type=Modality)
    parser.add_argument("--run", type=named, action="append", required=True, help="NAME=FOLDER (repeatable)")
    parser.add_argument("--cohort", type=named, action="append", required=True, help="NAME=FOLDER (repeatable)")
    parser.add_argument("--baseline", type=Path, default=REPO / "workspace" / "baseline")
    parser.add_argument("--cases", type=int, default=1000, help="at most this many cases per cohort")
    parser.add_argument("--mirror-axes", default="0,1", help="the runs' mirroring: 0,1 (default), 0, 1 or none")
    parser.add_argument("--json", type=Path, help="write every case's scores here")
    args = parser.parse_args()

    name = checkpoint_filename(args.target)
    axes = () if args.mirror_axes == "none" else tuple(int(a) for a in args.mirror_axes.split(","))
    settings = InferenceSettings(mirror_axes=axes)
    runs = {run: Predictor.from_checkpoint(folder / name, settings=settings) for run, folder in args.run}
    runs["baseline"] = Predictor.from_checkpoint(args.baseline / name, settings=InferenceSettings(mirror_axes=()))
    results = {cohort: score_cohort(folder, args.target, runs, args.cases) for cohort, folder in args.cohort}

    columns = METRICS + (EXTRA if args.target is Modality.T1C else EXTRA[1:])
    print(f"\n{args.target}, mirror_axes {list(axes)}: means over each cohort's cases (scale_ratio: median)")
    print("| cohort | run | " + " | ".join(columns) + " |\n|---|---|" + "---|" * len(columns))
    for cohort, scores in results.items():
        for run, rows in scores.items():
            cells = [
                np.nanmedian([r[k] for r in rows]) if k == "scale_ratio" else np.nanmean([r[k] for r in rows])
                for k in columns
            ]
            print(f"| {cohort} ({len(rows)}) | {run} | " + " | ".join(f"{c:.4f}" for c in cells) + " |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
