"""Never silently on the CPU (`brasyn.gpu`, `brasyn.device.resolve_device`): a visible but unusable GPU
is diagnosed (CPU build, no driver library, a driver too old for the build's CUDA, an architecture not
compiled in), "auto" warns once and uses the CPU, "cuda" fails before the first case with the reason.
The conditions are simulated: the probe's facts are replaced, the diagnosis and the device choice are real."""

from __future__ import annotations

import json
import logging
from dataclasses import replace

import pytest
import torch

from brasyn import device as device_module
from brasyn import gpu
from brasyn.errors import ConfigError
from brasyn.inference import InferenceSettings, synthesize_folder

# torch 2.13.0's PyPI wheel (CUDA 13.0), as read from its libtorch_cuda.so
CU130_ARCHS = ("sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120")
# PyTorch's CUDA 12.6 build of the same release (RELEASE.md support matrix)
CU126_ARCHS = ("sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90")

HOST_ONLY = gpu.GpuProbe(visible=None, torch_version="2.13.0+cpu", torch_cuda=None, cuda_available=False)
VISIBLE = gpu.GpuProbe(
    visible="/dev/nvidia0", torch_version="2.13.0+cu130", torch_cuda="13.0", cuda_available=False,
    driver_cuda=13000, arch_list=CU130_ARCHS,
)


def usable(name: str, capability: tuple[int, int], archs=CU130_ARCHS) -> gpu.GpuProbe:
    return replace(VISIBLE, cuda_available=True, arch_list=archs, devices=((name, capability),))


@pytest.mark.parametrize(
    "facts, words",
    [
        (HOST_ONLY, None),  # no GPU anywhere: the CPU is what there is, nothing to say
        (replace(VISIBLE, torch_cuda=None, torch_version="2.13.0+cpu"), "CPU-only build"),
        (replace(VISIBLE, driver_cuda=None), "libcuda.so.1) is not loadable; start the container with --gpus all"),
        (replace(VISIBLE, driver_cuda=12020), "supports CUDA up to 12.2, this build needs CUDA 13.0 (R580 or newer)"),
        (replace(VISIBLE, init_error=100), "CUDA_ERROR_NO_DEVICE"),
        (usable("Tesla V100-SXM2-32GB", (7, 0)), "compute capability 7.0) is not among the architectures"),
        (usable("Tesla P100", (6, 0)), "TORCH_CUDA=cu126"),
        (usable("Tesla T4", (7, 5)), None),
        (usable("NVIDIA A10", (8, 6)), None),
        (usable("NVIDIA A100", (8, 0)), None),
        (usable("NVIDIA L4", (8, 9)), None),  # runs the sm_86 cubins (same major, higher minor)
        (usable("NVIDIA H200", (9, 0)), None),
        (usable("Tesla V100-SXM2-32GB", (7, 0), CU126_ARCHS), None),
        (usable("NVIDIA B200", (10, 0), CU126_ARCHS), "compute capability 10.0) is not among"),
    ],
)
def test_diagnosis_names_the_reason_and_the_remedy(facts, words):
    problem = gpu.gpu_problem(facts)
    if words is None:
        assert problem is None
    else:
        assert problem is not None and words in problem
        assert "\n" not in problem


def test_the_driver_check_uses_the_builds_cuda_major():
    assert gpu.gpu_problem(replace(VISIBLE, driver_cuda=13020)) is not None  # newer than the build, yet...
    assert "is_available() is false" in gpu.gpu_problem(replace(VISIBLE, driver_cuda=13020))  # ...no driver reason
    cu126 = replace(VISIBLE, torch_cuda="12.6", driver_cuda=12020, arch_list=CU126_ARCHS)
    assert "supports CUDA up to" not in gpu.gpu_problem(cu126)  # 12.2 runs a 12.6 build (minor compatibility)


@pytest.mark.parametrize(
    "capability, archs, expected",
    [
        ((8, 9), ("sm_86",), True),
        ((8, 0), ("sm_86",), False),  # a cubin never runs on a lower minor
        ((9, 0), ("sm_86",), False),  # nor on another major
        ((12, 1), ("sm_120",), True),
        ((13, 0), ("sm_90", "compute_120"), True),  # PTX is compiled for newer GPUs on load
        ((7, 0), ("compute_75",), False),
        ((7, 0), (), True),  # unknown list: no verdict
    ],
)
def test_architecture_compatibility(capability, archs, expected):
    assert gpu.arch_supported(capability, archs) is expected


