"""The image as its runners start it: the exact `docker run` command lines of current MedPerf, the
`brats` package (both its routes) and the BraSyn 2025 submission check (tests/upstream_commands.py),
run through tests/docker_shim.py, which plays the image and enforces `-u`, `--network none`,
`--read-only` and `:ro` mounts. Also the shim's own refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from inference_helpers import check_prediction_folder, make_weights, write_cohort
from upstream_commands import (
    BRATS_META_FIELDS,
    BRATS_RUN_ARGS_FIELDS,
    BRATS_RUN_ARGS_OPTIONAL,
    RunnerRefusal,
    brasyn_submission_command,
    brats_command,
    brats_outputs,
    medperf_command,
)

REPO = Path(__file__).resolve().parents[1]
SHIM = REPO / "tests" / "docker_shim.py"
CONTAINER_CONFIG = REPO / "mlcube" / "container_config.yaml"
BRATS_TABLE = REPO / "mlcube" / "brats_algorithm.yml"
IMAGE = yaml.safe_load((REPO / "mlcube" / "mlcube.yaml").read_text())["docker"]["image"]
IMAGE_WEIGHTS = REPO / "workspace" / "additional_files"  # what the shim's image holds (the bundled weights)


def docker(command: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    """Run a runner's `docker ...` command line with the shim as the docker executable."""
    assert command[0] == "docker"
    env = dict(os.environ, OMP_NUM_THREADS="1", SHIM_LOG=str(tmp_path / "shim.log"))
    return subprocess.run(
        [sys.executable, str(SHIM), *command[1:]], env=env, capture_output=True, text=True, timeout=300
    )


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------------------------------
# Current MedPerf


def medperf(tmp_path: Path, parameters_config: dict | None = None, gpus_option: str | None = None) -> list[str]:
    registered = yaml.safe_load((REPO / "workspace" / "parameters.yaml").read_text())
    return medperf_command(
        CONTAINER_CONFIG,
        data_path=tmp_path / "data",
        output_path=tmp_path / "predictions",
        cube_folder=tmp_path / "cube",
        parameters_config=registered if parameters_config is None else parameters_config,
        tmp_folder=tmp_path / "medperf-tmp",
        gpus_option=gpus_option,
    )


def test_medperf_runs_the_cube_registered_without_a_weights_tarball(tmp_path):
    """additional_files is mounted empty: the weights baked into the image are used, with a warning."""
    data = tmp_path / "data"
    missing = write_cohort(data, 2)
    before = tree(data)
    command = medperf(tmp_path)
    text = " ".join(command)
    assert f"-u {os.getuid()}:{os.getgid()}" in text and "--network none" in text and "--rm" in command
    assert f"{data}:/mlcommons/volumes/data:ro" in command and "--gpus all" in text and "--shm-size 2gb" in text
    result = docker(command, tmp_path)
    assert result.returncode == 0, result.stderr
    check_prediction_folder(tmp_path / "predictions", data, missing)
    assert tree(data) == before
    warning = next(line for line in result.stderr.splitlines() if "using the weights in the image" in line)
    assert str(tmp_path / "cube" / "additional_files") in warning and str(IMAGE_WEIGHTS) in warning


def test_medperf_runs_a_weights_tarball_unpacked_one_folder_deep(tmp_path):
    """`tar czf weights.tar.gz additional_files/` unpacks to additional_files/additional_files/."""
    data = tmp_path / "data"
    missing = write_cohort(data, 2)
    shipped = make_weights(tmp_path / "cube" / "additional_files" / "additional_files")
    result = docker(medperf(tmp_path), tmp_path)
    assert result.returncode == 0, result.stderr
    check_prediction_folder(tmp_path / "predictions", data, missing)
    assert f"using the folder inside it, {shipped}" in result.stderr
    assert "using the weights in the image" not in result.stderr


