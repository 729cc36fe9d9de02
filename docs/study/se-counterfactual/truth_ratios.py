#!/usr/bin/env python3
"""The truth's enhancing-tumour ratio (mean over label 3 / median of the healthy brain) in the T1
before contrast and in the T1-ce, per case, with the T1 acquisition, and the T1-ce's mean per kind.

    python docs/study/se-counterfactual/truth_ratios.py --cohort indist=runs/issue17/indist/labels \
        --training train=runs/t1c-varied/cohort:1:varied > docs/study/se-counterfactual/truth_ratios.txt

`--cohort NAME=LABELS`: a validation cohort's labels folder (original_data/ and phantom.json);
`--training NAME=FOLDER:SEED:SITE`: a training cohort folder, whose acquisitions are found by
redrawing each case's physics (case index from its name). Synthetic cohorts only.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "scripts"))
from study_cases import drawn_protocol, load_training_case  # noqa: E402

from brasyn.constants import Modality  # noqa: E402
from brasyn.evaluation.enhancement import enhancement_ratio  # noqa: E402


def _kinds_from_record(labels: Path) -> dict[str, str]:
    cases = json.loads((labels / "phantom.json").read_text())["cases"]
    return {case: info["sequences"]["t1c"]["kind"] for case, info in cases.items()}


def _kinds_by_redraw(folder: Path, seed: int, site: str) -> dict[str, str]:
    cases = sorted(p.name for p in folder.iterdir() if p.is_dir())
    return {case: drawn_protocol(seed, int(case.split("-")[2]), site).sequences[Modality.T1C].kind for case in cases}


def _report(name: str, folder: Path, kinds: dict[str, str]) -> None:
    per_kind: dict[str, list[float]] = {}
    for case, kind in sorted(kinds.items()):
        volumes, seg, brain = load_training_case(folder / case)
        if not (seg == 3).any():
            continue
        t1n, t1c = (enhancement_ratio(volumes[m], seg, brain) for m in (Modality.T1N, Modality.T1C))
        per_kind.setdefault(kind, []).append(t1c)
        print(f"{name:<8} {case}  {kind:<6} T1 before contrast {t1n:.2f}  T1-ce {t1c:.2f}")
    for kind, values in sorted(per_kind.items()):
        print(f"{name:<8} T1-ce {kind:<6} mean {statistics.fmean(values):.2f} over {len(values)} cases")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cohort", action="append", default=[], help="NAME=LABELS (repeatable)")
    parser.add_argument("--training", action="append", default=[], help="NAME=FOLDER:SEED:SITE (repeatable)")
    args = parser.parse_args()
    for spec in args.cohort:
        name, _, labels = spec.partition("=")
        _report(name, Path(labels) / "original_data", _kinds_from_record(Path(labels)))
    for spec in args.training:
        name, _, rest = spec.partition("=")
        folder, seed, site = rest.split(":")
        _report(name, Path(folder), _kinds_by_redraw(Path(folder), int(seed), site))


if __name__ == "__main__":
    main()
