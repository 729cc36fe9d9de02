"""The scripts that make the bundled checkpoints and the training study's plot, run as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from brasyn.checkpoint import Checkpoint
from brasyn.constants import MODALITIES

ROOT = Path(__file__).resolve().parents[1]


def _train_checkpoints(run, **env):
    env = {**os.environ, "PYTHON": sys.executable, "RUN": str(run), "CASES": "3", "CONFIG": "tiny", "JOBS": "2",
           "DEVICE": "cpu", "PHANTOM_ARGS": "--small", **env}
    result = subprocess.run(["bash", str(ROOT / "scripts" / "train_checkpoints.sh")], env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return json.loads((run / "train" / "provenance.json").read_text())


@pytest.mark.slow
def test_train_checkpoints_script_makes_weights_baseline_and_provenance(tmp_path):
    run, workspace = tmp_path / "run", tmp_path / "workspace"
    narrow = tmp_path / "narrow.yaml"  # one target with its own config, as t1c has in the bundled recipe,
    narrow.write_text(  # keeping its warm-up's model, which is installed instead of the final one
        "preset: tiny\nmodel:\n  base_channels: 4\n"
        "training:\n  stage2:\n    warmup_fraction: 0.5\n    keep_warmup_checkpoint: true\n")
    provenance = _train_checkpoints(run, TARGET_CONFIGS=f"t2w={narrow}", WORKSPACE=str(workspace), INSTALL_WARMUP="t2w")
    cohort = sorted(p.name for p in (run / "cohort").iterdir() if p.is_dir())
    assert cohort == ["BraTS-GLI-10000-000", "BraTS-GLI-10001-000", "BraTS-GLI-10002-000"]  # shards = one cohort
    for target in MODALITIES:
        folder = run / ("train-narrow" if target.value == "t2w" else "train")
        checkpoint = Checkpoint.load(folder / f"brasyn_{target.value}.pt", target=target)
        assert checkpoint.kind == "plave" and checkpoint.model_config["image_size"] == 64
        assert checkpoint.model_config["base_channels"] == (4 if target.value == "t2w" else 8)
        assert Checkpoint.load(run / "baseline" / f"brasyn_{target.value}.pt", target=target).kind == "polynomial"
        assert (folder / f"metrics_{target.value}.csv").read_text().count("stage2") >= 1
        installed = workspace / "additional_files" / f"brasyn_{target.value}.pt"
        source = folder / "warmup" if target.value == "t2w" else folder
        assert installed.read_bytes() == (source / f"brasyn_{target.value}.pt").read_bytes()
        assert (workspace / "baseline" / f"brasyn_{target.value}.pt").is_file()
    assert (workspace / "additional_files" / "brasyn_t2w.pt").read_bytes() != (
        run / "train-narrow" / "brasyn_t2w.pt").read_bytes()  # the warm-up's model is not the final one
    assert (workspace / "additional_files" / "config.yaml").is_file()
    assert "base_channels: 4" in (workspace / "additional_files" / "config_t2w.yaml").read_text()
    assert provenance["config"] == "tiny" and provenance["cohort"] == {"cases": 3, "seed": 1, "phantom_args": "--small"}
    assert {t: r["config"] for t, r in provenance["targets"].items()} == {
        "t1n": "tiny", "t1c": "tiny", "t2w": str(narrow), "t2f": "tiny"}
    assert all(r["stage1_steps"] > 0 and r["stage2_steps"] > 0 for r in provenance["targets"].values())
    assert {t for t, r in provenance["targets"].items() if r.get("checkpoint") == "warmup"} == {"t2w"}
    assert provenance["torch"] == torch.__version__ and provenance["wall_seconds"] > 0
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    assert provenance["code_commit"].split("+")[0] == (head.stdout.strip() if head.returncode == 0 else "unknown")
    assert provenance["threads_per_target"] == 1  # 2 cores shared by four targets side by side
    assert not (run / "cohort-parts").exists()
    # a subset: only t1n (finished already, so its resume file skips it), no baseline refit, two threads;
    # the installed record keeps the other targets' entries
    fitted = (run / "baseline" / "brasyn_t1n.pt").stat().st_mtime_ns
    provenance = _train_checkpoints(run, TARGETS="t1n", BASELINE="0", WORKSPACE=str(workspace))
    assert list(provenance["targets"]) == ["t1n"] and provenance["threads_per_target"] == 2
    assert (run / "baseline" / "brasyn_t1n.pt").stat().st_mtime_ns == fitted
    installed = json.loads((workspace / "additional_files" / "provenance.json").read_text())["targets"]
    assert sorted(installed) == ["t1c", "t1n", "t2f", "t2w"]
    assert installed["t1n"]["threads_per_target"] == 2 and installed["t2f"]["threads_per_target"] == 1
    assert installed["t2w"]["config"] == str(narrow)
    # a subset with its baseline refitted (e.g. on another cohort) replaces only that subset's baselines
    other = workspace / "baseline" / "brasyn_t2f.pt"
    other.write_bytes(b"the t2f baseline of another cohort")
    _train_checkpoints(run, TARGETS="t1n", WORKSPACE=str(workspace))
    assert other.read_bytes() == b"the t2f baseline of another cohort"
    assert (workspace / "baseline" / "brasyn_t1n.pt").read_bytes() == (run / "baseline" / "brasyn_t1n.pt").read_bytes()
    assert (run / "baseline" / "brasyn_t1n.pt").stat().st_mtime_ns != fitted


def test_learning_curve_plot_draws_every_run_and_target(tmp_path):
    for run, offset in (("a", 0.0), ("b", 0.1)):
        folder = tmp_path / run
        folder.mkdir()
        lines = ["stage,epoch,step,val_l1,val_ssim,val_ssim_tumour,val_dice_wt,elapsed", "stage1,0,5,0.5,0.1,0.1,,1"]
        lines += [
            f"stage2,{e},{10 * (e + 1)},{0.3 - 0.02 * e},{0.5 + offset + 0.05 * e},0.4,{0.1 * e},{60 * e}"
            for e in range(4)
        ]
        (folder / "metrics_t1c.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "curves.png"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "plot_learning_curves.py"), str(out), str(tmp_path / "a"),
                    str(tmp_path / "b"), "--label", "first"], check=True, capture_output=True, timeout=60)
    image = Image.open(out)
    assert image.width == 1040 and image.height > 600
    # both runs' colours appear in the panels (blue: first t1c, orange: b t1c)
    colours = {colour for _, colour in image.convert("RGB").getcolors(maxcolors=1 << 24)}
    assert (31, 119, 180) in colours and (255, 127, 14) in colours
    empty = tmp_path / "empty"
    empty.mkdir()
    failed = subprocess.run([sys.executable, str(ROOT / "scripts" / "plot_learning_curves.py"), str(tmp_path / "x.png"),
                             str(empty)], capture_output=True, text=True, timeout=60)
    assert failed.returncode != 0 and "no stage-2 rows" in failed.stderr


@pytest.mark.slow
def test_train_segmenter_script_makes_the_segmenter_and_its_record(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "RUN": str(tmp_path / "run"), "CASES": "2", "VALIDATION_CASES": "1",
           "STEPS": "3", "MINUTES": "1", "WORKSPACE": str(tmp_path / "workspace"), "PHANTOM_ARGS": "--small",
           "FIT_ARGS": "--crop 16 --batch-size 2 --base-channels 4"}
    result = subprocess.run(["bash", str(ROOT / "scripts" / "train_segmenter.sh")], env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    installed = tmp_path / "workspace" / "segmenter"
    assert sorted(p.name for p in installed.iterdir()) == ["record.json", "segmenter.pt"]
    record = json.loads((installed / "record.json").read_text())
    assert record["steps"] == 3 and record["training_cases"] == ["BraTS-GLI-10000-000", "BraTS-GLI-10001-000"]
    assert record["validation_dice"]["cases"] == 1
    payload = torch.load(installed / "segmenter.pt", map_location="cpu", weights_only=True)
    assert payload["model_config"]["base_channels"] == 4


def test_flair_counterfactual_changes_only_the_flair(monkeypatch):
    """scripts/flair_counterfactual.py: the pre-contrast-FLAIR version of a shifted case keeps every
    other series byte-identical (same random streams), so its score difference is the FLAIR's alone."""
    import importlib.util

    import numpy as np

    from brasyn.constants import Modality
    from brasyn.phantom import PhantomConfig, generate_case
    from brasyn.phantom import site as sites

    spec = importlib.util.spec_from_file_location("flair_counterfactual", ROOT / "scripts" / "flair_counterfactual.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    monkeypatch.setattr(sites, "SITES", dict(sites.SITES))  # the registration stays inside this test
    script.register_counterfactual_site()
    for number in range(40000, 40010):
        real = generate_case(number, 4242, PhantomConfig(shape=(48, 48, 31), site="shifted"))
        if real.protocol["sequences"]["t2f"].get("post_contrast"):
            break
    else:
        pytest.fail("no post-contrast FLAIR among ten shifted cases")
    other = generate_case(number, 4242, PhantomConfig(shape=(48, 48, 31), site=script.PRE_CONTRAST))
    assert not other.protocol["sequences"]["t2f"].get("post_contrast")
    for modality in (Modality.T1N, Modality.T1C, Modality.T2W):
        np.testing.assert_array_equal(real.images[modality], other.images[modality])
    np.testing.assert_array_equal(real.seg, other.seg)
    assert not np.array_equal(real.images[Modality.T2F], other.images[Modality.T2F])


def test_ab_table_scores_the_targets_cases_and_keeps_baselines_apart(tmp_path):
    """scripts/ab_table.py: the first table averages only the cases missing the target (missing.json),
    the second every case, with the enhancement's mean and median; two files' baselines stay apart, and
    a third file that scored the first one's baseline again shares its row; a run called "new" is shown
    under its file's label."""
    def row(case, ssim, enhancement):
        return {"case": case, "ssim_healthy_region": ssim, "ssim_container": 0.9, "ssim_tumour_region": 0.5,
                "psnr_brain": 20.0, "enhancement_recovered": enhancement}

    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "missing.json").write_text(json.dumps({"A": "t1c", "B": "t2w", "C": "t1c"}))
    rows = [row("A", 0.6, 0.2), row("B", 0.9, 3.0), row("C", 0.8, 0.4)]
    for name, run, scored, baseline_ssim in (("new", "new", rows, 0.1), ("old", "old", rows[:2], 0.2),
                                             ("again", "new", rows[:1], 0.1)):
        baseline = [row(c, baseline_ssim, 0.0) for c in "ABC"]
        (tmp_path / f"{name}.json").write_text(json.dumps({"site": {run: scored, "baseline": baseline}}))
    command = [sys.executable, str(ROOT / "scripts" / "ab_table.py"), "--json", f"n={tmp_path / 'new.json'}",
               "--json", f"o={tmp_path / 'old.json'}", "--json", f"a={tmp_path / 'again.json'}",
               "--cohort", f"site={labels}"]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    own, every = result.stdout.split("every case")
    assert "| site (2) | n | 0.7000 | 0.9000 | 0.5000 | 20.00 | 0.30 / 0.30 (2) |" in own  # A, C; "new": by label
    assert "| site (1) | old | 0.6000 |" in own  # the old probe scored A, not C
    assert "| site (2) | baseline (n, a) | 0.1000 |" in own and "| site (2) | baseline (o) | 0.2000 |" in own
    assert own.count("baseline") == 2  # n's and a's baselines scored the same: one row
    assert "| site (1) | a | 0.6000 |" in own  # a's run is also called "new": shown by its file's label
    assert "| site (3) | n | 0.7667 | 0.9000 | 0.5000 | 20.00 | 1.20 / 0.40 (3) |" in every  # mean vs median


