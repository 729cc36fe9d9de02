"""The MLCube side: the manifest obeys MLCube 0.0.9 and MedPerf's model-cube rules, the real `mlcube`
client validates it and runs `infer` end to end through a docker shim, and project/mlcube.py (the
image's entrypoint) works from the repository with `--key=value` options."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
import yaml
from inference_helpers import check_prediction_folder, make_weights, write_cohort
from tools import require_tool
from typer.testing import CliRunner

from brasyn.checkpoint import checkpoint_filename
from brasyn.constants import MODALITIES, Modality
from brasyn.errors import ConfigError
from brasyn.inference.settings import InferParameters

REPO = Path(__file__).resolve().parents[1]
MLCUBE_DIR = REPO / "mlcube"
MANIFEST = MLCUBE_DIR / "mlcube.yaml"
MLCUBE_VENV = REPO / ".venv-mlcube"
MLCUBE_BIN = MLCUBE_VENV / "bin" / "mlcube"
SHIM = REPO / "tests" / "docker_shim.py"
ENTRYPOINT = REPO / "project" / "mlcube.py"

needs_mlcube = pytest.mark.usefixtures("mlcube_client")


@pytest.fixture
def mlcube_client() -> Path:
    """The mlcube client; its absence skips the test locally and fails it under CI."""
    require_tool(MLCUBE_BIN, "the mlcube client venv is missing (run `make mlcube-venv`)")
    return MLCUBE_BIN


def manifest() -> dict:
    return yaml.safe_load(MANIFEST.read_text())


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return make_weights(tmp_path_factory.mktemp("weights"))


@pytest.fixture
def mlcube_env(tmp_path) -> dict[str, str]:
    """Environment for the mlcube client: a private settings file whose docker executable is the shim."""
    settings = {
        "runners": {"docker": {"pkg": "mlcube_docker"}},
        "platforms": {
            "docker": {
                "runner": "docker",
                "image": "${docker.image}",
                "docker": f"{sys.executable} {SHIM}",
                "env_args": {},
                "gpu_args": "",
                "cpu_args": "",
                "build_args": {},
                "build_context": ".",
                "build_file": "Dockerfile",
                "build_strategy": "pull",
            }
        },
        "storage": {},
    }
    path = tmp_path / "mlcube-settings.yaml"
    path.write_text(yaml.safe_dump(settings))
    return dict(os.environ, MLCUBE_SYSTEM_SETTINGS=str(path), SHIM_LOG=str(tmp_path / "shim.log"), OMP_NUM_THREADS="1")


def run_mlcube(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(MLCUBE_BIN), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


# ---------------------------------------------------------------------------------------------------
# The manifest


def test_manifest_obeys_medperf_model_cube_rules():
    cube = manifest()
    assert set(cube) <= {"name", "description", "authors", "platform", "docker", "tasks"}
    assert "infer" in cube["tasks"]
    params = cube["tasks"]["infer"]["parameters"]
    assert set(params) == {"inputs", "outputs"}
    inputs, outputs = params["inputs"], params["outputs"]
    assert "data_path" in inputs
    default = lambda p: p["default"] if isinstance(p, dict) else p  # noqa: E731
    assert default(inputs["parameters_file"]) == "parameters.yaml"
    for name, spec in inputs.items():
        if name in ("data_path", "parameters_file"):
            continue
        path = default(spec)
        assert path.startswith("additional_files/"), f"input {name} must live under additional_files/"
        if isinstance(spec, dict) and spec.get("type") == "directory":
            assert path.endswith("/")
    assert set(outputs) == {"output_path"}


def test_manifest_docker_section_and_workspace():
    cube = manifest()
    assert cube["platform"]["accelerator_count"] == 1
    docker = cube["docker"]
    assert "--gpus=all" in docker["gpu_args"].split() and "--shm-size" in docker["gpu_args"]
    for args in (docker["gpu_args"], docker["cpu_args"]):  # mlcube 0.0.9 adds no --rm of its own
        assert "--rm" in args.split()
    assert (MLCUBE_DIR / docker["build_context"] / docker["build_file"]).resolve() == REPO / "Dockerfile"
    # mlcube's default workspace (<folder of mlcube.yaml>/workspace) is the top-level workspace
    assert (MLCUBE_DIR / "workspace").resolve() == (REPO / "workspace").resolve()
    assert (MLCUBE_DIR / "workspace" / "parameters.yaml").is_file()
    assert (MLCUBE_DIR / "workspace" / "additional_files").is_dir()


def test_train_section_is_one_record_with_its_targets():
    from brasyn.training import TrainParameters

    everything = TrainParameters.from_dict(None)
    assert everything.targets == MODALITIES and everything.setup.model.base_channels > 0
    chosen = TrainParameters.from_dict({"preset": "tiny", "targets": ["t2f,T1N", "t2f"]})
    assert chosen.targets == (Modality.T2F, Modality.T1N)
    assert chosen.setup == TrainParameters.from_dict({"preset": "tiny"}).setup
    for bad, where in (({"targets": ["t3"]}, "train.targets"), ({"targets": []}, "train.targets"),
                       ({"preset": "tiny", "batch": 1}, "batch")):
        with pytest.raises(ConfigError) as info:
            TrainParameters.from_dict(bad)
        assert where in str(info.value)


def test_parameters_file_sections_load():
    params = yaml.safe_load((REPO / "workspace" / "parameters.yaml").read_text())
    assert set(params) == {"infer", "train"}
    parameters = InferParameters.from_dict(params["infer"])  # the settings and the exit-status policy, together
    assert parameters.strict is False and params["infer"]["strict"] is False
    settings = parameters.settings
    assert settings.device == "auto" and settings.segmentation_dir is None and not settings.overwrite
    assert isinstance(params["train"], dict) and "preset" in params["train"]


def test_container_config_for_current_medperf():
    config = yaml.safe_load((MLCUBE_DIR / "container_config.yaml").read_text())
    assert config["container_type"] == "DockerImage"
    assert config["image"] == manifest()["docker"]["image"]
    task = config["tasks"]["infer"]
    assert set(task["run_args"]) <= {"shm_size", "gpus", "command", "entrypoint", "environment"}
    assert task["run_args"]["gpus"] == "all"  # else the model runs on CPU unless the data owner passes --gpus
    command = task["run_args"]["command"]
    assert command[0] == "infer" and all(a.startswith("--") and "=" in a for a in command[1:])
    args = dict(a[2:].split("=", 1) for a in command[1:])
    volumes = {**task["input_volumes"], **task["output_volumes"]}
    assert set(task["output_volumes"]) == {"output_path"}
    assert {"data_path", "parameters_file", "additional_files"} == set(task["input_volumes"])
    assert args["data_path"] == volumes["data_path"]["mount_path"]
    assert args["parameters_file"] == volumes["parameters_file"]["mount_path"]
    assert args["weights"] == volumes["additional_files"]["mount_path"]
    assert args["output_path"] == volumes["output_path"]["mount_path"]


# ---------------------------------------------------------------------------------------------------
# The real mlcube client


@needs_mlcube
def test_real_client_validates_the_manifest(mlcube_env):
    result = run_mlcube(["describe", "--mlcube=mlcube"], mlcube_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        "name = infer, inputs = ['data_path', 'parameters_file', 'weights'], outputs = ['output_path']" in result.stdout
    )
    result = run_mlcube(["show_config", "--mlcube=mlcube", "--platform=docker", "--resolve"], mlcube_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "brasyn/plave" in result.stdout


@needs_mlcube
def test_real_client_container_arguments(tmp_path):
    """MLCube's own mount/argument generation gives the container exactly the documented command line."""
    code = f"""
import json
from mlcube.config import MLCubeConfig
from mlcube.shell import Shell
from mlcube_docker.docker_run import Config, DockerRun
cfg = MLCubeConfig.create_mlcube_config({str(MANIFEST)!r}, task_cli_args={{}}, runner_config=Config.DEFAULT,
                                        resolve=True, runner_cls=DockerRun)
mounts, args, opts = Shell.generate_mounts_and_args(cfg, "infer", make_dirs=False)
print(json.dumps({{"mounts": mounts, "args": args}}))
"""
    env = dict(os.environ, MLCUBE_SYSTEM_SETTINGS=str(tmp_path / "settings.yaml"))
    result = subprocess.run(
        [str(MLCUBE_VENV / "bin" / "python"), "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["args"] == [
        "infer",
        "--data_path=/mlcube_io0",
        "--parameters_file=/mlcube_io1/parameters.yaml",
        "--weights=/mlcube_io2",
        "--output_path=/mlcube_io3",
    ]
    workspace = str(MLCUBE_DIR / "workspace")
    assert out["mounts"][os.path.join(workspace, "additional_files")] == "/mlcube_io2"


@needs_mlcube
def test_mlcube_run_infer_through_the_docker_shim(mlcube_env, weights, tmp_path):
    data, out = tmp_path / "data", tmp_path / "predictions"
    missing = write_cohort(data, 4)
    result = run_mlcube(
        ["run", "--mlcube=mlcube", "--task=infer", "--platform=docker",
         f"data_path={data}", f"output_path={out}", f"weights={weights}"],
        mlcube_env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    check_prediction_folder(out, data, missing)
    calls = [json.loads(line) for line in Path(mlcube_env["SHIM_LOG"]).read_text().splitlines()]
    run = next(c for c in calls if c[0] == "run")
    assert "--gpus=all" in run  # accelerator_count 1 -> gpu_args
    assert "--rm" in run  # no exited container left behind by each run
    image_at = run.index("brasyn/plave:0.1.0")
    assert run[image_at + 1 :] == [
        "infer", "--data_path=/mlcube_io0", "--parameters_file=/mlcube_io1/parameters.yaml",
        "--weights=/mlcube_io2", "--output_path=/mlcube_io3",
    ]
    # a case failing on its own input is listed, the others are written, and the cube succeeds
    # (MedPerf and the brats package discard every prediction of a run that exits non-zero) ...
    (data / "BraTS-GLI-00100-000").mkdir()
    second = tmp_path / "second"
    result = run_mlcube(
        ["run", "--mlcube=mlcube", "--task=infer", "--platform=docker",
         f"data_path={data}", f"output_path={second}", f"weights={weights}"],
        mlcube_env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 done, 0 skipped, 1 failed (5 cases)" in result.stdout
    assert "FAILED  BraTS-GLI-00100-000: expected 3 of t1c/t1n/t2f/t2w, found 0" in result.stdout
    assert "exit status 0: 1 case failed, each on its own input (listed above)" in result.stdout
    check_prediction_folder(second, data, missing)
    # ... unless the parameters file says strict: true
    params = tmp_path / "strict.yaml"
    params.write_text("infer:\n  strict: true\n")
    result = run_mlcube(
        ["run", "--mlcube=mlcube", "--task=infer", "--platform=docker",
         f"data_path={data}", f"output_path={tmp_path / 'third'}", f"weights={weights}", f"parameters_file={params}"],
        mlcube_env,
    )
    assert result.returncode != 0
    assert "exit status 1: 1 case failed (strict: any failure is an error)" in result.stdout
    check_prediction_folder(tmp_path / "third", data, missing)


# ---------------------------------------------------------------------------------------------------
# project/mlcube.py run from the repository


def run_entrypoint(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("PYTHONPATH", None)
    return subprocess.run(
        [sys.executable, str(ENTRYPOINT), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_entrypoint_infer_from_the_repository(weights, tmp_path):
    data, out = tmp_path / "data", tmp_path / "out"
    missing = write_cohort(data, 4)
    params = tmp_path / "params.yaml"
    params.write_text("infer:\n  batch_size: 3\n  device: cpu\n")
    result = run_entrypoint(
        ["infer", f"--data_path={data}", f"--parameters_file={params}", f"--weights={weights}", f"--output_path={out}"],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "4 done, 0 skipped, 0 failed" in result.stdout
    check_prediction_folder(out, data, missing)


def test_entrypoint_defaults_to_the_repository_workspace(tmp_path):
    """Without --weights / --parameters_file it uses <repo>/workspace (here: no weights there -> each
    case fails cleanly)."""
    spec = importlib.util.spec_from_file_location("brasyn_mlcube_entry", ENTRYPOINT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.DEFAULT_PARAMETERS == REPO / "workspace" / "parameters.yaml"
    assert module.DEFAULT_WEIGHTS == REPO / "workspace" / "additional_files"


def test_entrypoint_errors_are_one_line(tmp_path, weights):
    data = tmp_path / "data"
    write_cohort(data, 1)
    params = tmp_path / "params.yaml"
    params.write_text("infer:\n  batch_sise: 3\n")
    result = run_entrypoint(
        [
            "infer",
            f"--data_path={data}",
            f"--parameters_file={params}",
            f"--weights={weights}",
            f"--output_path={tmp_path / 'o'}",
        ],
        tmp_path,
    )
    assert result.returncode == 1
    assert (
        result.stderr.strip().splitlines()[-1]
        == "error: unknown config key infer.batch_sise (valid: batch_size, channels_last, device, io_workers,"
        " mirror_axes, overwrite, precision, progress, segmentation_dir, strict)"
    )
    assert not (tmp_path / "o").exists()


def test_entrypoint_usage_errors_are_shown_without_traceback(tmp_path):
    result = run_entrypoint(["infer", "--bogus=1"], tmp_path)
    assert result.returncode == 2
    assert "No such option: --bogus" in result.stderr and "Traceback" not in result.stderr


def test_run_app_maps_errors_to_exit_statuses(monkeypatch, capsys):
    import typer

    from brasyn.cli_support import run_app

    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

    @app.command()
    def go(what: str) -> None:
        if what == "brasyn":
            raise ConfigError("a.yaml: bad key")
        if what == "exit":
            raise typer.Exit(3)
        raise KeyError(what)

    def status(*argv: str) -> int | None:
        monkeypatch.setattr(sys, "argv", ["prog", *argv])
        with pytest.raises(SystemExit) as info:
            run_app(app)
        return info.value.code

    assert status("brasyn") == 1 and capsys.readouterr().err == "error: a.yaml: bad key\n"
    assert status("exit") == 3
    assert status("brasyn", "extra") == 2 and "Got unexpected extra argument" in capsys.readouterr().err
    monkeypatch.setattr(sys, "argv", ["prog", "other"])
    with pytest.raises(KeyError):  # unexpected errors keep their traceback
        run_app(app)


def load_entrypoint(name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, ENTRYPOINT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "content", [None, "", "# only a comment\n", "{}\n"], ids=["missing", "empty", "comment", "empty-mapping"]
)
def test_missing_or_empty_parameters_file_means_the_defaults(content, tmp_path, weights, caplog):
    """Current MedPerf mounts parameters.yaml only when one was registered; the `brats` package passes an empty one."""
    module = load_entrypoint("brasyn_mlcube_entry_params")
    data = tmp_path / "data"
    missing = write_cohort(data, 2)
    params = tmp_path / "parameters.yaml"
    if content is not None:
        params.write_text(content)
    with caplog.at_level(logging.INFO, logger="brasyn.mlcube"):
        result = CliRunner().invoke(
            module.app,
            [
                "infer",
                f"--data_path={data}",
                f"--output_path={tmp_path / 'o'}",
                f"--parameters_file={params}",
                f"--weights={weights}",
            ],
        )
    assert result.exit_code == 0, result.output
    check_prediction_folder(tmp_path / "o", data, missing)
    notes = [r.getMessage() for r in caplog.records if "parameters file" in r.getMessage()]
    assert notes == [
        f"parameters file {params} {'not found' if content is None else 'is empty'}: using the default settings"
    ]


def test_bad_parameters_files_are_config_errors_and_hotfix(tmp_path):
    module = load_entrypoint("brasyn_mlcube_entry_hotfix")
    runner = CliRunner()

    def error(params: Path) -> str:
        result = runner.invoke(
            module.app,
            ["infer", f"--data_path={tmp_path}", f"--output_path={tmp_path / 'o'}", f"--parameters_file={params}"],
        )
        assert isinstance(result.exception, ConfigError), result.output
        return str(result.exception)

    (tmp_path / "evaluate.yaml").write_text("evaluate: {}\n")
    assert "unknown section evaluate" in error(tmp_path / "evaluate.yaml")
    (tmp_path / "list.yaml").write_text("- infer\n")
    assert "expected a mapping" in error(tmp_path / "list.yaml")
    (tmp_path / "folder.yaml").mkdir()
    assert "found a folder" in error(tmp_path / "folder.yaml")
    assert not (tmp_path / "o").exists()
    result = runner.invoke(module.app, ["hotfix"])
    assert result.exit_code == 0 and result.output == ""


def run_main(module: types.ModuleType, argv: list[str], monkeypatch) -> int:
    """The entrypoint's real main() (logging, error mapping) in this process; returns the exit status."""
    monkeypatch.setattr(sys, "argv", ["mlcube.py", *argv])
    with pytest.raises(SystemExit) as info:
        module.main()
        raise SystemExit(0)
    return info.value.code or 0


@pytest.mark.parametrize(
    "scenario, status, says",
    [
        ("input-errors-only", 0, "exit status 0: 2 cases failed, each on its own input (listed above)"),
        ("strict", 1, "exit status 1: 2 cases failed (strict: any failure is an error)"),
        ("every-case-bad", 1, "exit status 1: 2 cases failed, each on its own input, and no case has a prediction"),
        ("broken-checkpoint", 1, "exit status 1: 1 case failed, 1 for a reason other than their input (model)"),
        ("no-weights-anywhere", 1, "holds none either"),
        ("unwritable-output", 1, "cannot create the output folder"),
        ("bad-configuration", 1, "infer.strict: expected bool, found 'yes'"),
        ("unusable-gpu", 1, "error: device 'cuda': a GPU is visible (/dev/nvidia0) but PyTorch"),
    ],
)
def test_entrypoint_exit_status_policy(scenario, status, says, tmp_path, weights, monkeypatch, capsys):
    """0 when only cases' own inputs failed (MedPerf and the brats package discard every prediction of a
    run that exits non-zero); 1 for what every case shares, for no prediction at all, and under strict."""
    from conftest import write_case

    module = load_entrypoint(f"brasyn_mlcube_entry_exit_{scenario.replace('-', '_')}")
    data, out, params, used_weights = tmp_path / "data", tmp_path / "out", tmp_path / "parameters.yaml", weights
    missing = {} if scenario == "every-case-bad" else write_cohort(data, 2)
    write_case(data, "BraTS-GLI-00100-000", (Modality.T1N,), shape=(48, 48, 12))  # two modalities short
    (data / "BraTS-GLI-00101-000").mkdir(parents=True)  # an empty case folder
    params.write_text(
        {
            "strict": "infer:\n  strict: true\n",
            "bad-configuration": "infer:\n  strict: 'yes'\n",
            "unusable-gpu": "infer:\n  device: cuda\n",
        }.get(scenario, "")
    )
    if scenario == "unusable-gpu":  # a host whose driver is older than the image's CUDA build
        from brasyn import gpu

        facts = gpu.GpuProbe("/dev/nvidia0", "2.13.0+cu130", "13.0", cuda_available=False, driver_cuda=12020)
        monkeypatch.setattr(gpu, "probe", lambda: facts)
    if scenario == "broken-checkpoint":
        used_weights = make_weights(tmp_path / "weights")
        (used_weights / checkpoint_filename(Modality.T1C)).write_bytes(b"not a checkpoint")
        shutil.rmtree(data / "BraTS-GLI-00100-000")
        shutil.rmtree(data / "BraTS-GLI-00101-000")
    if scenario == "no-weights-anywhere":
        used_weights = tmp_path / "additional_files"
        used_weights.mkdir()
        monkeypatch.setattr(module, "DEFAULT_WEIGHTS", tmp_path / "image-weights")
    if scenario == "unwritable-output":
        out = tmp_path / "a-file"
        out.write_text("")
        out = out / "predictions"
    code = run_main(
        module,
        [
            "infer",
            f"--data_path={data}",
            f"--output_path={out}",
            f"--parameters_file={params}",
            f"--weights={used_weights}",
        ],
        monkeypatch,
    )
    captured = capsys.readouterr()
    assert code == status, captured.out + captured.err
    assert says in captured.out + captured.err
    if scenario in ("input-errors-only", "strict"):
        check_prediction_folder(out, data, missing)  # the good cases' predictions are written either way
        assert "FAILED  BraTS-GLI-00101-000: expected 3 of t1c/t1n/t2f/t2w, found 0" in captured.out


PAUSE_BEFORE_RENAME = """
import os, pathlib, time
_replace, _writes = os.replace, []
def _paused_replace(src, dst, *args, **kwargs):
    if str(src).endswith(".tmp.nii.gz"):
        _writes.append(src)
        if len(_writes) == int(os.environ["PAUSE_AT_WRITE"]):
            pathlib.Path(os.environ["PAUSE_MARKER"]).write_text(str(src))
            time.sleep(300)  # killed here, its temporary file complete but not yet renamed
    return _replace(src, dst, *args, **kwargs)
os.replace = _paused_replace
"""


def test_a_rerun_after_sigkill_mid_write_leaves_exactly_the_predictions(tmp_path, weights):
    """The OOM killer or a runner's timeout kills a real run while it writes; the next run must leave
    output_path holding exactly the predictions (challenge evaluators trip on stray files)."""
    data, out = tmp_path / "data", tmp_path / "out"
    missing = write_cohort(data, 3)
    hook, marker = tmp_path / "hook", tmp_path / "paused"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(PAUSE_BEFORE_RENAME)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(hook), PAUSE_AT_WRITE="2", PAUSE_MARKER=str(marker))
    args = [
        sys.executable,
        str(ENTRYPOINT),
        "infer",
        f"--data_path={data}",
        f"--output_path={out}",
        f"--weights={weights}",
    ]
    process = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), "the run never reached its second write"
    finally:
        process.kill()  # SIGKILL: no handler, no cleanup
        process.wait()
    assert process.returncode == -signal.SIGKILL
    stray = Path(marker.read_text())
    assert stray.parent == out and stray.exists()  # what a killed run leaves
    assert len(list(out.iterdir())) == 2  # one prediction, one temporary file

    result = run_entrypoint(["infer", f"--data_path={data}", f"--output_path={out}", f"--weights={weights}"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "2 done, 1 skipped, 0 failed" in result.stdout
    assert f"removed {stray}, left by an interrupted earlier run" in result.stderr
    check_prediction_folder(out, data, missing)  # exactly the three predictions, nothing else


def test_entrypoint_train_writes_the_four_checkpoints(tmp_path, monkeypatch):
    """`train` hands the train: section to brasyn.training and leaves brasyn_{target}.pt in output_path."""
    calls = {}
    fake = types.ModuleType("brasyn.training")

    def load_training_setup(mapping):
        calls["mapping"] = mapping
        return ("setup", mapping)

    def train(data_path, output_dir, setup, targets, *, resume=True):
        calls.update(data_path=data_path, output_dir=output_dir, setup=setup, targets=targets, resume=resume)
        run = Path(output_dir) / "run"
        run.mkdir(parents=True, exist_ok=True)
        paths = {}
        for t in targets:
            paths[t] = run / f"{t}-final.pt"
            paths[t].write_text(f"weights {t}")
        return paths

    from brasyn.training import config as training_config

    # the real train: section record, reading its setup through the stand-in loader
    monkeypatch.setattr(training_config, "load_training_setup", load_training_setup)
    fake.TrainParameters, fake.train = training_config.TrainParameters, train
    monkeypatch.setitem(sys.modules, "brasyn.training", fake)
    spec = importlib.util.spec_from_file_location("brasyn_mlcube_entry_train", ENTRYPOINT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    params = tmp_path / "params.yaml"
    params.write_text("train:\n  preset: demo\n  targets: [t2f, t1n]\n  training: {epochs: 1}\n")
    out = tmp_path / "weights"
    result = CliRunner().invoke(
        module.app, ["train", f"--data_path={tmp_path / 'data'}", f"--parameters_file={params}", f"--output_path={out}"]
    )
    assert result.exit_code == 0, result.output
    assert calls["mapping"] == {"preset": "demo", "training": {"epochs": 1}}
    assert calls["targets"] == (Modality.T2F, Modality.T1N) and calls["resume"] is True
    assert Path(calls["output_dir"]) == out / "training"  # run state apart from the checkpoints
    for t in (Modality.T2F, Modality.T1N):
        assert (out / checkpoint_filename(t)).read_text() == f"weights {t}"
    assert not any((out / checkpoint_filename(t)).exists() for t in MODALITIES if t not in (Modality.T2F, Modality.T1N))


@pytest.mark.slow
def test_entrypoint_train_then_infer_end_to_end(tmp_path):
    """The real trainer (tiny preset, a few steps) through `mlcube.py train`, then `mlcube.py infer` on its weights."""
    from conftest import write_case

    for k in range(3):
        write_case(tmp_path / "train", f"BraTS-GLI-{k:05d}-000", shape=(48, 48, 12), seed=k, with_labels=True)
    params = tmp_path / "params.yaml"
    params.write_text("train:\n  preset: tiny\n  targets: [t2f]\ninfer:\n  batch_size: 4\n")
    weights = tmp_path / "additional_files"
    result = run_entrypoint(
        ["train", f"--data_path={tmp_path / 'train'}", f"--parameters_file={params}", f"--output_path={weights}"],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in weights.iterdir()) == ["brasyn_t2f.pt", "training"]
    data = tmp_path / "val"
    write_case(data, "BraTS-GLI-00007-000", (Modality.T1N, Modality.T1C, Modality.T2W), shape=(48, 48, 12), seed=7)
    result = run_entrypoint(
        [
            "infer",
            f"--data_path={data}",
            f"--parameters_file={params}",
            f"--weights={weights}",
            f"--output_path={tmp_path / 'out'}",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    check_prediction_folder(tmp_path / "out", data, {"BraTS-GLI-00007-000": Modality.T2F})