def test_visible_gpu_from_device_files_or_a_named_device(monkeypatch):
    monkeypatch.setattr(gpu.glob, "glob", lambda pattern: ["/dev/nvidiactl", "/dev/nvidia-uvm"])
    for value in ("", "all", "void", "none"):  # "all" is the image's own setting: it says nothing
        monkeypatch.setenv("NVIDIA_VISIBLE_DEVICES", value)
        assert gpu.visible_gpu() is None
    monkeypatch.setenv("NVIDIA_VISIBLE_DEVICES", "0,1")
    assert gpu.visible_gpu() == "NVIDIA_VISIBLE_DEVICES=0,1"
    monkeypatch.setattr(gpu.glob, "glob", lambda pattern: ["/dev/nvidia1", "/dev/nvidiactl", "/dev/nvidia0"])
    assert gpu.visible_gpu() == "/dev/nvidia0, /dev/nvidia1"


@pytest.fixture
def simulated(monkeypatch):
    """Replace the probe's facts; forget warnings already given in this process."""
    monkeypatch.setattr(device_module, "_warned", set())

    def use(facts: gpu.GpuProbe) -> None:
        monkeypatch.setattr(gpu, "probe", lambda: facts)

    return use


def test_auto_warns_once_then_uses_the_cpu(simulated, caplog):
    simulated(replace(VISIBLE, driver_cuda=12020))
    with caplog.at_level(logging.WARNING, logger="brasyn.device"):
        assert device_module.resolve_device("auto") == torch.device("cpu")
        assert device_module.resolve_device("auto") == torch.device("cpu")  # every model of a run asks
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert warnings[0].startswith("running on the CPU: a GPU is visible (/dev/nvidia0)")


def test_auto_without_any_gpu_is_quiet(simulated, caplog):
    simulated(HOST_ONLY)
    with caplog.at_level(logging.WARNING, logger="brasyn.device"):
        assert device_module.resolve_device("auto") == torch.device("cpu")
    assert caplog.records == []


def test_cuda_fails_with_the_reason(simulated):
    simulated(usable("Tesla V100-SXM2-32GB", (7, 0)))
    with pytest.raises(ConfigError) as info:
        device_module.resolve_device("cuda")
    assert str(info.value).startswith("device 'cuda': GPU 0 (Tesla V100-SXM2-32GB, compute capability 7.0)")
    simulated(HOST_ONLY)
    with pytest.raises(ConfigError, match="CUDA is not available"):
        device_module.resolve_device("cuda:0")


def test_inference_on_cuda_fails_before_the_first_case(simulated, weights, cohort, tmp_path):
    data, _ = cohort
    simulated(replace(VISIBLE, driver_cuda=None))
    with pytest.raises(ConfigError, match="libcuda.so.1"):
        synthesize_folder(data, tmp_path / "out", weights, settings=InferenceSettings(device="cuda"))
    assert not (tmp_path / "out").exists()  # nothing created, no case attempted


def test_inference_on_auto_warns_and_runs_on_the_cpu(simulated, weights, cohort, tmp_path, caplog):
    data, missing = cohort
    simulated(replace(VISIBLE, driver_cuda=12020))
    with caplog.at_level(logging.WARNING):
        summary = synthesize_folder(data, tmp_path / "out", weights, settings=InferenceSettings(mirror_axes=()))
    assert len(summary.done) == len(missing)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("running on the CPU" in w for w in warnings) == 1, warnings


def test_describe_is_a_json_record_of_this_machine():
    record = gpu.describe(gpu.probe())
    assert record["torch"] == torch.__version__ and record["torch_cuda"] == torch.version.cuda
    assert set(record) >= {"arch_list", "driver_cuda", "cuda_available", "visible", "devices", "problem"}


@pytest.mark.parametrize("facts, status", [(usable("Tesla V100", (7, 0)), 1), (usable("NVIDIA H200", (9, 0)), 0)])
def test_the_gpu_check_step_fails_unless_the_gpu_can_be_used(simulated, tmp_path, capsys, facts, status):
    simulated(facts)
    record = tmp_path / "gpu_support.json"
    assert gpu.main(["--json", str(record), "--require-gpu"]) == status
    assert gpu.main([]) == 0  # without --require-gpu it only reports
    saved = json.loads(record.read_text())
    assert saved["devices"][0]["compiled"] is (status == 0)
    assert (saved["problem"] is None) is (status == 0)
