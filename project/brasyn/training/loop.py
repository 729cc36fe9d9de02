"""The step loop shared by both stages: seeded epoch order, exact resume, progress bar, epoch metrics.

Optimizer step `step` (0-based) belongs to epoch step // steps_per_epoch. Each epoch's order is a
`DistributedSampler` permutation seeded with (seed, epoch) (one replica outside DDP), so a resumed
run skips the batches already done in its epoch and then sees exactly the slices it would have seen.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any, Protocol

import torch
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from brasyn.data.slices import SliceDataset, collate_slices
from brasyn.errors import InputError
from brasyn.training.runtime import Runtime, seed_everything
from brasyn.training.trainers import Batch

logger = logging.getLogger(__name__)


class StageTrainer(Protocol):
    stage: str

    def train_mode(self) -> None: ...

    def train_step(self, batch: Batch) -> dict[str, float]: ...

    @property
    def lr(self) -> float: ...


def steps_per_epoch(n_slices: int, batch_size: int, world_size: int = 1) -> int:
    """Full batches per epoch and process: floor(floor(n / world) / batch) (both drop the remainder)."""
    return (n_slices // world_size) // batch_size


def check_enough_slices(n_slices: int, batch_size: int, world_size: int, what: str) -> int:
    spe = steps_per_epoch(n_slices, batch_size, world_size)
    if spe < 1:
        raise InputError(
            f"{what}: expected at least {batch_size * world_size} training slices for one batch of {batch_size}"
            f" per process, found {n_slices}"
        )
    return spe


def _seed_worker(worker_id: int) -> None:
    seed_everything(torch.initial_seed() % 2**32)


def run_stage(
    trainer: StageTrainer,
    dataset: SliceDataset,
    *,
    rt: Runtime,
    batch_size: int,
    total: int,
    start_step: int,
    seed: int,
    num_workers: int,
    progress: bool | None,
    description: str,
    on_epoch_end: Callable[[dict[str, Any]], None],
    save_every: int = 0,
    on_save: Callable[[int], None] | None = None,
) -> int:
    """Train from `start_step` to `total` steps; call `on_epoch_end(row)` after every (possibly partial) epoch
    and `on_save(step)` every `save_every` steps inside an epoch (0: never).

    `row` holds stage, epoch, step, lr, seconds and the epoch means of the loss terms. Returns the step reached.
    """
    spe = steps_per_epoch(len(dataset), batch_size, rt.world_size)
    step = start_step
    trainer.train_mode()
    bar = tqdm(
        total=total,
        initial=step,
        desc=description,
        unit="step",
        dynamic_ncols=True,
        disable=(not rt.is_main) or (None if progress is None else not progress),
    )
    try:
        while step < total:
            epoch, offset = divmod(step, spe)
            sampler = DistributedSampler(
                dataset, num_replicas=rt.world_size, rank=rt.rank, shuffle=True, seed=seed, drop_last=True
            )
            sampler.set_epoch(epoch)
            indices = list(sampler)[offset * batch_size :]
            loader = DataLoader(
                dataset,
                batch_size=batch_size,
                sampler=indices,
                drop_last=True,
                num_workers=num_workers,
                collate_fn=collate_slices,
                pin_memory=rt.device.type == "cuda",
                worker_init_fn=_seed_worker,
                generator=torch.Generator().manual_seed(seed + epoch),
            )
            sums: dict[str, float] = {}
            n = 0
            started = time.perf_counter()
            lr = trainer.lr
            for sample in loader:
                lr = trainer.lr
                terms = trainer.train_step(Batch.from_sample(sample, rt.device))
                for name, value in terms.items():
                    if not math.isfinite(value):
                        logger.warning("%s step %d: %s is %s", description, step, name, value)
                    sums[name] = sums.get(name, 0.0) + value
                n += 1
                step += 1
                bar.update(1)
                bar.set_postfix({k: f"{v:.3g}" for k, v in terms.items()}, refresh=False)
                if step >= total:
                    break
                if save_every > 0 and on_save is not None and step % save_every == 0 and step % spe != 0:
                    on_save(step)  # the epoch end saves anyway
            row: dict[str, Any] = {
                "stage": trainer.stage,
                "epoch": epoch,
                "step": step,
                "lr": lr,
                "seconds": time.perf_counter() - started,
            }
            row.update({name: value / max(n, 1) for name, value in sums.items()})
            on_epoch_end(row)
            trainer.train_mode()
    finally:
        bar.close()
    return step
