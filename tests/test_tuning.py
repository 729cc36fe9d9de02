"""How the network runs on a device (`brasyn.inference.tuning`): the plan per device, explicit values
winning, the core left to file I/O from 4 cores on, and the thread count restored."""

from __future__ import annotations

import pytest
import torch

from brasyn.inference import tuning


@pytest.mark.parametrize("cores, threads", [(1, None), (2, None), (3, None), (4, 3), (16, 15)])
def test_cpu_plan_leaves_a_core_from_four_cores_on(monkeypatch, cores, threads):
    monkeypatch.setattr(tuning, "available_cpus", lambda: cores)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 64)
    plan = tuning.plan_for(torch.device("cpu"))
    assert plan == tuning.ExecutionPlan(batch_size=tuning.CPU_BATCH, channels_last=True, threads=threads)


def test_cuda_plan_and_explicit_values(monkeypatch):
    monkeypatch.setattr(tuning, "available_cpus", lambda: 8)
    cuda = tuning.plan_for(torch.device("cuda"))
    assert cuda == tuning.ExecutionPlan(batch_size=tuning.CUDA_BATCH, channels_last=True, threads=None)
    explicit = tuning.plan_for(torch.device("cuda"), 3, channels_last=False)
    assert (explicit.batch_size, explicit.channels_last) == (3, False)


def test_intra_op_threads_sets_then_restores():
    before = torch.get_num_threads()
    wanted = 1 if before != 1 else 2
    with tuning.intra_op_threads(wanted):
        assert torch.get_num_threads() == wanted
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), tuning.intra_op_threads(wanted):
        raise RuntimeError("the block fails")
    assert torch.get_num_threads() == before  # restored on the way out of a failure too
    with tuning.intra_op_threads(None):
        assert torch.get_num_threads() == before
