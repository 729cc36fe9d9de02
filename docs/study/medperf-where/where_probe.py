#!/usr/bin/env python3
"""Issue 17: where in the volume does the model lose MedPerf-2023 SSIM to the baseline, and how?

    python docs/study/medperf-where/where_probe.py t1c --run bundled=workspace/additional_files \
        --baseline workspace/baseline --cohort indist=runs/issue17/indist/labels \
        --cohort shifted=runs/issue17/shifted/labels > docs/study/medperf-where/bundled_t1c.txt

The MedPerf-2023 SSIM (`brasyn.evaluation.ssim.container_ssim`) is the mean of a 2-D SSIM map over
every voxel of the volume, background included. So the model-minus-baseline difference of the score
is exactly the sum over disjoint regions of (sum of the map difference in the region) / (voxels in
the volume). This probe splits it over five regions, in-plane (the map's windows are 2-D, along the
volume's last two axes): far background (more than 5 voxels outside the brain), the background band
within 5 voxels of the brain, the brain's outer 5 voxels, the healthy brain inside that, and the
tumour (seg > 0, wherever it lies). Each region's map is also split into its luminance factor
l = (2 mu_p mu_t + c1) / (mu_p^2 + mu_t^2 + c1), which a wrong scale lowers, and the rest,
contrast-structure cs = SSIM / l, and the same split is printed with the prediction rescaled by the
oracle factor median(truth) / median(prediction) in the brain. Then how the edge looks: the mean
of each image over the brain's voxels at in-plane depth 1 (the outermost ring) to 5 and deeper,
divided by the same image's brain median (scale-free), for the truth, the model and the baseline,
and what the outermost ring is worth: the model's score with that ring's voxels taken from the
baseline's prediction.

Every case of each cohort (`labels/original_data`) is scored as a `target` case, the cases that
really miss it (`missing.json`) marked with *; the model with the inference defaults, the baseline
without mirroring (as `brasyn infer` runs it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "scripts"))
from study_cases import load_training_case, named  # noqa: E402

from brasyn.checkpoint import checkpoint_filename  # noqa: E402
from brasyn.constants import Modality  # noqa: E402
from brasyn.evaluation.ssim import (  # noqa: E402
    K1,
    container_normalize,
    container_ssim,
    container_ssim_map,
    data_range_of,
    gaussian_kernel_1d,
)
from brasyn.inference import InferenceSettings, Predictor  # noqa: E402

BAND = 5  # voxels: the SSIM window's radius
REGIONS = ("far background", "background band", "brain edge", "healthy interior", "tumour")
PLANE = np.zeros((3, 3, 3), dtype=bool)
PLANE[1] = ndimage.generate_binary_structure(2, 1)  # in-plane 4-neighbourhood: the map's windows are 2-D


def regions(brain: np.ndarray, tumour: np.ndarray) -> dict[str, np.ndarray]:
    """The five disjoint regions (see module doc), grown and shrunk in-plane only."""
    grown = ndimage.binary_dilation(brain, PLANE, iterations=BAND)
    inner = ndimage.binary_erosion(brain, PLANE, iterations=BAND)
    return {
        "far background": ~grown & ~tumour,
        "background band": grown & ~brain & ~tumour,
        "brain edge": brain & ~inner & ~tumour,
        "healthy interior": inner & ~tumour,
        "tumour": tumour,
    }


def depth_profile(image: np.ndarray, brain: np.ndarray) -> list[float]:
    """Mean of `image` over the brain voxels at in-plane depth 1..BAND and deeper, / its brain median."""
    median = float(np.median(image[brain]))
    profile, ring = [], brain
    for _ in range(BAND):
        inner = ndimage.binary_erosion(ring, PLANE)
        profile.append(float(image[ring & ~inner].mean()) / median)
        ring = inner
    return profile + [float(image[ring].mean()) / median]


def maps(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(SSIM map, its luminance factor) under the MedPerf-2023 convention."""
    p, t = container_normalize(pred, truth)
    data_range = data_range_of(p, t)
    kernel = gaussian_kernel_1d()

    def blur(x: np.ndarray) -> np.ndarray:
        for axis in (1, 2):
            x = ndimage.correlate1d(x, kernel, axis=axis, mode="mirror")
        return x

    mu_p, mu_t = blur(p), blur(t)
    c1 = (K1 * data_range) ** 2
    luminance = (2 * mu_p * mu_t + c1) / (mu_p**2 + mu_t**2 + c1)
    return container_ssim_map(pred, truth), luminance


