#!/usr/bin/env python3
"""One picture of several checkpoints of one target on chosen cases: per case a row with the three
sources, the truth and every run's prediction at the slice with the most tumour, the predictions on
the truth's intensity window (a wrong scale shows), the whole tumour (yellow) and enhancing tumour
(red) outlined on the truth only, and for T1-ce each run's enhancement recovered in its label.

    python scripts/compare_picture.py t1c --run bundled=workspace/additional_files \
        --run new=runs/varied-robust/train --baseline runs/varied-robust/baseline \
        --case runs/issue17/shifted/labels/original_data/BraTS-GLI-40007-000 --out picture.png

Cases are training-format folders (all four modalities and the labels): named one by one with
`--case`, or with `--missing-in LABELS` every case of a BraSyn labels folder (`missing.json`,
`original_data/`) that misses the target, in the order of `missing.json`. The runs use the
inference defaults (test-time mirroring), the baseline one pass.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image
from study_cases import load_training_case, named

from brasyn.checkpoint import checkpoint_filename
from brasyn.constants import MODALITIES, Modality
from brasyn.evaluation import qc
from brasyn.evaluation.enhancement import enhancement_scores
from brasyn.inference import InferenceSettings, Predictor
from brasyn.io.atomic import atomic_path


def case_row(case: Path, target: Modality, runs: dict[str, Predictor]) -> Image.Image:
    volumes, seg, brain = load_training_case(case)
    z = qc.tumour_slice(seg, brain)
    truth = volumes[target]
    top = qc.window(truth)
    scale = max(1, qc.MIN_PANEL // max(truth.shape[:2]))

    def show(image: np.ndarray, label: str, top: float, with_outline: bool = False) -> Image.Image:
        rgb = qc.grey(image[:, :, z], top)
        rgb = qc.outline(rgb, seg[:, :, z]) if with_outline else rgb
        return qc.panel(qc.display(rgb), label, scale)

    panels = [show(volumes[m], m.value, qc.window(volumes[m])) for m in MODALITIES if m is not target]
    panels.append(show(truth, f"{target.value} truth", top, with_outline=True))
    for run, predictor in runs.items():
        image = predictor.predict({m: volumes[m] for m in predictor.sources}, case_id=case.name).image
        label = run
        if target is Modality.T1C:
            label += f" enh. {enhancement_scores(image, truth, seg, brain)['enhancement_recovered']:.2f}"
        panels.append(show(image, label, top))
    return qc.row(panels, title=f"{case.name}, slice {z}")


def cases_missing(labels: Path, target: Modality) -> list[Path]:
    """The case folders of a BraSyn labels folder (missing.json, original_data/) that miss `target`."""
    missing = json.loads((labels / "missing.json").read_text())
    return [labels / "original_data" / case for case, modality in missing.items() if modality == target.value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", type=Modality)
    parser.add_argument("--run", type=named, action="append", required=True, help="NAME=FOLDER (repeatable)")
    parser.add_argument("--baseline", type=Path, help="a baseline folder, shown last")
    parser.add_argument("--case", type=Path, action="append", default=[], help="a case folder (repeatable)")
    parser.add_argument("--missing-in", type=Path, action="append", default=[], metavar="LABELS",
                        help="every case of this labels folder that misses the target (repeatable)")
    parser.add_argument("--out", type=Path, required=True, help="the PNG to write")
    args = parser.parse_args()
    cases = args.case + [case for labels in args.missing_in for case in cases_missing(labels, args.target)]
    if not cases:
        parser.error(f"no case: give --case, or --missing-in a labels folder with cases that miss {args.target.value}")

    name = checkpoint_filename(args.target)
    runs = {run: Predictor.from_checkpoint(folder / name, settings=InferenceSettings()) for run, folder in args.run}
    if args.baseline:
        runs["baseline"] = Predictor.from_checkpoint(args.baseline / name, settings=InferenceSettings(mirror_axes=()))
    picture = qc.stack([case_row(case, args.target, runs) for case in cases])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out) as partial:
        picture.save(partial, format="PNG")
    print(f"{args.out}: {len(cases)} cases, {len(runs)} runs")


if __name__ == "__main__":
    main()
