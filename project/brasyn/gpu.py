"""Is there a GPU this PyTorch cannot use? The diagnosis behind `resolve_device` (`brasyn.device`).

A container can see an NVIDIA GPU (its device files, or `NVIDIA_VISIBLE_DEVICES` naming devices)
while PyTorch cannot use it: the image's PyTorch is a CPU build, the driver library was not mounted
(no `--gpus`), the host's driver is older than the CUDA release PyTorch was built with, or the GPU's
architecture is not among those PyTorch was compiled for (`torch.cuda.is_available()` is then true,
but every kernel fails). `probe()` gathers the facts, `gpu_problem()` turns them into one sentence
that names the reason and what to do. The image's default build and its alternative are described in
mlcube/README.md ("GPU support").
"""

from __future__ import annotations

import ctypes
import glob
import os
import re
from dataclasses import dataclass, field

import torch

# NVIDIA_VISIBLE_DEVICES values that name no device. "all" is set by the image itself (so that the
# NVIDIA runtime exposes every GPU when it is the default runtime), so it says nothing about whether
# this container got one; the device files do.
_NO_DEVICE_VALUES = {"", "void", "none", "all"}

# CUDA driver API error codes (cuda.h) that explain a failed cuInit.
_CU_ERRORS = {
    35: "CUDA_ERROR_INSUFFICIENT_DRIVER (the driver is older than this CUDA runtime)",
    100: "CUDA_ERROR_NO_DEVICE (no CUDA-capable device is visible)",
    101: "CUDA_ERROR_INVALID_DEVICE",
    803: "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH (the driver library does not match the kernel module)",
    804: "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE",
    999: "CUDA_ERROR_UNKNOWN",
}

# The host driver series that first supports each CUDA major release (NVIDIA's CUDA toolkit release
# notes, Linux; minor releases of the same major run on it through minor version compatibility).
MIN_DRIVER_FOR_CUDA = {12: "R525", 13: "R580"}

REBUILD_HINT = (
    "rebuild the image with --build-arg TORCH_CUDA=cu126 (CUDA 12.6: drivers R525 and newer, "
    "compute capability 5.0-9.0, V100 included), or run with --device cpu; see mlcube/README.md, GPU support"
)


@dataclass(frozen=True)
class GpuProbe:
    """What this process can find out about its GPUs without using one."""

    visible: str | None
    """Why a GPU looks visible (e.g. "/dev/nvidia0"), or None."""
    torch_version: str
    torch_cuda: str | None
    """The CUDA release this PyTorch was built with ("13.0"), None for a CPU build."""
    cuda_available: bool
    driver_cuda: int | None = None
    """The newest CUDA the installed driver supports (cuDriverGetVersion: 12020 = 12.2); None when
    the driver library cannot be loaded."""
    init_error: int | None = None
    """cuInit's error code when it failed."""
    arch_list: tuple[str, ...] = ()
    """The architectures compiled into PyTorch ("sm_75", ..., "compute_120" for PTX)."""
    devices: tuple[tuple[str, tuple[int, int]], ...] = field(default=())
    """(name, compute capability) of each device PyTorch sees."""


def visible_gpu() -> str | None:
    """The NVIDIA device files, or an `NVIDIA_VISIBLE_DEVICES` that names devices; None when neither."""
    files = sorted(path for path in glob.glob("/dev/nvidia*") if re.fullmatch(r"/dev/nvidia\d+", path))
    if files:
        return ", ".join(files)
    env = os.environ.get("NVIDIA_VISIBLE_DEVICES", "").strip()
    if env.lower() not in _NO_DEVICE_VALUES:
        return f"NVIDIA_VISIBLE_DEVICES={env}"
    return None


def _driver() -> tuple[int | None, int | None]:
    """(driver CUDA version, cuInit error or None) through libcuda; (None, None) without a driver."""
    try:
        libcuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return None, None
    version = ctypes.c_int(0)
    if libcuda.cuDriverGetVersion(ctypes.byref(version)) != 0:
        return None, None
    error = libcuda.cuInit(0)
    return version.value, (error or None)


def compiled_arch_list() -> tuple[str, ...]:
    """The architectures compiled into this PyTorch, read without initialising CUDA."""
    flags = getattr(torch._C, "_cuda_getArchFlags", None)
    return tuple(flags().split()) if flags is not None and flags() else ()


def probe() -> GpuProbe:
    """The facts `gpu_problem` judges. Cheap on a machine without any GPU (no driver call)."""
    available = torch.cuda.is_available()
    visible = visible_gpu()
    driver, init_error, devices = None, None, ()
    if visible or available:
        driver, init_error = _driver()
    if available:
        devices = tuple(
            (torch.cuda.get_device_name(i), torch.cuda.get_device_capability(i))
            for i in range(torch.cuda.device_count())
        )
    return GpuProbe(
        visible=visible,
        torch_version=torch.__version__,
        torch_cuda=torch.version.cuda,
        cuda_available=available,
        driver_cuda=driver,
        init_error=init_error,
        arch_list=compiled_arch_list(),
        devices=devices,
    )


