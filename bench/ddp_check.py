#!/usr/bin/env python3
"""DDP check, launched by `torchrun --nproc_per_node N bench/ddp_check.py --device cuda --out ddp.json`.

Joins the process group (NCCL on CUDA, Gloo on CPU; also with one process), all-reduces each rank's
number, then runs stage-2 training steps of the `--model` preset through the project's trainers
(under DDP when N > 1) and checks that every rank ends with the same generator weights. Rank 0
writes the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import common  # noqa: F401  (puts project/ on sys.path)
import torch
import torch.distributed as dist

from brasyn.training import load_training_setup
from brasyn.training.runtime import Runtime
from brasyn.training.trainers import AutoencoderTrainer, Batch, TranslationTrainer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--model", default="demo")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rank, world, local = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"])
    device = torch.device("cuda", local) if args.device == "cuda" else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend)
    try:
        value = torch.tensor([float(rank + 1)], device=device)
        dist.all_reduce(value)
        expected = world * (world + 1) / 2
        setup = load_training_setup(args.model)
        rt = Runtime(device=device, autocast_dtype=torch.bfloat16 if device.type == "cuda" else None,
                     rank=rank, world_size=world, local_rank=local)
        size = setup.model.image_size
        torch.manual_seed(100 + rank)  # different data on each rank, same initial weights below
        batch = Batch(torch.rand(2, 3, size, size, device=device) * 2 - 1,
                      torch.rand(2, 1, size, size, device=device) * 2 - 1,
                      torch.randint(0, 4, (2, size, size), device=device))
        torch.manual_seed(0)
        autoencoder = AutoencoderTrainer(setup.model, setup.training.stage1, rt, 1).autoencoder
        trainer = TranslationTrainer(setup.model, setup.training.stage2, rt, args.steps, autoencoder)
        trainer.train_mode()
        started = time.perf_counter()
        for _ in range(args.steps):
            trainer.train_step(batch)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = (time.perf_counter() - started) / args.steps
        checksum = torch.stack([p.detach().float().sum() for p in trainer.generator.parameters()]).sum().reshape(1)
        gathered = [torch.zeros_like(checksum) for _ in range(world)]
        dist.all_gather(gathered, checksum)
        sums = [float(g) for g in gathered]
        in_sync = max(sums) - min(sums) <= 1e-4 * max(1.0, abs(sums[0]))
        result = {"backend": backend, "world_size": world, "all_reduce_ok": float(value) == expected,
                  "ddp_wrapped": world > 1, "weights_in_sync": in_sync, "s_per_step": seconds, "model": args.model}
        if rank == 0:
            print(f"ddp: {backend} x {world}, all_reduce {'ok' if result['all_reduce_ok'] else 'WRONG'}, "
                  f"weights in sync {in_sync}, {seconds:.3f} s/step")
            if args.out:
                args.out.write_text(json.dumps(result, indent=1))
        if not (result["all_reduce_ok"] and in_sync):
            raise SystemExit(1)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