def split(pred: np.ndarray, truth: np.ndarray, parts: dict[str, np.ndarray]) -> dict[str, tuple[float, float, float]]:
    """Per region: (sum of SSIM, sum of l, sum of cs) over the region, divided by the volume's voxels."""
    ssim, lum = maps(pred, truth)
    with np.errstate(invalid="ignore", divide="ignore"):
        cs = np.where(lum > 0, ssim / lum, 0.0)
    n = ssim.size
    return {r: (ssim[m].sum() / n, lum[m].sum() / n, cs[m].sum() / n) for r, m in parts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", type=Modality)
    parser.add_argument("--run", type=named, required=True, help="NAME=WEIGHTS (the model)")
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--cohort", type=named, action="append", required=True, help="NAME=LABELS (repeatable)")
    args = parser.parse_args()
    name = checkpoint_filename(args.target)
    model_name, weights = args.run
    model = Predictor.from_checkpoint(weights / name)
    baseline = Predictor.from_checkpoint(args.baseline / name, settings=InferenceSettings(mirror_axes=()))
    print(f"{args.target}: {model_name} ({weights}) minus baseline ({args.baseline}), MedPerf-2023 SSIM x 1e4, "
          "split over regions (each region's share of the score difference; they add up to the total)")
    for cohort, labels in args.cohort:
        missing = json.loads((labels / "missing.json").read_text())
        totals = {view: {} for view in ("as predicted", "oracle scale")}
        profiles = {}  # case -> (mark, {image: depth profile}, MedPerf SSIM of model, spliced, baseline)
        header = " | ".join(REGIONS)
        print(f"\n{cohort}\n| case | view | total | {header} | SSIM model / baseline | l diff | cs diff |")
        print("|---" * (len(REGIONS) + 6) + "|")
        for case in sorted(p for p in (labels / "original_data").iterdir() if p.is_dir()):
            volumes, seg, brain = load_training_case(case)
            truth = volumes[args.target]
            parts = regions(brain, seg > 0)
            sources = {m: volumes[m] for m in model.sources}
            pred = {"model": model.predict(sources, case_id=case.name).image,
                    "baseline": baseline.predict(sources, case_id=case.name).image}
            mark = "*" if missing.get(case.name) == args.target.value else ""
            images = {"truth": truth, model_name: pred["model"], "baseline": pred["baseline"]}
            ring = brain & ~ndimage.binary_erosion(brain, PLANE)
            spliced = container_ssim(np.where(ring, pred["baseline"], pred["model"]), truth)
            depths = {k: depth_profile(v, brain) for k, v in images.items()}
            for view in totals:
                if view == "oracle scale":
                    pred = {k: v * float(np.median(truth[brain]) / np.median(v[brain])) for k, v in pred.items()}
                s = {k: split(v, truth, parts) for k, v in pred.items()}
                diff = {r: [1e4 * (s["model"][r][i] - s["baseline"][r][i]) for i in range(3)] for r in REGIONS}
                score = {k: sum(v[r][0] for r in REGIONS) for k, v in s.items()}
                total = 1e4 * (score["model"] - score["baseline"])
                totals[view][case.name] = (mark, total, diff)
                if view == "as predicted":  # the regions' sums are the two scores: no second SSIM pass
                    profiles[case.name] = (mark, depths, [score["model"], spliced, score["baseline"]])
                cells = " | ".join(f"{diff[r][0]:+.1f}" for r in REGIONS)
                l_diff = sum(diff[r][1] for r in REGIONS)
                cs_diff = sum(diff[r][2] for r in REGIONS)
                print(f"| {case.name}{mark} | {view} | {total:+.1f} | {cells} | {score['model']:.4f} / "
                      f"{score['baseline']:.4f} | {l_diff:+.1f} | {cs_diff:+.1f} |", flush=True)
        for view, rows in totals.items():
            for label, keep in (("cases missing it (*)", lambda m: m == "*"), ("every case", lambda m: True)):
                chosen = [v for v in rows.values() if keep(v[0])]
                if not chosen:
                    continue
                mean = {r: np.mean([c[2][r][0] for c in chosen]) for r in REGIONS}
                total = np.mean([c[1] for c in chosen])
                cells = " | ".join(f"{mean[r]:+.1f}" for r in REGIONS)
                l_diff = np.mean([sum(c[2][r][1] for r in REGIONS) for c in chosen])
                cs_diff = np.mean([sum(c[2][r][2] for r in REGIONS) for c in chosen])
                print(f"| mean, {label} | {view} | {total:+.1f} | {cells} | | {l_diff:+.1f} | {cs_diff:+.1f} |")
        depths = " | ".join(f"depth {d}" for d in range(1, BAND + 1))
        print(f"\n{cohort}: mean over the brain's voxels at each in-plane depth / the image's brain median")
        print(f"| cases | image | {depths} | deeper |\n" + "|---" * (BAND + 3) + "|")
        views = (("missing it (*)", lambda m: m == "*"), ("every case", lambda m: True))
        for label, keep in views:
            chosen = [p for mark, p, _ in profiles.values() if keep(mark)]
            for image in chosen[0] if chosen else ():
                mean = np.mean([p[image] for p in chosen], axis=0)
                print(f"| {label} | {image} | " + " | ".join(f"{v:.3f}" for v in mean) + " |")
        print(f"\n{cohort}: MedPerf-2023 SSIM, as predicted\n| cases | {model_name} | {model_name}, outermost ring "
              "from the baseline | baseline |\n|---|---|---|---|")
        for label, keep in views:
            chosen = [r for mark, _, r in profiles.values() if keep(mark)]
            if chosen:
                print(f"| {label} | " + " | ".join(f"{v:.4f}" for v in np.mean(chosen, axis=0)) + " |")


if __name__ == "__main__":
    main()
