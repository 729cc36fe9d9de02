#!/usr/bin/env python3
"""End-to-end inference speed: a folder of full 240 x 240 x 155 cases (compressed NIfTI) to written
predictions, the engine (`synthesize_folder`, default settings but one pass per slice: no test-time
mirroring, which multiplies the network's work by up to 4) against the naive reference
(`naive.py`: synchronous I/O, every slice at batch 1, float32), same random-initialised checkpoints,
same cases, alternated in one process so that both see the same background load.

Per model size it reports medians over `--repeats` of seconds per case (wall, and CPU seconds of the
process, the less noisy figure on a shared machine), the per-stage breakdown (read and validate,
normalize, network, restore scale and background, write; the engine's stages overlap, so they sum to
more than its wall time) and the peak resident memory of each run. Model loading is included in both.
For the models in `--mirrored` (default: demo) it also times the engine with its default test-time
mirroring, alternated with the other two, and reports what mirroring costs against one pass.

    python bench/bench_inference.py                               # demo and paper on CPU
    python bench/bench_inference.py --models demo --repeats 5 --json out.json
    python bench/bench_inference.py --device cuda --models demo,paper --cases 8
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import common
import naive

from brasyn.constants import BRATS_SHAPE, Modality
from brasyn.inference import InferenceSettings, synthesize_folder
from brasyn.inference.engine import STAGES
from brasyn.inference.settings import DEFAULT_MIRROR_AXES

TARGET = Modality.T2F


def timed(run) -> dict:
    """Wall and CPU seconds, peak RSS and the stage sums of one folder run."""
    common.reset_peak_rss()
    wall, cpu = time.perf_counter(), time.process_time()
    stages, n = run()
    return {
        "wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu, "cases": n,
        "peak_rss_mib": common.peak_rss_mib(), "stages": stages,
    }


def run_engine(data: Path, out: Path, weights: Path, device: str, mirror_axes: tuple[int, ...] = ()):
    """The engine; by default one pass per slice, as the naive reference makes (`mirror_axes`)."""

    def run():
        settings = InferenceSettings(device=device, overwrite=True, progress=False, mirror_axes=mirror_axes)
        summary = synthesize_folder(data, out, weights, settings=settings)
        if not summary.ok or not summary.done:
            raise RuntimeError(summary.format())
        return {s: sum(r.timings[s] for r in summary.done) for s in STAGES}, len(summary.done)

    return timed(run)


def run_naive(data: Path, out: Path, weights: Path, device: str):
    def run():
        result = naive.synthesize_folder(data, out, weights, device)
        return result["stages"], result["cases"]

    return timed(run)


def per_case(runs: list[dict]) -> dict:
    """Medians per case over runs: wall, cpu, stages; and the largest peak RSS."""
    n = runs[0]["cases"]
    return {
        "s_per_case": statistics.median(r["wall_s"] for r in runs) / n,
        "cpu_s_per_case": statistics.median(r["cpu_s"] for r in runs) / n,
        "stages_s_per_case": {s: statistics.median(r["stages"][s] for r in runs) / n for s in STAGES},
        "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
        "runs": runs,
    }


def bench_model(name: str, cases: int, repeats: int, device: str, work: Path, mirrored: bool = False) -> dict:
    config = common.model_config(name)
    root = work / name
    weights = common.write_weights(root / "weights", config, targets=(TARGET,))
    data, warm = root / "data", root / "warm"
    fits = config.image_size >= max(BRATS_SHAPE[:2])  # full BraTS cases, or small ones for the tiny model
    shape = BRATS_SHAPE if fits else (config.image_size * 3 // 4, config.image_size * 3 // 4, 24)
    common.write_cases(data, cases, shape=shape, target=TARGET)
    common.write_cases(warm, 1, shape=shape[:2] + (8,), target=TARGET)
    run_naive(warm, root / "o", weights, device), run_engine(warm, root / "o2", weights, device)  # warm-up
    naive_runs, engine_runs, mirrored_runs = [], [], []
    for _ in range(repeats):
        naive_runs.append(run_naive(data, root / "naive", weights, device))
        engine_runs.append(run_engine(data, root / "engine", weights, device))
        if mirrored:  # the default settings: test-time mirroring, 2^len(axes) passes per slice
            mirrored_runs.append(run_engine(data, root / "mirrored", weights, device, DEFAULT_MIRROR_AXES))
    params = sum(p.numel() for p in common.Generator.from_config(config).parameters())
    row = {"model": name, "params": params, "device": device, "cases": cases, "repeats": repeats,
           "naive": per_case(naive_runs), "engine": per_case(engine_runs)}
    row["speedup"] = row["naive"]["s_per_case"] / row["engine"]["s_per_case"]
    row["cpu_ratio"] = row["naive"]["cpu_s_per_case"] / row["engine"]["cpu_s_per_case"]
    if mirrored:
        row["engine_mirrored"] = {**per_case(mirrored_runs), "mirror_axes": list(DEFAULT_MIRROR_AXES)}
        row["mirror_cost"] = row["engine_mirrored"]["s_per_case"] / row["engine"]["s_per_case"]
    shutil.rmtree(root, ignore_errors=True)
    return row


def print_row(row: dict) -> None:
    for kind in ("naive", "engine", "engine_mirrored"):
        if kind not in row:
            continue
        r = row[kind]
        stages = " ".join(f"{s} {r['stages_s_per_case'][s]:5.2f}" for s in STAGES)
        print(f"{row['model']:6} {kind:15} {r['s_per_case']:7.2f} s/case  cpu {r['cpu_s_per_case']:6.2f} s  "
              f"peak {r['peak_rss_mib']:6.0f} MiB | {stages}")
    print(f"{row['model']:6} engine speedup {row['speedup']:.2f}x wall, {row['cpu_ratio']:.2f}x cpu")
    if "mirror_cost" in row:
        print(f"{row['model']:6} test-time mirroring costs {row['mirror_cost']:.2f}x the one-pass engine")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="demo,paper", help="comma list of tiny, demo, paper")
    parser.add_argument("--cases", default="demo=2,paper=1", help="cases per folder: N or model=N,...")
    parser.add_argument("--repeats", default="demo=3,paper=1", help="alternated repeats: N or model=N,...")
    parser.add_argument("--mirrored", default="demo", help="models also timed with test-time mirroring (or none)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()

    def per_model(text: str, name: str) -> int:
        if "=" not in text:
            return int(text)
        return int(dict(item.split("=") for item in text.split(",")).get(name, 1))

    info = common.machine()
    print(f"machine: {info}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="brasyn-bench-") as work:
        for name in args.models.split(","):
            mirrored = name in args.mirrored.split(",")
            row = bench_model(
                name, per_model(args.cases, name), per_model(args.repeats, name), args.device, Path(work), mirrored
            )
            print_row(row)
            rows.append(row)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": info, "inference": rows}, indent=1))


if __name__ == "__main__":
    main()
