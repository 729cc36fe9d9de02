#!/usr/bin/env python3
"""Summary of a `gpu_check.sh` folder: steps.tsv and each step's JSON -> summary.json and a compact table."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path


def load(folder: Path, name: str) -> dict | None:
    try:
        return json.loads((folder / f"{name}.json").read_text())
    except (OSError, ValueError):
        return None


def figures(folder: Path) -> dict:
    """The headline numbers of each step that produced them."""
    out: dict = {}
    env = load(folder, "env")
    if env:
        out["machine"] = env
    support = load(folder, "gpu_support")
    if support:
        out["gpu_support"] = support
    for key in ("inference", "inference_compiled"):
        data = load(folder, key)
        for row in (data or {}).get("inference", []):
            for variant, values in row.items():
                if isinstance(values, dict) and "network_s" in values:
                    out[f"{key}.{row['model']}.{variant}"] = {
                        k: values[k]
                        for k in ("network_s", "predict_s", "peak_gpu_mib", "speedup_network")
                        if k in values
                    }
                elif isinstance(values, dict) and "error" in values:
                    out[f"{key}.{row['model']}.{variant}"] = {"error": values["error"]}
    cube = load(folder, "cube")
    if cube:
        out["cube"] = {k: cube.get(k) for k in ("cases_done", "cases_expected", "wall_s_per_case", "median")}
    ssim = load(folder, "ssim")
    if ssim:
        out["ssim_bf16_vs_fp32"] = ssim.get("ssim_bf16_vs_fp32")
    train = load(folder, "train_step")
    if train:
        out["train_step"] = {s: train[s]["s_per_step"] for s in ("stage1", "stage2") if s in train}
    ddp = load(folder, "ddp")
    if ddp:
        out["ddp"] = ddp
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--elapsed", type=float, default=None)
    args = parser.parse_args()
    with open(args.folder / "steps.tsv") as handle:
        steps = {row["step"]: row for row in csv.DictReader(handle, delimiter="\t")}
    summary = {
        "ok": all(row["status"] == "ok" for row in steps.values()),
        "elapsed_s": args.elapsed,
        "steps": {
            name: {"status": row["status"], "seconds": float(row["seconds"] or 0)} for name, row in steps.items()
        },
        "figures": figures(args.folder),
    }
    (args.folder / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    print(f"\n== gpu_check summary ({args.folder}) ==")
    machine = summary["figures"].get("machine", {})
    print(f"machine: {machine.get('gpu') or machine.get('cpu')}, torch {machine.get('torch')}")
    for name, row in summary["steps"].items():
        print(f"  {name:20} {row['status']:8} {row['seconds']:7.1f} s")
    for key, value in summary["figures"].items():
        if key != "machine":
            print(f"  {key}: {json.dumps(value, default=str)[:200]}")
    print(f"overall: {'OK' if summary['ok'] else 'SOME STEPS FAILED'}, {args.elapsed or 0:.0f} s")


if __name__ == "__main__":
    main()
