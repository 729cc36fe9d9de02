#!/usr/bin/env python3
"""Test-time mirroring on a tuning cohort: the bundled model of one target with each `mirror_axes`
setting, and the polynomial baseline, scored like `brasyn evaluate` (means over the cases).

The cohort is a *training-format* one (all four modalities and the tumour labels per case, e.g.
`brasyn phantom train DIR --cases 8 --seed 7`), so every case can be scored for any target. Use a
seed that is neither the training cohort's nor the reported one's: this is where settings are chosen.

    python scripts/mirror_probe.py COHORT t1c [--cases 8] [--axes none,0,1,0+1] [--weights DIR] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from brasyn.checkpoint import checkpoint_filename
from brasyn.constants import MODALITIES, Modality, image_filename
from brasyn.data.normalization import brain_mask
from brasyn.evaluation.report import score_case
from brasyn.inference import InferenceSettings, Predictor
from brasyn.io.nifti import load_volume

REPO = Path(__file__).resolve().parents[1]
METRICS = ("ssim_container", "ssim_full", "ssim_healthy_region", "ssim_tumour_region", "psnr_brain")


def parse_axes(text: str) -> tuple[int, ...]:
    return () if text == "none" else tuple(int(a) for a in text.split("+"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cohort", type=Path)
    parser.add_argument("target", type=Modality)
    parser.add_argument("--cases", type=int, default=8)
    parser.add_argument("--axes", default="none,0+1", help="comma-separated settings; 0+1 = both axes")
    parser.add_argument("--weights", type=Path, default=REPO / "workspace" / "additional_files")
    parser.add_argument("--baseline", type=Path, default=REPO / "workspace" / "baseline")
    args = parser.parse_args()

    name = checkpoint_filename(args.target)
    runs = {
        f"model, mirror_axes {axes}": Predictor.from_checkpoint(
            args.weights / name, settings=InferenceSettings(mirror_axes=parse_axes(axes))
        )
        for axes in args.axes.split(",")
    }
    runs["baseline"] = Predictor.from_checkpoint(args.baseline / name, settings=InferenceSettings(mirror_axes=()))
    scores: dict[str, list[dict[str, float]]] = {run: [] for run in runs}
    for folder in sorted(p for p in args.cohort.iterdir() if p.is_dir())[: args.cases]:
        case_id, start = folder.name, time.perf_counter()
        volumes = {m: load_volume(folder / image_filename(case_id, m.value))[0] for m in MODALITIES}
        seg = load_volume(folder / image_filename(case_id, "seg"))[0].astype(np.uint8)
        brain = brain_mask(list(volumes.values()))
        for run, predictor in runs.items():
            image = predictor.predict({m: volumes[m] for m in predictor.sources}, case_id=case_id).image
            scores[run].append(score_case(image, volumes[args.target], seg, brain))
        print(f"{case_id}: {time.perf_counter() - start:.0f} s", flush=True)

    print(f"\n{args.target}, mean over {len(scores['baseline'])} cases")
    print("| run | " + " | ".join(METRICS) + " |\n|---|" + "---|" * len(METRICS))
    for run, rows in scores.items():
        print(f"| {run} | " + " | ".join(f"{np.mean([r[k] for r in rows]):.4f}" for k in METRICS) + " |")


if __name__ == "__main__":
    main()
