#!/usr/bin/env python3
"""Issue 17: is a lost MedPerf-2023 SSIM cell lost to the predicted scale or to the image content?

    python docs/study/site-shift/scale_oracle_probe.py t2w --weights workspace/additional_files \
        --baseline workspace/baseline --cohort shifted=runs/issue17/shifted/labels \
        > docs/study/site-shift/scale_oracle_probe_t2w.txt

The MedPerf-2023 SSIM divides both volumes by 254 x the truth's 99.5th percentile, so a prediction
on the wrong scanner scale scores lower however good its content. For every case of each cohort
(`labels/original_data`, all four modalities) as a `target`, the model and the baseline are scored
as predicted (inference defaults), then each rescaled by the oracle factor median(truth) /
median(prediction) in the brain, which no inference can know: if the model loses as predicted and
wins rescaled, the cell is lost to the scale (which both share, `IntensityModel`), not the content.
The cases that really miss `target` (`missing.json`) are marked with *.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "scripts"))
from study_cases import load_training_case, named  # noqa: E402

from brasyn.checkpoint import checkpoint_filename  # noqa: E402
from brasyn.constants import Modality  # noqa: E402
from brasyn.evaluation.ssim import container_ssim  # noqa: E402
from brasyn.inference import InferenceSettings, Predictor  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", type=Modality)
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--cohort", type=named, action="append", required=True, help="NAME=LABELS (repeatable)")
    args = parser.parse_args()
    name = checkpoint_filename(args.target)
    runs = {"model": Predictor.from_checkpoint(args.weights / name),
            "baseline": Predictor.from_checkpoint(args.baseline / name, settings=InferenceSettings(mirror_axes=()))}
    print(f"{args.target}: MedPerf-2023 SSIM as predicted / with the oracle scale; "
          "scale = median(pred) / median(truth) in the brain")
    for cohort, labels in args.cohort:
        missing = json.loads((labels / "missing.json").read_text())
        print(f"\n{cohort}\n| case | model | baseline | model scale | baseline scale |\n|---|---|---|---|---|")
        rows = []
        for case in sorted(p for p in (labels / "original_data").iterdir() if p.is_dir()):
            volumes, _, brain = load_training_case(case)
            truth = volumes[args.target]
            row = {}
            for run, predictor in runs.items():
                image = predictor.predict({m: volumes[m] for m in predictor.sources}, case_id=case.name).image
                scale = float(np.median(image[brain]) / np.median(truth[brain]))
                row[run] = (container_ssim(image, truth), container_ssim(image / scale, truth), scale)
            rows.append((missing.get(case.name) == args.target.value, row))
            mark = "*" if rows[-1][0] else ""
            print(f"| {case.name}{mark} | {row['model'][0]:.4f} / {row['model'][1]:.4f} | "
                  f"{row['baseline'][0]:.4f} / {row['baseline'][1]:.4f} | {row['model'][2]:.2f} | "
                  f"{row['baseline'][2]:.2f} |", flush=True)
        views = (("cases missing it (*)", [r for own, r in rows if own]), ("every case", [r for _, r in rows]))
        for label, chosen in views:
            if chosen:
                means = {run: [np.mean([r[run][i] for r in chosen]) for i in (0, 1)] for run in runs}
                print(f"| mean, {label} | {means['model'][0]:.4f} / {means['model'][1]:.4f} | "
                      f"{means['baseline'][0]:.4f} / {means['baseline'][1]:.4f} | | |")


if __name__ == "__main__":
    main()
