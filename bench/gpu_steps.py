#!/usr/bin/env python3
"""The Python steps of `bench/gpu_check.sh`; each writes one JSON file and prints one line.

    gpu_steps.py inference --device cuda --models demo,paper --out inference.json [--compile] [--cudagraphs]
    gpu_steps.py cube-inputs --device cuda --model paper --cases 8 --root DIR
    gpu_steps.py cube-timings --log cube.log --cases 8 --wall 12.3 --out cube.json
    gpu_steps.py ssim --device cuda --model paper --out ssim.json
    gpu_steps.py train-step --device cuda --model paper --out train_step.json

Inference: the naive reference (every slice at batch 1, float32, NCHW) against the engine's
`Predictor` with its defaults but one pass per slice (batch auto, channels-last, bf16/fp16 autocast
on CUDA, cuDNN autotuning; no test-time mirroring), then optional variants (torch.compile; CUDA
graphs through torch.compile's "reduce-overhead" mode), each on one full case in memory: network
seconds and whole-`predict` seconds, medians, and peak GPU memory.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from pathlib import Path

import common
import numpy as np
import torch

from brasyn.constants import BRATS_SHAPE, Modality, sources_for
from brasyn.data.normalization import IntensityModel
from brasyn.inference import InferenceSettings, Predictor
from brasyn.models.generator import Generator

TARGET = Modality.T2F


def case_shape(image_size: int, depth: int = BRATS_SHAPE[2]) -> tuple[int, int, int]:
    """A full BraTS case where the model fits it, else a small one (the tiny model's 64 x 64)."""
    if image_size >= max(BRATS_SHAPE[:2]):
        return BRATS_SHAPE[:2] + (depth,)
    side = image_size * 3 // 4
    return (side, side, min(depth, 24))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_predictor(name: str, device: str, **options) -> Predictor:
    """One network pass per slice (no test-time mirroring) unless `options` (`InferenceSettings`
    fields) say otherwise: the variants are compared at equal work."""
    options.setdefault("mirror_axes", ())
    config = common.model_config(name)
    torch.manual_seed(0)
    intensity = IntensityModel(TARGET, sources_for(TARGET), intercept=0.0, coefficients=(1 / 3,) * 3)
    return Predictor(Generator.from_config(config), target=TARGET, intensity_model=intensity,
                     image_size=config.image_size, settings=InferenceSettings(device=device, **options))


def time_variant(predictor: Predictor, case: dict, slices: np.ndarray, repeats: int) -> dict:
    """Median seconds of the network over `slices` and of a whole `predict`; peak GPU memory."""
    device = predictor.device
    for _ in range(2):  # warm-up: cuDNN autotuning, compilation, CUDA graph capture
        predictor.run(slices)
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    network, whole = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        predictor.run(slices)
        sync(device)
        network.append(time.perf_counter() - start)
        start = time.perf_counter()
        predictor.predict(case)
        sync(device)
        whole.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return {"network_s": statistics.median(network), "predict_s": statistics.median(whole), "peak_gpu_mib": peak,
            "batch_size": predictor.batch_size, "precision": str(predictor.autocast_dtype or "fp32")}


def inference(args) -> dict:
    rows = []
    for name in args.models.split(","):
        config = common.model_config(name)
        case = common.brain_volumes(case_shape(config.image_size))
        case = {m: case[m] for m in sources_for(TARGET)}
        naive = make_predictor(name, args.device, batch_size=1, channels_last=False, precision="fp32")
        prepared = naive.prepare(case)
        every_slice = np.concatenate([prepared.slices, np.full_like(prepared.slices[:1], -1.0)])
        every_slice = np.resize(every_slice, (case_shape(config.image_size)[2],) + prepared.slices.shape[1:])
        row = {"model": name, "device": args.device, "brain_slices": len(prepared.slices), "slices": len(every_slice)}
        row["naive_fp32"] = time_variant(naive, case, every_slice, args.repeats)  # no empty-slice skip
        del naive
        variants = {"engine": {}}
        if args.compile:
            variants["engine_compile"] = {"mode": "default"}
        if args.cudagraphs:
            variants["engine_cudagraphs"] = {"mode": "reduce-overhead"}
        for label, compile_options in variants.items():
            try:
                predictor = make_predictor(name, args.device)
                if compile_options:
                    predictor.model = torch.compile(predictor.model, **compile_options)
                row[label] = time_variant(predictor, case, prepared.slices, args.repeats)
                row[label]["speedup_network"] = row["naive_fp32"]["network_s"] / row[label]["network_s"]
                row[label]["speedup_predict"] = row["naive_fp32"]["predict_s"] / row[label]["predict_s"]
            except Exception as exc:  # an optional variant that fails is recorded, not fatal
                row[label] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
            finally:
                predictor = None
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
        rows.append(row)
        best = {k: v["network_s"] for k, v in row.items() if isinstance(v, dict) and "network_s" in v}
        print(f"inference {name}: " + ", ".join(f"{k} {v:.3f} s network" for k, v in best.items()))
    return {"machine": common.machine(), "inference": rows}


def cube_inputs(args) -> dict:
    """`cases` cases (the missing modality cycles) and random-initialised checkpoints for the four targets."""
    config = common.model_config(args.model)
    root = Path(args.root)
    common.write_cases(root / "data", args.cases, shape=case_shape(config.image_size))
    common.write_weights(root / "weights", config)
    (root / "parameters.yaml").write_text(f"infer:\n  device: {args.device}\n  overwrite: true\n")
    print(f"cube inputs: {args.cases} cases {case_shape(config.image_size)}, {args.model} weights in {root}")
    return {"cases": args.cases, "shape": case_shape(config.image_size), "model": args.model}


_CASE_LINE = re.compile(r"synthesized in ([\d.]+) s[^(]*\(([^)]*)\)")


def cube_timings(args) -> dict:
    """Per-case seconds and stage breakdown from the cube's log (one INFO line per case)."""
    lines = Path(args.log).read_text(errors="replace").splitlines()
    cases = []
    for line in lines:
        match = _CASE_LINE.search(line)
        if match:
            stages = dict(item.split() for item in match.group(2).split(", "))
            cases.append({"seconds": float(match.group(1)), **{k: float(v) for k, v in stages.items()}})
    result = {"cases_expected": args.cases, "cases_done": len(cases), "wall_s": args.wall,
              "wall_s_per_case": args.wall / max(1, args.cases), "per_case": cases}
    if cases:
        result["median"] = {k: statistics.median(c[k] for c in cases) for k in cases[0]}
    print(
        f"cube: {len(cases)}/{args.cases} cases, {result['wall_s_per_case']:.2f} s per case wall"
        " (process start, model load included)"
    )
    return result


def ssim(args) -> dict:
    """fp32 against bf16 predictions of the same model and case: SSIM inside the brain, largest difference."""
    from brasyn.evaluation.ssim import region_mean, ssim3d_map

    config = common.model_config(args.model)
    volumes = common.brain_volumes(case_shape(config.image_size))
    case = {m: volumes[m] for m in sources_for(TARGET)}
    fp32 = make_predictor(args.model, args.device, precision="fp32").predict(case).image
    bf16 = make_predictor(args.model, args.device, precision="bf16").predict(case).image
    brain = fp32 != 0
    data_range = float(fp32[brain].max() - fp32[brain].min()) or 1.0
    value = region_mean(ssim3d_map(bf16, fp32, data_range=data_range), brain)
    result = {"model": args.model, "ssim_bf16_vs_fp32": value,
              "max_abs_diff_rel": float(np.abs(bf16 - fp32).max() / max(float(np.abs(fp32).max()), 1e-6))}
    print(f"ssim fp32 vs bf16 ({args.model}): {value:.5f}")
    return result


def train_step(args) -> dict:
    """One optimiser step of each stage at `model` size, batch 4, bf16 autocast; median of timed steps."""
    from brasyn.training import load_training_setup
    from brasyn.training.runtime import Runtime
    from brasyn.training.trainers import AutoencoderTrainer, Batch, TranslationTrainer

    setup = load_training_setup(args.model)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    rt = Runtime(device=device, autocast_dtype=torch.bfloat16)
    size, n = setup.model.image_size, args.batch_size
    generator = torch.Generator().manual_seed(0)
    batch = Batch(
        sources=(torch.rand(n, 3, size, size, generator=generator) * 2 - 1).to(device),
        target=(torch.rand(n, 1, size, size, generator=generator) * 2 - 1).to(device),
        seg=torch.randint(0, 4, (n, size, size), generator=generator).to(device),
    )
    total = args.warmup + args.steps
    stage1 = AutoencoderTrainer(setup.model, setup.training.stage1, rt, total)
    result = {"model": args.model, "batch_size": n, "precision": "bf16"}
    for name in ("stage1", "stage2"):
        # stage 2 freezes the autoencoder it is given: build it after stage 1 has stepped
        trainer = stage1 if name == "stage1" else TranslationTrainer(
            setup.model, setup.training.stage2, rt, total, stage1.autoencoder
        )
        trainer.train_mode()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        times = []
        for step in range(total):
            sync(device)
            start = time.perf_counter()
            terms = trainer.train_step(batch)
            sync(device)
            if step >= args.warmup:
                times.append(time.perf_counter() - start)
        finite = all(np.isfinite(v) for v in terms.values())
        peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
        result[name] = {"s_per_step": statistics.median(times), "finite_losses": finite, "peak_gpu_mib": peak}
        print(f"train {name} ({args.model}, batch {n}, bf16): {result[name]['s_per_step']:.3f} s/step, finite {finite}")
        if not finite:
            raise SystemExit(f"{name}: non-finite losses {terms}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("inference")
    p.add_argument("--models", default="demo,paper")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--compile", action="store_true", help="also measure torch.compile")
    p.add_argument("--cudagraphs", action="store_true", help="also measure CUDA graphs (compile mode reduce-overhead)")
    p = sub.add_parser("cube-inputs")
    p.add_argument("--model", default="paper")
    p.add_argument("--cases", type=int, default=8)
    p.add_argument("--root", required=True)
    p = sub.add_parser("cube-timings")
    p.add_argument("--log", required=True)
    p.add_argument("--cases", type=int, default=8)
    p.add_argument("--wall", type=float, required=True)
    p = sub.add_parser("ssim")
    p.add_argument("--model", default="paper")
    p = sub.add_parser("train-step")
    p.add_argument("--model", default="paper")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=3)
    for p in sub.choices.values():
        p.add_argument("--device", default="cuda")
        p.add_argument("--out", type=Path)
    args = parser.parse_args()
    steps = {"inference": inference, "cube-inputs": cube_inputs, "cube-timings": cube_timings, "ssim": ssim,
             "train-step": train_step}
    result = steps[args.step](args)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
