"""The `docker run` command lines that the runners of this image build, transcribed from their source so
that tests can run them through tests/docker_shim.py. Read at:

- MedPerf, mlcommons/medperf@5f3c4c4 (2026-05): cli/medperf/containers/runners/docker_runner.py
  (run, _invoke_run), utils.py (check_allowed_run_args, add_medperf_run_args,
  add_user_defined_run_args, _normalize_gpu_arg, add_network_config, add_medperf_tmp_folder),
  docker_utils.py (volumes_to_cli_args, craft_docker_run_command), entities/cube.py (run: the
  parameters file and additional_files mounts).
- The `brats` package, BrainLesion/BraTS@6c3fb6b (2026-08): brats/core/docker.py (run_container:
  the docker SDK call for algorithms of year <= 2024, MLCube-style, and of 2025 on, /input and
  /output), brats/utils/algorithm_config.py (the algorithm table's fields).
- The BraSyn 2025 participant instructions: `docker run --network none --gpus all
  -v IN:/input:ro -v OUT:/output IMAGE`.

The docker SDK's `containers.run(...)` keyword arguments are written as the equivalent CLI flags.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

DOCKER = "docker"


class RunnerRefusal(Exception):
    """The runner itself refuses before starting a container (it raises; no docker command is run)."""


# ---------------------------------------------------------------------------------------------------
# MedPerf >= 0.2 (container_config.yaml)


def _medperf_gpus(gpus):
    """utils._normalize_gpu_arg: None/""/0 -> no flag; "all"; an int; "device=0,2" -> ids."""
    if gpus is None or gpus == "":
        return None
    if gpus == "all":
        return "all"
    if isinstance(gpus, int):
        return gpus or None
    if isinstance(gpus, str) and gpus.isnumeric():
        return int(gpus) or None
    if isinstance(gpus, str) and gpus.startswith("device=") and gpus[len("device="):]:
        return gpus[len("device="):].split(",")
    raise RunnerRefusal("Invalid gpus argument")


def medperf_command(
    container_config: Path,
    *,
    data_path: Path,
    output_path: Path,
    cube_folder: Path,
    parameters_config: dict | None,
    tmp_folder: Path,
    gpus_option: str | None = None,
    task: str = "infer",
) -> list[str]:
    """What `medperf` runs for a model's `infer`: Cube.run -> DockerRunner.run -> craft_docker_run_command.

    `cube_folder` plays MedPerf's storage folder of the cube: it holds `additional_files/` (created
    empty when the cube was registered without a tarball) and `parameters.yaml`, written only when a
    parameters file was registered (`parameters_config` not None). `gpus_option` is the data owner's
    `--gpus` (None: not given).
    """
    config = yaml.safe_load(Path(container_config).read_text())
    tasks = config["tasks"]
    if task not in tasks:
        raise RunnerRefusal(f"Task {task} is not found in container config.")
    run_args = dict(tasks[task].get("run_args", {}))
    not_allowed = set(run_args) - {"shm_size", "gpus", "command", "entrypoint", "environment"}
    if not_allowed:
        raise RunnerRefusal(f"Run args {', '.join(sorted(not_allowed))} are not allowed.")

    # entities/cube.py Cube.run
    additional = Path(cube_folder) / "additional_files"
    additional.mkdir(parents=True, exist_ok=True)
    params_path = Path(cube_folder) / "parameters.yaml"
    if parameters_config is not None:
        params_path.write_text(yaml.safe_dump(parameters_config))
    mounts = {"data_path": str(data_path), "output_path": str(output_path),
              "parameters_file": str(params_path), "additional_files": str(additional)}

    # utils: add_medperf_run_args, add_user_defined_run_args, network
    user = f"{os.getuid()}:{os.getgid()}"
    gpus = _medperf_gpus(gpus_option if gpus_option is not None else run_args.get("gpus"))

    # docker_utils.craft_docker_run_command
    command = [DOCKER, "run", "--name", "medperf-infer-0123456789abcdef", "--rm", "-u", user]
    for key, volume in tasks[task].get("input_volumes", {}).items():
        host = mounts[key]
        if not os.path.exists(host):
            raise RunnerRefusal(f"Internal error: input volume should exist: {host}")
        command += ["--volume", f"{host}:{volume['mount_path']}:ro"]
    for key, volume in tasks[task].get("output_volumes", {}).items():
        host = mounts[key]
        os.makedirs(host, exist_ok=True) if volume["type"] == "directory" else None
        command += ["--volume", f"{host}:{volume['mount_path']}:rw"]
    Path(tmp_folder).mkdir(parents=True, exist_ok=True)
    command += ["--volume", f"{tmp_folder}:/tmp:rw"]  # add_medperf_tmp_folder
    command += ["--network", "none"]
    if gpus is not None:
        command += [
            "--gpus",
            "all" if gpus == "all" else str(gpus) if isinstance(gpus, int) else "device=" + ",".join(gpus),
        ]
    if run_args.get("shm_size") is not None:
        command += ["--shm-size", str(run_args["shm_size"])]
    for key, value in run_args.get("environment", {}).items():
        command += ["--env", f"{key}={value}"]
    if run_args.get("entrypoint") is not None:
        command += ["--entrypoint", str(run_args["entrypoint"])]
    command.append(config["image"])
    command += list(run_args.get("command", []))
    return command


# ---------------------------------------------------------------------------------------------------
# The `brats` package (BrainLesion/BraTS)

# algorithm_config.py: the fields an algorithm table entry needs (MetaData, RunArgs without defaults)
BRATS_META_FIELDS = {"authors", "paper", "challenge", "challenge_manuscript", "rank", "year"}
BRATS_RUN_ARGS_FIELDS = {"docker_image", "input_name_schema"}
BRATS_RUN_ARGS_OPTIONAL = {
    "parameters_file",
    "requires_root",
    "shm_size",
    "cpu_compatible",
    "subject_modality_separator",
}


def brats_command(
    entry: dict,
    *,
    data_path: Path,
    output_path: Path,
    parameters_dir: Path,
    additional_files_path: Path,
    gpu: bool,
    cuda_devices: str = "0",
) -> list[str]:
    """What brats.core.docker.run_container starts for one algorithm table `entry` (MetaData + RunArgs).

    Year <= 2024: MLCube-style mounts /mlcube_io0..3 (all rw) and `infer --data_path=/mlcube_io0
    --output_path=/mlcube_io2 [--parameters_file=/mlcube_io3/<image>.yml or dummy.yml]`; from 2025:
    `-v data:/input -v out:/output` and no command. Both: --network none, --rm, the algorithm's shm
    size, `-u uid:gid` unless requires_root, and `--gpus device=N` unless it runs on CPU (no GPU, or
    force_cpu, which needs `cpu_compatible: true`).
    """
    meta, run_args = entry["meta"], entry["run_args"]
    if not gpu and not run_args.get("cpu_compatible", False):
        raise RunnerRefusal(
            "No Cuda installation/ GPU was found and the chosen algorithm is not CPU-compatible. Aborting..."
        )
    command = [DOCKER, "run", "--rm", "--network", "none", "--shm-size", run_args.get("shm_size", "4gb")]
    if not run_args.get("requires_root", False):
        command += ["-u", f"{os.getuid()}:{os.getgid()}"]
    if gpu:
        command += ["--gpus", f"device={cuda_devices}"]
    image = run_args["docker_image"]
    if meta["year"] <= 2024:
        for index, folder in enumerate([data_path, additional_files_path, output_path, parameters_dir]):
            command += ["-v", f"{Path(folder).absolute()}:/mlcube_io{index}:rw"]
        args = ["infer", "--data_path=/mlcube_io0", "--output_path=/mlcube_io2"]
        # additional_files (a Zenodo record) would add --weights=/mlcube_io1; this image bakes its weights in
        if run_args.get("parameters_file", False):
            identifier = image.split(":")[0].split("/")[-1]
            name = f"{identifier}.yml" if (Path(parameters_dir) / f"{identifier}.yml").exists() else "dummy.yml"
            args.append(f"--parameters_file=/mlcube_io3/{name}")
        return [*command, image, *args]
    command += ["-v", f"{Path(data_path).absolute()}:/input:rw", "-v", f"{Path(output_path).absolute()}:/output:rw"]
    return [*command, image]


def brats_outputs(output_path: Path, subjects: list[str]) -> dict[str, str]:
    """brats' checks after the container: _sanity_check_output (at least one output per subject, each
    loads as NIfTI) and _process_batch_output (the first file matching *{subject}* names the missing
    modality after its last '-'). Returns subject -> modality; raises AssertionError as brats raises."""
    import nibabel as nib

    outputs = sorted(Path(output_path).iterdir())
    assert len(outputs) >= len(subjects), f"Not enough output files: expected {len(subjects)}, got {len(outputs)}"
    for output in outputs:
        nib.load(output).get_fdata()
    found = {}
    for subject in subjects:
        matches = sorted(Path(output_path).glob(f"*{subject}*"))
        assert matches, f"no output for {subject}"
        found[subject] = matches[0].name.split("-")[-1].split(".")[0]
    return found


# ---------------------------------------------------------------------------------------------------
# BraSyn 2025 docker submission


def brasyn_submission_command(image: str, data_path: Path, output_path: Path) -> list[str]:
    """The participant instructions' check of a submitted image (plus the host user, as runners add)."""
    return [DOCKER, "run", "--rm", "--network", "none", "--gpus", "all", "-u", f"{os.getuid()}:{os.getgid()}",
            "-v", f"{data_path}:/input:ro", "-v", f"{output_path}:/output", image]
