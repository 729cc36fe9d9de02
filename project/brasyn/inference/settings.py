"""How inference runs: batch size, device, precision, what to write. Loaded from the `infer:` section
of `parameters.yaml` (strict: an unknown key is a `ConfigError`) or built from CLI options."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

import torch

from brasyn.config import from_dict, to_dict
from brasyn.errors import ConfigError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


@dataclass(frozen=True)
class InferenceSettings:
    """Options of `synthesize_folder` / `synthesize` / `brasyn infer` / `mlcube.py infer`."""

    batch_size: int | str = "auto"
    """Axial slices per forward pass, or "auto" (chosen by device, see `brasyn.inference.tuning`);
    halved (down to 1) after a CUDA out-of-memory error."""

    device: str = "auto"
    """"auto" (CUDA when present, else CPU), "cpu", "cuda" or "cuda:N"."""

    precision: str = "auto"
    """Autocast dtype on CUDA: "auto" (bf16 at compute capability >= 8.0, else fp16), "fp32", "bf16"
    or "fp16". On CPU "auto" means fp32."""

    overwrite: bool = False
    """Replace existing predictions; by default a case whose prediction exists is skipped."""

    write_segmentation: bool = False
    """Also write the segmentation decoder's tumour map (labels 0-3) as `{case}-seg.nii.gz`."""

    segmentation_path: str | None = None
    """Folder for the tumour maps (required with `write_segmentation`; never the output folder)."""

    progress: bool | None = None
    """Progress bar over cases: None = only when stderr is a terminal."""

    io_workers: int = 2
    """Background threads that read the next case and write the previous one while the model runs."""

    def __post_init__(self) -> None:
        if self.batch_size != "auto" and (
            not isinstance(self.batch_size, int) or isinstance(self.batch_size, bool) or self.batch_size < 1
        ):
            raise ConfigError(f"infer.batch_size: expected auto or a positive integer, found {self.batch_size!r}")
        if not _DEVICE.match(str(self.device)):
            raise ConfigError(f"infer.device: expected auto, cpu, cuda or cuda:N, found {self.device!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"infer.precision: expected one of {', '.join(PRECISIONS)}, found {self.precision!r}")
        if self.io_workers < 1:
            raise ConfigError(f"infer.io_workers: expected a positive integer, found {self.io_workers!r}")
        if self.write_segmentation and not self.segmentation_path:
            raise ConfigError(
                "infer.segmentation_path: required when write_segmentation is true "
                "(a folder other than the output folder, which must hold only the predictions)"
            )

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> InferenceSettings:
        """Strict loading of the `infer:` mapping (unknown keys are errors)."""
        return from_dict(cls, data, "infer")

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    def with_overrides(self, **overrides: Any) -> InferenceSettings:
        """A copy with the non-None `overrides` applied (CLI options override the parameters file)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def resolve_device(name: str) -> torch.device:
    """"auto" → CUDA when available, else CPU. Asking for CUDA without one is a `ConfigError`."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available (use --device cpu or auto)")
    return device


BF16_MIN_CAPABILITY = (8, 0)  # Ampere: below it (T4 7.5, V100 7.0) cuDNN has no bf16 convolutions


def resolve_precision(name: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for `device`, or None for plain float32.

    "auto" on CUDA is bf16 only at compute capability >= 8.0: `torch.cuda.is_bf16_supported()` is
    also true on T4 and V100, where bf16 convolutions are emulated or missing; fp16 there."""
    if name == "fp32":
        return None
    if name == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.get_device_capability(device) >= BF16_MIN_CAPABILITY else torch.float16
    return torch.bfloat16 if name == "bf16" else torch.float16
