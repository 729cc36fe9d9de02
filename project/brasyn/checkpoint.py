"""Checkpoint files: the contract between training and inference.

A checkpoint is a plain dict that loads with `torch.load(weights_only=True)`:

    format           int, CHECKPOINT_FORMAT
    kind             "plave" (the GAN generator) or "polynomial" (the non-neural baseline)
    target           missing modality this model synthesizes ("t1n", ...)
    sources          the three input modalities, in channel order
    model_config     plain dict; rebuilt with the kind's config class
    state_dict       the unwrapped module's weights (float16 when saved compact)
    intensity_model  `IntensityModel.to_dict()`: restores the target's scanner scale
    normalization    `Normalization.to_dict()`: how sources and target were scaled to [-1, 1]
    training_config  plain dict (may be empty for untrained models)
    data_summary     plain dict: cases, slices, split, ...
    metrics          plain dict: validation scores at save time
    code_version     brasyn.__version__ (+ git commit when known)

Optimizer state lives in a separate resume file written by the trainer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from brasyn import __version__
from brasyn.constants import Modality, sources_for
from brasyn.data.normalization import Normalization
from brasyn.errors import CheckpointError
from brasyn.io.atomic import atomic_path

CHECKPOINT_FORMAT = 1
REQUIRED_KEYS = (
    "format", "kind", "target", "sources", "model_config", "state_dict", "intensity_model", "normalization",
)


def checkpoint_filename(target: Modality | str) -> str:
    """File name of the dedicated model for `target` inside a weights folder."""
    return f"brasyn_{Modality(target).value}.pt"


def make_payload(
    *,
    kind: str,
    target: Modality,
    model: nn.Module,
    model_config: dict[str, Any],
    intensity_model: dict[str, Any],
    normalization: Normalization,
    training_config: dict[str, Any],
    data_summary: dict[str, Any],
    metrics: dict[str, Any],
    code_version: str = __version__,
) -> dict[str, Any]:
    """The checkpoint dict (schema above) of a trained `model`, its weights copied to the CPU."""
    return {
        "format": CHECKPOINT_FORMAT,
        "kind": kind,
        "target": Modality(target).value,
        "sources": [m.value for m in sources_for(Modality(target))],
        "model_config": dict(model_config),
        "state_dict": {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()},
        "intensity_model": intensity_model,
        "normalization": normalization.to_dict(),
        "training_config": training_config,
        "data_summary": data_summary,
        "metrics": metrics,
        "code_version": code_version,
    }


def save_checkpoint(path: Path, payload: dict[str, Any], *, compact: bool = False) -> Path:
    """Write `payload` atomically; `compact` stores floating-point weights as float16 (half the size)."""
    missing = [k for k in REQUIRED_KEYS if k not in payload]
    if missing:
        raise CheckpointError(f"{path}: checkpoint payload lacks {', '.join(missing)}")
    payload = dict(payload)
    payload.setdefault("code_version", __version__)
    if compact:
        payload["state_dict"] = {
            k: (v.half() if torch.is_floating_point(v) else v) for k, v in payload["state_dict"].items()
        }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_checkpoint(path: Path, *, target: Modality | None = None) -> dict[str, Any]:
    """Load and validate a checkpoint (CPU tensors, float32 weights). Errors are `CheckpointError`s."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt files
        raise CheckpointError(f"{path}: cannot load checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(payload, dict):
        raise CheckpointError(f"{path}: expected a dict checkpoint, found {type(payload).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in payload]
    if missing:
        raise CheckpointError(f"{path}: not a brasyn checkpoint (lacks {', '.join(missing)})")
    if payload["format"] != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {payload['format']}, this code reads {CHECKPOINT_FORMAT}")
    try:
        found_target = Modality(payload["target"])
    except ValueError as exc:
        raise CheckpointError(f"{path}: unknown target {payload['target']!r}") from exc
    if target is not None and found_target != target:
        raise CheckpointError(f"{path}: expected a model for {target}, found one for {found_target}")
    if tuple(payload["sources"]) != tuple(m.value for m in sources_for(found_target)):
        raise CheckpointError(f"{path}: unexpected source order {payload['sources']}")
    payload["state_dict"] = {
        k: (v.float() if torch.is_floating_point(v) else v) for k, v in payload["state_dict"].items()
    }
    return payload


def build_model(checkpoint: dict[str, Any]) -> nn.Module:
    """The eval-mode module a checkpoint describes. Its forward maps normalised sources (B, 3, H, W)
    to a `GeneratorOutput` whose `image` is the normalised target (B, 1, H, W)."""
    kind = checkpoint["kind"]
    if kind == "plave":
        from brasyn.models.config import ModelConfig
        from brasyn.models.generator import Generator

        model: nn.Module = Generator.from_config(ModelConfig.from_dict(checkpoint["model_config"]))
    elif kind == "polynomial":
        from brasyn.models.baseline import PolynomialBaseline

        model = PolynomialBaseline.from_config(checkpoint["model_config"])
    else:
        raise CheckpointError(f"unknown model kind {kind!r} (expected 'plave' or 'polynomial')")
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint weights do not match its model_config: {str(exc).splitlines()[0]}") from exc
    return model.eval()
