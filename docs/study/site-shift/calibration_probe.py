#!/usr/bin/env python3
"""Issue 17, step 3: can a folder of cases from one site calibrate the scale model for that site?

    python docs/study/site-shift/calibration_probe.py workspace/additional_files \
        runs/issue17/indist runs/issue17/shifted > docs/study/site-shift/calibration_probe.txt

A BraSyn folder drops a different modality in each case, so the cases that lack another modality
show the site's scale of the target. For each target t and each case c scored as missing t, the
probe estimates the site's offset of t from the *other* cases that hold t: each such case lacks one
of t's sources m, which is imputed by m's own scale model (its sources are all present), then the
residual log(real scale of t) - log(t's model) is taken; the offset is the median residual (none
with fewer than three). Error of a case = predicted / real scale of t (1 = right); median |log| over
every case of the cohort as a target, and the two cases that really miss t. Reads only the inputs
a folder would hold (missing.json decides which), never c's own target.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from brasyn.checkpoint import Checkpoint
from brasyn.constants import MODALITIES, Modality, image_filename
from brasyn.io.nifti import load_volume


def main(weights: Path, cohorts: list[Path]) -> None:
    checkpoints = {t: Checkpoint.load(weights / f"brasyn_{t.value}.pt", target=t) for t in MODALITIES}
    models = {t: c.intensity_model for t, c in checkpoints.items()}
    normalization = checkpoints[Modality.T1C].normalization

    def predicted(t: Modality, logs: dict[Modality, float]) -> float:
        return float(np.log(models[t].predict_scale({m: np.exp(v) for m, v in logs.items()})))

    for cohort in cohorts:
        labels = cohort / "labels"
        missing = {case: Modality(m) for case, m in json.loads((labels / "missing.json").read_text()).items()}
        logs = {}
        for case in sorted(missing):
            volumes = {m: load_volume(labels / "original_data" / case / image_filename(case, m.value))[0]
                       for m in MODALITIES}
            logs[case] = {m: float(np.log(s)) for m, s in normalization.case_scales(volumes, name=case)[1].items()}
        print(cohort)
        for t in MODALITIES:
            before, after, own = [], [], []
            for case in logs:
                residuals = []
                for other in logs:
                    if other == case or missing[other] == t:
                        continue
                    imputed = {**logs[other], missing[other]: predicted(missing[other], logs[other])}
                    residuals.append(logs[other][t] - predicted(t, imputed))
                offset = float(np.median(residuals)) if len(residuals) >= 3 else 0.0
                error = predicted(t, logs[case]) - logs[case][t]
                before.append(error)
                after.append(error + offset)
                if missing[case] == t:
                    own.append(f"{np.exp(error):.2f} -> {np.exp(error + offset):.2f}")
            factor = lambda errors: f"x{np.exp(np.median(np.abs(errors))):.2f}"  # noqa: E731
            print(f"  {t.value}: every case median error {factor(before)} -> {factor(after)}; "
                  f"the cases missing {t.value}: {', '.join(own)}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), [Path(a) for a in sys.argv[2:]])
