"""Weights files: written atomically, read with `torch.load(weights_only=True)`, errors named by file.

Shared by the synthesis checkpoint (`brasyn.checkpoint`) and the bundled segmenter's file
(`brasyn.segmenter.model_file`), which validate their own schemas on top.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from brasyn.errors import CheckpointError
from brasyn.io.atomic import atomic_path


def load_weights_file(path: Path, what: str, missing_hint: str = "") -> Any:
    """The plain data in `path` (CPU tensors); a missing or unreadable file is a `CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: {what} not found{missing_hint}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt files
        raise CheckpointError(f"{path}: cannot load {what} ({type(exc).__name__}: {exc})") from exc


def save_weights_file(payload: dict[str, Any], path: Path) -> Path:
    """`torch.save` to a temporary name beside `path`, then rename (the folder is created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def float32_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Floating-point tensors as float32 (files may store float16), the others unchanged."""
    return {k: (v.float() if torch.is_floating_point(v) else v) for k, v in state.items()}
