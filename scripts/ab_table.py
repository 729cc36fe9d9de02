#!/usr/bin/env python3
"""Tables from `scripts/ab_probe.py --json` files: the runs of several probes side by side, on two
views of the same cohorts.

    python scripts/ab_table.py --json new=runs/varied-robust/eval/ab_t1c.json \
        --json bundled=runs/bundled-t1c/ab_t1c.json \
        --cohort indist=runs/issue17/indist/labels --cohort shifted=runs/issue17/shifted/labels

1. The target's cases of each cohort (`missing.json` in its labels folder names each case's missing
   modality): the cells of the section-9 table (docs/training-study.md) for that target, means
   over its cases.
2. Every case of each cohort as a target: the means, and for T1-ce the enhancement recovered as
   mean and median (the mean is unstable when a truth barely enhances).

Each `--json LABEL=FILE` adds the file's runs; a run named `baseline` becomes `baseline (LABEL)`, so
baselines fitted on different training cohorts stay apart, and files whose baselines scored the same
share one row, `baseline (LABEL, LABEL2)`; a run called `new` (the name eval.sh gives the model it
judges) and a run whose name an earlier file already used are shown under their file's LABEL.
Prints Markdown.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from study_cases import named

METRICS = ("ssim_healthy_region", "ssim_container", "ssim_tumour_region", "psnr_brain")
ENHANCEMENT = "enhancement_recovered"


def merged_runs(files: list[tuple[str, Path]]) -> dict[str, dict[str, list[dict]]]:
    """{cohort: {run: rows}} of every file, `baseline` renamed after its file's label."""
    runs: dict[str, dict[str, list[dict]]] = {}
    for label, path in files:
        for cohort, by_run in json.loads(path.read_text()).items():
            here = runs.setdefault(cohort, {})
            for run, rows in by_run.items():
                if run != "baseline":
                    here[label if run in here or run == "new" else run] = rows
                    continue
                baselines = (name for name, other in here.items() if name.startswith("baseline (") and other == rows)
                same = next(baselines, None)
                if same is None:
                    here[f"baseline ({label})"] = rows
                else:  # the same baseline scored again: one row, both labels, in its place
                    runs[cohort] = here = {
                        (f"{name[:-1]}, {label})" if name == same else name): value for name, value in here.items()
                    }
    return runs


def row_cells(rows: list[dict], with_enhancement: bool) -> list[str]:
    cells = [f"{np.mean([r[k] for r in rows]):.{2 if k == 'psnr_brain' else 4}f}" for k in METRICS]
    if with_enhancement:
        values = [r[ENHANCEMENT] for r in rows if np.isfinite(r.get(ENHANCEMENT, np.nan))]
        cells.append(f"{np.mean(values):.2f} / {np.median(values):.2f} ({len(values)})" if values else "–")
    return cells


def table(runs: dict[str, dict[str, list[dict]]], cohorts: dict[str, list[str] | None], target: str) -> str:
    with_enhancement = target == "t1c"
    header = ["cohort", "run", *METRICS] + (["enhancement recovered mean / median (cases)"] if with_enhancement else [])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for cohort, cases in cohorts.items():
        for run, rows in runs[cohort].items():
            chosen = [r for r in rows if cases is None or r["case"] in cases]
            cells = row_cells(chosen, with_enhancement)
            lines.append(f"| {cohort} ({len(chosen)}) | {run} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=named, action="append", required=True, help="LABEL=FILE (repeatable)")
    parser.add_argument("--cohort", type=named, action="append", required=True, help="NAME=LABELS_FOLDER (repeatable)")
    parser.add_argument("--target", default="t1c")
    args = parser.parse_args()

    runs = merged_runs(args.json)
    missing = {name: json.loads((folder / "missing.json").read_text()) for name, folder in args.cohort}
    own = {name: [case for case, m in cases.items() if m == args.target] for name, cases in missing.items()}
    print(f"{args.target}: the cases missing {args.target} (the section-9 table's cells)\n")
    print(table(runs, own, args.target))
    print(f"\n{args.target}: every case of each cohort as a {args.target} target\n")
    print(table(runs, dict.fromkeys(missing), args.target))


if __name__ == "__main__":
    main()
