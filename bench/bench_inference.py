#!/usr/bin/env python3
"""Inference speed on one full BraTS-sized case (240 x 240 x 155), random-initialised models.

For each model size it times `Predictor.predict` (normalise, slice, network, crop, restore scale,
mask) as the engine runs it (batches of `--batch-size` slices, channels-last memory format) and as a
naive slice-by-slice loop (batch 1, default NCHW format), alternating the two in one process so that
both see the same background load; it reports medians over `--repeats` runs of the wall time and
of the process's CPU time (the latter is less sensitive to other processes on a shared machine).

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


def predictor(config: ModelConfig, batch_size: int, device: str, *, optimized: bool) -> Predictor:
    """optimized: channels-last at `batch_size`; naive: the plain slice-by-slice loop (batch 1, NCHW)."""
    torch.manual_seed(0)
    intensity = IntensityModel(TARGET, sources_for(TARGET), intercept=0.0, coefficients=(1 / 3,) * 3)
    return Predictor(
        Generator.from_config(config), target=TARGET, intensity_model=intensity, image_size=config.image_size,
        device=device, precision="auto", batch_size=batch_size if optimized else 1, channels_last=optimized,
    )


def timed(pred: Predictor, case) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process summed over its threads)."""
    start, cpu = time.perf_counter(), time.process_time()
    pred.predict(case)
    if pred.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, time.process_time() - cpu


def compare(
    config: ModelConfig, case, batch_size: int, device: str, repeats: int
) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """Alternate naive and optimized runs so that both see the same background load."""
    naive = predictor(config, batch_size, device, optimized=False)
    fast = predictor(config, batch_size, device, optimized=True)
    timed(naive, case), timed(fast, case)  # warm-up (allocator, oneDNN / cuDNN kernel choice)
    naive_runs, fast_runs = [], []
    for _ in range(repeats):
        naive_runs.append(timed(naive, case))
        fast_runs.append(timed(fast, case))
    return naive_runs, fast_runs


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
    print("wall = elapsed seconds per case; cpu = CPU seconds of the process (less sensitive to other load)")
    print(f"{'model':8} {'params':>9} {'naive wall':>10} {'opt. wall':>10} {'speedup':>8} {'naive cpu':>10} {'opt. cpu':>9} {'cpu ratio':>9}")
    rows = []
    for name in args.models.split(","):
        config = configs[name]
        params = sum(p.numel() for p in Generator.from_config(config).parameters())
        naive_runs, fast_runs = compare(config, case, args.batch_size, args.device, args.repeats)
        naive, fast = (statistics.median(r[0] for r in runs) for runs in (naive_runs, fast_runs))
        naive_cpu, fast_cpu = (statistics.median(r[1] for r in runs) for runs in (naive_runs, fast_runs))
        row = {
            "model": name, "params": params, "batch_size": args.batch_size, "device": args.device,
            "naive_s": naive, "optimized_s": fast, "speedup": naive / fast,
            "naive_cpu_s": naive_cpu, "optimized_cpu_s": fast_cpu, "ms_per_slice": 1000 * fast / n_slices,
            "naive_runs": naive_runs, "optimized_runs": fast_runs,
        }
        rows.append(row)
        print(
            f"{name:8} {params:9d} {naive:10.2f} {fast:10.2f} {naive / fast:7.2f}x "
            f"{naive_cpu:10.2f} {fast_cpu:9.2f} {naive_cpu / fast_cpu:8.2f}x"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
