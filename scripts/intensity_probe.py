#!/usr/bin/env python3
"""How the scale model (`IntensityModel`: log(target scale) from the sources' log scales) errs on
cohorts it was not fitted on, for several fitting choices fitted on the same training cases.

    python scripts/intensity_probe.py runs/checkpoints/cohort \
        --cohort indist=runs/issue17/indist/labels/original_data \
        --cohort shifted=runs/issue17/shifted/labels/original_data [--json OUT]

The error of a case is log(predicted scale / true scale) of the target, where the true scale is what
the normalization computes from the real target volume; exp(error) is the factor by which the
synthesized volume comes out too bright (before the network's own error). Choices:

    ols        today's fit: least squares with a small ridge (1e-3) on the three slopes
    geomean    slopes fixed to 1/3 (the target is a fixed multiple of the sources' geometric mean)
    shrunk     ridge 1.0 towards the geomean slopes (fewer effective parameters)
    huber      the ols model refitted with Huber weights (robust to outlying training cases)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from brasyn.constants import MODALITIES, Modality, image_filename, sources_for
from brasyn.data.normalization import Normalization
from brasyn.io.nifti import load_volume


def case_scales(folder: Path) -> list[dict[Modality, float]]:
    normalization = Normalization()
    rows = []
    for case in sorted(p for p in folder.iterdir() if p.is_dir()):
        volumes = {m: load_volume(case / image_filename(case.name, m.value))[0] for m in MODALITIES}
        rows.append(normalization.case_scales(volumes, name=case.name)[1])
    return rows


def design(rows: list[dict[Modality, float]], target: Modality) -> tuple[np.ndarray, np.ndarray]:
    x = np.log([[r[m] for m in sources_for(target)] for r in rows])
    y = np.log([r[target] for r in rows])
    return x, y


def fit(x: np.ndarray, y: np.ndarray, choice: str) -> tuple[float, np.ndarray]:
    """(intercept, slopes) of log y = a + x @ b for one fitting choice."""
    n, k = x.shape
    prior = np.full(k, 1.0 / k)
    if choice == "geomean":
        return float(np.mean(y - x @ prior)), prior
    ridge = {"ols": 1e-3, "shrunk": 1.0, "huber": 1e-3}[choice]
    weights = np.ones(n)
    for _ in range(20 if choice == "huber" else 1):
        w = weights / weights.sum()
        x_mean, y_mean = w @ x, w @ y
        xc, yc = x - x_mean, y - y_mean
        # ridge towards the geomean slopes for "shrunk", towards 0 (today's) otherwise
        centre = prior if choice == "shrunk" else np.zeros(k)
        a = xc.T @ (w[:, None] * xc) + ridge * np.eye(k)
        slopes = np.linalg.solve(a, xc.T @ (w * yc) + ridge * centre)
        intercept = float(y_mean - x_mean @ slopes)
        if choice == "huber":
            residual = y - intercept - x @ slopes
            s = 1.4826 * np.median(np.abs(residual - np.median(residual))) + 1e-9
            r = np.abs(residual) / (1.345 * s)
            weights = np.where(r <= 1, 1.0, 1.0 / np.maximum(r, 1e-9))
    return intercept, slopes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("training", type=Path)
    parser.add_argument("--cohort", action="append", required=True, help="NAME=FOLDER of training-format cases")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    training = case_scales(args.training)
    cohorts = {c.split("=", 1)[0]: case_scales(Path(c.split("=", 1)[1])) for c in args.cohort}
    choices = ("ols", "geomean", "shrunk", "huber")
    record: dict = {}
    print("exp(error) per case, then the median |error| as a factor; rows: fitting choice")
    for target in MODALITIES:
        x, y = design(training, target)
        for choice in choices:
            intercept, slopes = fit(x, y, choice)
            line = f"{target.value} {choice:8s} slopes {np.round(slopes, 2)}"
            for cohort, rows in {"train": training, **cohorts}.items():
                cx, cy = design(rows, target)
                error = intercept + cx @ slopes - cy
                record.setdefault(target.value, {}).setdefault(choice, {})[cohort] = error.tolist()
                typical, worst = np.exp(np.median(np.abs(error))), np.exp(np.max(np.abs(error)))
                line += f" | {cohort}: median x{typical:.2f} max x{worst:.2f}"
            print(line)
    if args.json:
        args.json.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
