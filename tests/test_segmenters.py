"""BraSyn's second criterion: an independent segmenter on the real set and on the completed set.

The command route runs a real external program (`tests/threshold_segmenter.py`, and the `brasyn
segmenter run` command line) through `brasyn evaluate --segmenter cmd:...`.
"""

from __future__ import annotations

import csv
import json
import shlex
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from brasyn.cli import app
from brasyn.constants import BRATS_AFFINE, MODALITIES, Modality, image_filename
from brasyn.errors import CheckpointError, ConfigError
from brasyn.evaluation import evaluate, format_table
from brasyn.evaluation.segmenters import (
    BundledSegmenter,
    CommandSegmenter,
    Layout,
    apply_relabel,
    find_label_map,
    parse_relabel,
    parse_segmenter,
    segment_set,
)
from brasyn.io.nifti import new_geometry, write_volume

SCRIPT = Path(__file__).resolve().parent / "threshold_segmenter.py"
SHAPE = (40, 40, 10)
CASES = {"A-1": Modality.T1C, "B-2": Modality.T2F, "C-3": Modality.T1N}


def volumes(seed: int = 0) -> tuple[dict[Modality, np.ndarray], np.ndarray]:
    """Brain 100 in every sequence; tumour bright on FLAIR (200), enhancing rim bright on T1-ce (300),
    necrotic core dark on T1-ce (50): what `threshold_segmenter.py` reads back exactly."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, s) for s in SHAPE], indexing="ij"))
    brain = (grid[0] ** 2 + grid[1] ** 2 + 0.3 * grid[2] ** 2) < 0.8
    radius = np.sqrt(((grid[:2] - np.array([0.25, 0.1])[:, None, None, None]) ** 2).sum(axis=0))
    seg = np.zeros(SHAPE, np.uint8)
    seg[(radius < 0.5) & brain] = 2
    seg[(radius < 0.3) & brain] = 3
    seg[(radius < 0.15) & brain] = 1
    images = {}
    for modality in MODALITIES:
        image = np.full(SHAPE, 100.0) + rng.normal(0, 3, SHAPE)
        if modality is Modality.T2F:
            image[seg > 0] = 200 + rng.normal(0, 3, int((seg > 0).sum()))
        elif modality is Modality.T1C:
            image[seg == 3] = 300
            image[seg == 1] = 50
        else:
            image[seg > 0] = 150
        images[modality] = np.where(brain, image, 0).astype(np.float32)
    return images, seg


def write_labels(root: Path, cases=CASES) -> Path:
    geometry = new_geometry(SHAPE, BRATS_AFFINE)
    for k, case_id in enumerate(cases):
        folder = root / "original_data" / case_id
        folder.mkdir(parents=True)
        images, seg = volumes(k)
        for modality, image in images.items():
            write_volume(image, folder / image_filename(case_id, modality), geometry)
        write_volume(seg, folder / image_filename(case_id, "seg"), geometry, dtype=np.uint8)
    (root / "missing.json").write_text(json.dumps({c: m.value for c, m in cases.items()}))
    return root


def write_predictions(folder: Path, *, constant: bool, cases=CASES) -> Path:
    """Perfect predictions (the truth), or a constant brain (100 everywhere inside it)."""
    folder.mkdir(parents=True)
    geometry = new_geometry(SHAPE, BRATS_AFFINE)
    for k, (case_id, missing) in enumerate(cases.items()):
        truth = volumes(k)[0][missing]
        image = np.where(truth > 0, 100.0, 0.0) if constant else truth
        write_volume(image, folder / image_filename(case_id, missing), geometry)
    return folder


def threshold_command(*options: str) -> str:
    return shlex.join([sys.executable, str(SCRIPT), "{input}", "{output}", *options])


@pytest.fixture
def site(tmp_path):
    labels = write_labels(tmp_path / "labels")
    constant = write_predictions(tmp_path / "constant", constant=True)
    perfect = write_predictions(tmp_path / "perfect", constant=False)
    return labels, constant, perfect


def _case(evaluation, run: str, case_id: str):
    result = next(r for r in evaluation.runs if r.name == run)
    return next(c for c in result.cases if c.case_id == case_id)


# ----------------------------------------------------------------------------------- the check can fail


def test_a_constant_brain_loses_the_tumour_on_the_completed_set_but_not_on_the_real_set(site):
    labels, constant, perfect = site
    segmenter = CommandSegmenter(threshold_command())
    evaluation = evaluate(constant, labels, baseline_dir=perfect, segmenter=segmenter, pictures=False)
    for case_id in CASES:
        model, baseline = _case(evaluation, "model", case_id), _case(evaluation, "baseline", case_id)
        assert model.problems == [] and baseline.problems == []
        for region in ("ET", "TC", "WT"):  # the real set is the same for both runs, and the rule is exact on it
            assert model.scores[f"dice_real_{region}"] == baseline.scores[f"dice_real_{region}"] == 1.0
            assert baseline.scores[f"dice_completed_{region}"] == 1.0  # the perfect prediction changes nothing
            assert baseline.scores[f"dice_delta_{region}"] == 0.0
    t1c = _case(evaluation, "model", "A-1")  # T1-ce missing, replaced by a constant: ET and NCR vanish
    assert t1c.scores["dice_completed_ET"] == 0.0 and t1c.scores["dice_delta_ET"] == -1.0
    assert t1c.scores["dice_completed_TC"] == 0.0
    assert t1c.scores["dice_completed_WT"] == 1.0  # FLAIR is real: the whole tumour is still found
    flair = _case(evaluation, "model", "B-2")  # FLAIR missing: the whole tumour is lost
    assert flair.scores["dice_completed_WT"] == 0.0 and flair.scores["dice_delta_WT"] == -1.0
    t1n = _case(evaluation, "model", "C-3")  # the rule does not read T1: nothing changes
    assert t1n.scores["dice_delta_WT"] == 0.0 and t1n.scores["dice_delta_ET"] == 0.0
    table = format_table(evaluation)
    assert "Downstream segmentation" in table and "model difference" in table and "-1.0000" in table


def test_the_nnunet_layout_names_channels_in_the_given_order(site, tmp_path):
    layout = Layout("nnunet", (Modality.T2F, Modality.T1N, Modality.T1C, Modality.T2W))
    assert layout.names("A") == {
        Modality.T2F: "A_0000.nii.gz",
        Modality.T1N: "A_0001.nii.gz",
        Modality.T1C: "A_0002.nii.gz",
        Modality.T2W: "A_0003.nii.gz",
    }
    assert Layout().names("A")[Modality.T1C] == "A/A-t1c.nii.gz"
    labels, constant, _ = site
    # the external program reads the files by the same channel order, and writes A-seg.nii.gz names
    command = threshold_command("--layout", "nnunet", "--channels", "t2f,t1n,t1c,t2w", "--suffix=-seg")
    segmenter = parse_segmenter(f"cmd:{command}", layout="nnunet", channels="t2f,t1n,t1c,t2w")
    evaluation = evaluate(constant, labels, segmenter=segmenter, pictures=False)
    t1c = _case(evaluation, "model", "A-1")
    assert t1c.scores["dice_real_ET"] == 1.0 and t1c.scores["dice_completed_ET"] == 0.0


def test_other_label_conventions_are_mapped_onto_brats_2023(site):
    labels, constant, _ = site
    command = f"cmd:{threshold_command('--et-label', '4')}"  # a BraTS 2021 segmenter: ET = 4
    as_is = evaluate(constant, labels, segmenter=parse_segmenter(command), pictures=False)
    mapped = evaluate(constant, labels, segmenter=parse_segmenter(command, relabel="4=3"), pictures=False)
    assert _case(as_is, "model", "B-2").scores["dice_real_ET"] == 0.0
    assert _case(mapped, "model", "B-2").scores["dice_real_ET"] == 1.0
    swapped = apply_relabel(np.array([0, 1, 2, 3]), parse_relabel("1=2,2=1"))  # nnU-Net's BraTS 2021 labels
    assert swapped.tolist() == [0, 2, 1, 3]


def test_segment_set_lays_out_copies_and_leaves_the_inputs_untouched(site, tmp_path):
    labels, _, _ = site
    folder = labels / "original_data" / "A-1"
    images = {m: folder / image_filename("A-1", m) for m in MODALITIES}
    before = {m: p.read_bytes() for m, p in images.items()}
    result = segment_set(CommandSegmenter(threshold_command()), {"A-1": images}, tmp_path / "work", "real")
    assert sorted((tmp_path / "work" / "real" / "input" / "A-1").iterdir()) == sorted(
        tmp_path / "work" / "real" / "input" / "A-1" / image_filename("A-1", m) for m in MODALITIES
    )
    assert result.errors == {} and result.maps["A-1"].name == "A-1.nii.gz"
    assert {m: p.read_bytes() for m, p in images.items()} == before


def test_find_label_map_accepts_both_names(tmp_path):
    assert find_label_map(tmp_path, "A") is None
    (tmp_path / "A-seg.nii.gz").write_bytes(b"")
    assert find_label_map(tmp_path, "A").name == "A-seg.nii.gz"
    (tmp_path / "A.nii.gz").write_bytes(b"")
    assert find_label_map(tmp_path, "A").name == "A.nii.gz"


# ----------------------------------------------------------------------------------- failures


def test_a_failing_command_is_reported_per_case_naming_the_command(site):
    labels, constant, _ = site
    evaluation = evaluate(constant, labels, segmenter=CommandSegmenter(threshold_command("--fail")), pictures=False)
    assert not evaluation.clean
    for case in evaluation.runs[0].cases:
        messages = [p.message for p in case.problems if p.kind == "segmenter"]
        assert len(messages) == 2  # the real set and the completed set
        assert "no label map on the real set" in messages[0]
        assert "no label map on the completed-model set" in messages[1]
        for message in messages:
            assert message.startswith(case.case_id) and "threshold_segmenter.py" in message
            assert "exited with status 3" in message and "CUDA out of memory" in message
        assert "ssim_container" in case.scores  # the image scores are still there
        assert "dice_real_WT" not in case.scores


def test_a_case_without_a_map_is_an_error_of_that_case_only(site):
    labels, constant, _ = site
    segmenter = CommandSegmenter(threshold_command("--skip", "B-2"))
    evaluation = evaluate(constant, labels, segmenter=segmenter, pictures=False)
    missing = _case(evaluation, "model", "B-2")
    assert [p.kind for p in missing.problems] == ["segmenter", "segmenter"]  # real and completed set
    assert "B-2: segmenter cmd:" in missing.problems[0].message and "B-2.nii.gz" in missing.problems[0].message
    assert "dice_real_WT" not in missing.scores and "ssim_full" in missing.scores
    for case_id in ("A-1", "C-3"):
        assert _case(evaluation, "model", case_id).scores["dice_real_WT"] == 1.0


def test_a_program_that_does_not_exist_is_one_line(site):
    labels, constant, _ = site
    evaluation = evaluate(constant, labels, segmenter=CommandSegmenter("no-such-segmenter {input} {output}"))
    message = evaluation.runs[0].cases[0].problems[0].message
    assert "no-such-segmenter" in message and "not found" in message and "\n" not in message


@pytest.mark.parametrize(
    "spec,kwargs,expected",
    [
        ("nnunet:/results", {}, "expected bundled, bundled:PATH or cmd:TEMPLATE"),
        ("cmd:", {}, "expected bundled"),
        ("cmd:seg {input} out", {}, "needs both {input} and {output}"),
        ("cmd:seg 'unclosed {input} {output}", {}, "cannot split"),
        ("bundled", {"layout": "nnunet"}, "brats layout only"),
        ("cmd:seg {input} {output}", {"layout": "monai"}, "--segmenter-layout"),
        ("cmd:seg {input} {output}", {"channels": "t1n,t1c,t2w"}, "each of t1n, t1c, t2w, t2f once"),
        ("cmd:seg {input} {output}", {"channels": "t1n,t1c,t2w,flair"}, "unknown modality 'flair'"),
        ("cmd:seg {input} {output}", {"relabel": "4:3"}, "expected pairs like 4=3"),
        ("cmd:seg {input} {output}", {"relabel": "1=2,1=3"}, "mapped twice"),
    ],
)
def test_bad_segmenter_specs_are_config_errors(spec, kwargs, expected):
    with pytest.raises(ConfigError) as info:
        parse_segmenter(spec, **kwargs)
    assert expected in str(info.value)


def test_parse_segmenter_kinds(tmp_path):
    command = parse_segmenter("cmd:seg -i {input} -o {output}")
    assert isinstance(command, CommandSegmenter)
    assert command.command(Path("/in"), Path("/out")) == ["seg", "-i", "/in", "-o", "/out"]
    (tmp_path / "m.pt").write_bytes(b"")
    bundled = parse_segmenter(f"bundled:{tmp_path / 'm.pt'}")
    assert isinstance(bundled, BundledSegmenter) and bundled.path == tmp_path / "m.pt"
    with pytest.raises(CheckpointError) as info:
        parse_segmenter(f"bundled:{tmp_path / 'none.pt'}")
    assert "none.pt not found" in str(info.value)


# ----------------------------------------------------------------------------------- the CLI and the report


def test_cli_writes_the_downstream_columns_summary_and_qc_pictures(site, tmp_path):
    labels, constant, perfect = site
    out = tmp_path / "report"
    result = CliRunner().invoke(
        app,
        ["evaluate", "--pred", str(constant), "--labels", str(labels), "--baseline", str(perfect), "--out", str(out),
         "--segmenter", f"cmd:{threshold_command()}"],
    )
    assert result.exit_code == 0, result.output
    assert "Dice ET of the segmenter (real set, completed set, completed - real)" in result.output
    assert "baseline completed" in result.output
    rows = list(csv.DictReader(open(out / "cases.csv")))
    row = next(r for r in rows if r["run"] == "model" and r["case"] == "A-1")
    assert float(row["dice_real_ET"]) == 1.0 and float(row["dice_delta_ET"]) == -1.0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["segmenter"].startswith("cmd:")
    assert summary["runs"]["model"]["per_missing_modality"]["t1c"]["dice_completed_ET"] == 0.0
    assert summary["runs"]["baseline"]["mean"]["dice_delta_WT"] == 0.0
    # the QC picture grows by the two segmentation panels
    plain = tmp_path / "plain"
    assert CliRunner().invoke(
        app, ["evaluate", "--pred", str(constant), "--labels", str(labels), "--out", str(plain)]
    ).exit_code == 0
    assert Image.open(out / "qc" / "A-1.png").width > Image.open(plain / "qc" / "A-1.png").width


def test_cli_exits_1_and_names_the_failing_command(site):
    labels, constant, _ = site
    result = CliRunner().invoke(
        app, ["evaluate", "--pred", str(constant), "--labels", str(labels), "--no-pictures",
              "--segmenter", f"cmd:{threshold_command('--fail')}"],
    )
    assert result.exit_code == 1
    assert "[segmenter] A-1: no label map on the real set: segmenter command" in result.output


# ----------------------------------------------------------------------------------- the bundled segmenter


@pytest.fixture(scope="module")
def tiny_segmenter(tmp_path_factory):
    """A segmenter trained for a few steps on tiny complete cases (never a synthesized image)."""
    from brasyn.segmenter.fit import FitSettings, fit_segmenter

    root = tmp_path_factory.mktemp("segmenter")
    write_labels(root / "train", {"T-1": Modality.T1C, "T-2": Modality.T2F})
    write_labels(root / "validation", {"V-1": Modality.T1C})
    settings = FitSettings(base_channels=4, depth=2, crop=16, batch_size=4, steps=6, max_seconds=60)
    record = fit_segmenter(root / "train" / "original_data", root / "model", settings, validation=root / "validation")
    return root / "model", record


def test_fit_writes_a_safe_checkpoint_and_its_record(tiny_segmenter):
    folder, record = tiny_segmenter
    payload = torch.load(folder / "segmenter.pt", map_location="cpu", weights_only=True)
    assert payload["kind"] == "segmenter" and payload["channels"] == ["t1n", "t1c", "t2w", "t2f"]
    assert all(v.dtype == torch.float16 for v in payload["state_dict"].values() if torch.is_floating_point(v))
    assert payload["model_config"]["base_channels"] == 4
    saved = json.loads((folder / "record.json").read_text())
    assert saved["steps"] == record["steps"] == 6
    assert saved["training_cases"] == ["T-1", "T-2"]
    assert set(saved["validation_dice"]["per_case"]) == {"V-1"}
    assert set(saved["validation_dice"]["mean"]) == {"ET", "TC", "WT"}


def test_the_bundled_segmenter_runs_in_process_and_as_a_command(site, tiny_segmenter, tmp_path):
    labels, constant, _ = site
    weights = tiny_segmenter[0] / "segmenter.pt"
    in_process = evaluate(constant, labels, segmenter=parse_segmenter(f"bundled:{weights}"), pictures=False)
    command = shlex.join([sys.executable, "-m", "brasyn.cli", "segmenter", "run", "{input}", "{output}",
                          "--weights", str(weights), "--threads", "1"])
    external = evaluate(constant, labels, segmenter=parse_segmenter(f"cmd:{command}"), pictures=False)
    for case_id in CASES:
        a, b = _case(in_process, "model", case_id), _case(external, "model", case_id)
        assert a.problems == [] and b.problems == []
        for column in ("dice_real_WT", "dice_completed_WT", "dice_delta_ET"):
            assert a.scores[column] == pytest.approx(b.scores[column])


def test_segmenter_run_reports_an_incomplete_case(tiny_segmenter, tmp_path):
    case = tmp_path / "in" / "X"
    case.mkdir(parents=True)
    images, _ = volumes()
    geometry = new_geometry(SHAPE, BRATS_AFFINE)
    for modality in (Modality.T1N, Modality.T2W, Modality.T2F):
        write_volume(images[modality], case / image_filename("X", modality), geometry)
    result = CliRunner().invoke(
        app, ["segmenter", "run", str(tmp_path / "in"), str(tmp_path / "out"),
              "--weights", str(tiny_segmenter[0] / "segmenter.pt")],
    )
    assert result.exit_code == 1
    assert "X: required t1c not found" in result.output
    assert list((tmp_path / "out").iterdir()) == []
