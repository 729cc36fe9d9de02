"""How the network runs on a device: batch size, memory layout and intra-op threads.

Chosen by measurement (`make bench`, `bench/gpu_check.sh`; figures in the README):
- CUDA: batches of 32 slices, channels-last (tensor-core convolutions under bf16/fp16 autocast).
- CPU: batches of 4, channels-last (oneDNN's blocked kernels; batch 1 in NCHW is the slowest layout).
  With 4 or more cores, while the engine overlaps file I/O with the network, the network gets one
  core fewer than the process may use, leaving that core to the reader and writer threads. With
  fewer cores it keeps them all: at paper size the network is ~95 % of a case, and halving its
  threads on 2 cores would cost more than the overlap gains (on a heavily loaded 2-core VM one
  thread measured faster, an artefact of OpenMP barriers waiting on preempted threads).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch

AUTO = "auto"
CUDA_BATCH = 32
CPU_BATCH = 4
MIN_CORES_TO_SPARE = 4
"""From this many cores on, the network leaves one to the engine's file I/O threads."""


@dataclass(frozen=True)
class ExecutionPlan:
    """Resolved settings of the network on one device."""

    batch_size: int
    channels_last: bool
    threads: int | None
    """torch intra-op threads while the engine overlaps I/O (None: leave torch's setting)."""


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, e.g. a container's cpuset)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def plan_for(device: torch.device, batch_size: int | str = AUTO, channels_last: bool | None = None) -> ExecutionPlan:
    """The plan for `device`; an explicit `batch_size` or `channels_last` wins over the device's choice."""
    cuda = device.type == "cuda"
    batch = (CUDA_BATCH if cuda else CPU_BATCH) if batch_size == AUTO else int(batch_size)
    layout = True if channels_last is None else bool(channels_last)
    cores = min(torch.get_num_threads(), available_cpus())
    threads = cores - 1 if (not cuda and cores >= MIN_CORES_TO_SPARE) else None
    return ExecutionPlan(batch_size=batch, channels_last=layout, threads=threads)


@contextlib.contextmanager
def intra_op_threads(threads: int | None) -> Iterator[None]:
    """torch's intra-op thread count set to `threads` inside the block (None: unchanged), then restored."""
    if threads is None or threads == torch.get_num_threads():
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
