"""The checkpoint: the contract between training and inference, as one typed record.

`Checkpoint` is the one place that writes, reads, validates and migrates checkpoint files; every
other module reads its fields, never the keys of the file. On disk it is a plain dict that loads with
`torch.load(weights_only=True)`:

    format           int, CHECKPOINT_FORMAT
    kind             "plave" (the GAN generator) or "polynomial" (the non-neural baseline)
    target           missing modality this model synthesizes ("t1n", ...)
    sources          the three input modalities, in channel order
    model_config     plain dict (with a positive integer `image_size`); rebuilt by the kind's config class
    state_dict       the unwrapped module's weights (float16 when saved compact)
    intensity_model  `IntensityModel.to_dict()`: restores the target's scanner scale
    normalization    `Normalization.to_dict()`: how sources and target were scaled to [-1, 1] (its only copy)
    training_config  plain dict (may be empty for untrained models), without the normalization
    data_summary     plain dict: cases, slices, split, ...
    metrics          plain dict: validation scores at save time
    code_version     brasyn.__version__ (+ git commit when known)

Migrations of files written by earlier versions (all format 1), applied by `Checkpoint.load` only:
a `normalization` without `headroom` predates it and clipped at the percentile (headroom 1); copies
of the normalization in `training_config.data` and `data_summary` are dropped (read from
`normalization`); an intensity model's `percentile` is dropped (the normalization holds it); a
"plave" `model_config` without `prior_degree` predates the polynomial prior (0: none), one without
`composite_background` predates the background composite (false).

Optimizer state lives in a separate resume file written by the trainer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from brasyn import __version__
from brasyn.constants import Modality, sources_for
from brasyn.data.normalization import IntensityModel, Normalization
from brasyn.errors import CheckpointError, ConfigError
from brasyn.io.torch_files import float32_state, load_weights_file, save_weights_file

CHECKPOINT_FORMAT = 1
KINDS = ("plave", "polynomial")
REQUIRED_KEYS = (
    "format", "kind", "target", "sources", "model_config", "state_dict", "intensity_model", "normalization",
)
LEGACY_HEADROOM = 1.0
"""The headroom of checkpoints written before `Normalization.headroom` existed (the one legacy default)."""
NORMALIZATION_KEYS = ("percentile", "headroom")


def checkpoint_filename(target: Modality | str) -> str:
    """File name of the dedicated model for `target` inside a weights folder."""
    return f"brasyn_{Modality(target).value}.pt"


@dataclass(frozen=True)
class Checkpoint:
    """One trained model for one target, with everything inference needs to use it."""

    kind: str
    target: Modality
    model_config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    intensity_model: IntensityModel
    normalization: Normalization
    training_config: dict[str, Any] = field(default_factory=dict)
    data_summary: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    code_version: str = __version__

    def __post_init__(self) -> None:
        object.__setattr__(self, "target", Modality(self.target))
        object.__setattr__(self, "training_config", _without_normalization(self.training_config))

    @property
    def sources(self) -> tuple[Modality, ...]:
        return sources_for(self.target)

    @property
    def image_size(self) -> int:
        """The slice size the model was built for (validated when loaded)."""
        return int(self.model_config["image_size"])

    # ----------------------------------------------------------------------------------------------
    # Writing

    @classmethod
    def of_model(cls, *, kind: str, target: Modality, model: nn.Module, **fields: Any) -> Checkpoint:
        """The checkpoint of a trained `model` (its weights copied to the CPU); `fields` are the
        record's other fields (model_config, intensity_model, normalization, ...)."""
        state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        return cls(kind=kind, target=target, state_dict=state, **fields)

    def to_payload(self) -> dict[str, Any]:
        """The plain dict written to disk (schema above)."""
        return {
            "format": CHECKPOINT_FORMAT,
            "kind": self.kind,
            "target": self.target.value,
            "sources": [m.value for m in self.sources],
            "model_config": dict(self.model_config),
            "state_dict": dict(self.state_dict),
            "intensity_model": self.intensity_model.to_dict(),
            "normalization": self.normalization.to_dict(),
            "training_config": self.training_config,
            "data_summary": self.data_summary,
            "metrics": self.metrics,
            "code_version": self.code_version,
        }

    def save(self, path: Path, *, compact: bool = False) -> Path:
        """Write atomically; `compact` stores floating-point weights as float16 (half the size)."""
        payload = self.to_payload()
        if compact:
            payload["state_dict"] = {
                k: (v.half() if torch.is_floating_point(v) else v) for k, v in payload["state_dict"].items()
            }
        return save_weights_file(payload, path)

    # ----------------------------------------------------------------------------------------------
    # Reading

    @classmethod
    def load(cls, path: Path, *, target: Modality | None = None) -> Checkpoint:
        """Load, validate and migrate a checkpoint file (CPU tensors, float32 weights); every problem is
        a `CheckpointError` naming the file. `target`: the modality the caller expects it to synthesize."""
        path = Path(path)
        payload = load_weights_file(path, "checkpoint")
        checkpoint = cls.from_payload(payload, source=str(path))
        if target is not None and checkpoint.target != Modality(target):
            raise CheckpointError(f"{path}: expected a model for {target}, found one for {checkpoint.target}")
        return checkpoint

    @classmethod
    def from_payload(cls, payload: Any, *, source: str = "checkpoint") -> Checkpoint:
        """The record of an on-disk dict: validated, migrated, weights as float32."""
        if not isinstance(payload, dict):
            raise CheckpointError(f"{source}: expected a dict checkpoint, found {type(payload).__name__}")
        missing = [k for k in REQUIRED_KEYS if k not in payload]
        if missing:
            raise CheckpointError(f"{source}: not a brasyn checkpoint (lacks {', '.join(missing)})")
        if payload["format"] != CHECKPOINT_FORMAT:
            raise CheckpointError(
                f"{source}: checkpoint format {payload['format']}, this code reads {CHECKPOINT_FORMAT}"
            )
        try:
            target = Modality(payload["target"])
        except ValueError as exc:
            raise CheckpointError(f"{source}: unknown target {payload['target']!r}") from exc
        if tuple(payload["sources"]) != tuple(m.value for m in sources_for(target)):
            raise CheckpointError(f"{source}: unexpected source order {payload['sources']}")
        if payload["kind"] not in KINDS:
            kinds = ", ".join(KINDS)
            raise CheckpointError(f"{source}: unknown model kind {payload['kind']!r} (expected one of {kinds})")
        model_config = payload["model_config"]
        size = model_config.get("image_size") if isinstance(model_config, dict) else None
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise CheckpointError(f"{source}: model_config lacks a positive integer image_size")
        model_config = dict(model_config)
        if payload["kind"] == "plave":
            model_config.setdefault("prior_degree", 0)
            model_config.setdefault("composite_background", False)
        return cls(
            kind=payload["kind"],
            target=target,
            model_config=model_config,
            state_dict=float32_state(payload["state_dict"]),
            intensity_model=_intensity_model(payload["intensity_model"], source),
            normalization=_normalization(payload["normalization"], source),
            training_config=dict(payload.get("training_config") or {}),
            data_summary={k: v for k, v in (payload.get("data_summary") or {}).items() if k != "normalization"},
            metrics=dict(payload.get("metrics") or {}),
            code_version=str(payload.get("code_version", "")),
        )

    def build_model(self) -> nn.Module:
        """The eval-mode module this checkpoint describes. Its forward maps normalized sources (B, 3, H, W)
        to a `GeneratorOutput` whose `image` is the normalized target (B, 1, H, W)."""
        if self.kind == "plave":
            from brasyn.models.config import ModelConfig
            from brasyn.models.generator import Generator

            model: nn.Module = Generator.from_config(ModelConfig.from_dict(self.model_config))
        else:
            from brasyn.models.baseline import PolynomialBaseline

            model = PolynomialBaseline.from_config(self.model_config)
        try:
            model.load_state_dict(self.state_dict)
        except RuntimeError as exc:
            raise CheckpointError(
                f"checkpoint weights do not match its model_config: {str(exc).splitlines()[0]}"
            ) from exc
        return model.eval()


