"""Where training runs: device, precision, seeding and torch DDP under `torchrun`.

Single process by default. Launched by `torchrun --nproc_per_node N -m brasyn.cli train ...`, the
environment holds WORLD_SIZE / RANK / LOCAL_RANK: each process joins the default process group
(NCCL on CUDA, Gloo on CPU), takes GPU LOCAL_RANK and reads its share of the data through a
`DistributedSampler`; rank 0 alone writes files.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from brasyn.device import resolve_device, resolve_precision
from brasyn.errors import ConfigError

logger = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed Python's `random`, NumPy's global generator and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class Runtime:
    """The resolved device, precision and process group of this process."""

    device: torch.device
    autocast_dtype: torch.dtype | None
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes checkpoints, metrics and the cache."""
        return self.rank == 0

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast to `autocast_dtype` when set, else a no-op context."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def broadcast_int(self, value: int) -> int:
        """Rank 0's `value` on every rank."""
        if not self.distributed:
            return int(value)
        tensor = torch.tensor([int(value)], dtype=torch.int64, device=self.device)
        dist.broadcast(tensor, src=0)
        return int(tensor.item())

    def agree(self, flag: bool) -> bool:
        """True on every rank when `flag` is true on any rank (so all ranks take the same branch)."""
        if not self.distributed:
            return bool(flag)
        value = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item() > 0)


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError as exc:
        raise ConfigError(f"environment variable {name}: expected an integer, found {os.environ[name]!r}") from exc


@contextlib.contextmanager
def runtime(device: str = "auto", precision: str = "auto") -> Iterator[Runtime]:
    """Resolve the device and precision; join (and finally leave) the process group under torchrun."""
    world_size = _env_int("WORLD_SIZE", 1)
    rank, local_rank = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    torch_device = resolve_device(device)
    if torch_device.type == "cuda":
        if world_size > 1:
            torch_device = torch.device("cuda", local_rank)
        elif torch_device.index is None:
            torch_device = torch.device("cuda", torch.cuda.current_device())
        torch.cuda.set_device(torch_device)
        torch.backends.cudnn.benchmark = True  # fixed slice size: let cuDNN pick the fastest kernels
    autocast_dtype = resolve_precision(precision, torch_device, allow_fp16=False)
    created = False
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch_device.type == "cuda" else "gloo")
        created = True
    state = Runtime(
        device=torch_device,
        autocast_dtype=autocast_dtype,
        rank=rank,
        world_size=world_size,
        local_rank=local_rank,
    )
    if state.is_main:
        logger.info(
            "training on %s%s, %s", torch_device, f" x {world_size} processes" if world_size > 1 else "",
            f"{autocast_dtype} autocast" if autocast_dtype is not None else "fp32",
        )
    try:
        yield state
    finally:
        if created:
            dist.destroy_process_group()
