"""bench/gpu_check.sh in its CPU mode (tiny config): every step runs, every result lands in the one
folder, and a failing step is recorded while the others go on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "bench" / "gpu_check.sh"
STEPS = ["env", "gpu_support", "pytest_gpu", "inference", "cube", "ssim", "train_step", "ddp"]


def run_check(out: Path, **env) -> subprocess.CompletedProcess:
    environment = {**os.environ, "DEVICE": "cpu", "PYTHON": sys.executable, "OMP_NUM_THREADS": "1", **env}
    return subprocess.run(["bash", str(SCRIPT), str(out)], env=environment, capture_output=True, text=True, timeout=400)


@pytest.mark.slow
def test_gpu_check_runs_on_cpu_and_writes_everything_into_one_folder(tmp_path):
    out = tmp_path / "check"
    result = run_check(out)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ok"] and list(summary["steps"]) == STEPS
    assert all(step["status"] == "ok" for step in summary["steps"].values())
    for name in ("inference", "cube", "ssim", "train_step", "ddp", "env"):
        assert (out / f"{name}.json").is_file(), name
    figures = summary["figures"]
    assert figures["cube"]["cases_done"] == 8 and len(list((out / "cube_predictions").iterdir())) == 8
    assert 0.9 < figures["ssim_bf16_vs_fp32"] <= 1.0
    assert set(figures["train_step"]) == {"stage1", "stage2"}
    assert figures["ddp"]["all_reduce_ok"] and figures["ddp"]["weights_in_sync"]
    assert {"inference.tiny.naive_fp32", "inference.tiny.engine"} <= set(figures)
    support = figures["gpu_support"]  # the torch build, the driver, whether the GPU is compiled for
    assert support["torch"] and "arch_list" in support and "driver_cuda" in support and "devices" in support
    assert "gpu_check summary" in result.stdout
    assert not (out / "work").exists()


def test_a_failing_step_is_recorded_and_the_others_still_run(tmp_path):
    out = tmp_path / "check"
    fake = tmp_path / "python"  # a python whose every run fails: each step fails, the script finishes
    fake.write_text("#!/bin/sh\nexit 3\n")
    fake.chmod(0o755)
    result = run_check(out, PYTHON=str(fake), BUDGET_S="120")
    assert result.returncode == 1
    summary = json.loads((out / "summary.json").read_text())  # written by the shell fallback
    assert list(summary["steps"]) == STEPS
    assert summary["steps"]["inference"] == "failed" and summary["steps"]["cube"] == "failed"
    assert (out / "steps.tsv").read_text().count("\tfailed\t") >= len(STEPS) - 1