def arch_supported(capability: tuple[int, int], arch_list: tuple[str, ...]) -> bool:
    """Whether a GPU of `capability` can run this build: a cubin sm_XY runs on X.Y' for Y' >= Y (same
    major), PTX compute_XY is compiled on load for any capability >= X.Y. An empty list: unknown, True."""
    if not arch_list:
        return True
    major, minor = capability
    for arch in arch_list:
        match = re.fullmatch(r"(sm|compute)_(\d+)(\d)[a-z]?", arch)
        if match is None:
            continue
        kind, arch_major, arch_minor = match.group(1), int(match.group(2)), int(match.group(3))
        if kind == "sm" and arch_major == major and arch_minor <= minor:
            return True
        if kind == "compute" and (arch_major, arch_minor) <= (major, minor):
            return True
    return False


def _version(code: int) -> str:
    return f"{code // 1000}.{code % 1000 // 10}"


def gpu_problem(facts: GpuProbe, index: int = 0) -> str | None:
    """Why the GPU cannot be used (one sentence: the reason, then what to do), or None when it can
    (or when no GPU is visible at all: then the CPU is simply what there is)."""
    build = f"PyTorch {facts.torch_version}"
    if facts.cuda_available:
        if index >= len(facts.devices):
            return f"CUDA device {index} requested, but {len(facts.devices)} device(s) are visible"
        name, capability = facts.devices[index]
        if not arch_supported(capability, facts.arch_list):
            return (
                f"GPU {index} ({name}, compute capability {capability[0]}.{capability[1]}) is not among the "
                f"architectures {build} (CUDA {facts.torch_cuda}) was compiled for ({' '.join(facts.arch_list)}): "
                + REBUILD_HINT
            )
        return None
    if facts.visible is None:
        return None
    seen = f"a GPU is visible ({facts.visible}) but {build} cannot use it"
    if facts.torch_cuda is None:
        return f"{seen}: this PyTorch is a CPU-only build; install a CUDA build of the same version"
    if facts.driver_cuda is None:
        return (
            f"{seen}: the NVIDIA driver library (libcuda.so.1) is not loadable; start the container with "
            "--gpus all (NVIDIA Container Toolkit) or install the NVIDIA driver"
        )
    build_major = int(facts.torch_cuda.split(".")[0])
    if facts.driver_cuda // 1000 < build_major:
        driver = MIN_DRIVER_FOR_CUDA.get(build_major, "a newer driver")
        return (
            f"{seen}: the NVIDIA driver supports CUDA up to {_version(facts.driver_cuda)}, this build needs "
            f"CUDA {facts.torch_cuda} ({driver} or newer); update the host's driver, or " + REBUILD_HINT
        )
    if facts.init_error is not None:
        error = _CU_ERRORS.get(facts.init_error, f"error {facts.init_error}")
        return f"{seen}: the CUDA driver failed to initialise ({error})"
    return f"{seen}: torch.cuda.is_available() is false (driver CUDA {_version(facts.driver_cuda)})"


def describe(facts: GpuProbe) -> dict[str, object]:
    """A JSON-ready record of the facts and the verdict (bench/gpu_check.sh, `brasyn` logs)."""
    return {
        "torch": facts.torch_version,
        "torch_cuda": facts.torch_cuda,
        "arch_list": list(facts.arch_list),
        "driver_cuda": _version(facts.driver_cuda) if facts.driver_cuda else None,
        "cuda_available": facts.cuda_available,
        "visible": facts.visible,
        "devices": [
            {"name": name, "capability": f"{cap[0]}.{cap[1]}", "compiled": arch_supported(cap, facts.arch_list)}
            for name, cap in facts.devices
        ],
        "problem": gpu_problem(facts),
    }


def main(argv: list[str] | None = None) -> int:
    """`python -m brasyn.gpu [--json PATH] [--require-gpu]`: the facts and the verdict as JSON; with
    --require-gpu, exit status 1 unless CUDA device 0 can be used (bench/gpu_check.sh on a GPU host)."""
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m brasyn.gpu", description=main.__doc__)
    parser.add_argument("--json", type=str, default=None, help="also write the record to this file")
    parser.add_argument("--require-gpu", action="store_true", help="exit 1 unless the GPU can be used")
    args = parser.parse_args(argv)
    record = describe(probe())
    text = json.dumps(record, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as handle:
            handle.write(text + "\n")
    usable = record["cuda_available"] and record["problem"] is None
    return 1 if args.require_gpu and not usable else 0


if __name__ == "__main__":
    raise SystemExit(main())
