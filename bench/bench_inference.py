#!/usr/bin/env python3
"""Inference speed on one full BraTS-sized case (240 x 240 x 155), random-initialised models.

For each model size it times `Predictor.predict` (normalise, slice, network, crop, restore scale,
mask) at the optimized batch size and at batch size 1 (the naive slice-by-slice loop), on the same
machine in the same process, and reports medians over `--repeats` runs and the speedup.

    python bench/bench_inference.py                       # tiny, demo, base16 on CPU
    python bench/bench_inference.py --models demo --repeats 5 --device cuda
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "project") not in sys.path:
    sys.path.insert(0, str(REPO / "project"))

from brasyn.constants import BRATS_SHAPE, Modality, sources_for  # noqa: E402
from brasyn.data.normalization import IntensityModel  # noqa: E402
from brasyn.inference import Predictor  # noqa: E402
from brasyn.models.config import ModelConfig  # noqa: E402
from brasyn.models.generator import Generator  # noqa: E402

TARGET = Modality.T2F


def model_configs() -> dict[str, ModelConfig]:
    from brasyn.training import load_training_setup

    demo = load_training_setup("demo").model
    return {
        "tiny": ModelConfig.tiny(image_size=256),
        "demo": demo,
        "base16": ModelConfig.from_dict({**demo.to_dict(), "base_channels": 16}),
        "paper": ModelConfig(),
    }


def brain_case(shape=BRATS_SHAPE, seed: int = 0) -> dict[Modality, np.ndarray]:
    """Three source volumes inside an ellipsoid 'brain' spanning ~140 of the 155 axial slices."""
    rng = np.random.default_rng(seed)
    axes = [np.linspace(-1, 1, s, dtype=np.float32) for s in shape]
    x, y, z = np.meshgrid(*axes, indexing="ij")
    brain = (x / 0.75) ** 2 + (y / 0.85) ** 2 + (z / 0.92) ** 2 < 1
    out = {}
    for k, m in enumerate(sources_for(TARGET)):
        volume = 500.0 * (k + 1) * (1 + 0.3 * x) + rng.normal(0, 20, shape).astype(np.float32)
        out[m] = np.where(brain, np.clip(volume, 1, None), 0).astype(np.float32)
    return out


def predictor(config: ModelConfig, batch_size: int, device: str) -> Predictor:
    torch.manual_seed(0)
    intensity = IntensityModel(TARGET, sources_for(TARGET), intercept=0.0, coefficients=(1 / 3,) * 3)
    return Predictor(
        Generator.from_config(config), target=TARGET, intensity_model=intensity, image_size=config.image_size,
        device=device, precision="auto", batch_size=batch_size,
    )


def median_seconds(pred: Predictor, case, repeats: int) -> tuple[float, list[float]]:
    pred.predict(case)  # warm-up (allocator, kernels)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        pred.predict(case)
        if pred.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="tiny,demo,base16", help="comma list of tiny, demo, base16, paper")
    parser.add_argument("--batch-size", type=int, default=16, help="optimized batch size")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    case = brain_case()
    n_slices = int(np.any(np.stack(list(case.values())) != 0, axis=(0, 1, 2)).sum())
    configs = model_configs()
    print(f"device {args.device}, torch threads {torch.get_num_threads()}, case {BRATS_SHAPE}, {n_slices} brain slices")
    print(f"{'model':8} {'params':>9} {'batch 1 (s)':>12} {'batch ' + str(args.batch_size) + ' (s)':>13} {'speedup':>8} {'ms/slice':>9}")
    rows = []
    for name in args.models.split(","):
        config = configs[name]
        params = sum(p.numel() for p in Generator.from_config(config).parameters())
        with torch.inference_mode():
            naive, naive_all = median_seconds(predictor(config, 1, args.device), case, args.repeats)
            batched, batched_all = median_seconds(predictor(config, args.batch_size, args.device), case, args.repeats)
        row = {
            "model": name, "params": params, "batch1_s": naive, "batched_s": batched, "batch_size": args.batch_size,
            "speedup": naive / batched, "ms_per_slice": 1000 * batched / n_slices,
            "batch1_runs": naive_all, "batched_runs": batched_all, "device": args.device,
        }
        rows.append(row)
        print(f"{name:8} {params:9d} {naive:12.2f} {batched:13.2f} {naive / batched:7.2f}x {row['ms_per_slice']:9.1f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