def _normalization(data: Any, source: str) -> Normalization:
    if not isinstance(data, dict):
        raise CheckpointError(f"{source}: invalid normalization in checkpoint: expected a mapping, found {data!r}")
    data = {"headroom": LEGACY_HEADROOM, **data}  # written before headroom existed: clipped at the percentile
    try:
        return Normalization.from_dict(data)
    except ConfigError as exc:
        raise CheckpointError(f"{source}: invalid normalization in checkpoint: {exc}") from exc


def _intensity_model(data: Any, source: str) -> IntensityModel:
    if not isinstance(data, dict):
        raise CheckpointError(f"{source}: invalid intensity model in checkpoint: expected a mapping, found {data!r}")
    try:
        return IntensityModel.from_dict({k: v for k, v in data.items() if k != "percentile"})
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{source}: invalid intensity model in checkpoint: {exc!r}") from exc


def _without_normalization(training_config: dict[str, Any]) -> dict[str, Any]:
    """The training configuration without the normalization (stored once, in `normalization`): the
    GAN's keeps it under `data`, the baseline's at the top level."""
    config = {k: v for k, v in training_config.items() if k not in NORMALIZATION_KEYS}
    if isinstance(config.get("data"), dict):
        config["data"] = {k: v for k, v in config["data"].items() if k not in NORMALIZATION_KEYS}
    return config
