#!/usr/bin/env python3
"""Issue 17, step 5: the enhancement recovered per case, grouped by how the T1-ce was acquired.

    python docs/study/et-weight/by_sequence.py \
        --json bundled=docs/study/robust-probe/bundled/ab_t1c.json \
        --json rim10-warmup=docs/study/et-weight/warmup/warm/ab_t1c.json \
        --cohort indist=runs/issue17/indist/labels --cohort shifted=runs/issue17/shifted/labels \
        > docs/study/et-weight/by_sequence.txt

Reads scripts/ab_probe.py's --json files (every case of each cohort as a T1-ce target) and the
synthetic cohorts' phantom.json (in each LABELS folder: the generator's record of every case's
protocol), and prints, per run, the mean and median enhancement recovered over the cases of each
T1-ce sequence kind (SE spin echo, GRE gradient echo, MPRAGE) and FLAIR timing (before / after
contrast), with the per-case values. Synthetic cohorts only (real cases carry no phantom.json).
`--training SEED:SITE:FIRST_ID:CASES` also counts a training cohort's protocols by redrawing its
cases' physics (the generator's per-case streams; no volume is made), for a cohort folder that
keeps no phantom.json, e.g. `1:varied:10000:32` for runs/t1c-varied/cohort.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "scripts"))
from study_cases import drawn_protocol, named  # noqa: E402


def _protocols(labels: Path) -> dict[str, tuple[str, str]]:
    """case -> (T1-ce sequence kind, FLAIR before/after contrast) from the cohort's phantom.json."""
    cases = json.loads((labels / "phantom.json").read_text())["cases"]
    return {
        case: (info["sequences"]["t1c"]["kind"], "after" if info["sequences"]["t2f"].get("post_contrast") else "before")
        for case, info in cases.items()
    }


def _training_protocols(spec: str) -> dict[str, int]:
    """(T1-ce kind, FLAIR timing) -> cases of the training cohort `SEED:SITE:FIRST_ID:CASES`."""
    from brasyn.constants import Modality

    seed, site, first, cases = spec.split(":")
    counts: dict[str, int] = {}
    for index in range(int(first), int(first) + int(cases)):
        protocol = drawn_protocol(int(seed), index, site)
        flair = "after" if protocol.sequences[Modality.T2F].post_contrast else "before"
        key = f"T1-ce {protocol.sequences[Modality.T1C].kind}, FLAIR {flair}"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


def _model_rows(path: Path, cohort: str) -> list[dict]:
    """The model's per-case rows of `cohort` (ab_probe names it "new" or by its --run name)."""
    runs = json.loads(path.read_text())[cohort]
    (name,) = [name for name in runs if name != "baseline"]
    return runs[name]


def _summary(values: list[float]) -> str:
    return f"{statistics.fmean(values):5.2f} / {statistics.median(values):5.2f} ({len(values)})" if values else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=named, action="append", required=True, help="NAME=ab_t1c.json (repeatable)")
    parser.add_argument("--cohort", type=named, action="append", required=True, help="NAME=LABELS (repeatable)")
    parser.add_argument("--training", help="SEED:SITE:FIRST_ID:CASES of a training cohort to count")
    args = parser.parse_args()
    if args.training:
        print(f"training cohort {args.training}: cases per protocol (enhancing tumour or not)")
        for key, count in _training_protocols(args.training).items():
            print(f"  {key}: {count}")
        print()
    protocols = {name: _protocols(labels) for name, labels in args.cohort}
    groups: dict[str, dict[str, list[float]]] = {}
    for run, path in args.json:
        print(f"{run}: enhancement recovered per case (T1-ce kind, FLAIR timing)")
        groups[run] = {}
        for cohort, cohort_protocols in protocols.items():
            for row in _model_rows(path, cohort):
                value = row["enhancement_recovered"]
                if value is None or not math.isfinite(value):
                    continue  # no enhancing tumour in this case
                kind, flair = cohort_protocols[row["case"]]
                print(f"  {cohort:8s} {row['case']}  {kind:6s} FLAIR {flair:6s}  {value:5.2f}")
                for key in (f"{cohort} T1-ce {kind}", f"{cohort} FLAIR {flair}", f"all T1-ce {kind}"):
                    groups[run].setdefault(key, []).append(value)
    keys = sorted({key for run_groups in groups.values() for key in run_groups})
    print("\nmean / median (cases)")
    print("| group | " + " | ".join(groups) + " |")
    print("|---|" + "---|" * len(groups))
    for key in keys:
        print(f"| {key} | " + " | ".join(_summary(groups[run].get(key, [])) for run in groups) + " |")


if __name__ == "__main__":
    main()
