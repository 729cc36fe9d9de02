#!/usr/bin/env python3
"""The issue-17 table: model vs baseline on several cohorts side by side, plus the predicted scale drift.

Each cohort folder holds `labels/` (MedPerf layout), `model/` and `baseline/` (prediction folders) and
`report/summary.json` (`brasyn evaluate --pred model --baseline baseline --labels labels --out report`).

    python scripts/site_shift_table.py runs/issue17/indist runs/issue17/shifted

Prints Markdown: per missing modality "model / baseline" for healthy-brain SSIM (organizers' script),
MedPerf-2023 SSIM, SSIM inside the tumour, PSNR in the brain, enhancement recovered (T1-ce), bold
where the baseline wins or ties; then the scale drift, median(prediction) / median(truth) inside the
brain, per target (mean over its cases).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from brasyn.constants import Modality
from brasyn.data.cases import load_case
from brasyn.data.normalization import brain_mask
from brasyn.evaluation.folder import read_labels
from brasyn.evaluation.report import with_current_names
from brasyn.io.nifti import load_volume

TARGETS = ("t1n", "t1c", "t2w", "t2f")
METRICS = (
    ("ssim_healthy_region", "healthy-brain SSIM", 4),
    ("ssim_container", "MedPerf-2023 SSIM", 4),
    ("ssim_tumour_region", "SSIM in tumour", 4),
    ("psnr_brain", "PSNR brain (dB)", 2),
    ("enhancement_recovered", "enhancement recovered", 2),
)


def _cell(model: float | None, baseline: float | None, digits: int) -> str:
    if model is None or baseline is None:
        return "-"
    text = f"{model:.{digits}f} / {baseline:.{digits}f}"
    return f"**{text}**" if baseline >= model else text


def score_table(cohorts: list[Path]) -> str:
    summaries = [json.loads((c / "report" / "summary.json").read_text())["runs"] for c in cohorts]
    header = "| missing | metric | " + " | ".join(c.name for c in cohorts) + " |"
    lines = [header, "|" + "---|" * (2 + len(cohorts))]
    for target in TARGETS:
        for key, title, digits in METRICS:
            cells = []
            for runs in summaries:
                model = with_current_names(runs["model"]["per_missing_modality"].get(target, {})).get(key)
                baseline = with_current_names(runs["baseline"]["per_missing_modality"].get(target, {})).get(key)
                cells.append(_cell(model, baseline, digits))
            if all(c == "-" for c in cells):
                continue
            lines.append(f"| {target} | {title} | " + " | ".join(cells) + " |")
    for key, title, digits in METRICS[:4]:
        means = [(with_current_names(r["model"]["mean"]), with_current_names(r["baseline"]["mean"])) for r in summaries]
        cells = [_cell(model.get(key), baseline.get(key), digits) for model, baseline in means]
        lines.append(f"| mean | {title} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def scale_drift(cohort: Path, run: str) -> dict[str, list[float]]:
    """median(prediction) / median(truth) inside the brain, per case, grouped by target."""
    out: dict[str, list[float]] = {t: [] for t in TARGETS}
    for label in read_labels(cohort / "labels"):
        gt = load_case(label.case)
        brain = brain_mask(list(gt.images.values()))
        name = f"{label.case_id}-{label.missing.value}.nii.gz"
        prediction, _ = load_volume(cohort / run / name, case_id=label.case_id)
        truth = gt.images[Modality(label.missing)]
        out[label.missing.value].append(float(np.median(prediction[brain]) / np.median(truth[brain])))
    return out


def drift_table(cohorts: list[Path]) -> str:
    lines = ["| cohort | run | " + " | ".join(TARGETS) + " |", "|" + "---|" * (2 + len(TARGETS))]
    for cohort in cohorts:
        for run in ("model", "baseline"):
            drift = scale_drift(cohort, run)
            cells = [", ".join(f"{v:.2f}" for v in drift[t]) or "-" for t in TARGETS]
            lines.append(f"| {cohort.name} | {run} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cohorts", type=Path, nargs="+")
    args = parser.parse_args()
    print(score_table(args.cohorts))
    print()
    print("Scale drift, median(prediction) / median(truth) in the brain, per case:")
    print()
    print(drift_table(args.cohorts))


if __name__ == "__main__":
    main()