def test_compare_picture_draws_one_row_per_case_and_one_panel_per_run(tmp_path, weights):
    """scripts/compare_picture.py: rows = cases, panels = three sources + truth + each run (+ baseline)."""
    from conftest import TINY_SHAPE, write_case

    labels = tmp_path / "labels"
    cases = [str(write_case(labels / "original_data", f"BraTS-GLI-0000{k}-000", seed=k, with_labels=True))
             for k in (1, 2, 3)]
    (labels / "missing.json").write_text(json.dumps(
        {"BraTS-GLI-00001-000": "t2w", "BraTS-GLI-00002-000": "t1c", "BraTS-GLI-00003-000": "t1c"}))

    def picture(runs: int, case_count: int, *extra: str) -> Image.Image:
        out = tmp_path / f"{runs}-{case_count}-{len(extra)}.png"
        command = [sys.executable, str(ROOT / "scripts" / "compare_picture.py"), "t1c", "--out", str(out), *extra]
        command += [arg for k in range(runs) for arg in ("--run", f"run{k}={weights}")]
        command += [arg for case in cases[:case_count] for arg in ("--case", case)]
        subprocess.run(command, capture_output=True, text=True, check=True)
        assert not list(tmp_path.glob(".*.png*"))  # no temporary left behind
        return Image.open(out)

    one, more = picture(1, 1), picture(3, 2)
    panel = 160 // max(TINY_SHAPE[:2]) * TINY_SHAPE[1]  # small volumes are upscaled to at least 160 px
    assert one.width == 5 * panel + 4 * 2  # t1n, t2w, t2f, the truth, one run; 2 px gaps
    assert more.width - one.width == 2 * (panel + 2)  # two more runs: two more panels
    assert more.height == 2 * one.height + 2  # two cases: two rows
    # --missing-in: the two cases that miss t1c (not the t2w one), after the --case ones
    assert picture(1, 1, "--missing-in", str(labels)).height == 3 * one.height + 2 * 2
    none = subprocess.run([sys.executable, str(ROOT / "scripts" / "compare_picture.py"), "t2f", "--run",
                           f"r={weights}", "--missing-in", str(labels), "--out", str(tmp_path / "x.png")],
                          capture_output=True, text=True)
    assert none.returncode == 2 and "no case" in none.stderr and not (tmp_path / "x.png").exists()