def test_medperf_needs_a_registered_parameters_file(tmp_path):
    """MedPerf writes parameters.yaml only when the cube was submitted with -p; without it, it refuses to
    start the container (the input volume does not exist) - hence the documented registration."""
    write_cohort(tmp_path / "data", 1)
    with pytest.raises(RunnerRefusal, match="input volume should exist: .*parameters.yaml"):
        medperf_command(
            CONTAINER_CONFIG, data_path=tmp_path / "data", output_path=tmp_path / "p", cube_folder=tmp_path / "cube",
            parameters_config=None, tmp_folder=tmp_path / "t",
        )
    # registered with -p, even a file holding only defaults ({}), it runs
    assert "--parameters_file=/mlcommons/volumes/parameters/parameters.yaml" in medperf(tmp_path, parameters_config={})
    assert (tmp_path / "cube" / "parameters.yaml").read_text() == "{}\n"


@pytest.mark.parametrize(
    "option, flag",
    [
        (None, ["--gpus", "all"]),
        ("0", None),
        ("", None),
        ("device=0,2", ["--gpus", "device=0,2"]),
        ("2", ["--gpus", "2"]),
    ],
)
def test_medperf_gpus_come_from_the_config_unless_the_data_owner_passes_gpus(tmp_path, option, flag):
    write_cohort(tmp_path / "data", 1)
    command = medperf(tmp_path, gpus_option=option)
    at = command.index("--gpus") if "--gpus" in command else None
    assert (command[at : at + 2] if at is not None else None) == flag


def test_medperf_run_args_are_the_allowed_ones(tmp_path):
    bad = tmp_path / "container_config.yaml"
    config = yaml.safe_load(CONTAINER_CONFIG.read_text())
    config["tasks"]["infer"]["run_args"]["gpu"] = "all"  # a typo MedPerf refuses
    bad.write_text(yaml.safe_dump(config))
    with pytest.raises(RunnerRefusal, match="Run args gpu are not allowed"):
        medperf_command(
            bad,
            data_path=tmp_path,
            output_path=tmp_path / "p",
            cube_folder=tmp_path / "c",
            parameters_config={},
            tmp_folder=tmp_path / "t",
        )


# ---------------------------------------------------------------------------------------------------
# The brats package


def brats_table_entry(**run_args) -> dict:
    entry = yaml.safe_load(BRATS_TABLE.read_text())["algorithms"]["brasyn_plave"]
    entry["run_args"].update(run_args)
    return entry


def brats_folders(tmp_path: Path, n_cases: int) -> tuple[Path, dict]:
    """brats' batch layout: subjects renamed to its input_name_schema, as _standardize_batch_inputs does."""
    data = tmp_path / "brats-tmp-data"
    return data, write_cohort(data, n_cases)


def test_brats_table_entry_has_the_fields_the_package_reads():
    table = yaml.safe_load(BRATS_TABLE.read_text())
    (entry,) = table["algorithms"].values()
    assert BRATS_META_FIELDS <= set(entry["meta"]) and isinstance(entry["meta"]["year"], int)
    assert BRATS_RUN_ARGS_FIELDS <= set(entry["run_args"]) <= BRATS_RUN_ARGS_FIELDS | BRATS_RUN_ARGS_OPTIONAL
    assert entry["run_args"]["docker_image"] == IMAGE
    assert entry["run_args"]["input_name_schema"].format(id=7) == "BraTS-GLI-00007-000"
    assert entry["run_args"]["cpu_compatible"] is True and entry["meta"]["year"] >= 2025


@pytest.mark.parametrize("gpu", [False, True], ids=["cpu", "gpu"])
def test_brats_package_docker_route_runs_the_image(tmp_path, gpu):
    """Year >= 2025: -v data:/input -v out:/output, no command (the image's CMD); on CPU too."""
    data, missing = brats_folders(tmp_path, 2)
    out = tmp_path / "brats-tmp-output"
    out.mkdir()
    command = brats_command(brats_table_entry(), data_path=data, output_path=out, parameters_dir=tmp_path / "params",
                            additional_files_path=tmp_path / "dummy", gpu=gpu)
    assert command[-1] == IMAGE and ("--gpus" in command) == gpu
    result = docker(command, tmp_path)
    assert result.returncode == 0, result.stderr
    check_prediction_folder(out, data, missing)
    assert brats_outputs(out, sorted(missing)) == {case: target.value for case, target in missing.items()}


