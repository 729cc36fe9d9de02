#!/usr/bin/env python3
"""Training data pipeline alone: `SliceDataset` + `DataLoader` as the step loop builds them (shuffled,
batch 4, `collate_slices`, model size 256), over the slice cache of full-size synthetic cases; slices per second,
median of `--repeats` passes of `--slices` slices, for each `--workers` count.

    python bench/bench_loader.py --workers 0,2 --json out.json
    python bench/bench_loader.py --workers 0 --augmentation synthetic_robust   # with that preset's augmentation
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import common
import numpy as np
import torch
from torch.utils.data import DataLoader

from brasyn.constants import BRATS_AFFINE, BRATS_SHAPE, Modality, image_filename
from brasyn.data.cases import discover_cases
from brasyn.data.slices import CacheOptions, SliceDataset, build_slice_cache, collate_slices
from brasyn.io.nifti import new_geometry, write_volume


def write_training_cases(root: Path, n: int, shape=BRATS_SHAPE) -> None:
    """Complete cases (four modalities and a seg whose tumour spans ~40 % of the axial slices)."""
    geometry = new_geometry(shape, BRATS_AFFINE)
    axes = [np.linspace(-1, 1, s, dtype=np.float32) for s in shape]
    x, y, z = np.meshgrid(*axes, indexing="ij")
    seg = (((x - 0.2) / 0.3) ** 2 + (y / 0.3) ** 2 + (z / 0.4) ** 2 < 1).astype(np.uint8) * 2
    for k in range(n):
        case_id = f"BraTS-GLI-{k:05d}-000"
        folder = root / case_id
        folder.mkdir(parents=True, exist_ok=True)
        for m, volume in common.brain_volumes(shape, seed=k).items():
            write_volume(volume, folder / image_filename(case_id, m), geometry, dtype=np.int16)
        write_volume(seg, folder / image_filename(case_id, "seg"), geometry, dtype=np.uint8)


def slices_per_second(dataset: SliceDataset, workers: int, slices: int, batch_size: int = 4) -> float:
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0)).tolist()
    indices = (order * (slices // len(order) + 1))[:slices]
    loader = DataLoader(
        dataset, batch_size=batch_size, sampler=indices, drop_last=True, num_workers=workers, collate_fn=collate_slices
    )
    started, seen = time.perf_counter(), 0
    for sample in loader:
        seen += len(sample.sources)
    return seen / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=2)
    parser.add_argument("--slices", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", default="0,2", help="comma list of DataLoader worker counts")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--augmentation", default=None, help="preset whose training augmentation the dataset applies")
    args = parser.parse_args()
    augmentation = None
    if args.augmentation:
        from brasyn.training.config import load_training_setup

        augmentation = load_training_setup(args.augmentation).training.data.augmentation
    rows = []
    with tempfile.TemporaryDirectory(prefix="brasyn-loader-") as work:
        root = Path(work)
        write_training_cases(root / "data", args.cases)
        cached = build_slice_cache(discover_cases(root / "data"), root / "cache", CacheOptions(), progress=False)
        dataset = SliceDataset(cached, Modality.T2F, 256, augmentation=augmentation)
        slices_per_second(dataset, 0, 64)  # warm-up: page cache, allocator
        for workers in (int(w) for w in args.workers.split(",")):
            rates = [slices_per_second(dataset, workers, args.slices) for _ in range(args.repeats)]
            row = {"workers": workers, "batch_size": 4, "cached_slices": len(dataset),
                   "augmentation": args.augmentation, "slices_per_s": statistics.median(rates), "runs": rates}
            print(
                f"loader: {workers} workers, batch 4, {len(dataset)} cached slices, augmentation "
                f"{args.augmentation or 'off'}: {row['slices_per_s']:.0f} slices/s"
            )
            rows.append(row)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": common.machine(), "loader": rows}, indent=1))


if __name__ == "__main__":
    main()
