"""Device and precision names, one vocabulary for training and inference.

Devices: "auto" (CUDA when present, else CPU), "cpu", "cuda" or "cuda:N". Precisions (the autocast
dtype): "auto", "fp32", "bf16", "fp16". Training configs written before the two were unified say
"float32" (and may say "bfloat16" or "float16"); those spellings are read as aliases, so old
presets, run folders and the training configs stored in checkpoints still load.
"""

from __future__ import annotations

import logging
import re

import torch

from brasyn import gpu
from brasyn.errors import ConfigError

logger = logging.getLogger(__name__)

PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16")
PRECISION_ALIASES: dict[str, str] = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}
DEVICES = "auto, cpu, cuda or cuda:N"
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")

BF16_MIN_CAPABILITY = (8, 0)  # Ampere: below it (T4 7.5, V100 7.0) cuDNN has no bf16 convolutions


def check_device(name: str, key: str) -> str:
    """`name` when it is a device name; else a `ConfigError` naming the option or config `key`."""
    if not _DEVICE.match(str(name)):
        raise ConfigError(f"{key}: expected {DEVICES}, found {name!r}")
    return name


def canonical_precision(name: str, key: str) -> str:
    """The precision `name` in this module's vocabulary (aliases mapped); a `ConfigError` naming `key`."""
    canonical = PRECISION_ALIASES.get(name, name)
    if canonical not in PRECISIONS:
        raise ConfigError(f"{key}: expected one of {', '.join(PRECISIONS)}, found {name!r}")
    return canonical


def resolve_device(name: str) -> torch.device:
    """"auto" → CUDA when this PyTorch can use it, else CPU; "cuda[:N]" → that device or a `ConfigError`.

    Never silently on the CPU: when a GPU is visible but unusable (CPU build, no driver library, a
    driver older than the build's CUDA, an architecture not compiled in; `brasyn.gpu`), "auto" logs
    one warning with the reason and what to do, then uses the CPU, and "cuda" fails with the reason."""
    if name == "auto":
        problem = gpu.gpu_problem(gpu.probe())
        if problem is None:
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        _warn_once(f"running on the CPU: {problem}")
        return torch.device("cpu")
    device = torch.device(check_device(name, "device"))
    if device.type == "cuda":
        facts = gpu.probe()
        problem = gpu.gpu_problem(facts, index=device.index or 0)
        if problem is not None:
            raise ConfigError(f"device {name!r}: {problem}")
        if not facts.cuda_available:
            raise ConfigError(f"device {name!r} requested but CUDA is not available (use --device cpu or auto)")
    return device


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    """A device warning is logged once per process (every model of a run resolves its device)."""
    if message not in _warned:
        _warned.add(message)
        logger.warning(message)


def resolve_precision(name: str, device: torch.device, *, allow_fp16: bool = True) -> torch.dtype | None:
    """The autocast dtype for `device`, or None for plain float32.

    "auto" is fp32 on the CPU; on CUDA it is bf16 at compute capability >= 8.0 (`torch.cuda.
    is_bf16_supported()` is also true on T4 and V100, where bf16 convolutions are emulated or
    missing) and fp16 below. Training passes `allow_fp16=False`: it has no loss scaler, so its "auto"
    stays bf16 below 8.0 (slower there, but gradients do not underflow)."""
    name = canonical_precision(name, "precision")
    if name == "fp32":
        return None
    if name == "auto":
        if device.type != "cuda":
            return None
        if not allow_fp16 or torch.cuda.get_device_capability(device) >= BF16_MIN_CAPABILITY:
            return torch.bfloat16
        return torch.float16
    return torch.bfloat16 if name == "bf16" else torch.float16