def test_brats_package_mlcube_route_with_its_empty_parameters_file(tmp_path):
    """Year <= 2024: /mlcube_io0..3, `infer --data_path --output_path --parameters_file=/mlcube_io3/dummy.yml`
    (an empty file: the defaults), the weights from the image (no --weights)."""
    data, missing = brats_folders(tmp_path, 2)
    out, params, dummy = tmp_path / "out", tmp_path / "parameters", tmp_path / "additional_files" / "dummy"
    for folder in (out, params, dummy):
        folder.mkdir(parents=True)
    (params / "dummy.yml").write_text("")
    entry = brats_table_entry(parameters_file=True)
    entry["meta"]["year"] = 2024
    command = brats_command(
        entry, data_path=data, output_path=out, parameters_dir=params, additional_files_path=dummy, gpu=False
    )
    assert command[-4:] == [
        "infer",
        "--data_path=/mlcube_io0",
        "--output_path=/mlcube_io2",
        "--parameters_file=/mlcube_io3/dummy.yml",
    ]
    result = docker(command, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "is empty: using the default settings" in result.stderr
    check_prediction_folder(out, data, missing)
    assert brats_outputs(out, sorted(missing)) == {case: target.value for case, target in missing.items()}


def test_brats_refuses_cpu_for_an_algorithm_not_marked_cpu_compatible(tmp_path):
    with pytest.raises(RunnerRefusal, match="not CPU-compatible"):
        brats_command(
            brats_table_entry(cpu_compatible=False),
            data_path=tmp_path,
            output_path=tmp_path,
            parameters_dir=tmp_path,
            additional_files_path=tmp_path,
            gpu=False,
        )


# ---------------------------------------------------------------------------------------------------
# BraSyn 2025 submission


def test_brasyn_submission_docker_run(tmp_path):
    data, out = tmp_path / "input", tmp_path / "output"
    missing = write_cohort(data, 2)
    out.mkdir()
    result = docker(brasyn_submission_command(IMAGE, data, out), tmp_path)
    assert result.returncode == 0, result.stderr
    check_prediction_folder(out, data, missing)


def test_read_only_image_filesystem(tmp_path):
    """With --read-only and no /tmp mount the image may write only to /output."""
    data, out = tmp_path / "input", tmp_path / "output"
    missing = write_cohort(data, 1)
    command = [
        "docker",
        "run",
        "--rm",
        "--read-only",
        "--network=none",
        "-v",
        f"{data}:/input:ro",
        "-v",
        f"{out}:/output",
        IMAGE,
    ]
    result = docker(command, tmp_path)
    assert result.returncode == 0, result.stderr
    check_prediction_folder(out, data, missing)


# ---------------------------------------------------------------------------------------------------
# The shim itself: what it enforces


def test_shim_reports_writes_to_read_only_mounts(tmp_path):
    data, out = tmp_path / "input", tmp_path / "output"
    write_cohort(data, 1)
    out.mkdir()
    result = docker(["docker", "run", "--rm", "-v", f"{data}:/input:ro", "-v", f"{out}:/output:ro", IMAGE], tmp_path)
    assert result.returncode == 1
    assert f"docker shim: the container wrote to {out}, mounted read-only" in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--privileged", IMAGE], "unknown flag: --privileged"),
        (["-u", "4242:4242", IMAGE], "the shim runs only as the caller"),
        (["--shm-size", "lots", IMAGE], "invalid size"),
        (["-v", "relative:/input", IMAGE], "invalid volume specification"),
        (["--network"], "flag needs an argument"),
        (["--rm"], "requires at least 1 argument"),
        (["other/image:1.0"], "Unable to find image 'other/image:1.0'"),
    ],
)
def test_shim_refuses_what_it_cannot_play(tmp_path, args, message):
    result = docker(["docker", "run", *args], tmp_path)
    assert result.returncode == 125
    assert message in result.stderr
    assert json.loads((tmp_path / "shim.log").read_text().splitlines()[0])[0] == "run"


def test_shim_network_none_refuses_internet_sockets(tmp_path):
    from docker_shim import NO_NETWORK

    (tmp_path / "sitecustomize.py").write_text(NO_NETWORK)
    code = (
        "import socket\ntry:\n    socket.create_connection(('127.0.0.1', 9), timeout=1)\n"
        "except OSError as e:\n    print(e.errno)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=str(tmp_path)), capture_output=True, text=True
    )
    assert result.stdout.strip() == "101", result.stderr  # ENETUNREACH
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() != "101"  # without it: refused by the closed port, not unreachable
