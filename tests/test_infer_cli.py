"""`brasyn infer`: exit statuses, the summary it prints, and options that map onto the settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import write_case
from inference_helpers import (
    COHORT_SHAPE,
    check_prediction_folder,
)
from typer.testing import CliRunner

from brasyn.constants import Modality
from brasyn.inference import (
    InferenceSettings,
)


def test_cli_infer(weights, cohort, tmp_path):
    from brasyn.cli import app

    data, missing = cohort
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["infer", str(data), str(out), "--weights", str(weights), "--batch-size", "3", "--device", "cpu"]
    )
    assert result.exit_code == 0, result.output
    assert "4 done, 0 skipped, 0 failed" in result.output
    check_prediction_folder(out, data, missing)
    # a failing case makes the exit status non-zero; the others are still done
    write_case(data, "BraTS-GLI-09999-000", (Modality.T1N,), shape=COHORT_SHAPE)
    result = CliRunner().invoke(app, ["infer", str(data), str(out), "--weights", str(weights), "--no-progress"])
    assert result.exit_code == 1
    assert "0 done, 4 skipped, 1 failed" in result.output
    assert "FAILED  BraTS-GLI-09999-000: expected 3 of t1c/t1n/t2f/t2w, found 1 (t1n)" in result.output
    # the console entry point turns that into exit status 1 too
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "brasyn.cli",
            "infer",
            str(data),
            str(tmp_path / "o2"),
            "--weights",
            str(weights),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    assert proc.returncode == 1, proc.stderr
    assert "4 done, 0 skipped, 1 failed" in proc.stdout
    assert len(list((tmp_path / "o2").iterdir())) == 4


def test_cli_infer_defaults_are_the_settings_defaults(monkeypatch, tmp_path):
    import brasyn.inference
    from brasyn.cli import app
    from brasyn.inference.results import InferenceSummary

    seen = []

    def fake(data, output, weights, *, settings):
        seen.append(settings)
        return InferenceSummary((), Path(output))

    monkeypatch.setattr(brasyn.inference, "synthesize_folder", fake)
    assert CliRunner().invoke(app, ["infer", str(tmp_path), str(tmp_path / "o")]).exit_code == 0
    assert (
        CliRunner()
        .invoke(app, ["infer", str(tmp_path), str(tmp_path / "o"), "--batch-size", "3", "--device", "cpu"])
        .exit_code
        == 0
    )
    defaults = InferenceSettings()
    assert (seen[0].batch_size, seen[0].device, seen[0].precision) == (
        defaults.batch_size,
        defaults.device,
        defaults.precision,
    )
    assert (seen[1].batch_size, seen[1].device, seen[1].precision) == (3, "cpu", defaults.precision)
    assert CliRunner().invoke(app, ["infer", str(tmp_path), str(tmp_path / "o"), "--batch-size", "auto"]).exit_code == 0
    assert seen[2].batch_size == "auto"
    for bad in ("0", "-2", "four"):
        result = CliRunner().invoke(app, ["infer", str(tmp_path), str(tmp_path / "o"), "--batch-size", bad])
        assert result.exit_code == 2 and "--batch-size" in result.output
    assert len(seen) == 3
    assert seen[0].mirror_axes == defaults.mirror_axes
    for text, axes in (("none", ()), ("1", (1,)), ("1,0", (0, 1))):
        result = CliRunner().invoke(app, ["infer", str(tmp_path), str(tmp_path / "o"), "--mirror-axes", text])
        assert result.exit_code == 0
        assert seen[-1].mirror_axes == axes
    for bad in ("x", "0;1", "2", "0,0"):
        result = CliRunner().invoke(app, ["infer", str(tmp_path), str(tmp_path / "o"), "--mirror-axes", bad])
        assert result.exit_code == 2 and "--mirror-axes" in result.output
    # one name for the tumour-map folder (the older --seg-output still works); progress as everywhere
    assert seen[0].segmentation_dir is None and seen[0].progress is None  # bars only on a terminal
    for option in ("--segmentation-dir", "--seg-output"):
        result = CliRunner().invoke(app, ["infer", str(tmp_path), str(tmp_path / "o"), option, str(tmp_path / "s")])
        assert result.exit_code == 0 and seen[-1].segmentation_dir == str(tmp_path / "s")
    assert CliRunner().invoke(app, ["infer", str(tmp_path), str(tmp_path / "o"), "--no-progress"]).exit_code == 0
    assert seen[-1].progress is False
