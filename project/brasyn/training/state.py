"""What training writes: the weights-only checkpoint per target and the separate resume file.

The checkpoint follows the schema of `brasyn.checkpoint` (kind "plave", generator with its
segmentation decoder). The resume file `<output>/resume/<target>.pt` holds everything needed to
continue: both stages' networks, optimizers, schedules, step counters, the last epoch metrics and the
torch random state. Both load with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from brasyn import __version__
from brasyn.checkpoint import Checkpoint
from brasyn.constants import Modality
from brasyn.data.normalization import IntensityModel
from brasyn.errors import CheckpointError, ConfigError
from brasyn.io.atomic import atomic_path
from brasyn.models import Generator
from brasyn.training.config import TrainingSetup
from brasyn.training.metrics import EpochMetrics

logger = logging.getLogger(__name__)

RESUME_FORMAT = 1


def code_version() -> str:
    """`brasyn.__version__`, plus `+g<commit>` when the package sits in a git work tree."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+g{commit}" if commit else __version__


def trained_checkpoint(
    *,
    target: Modality,
    generator: Generator,
    setup: TrainingSetup,
    intensity_model: IntensityModel,
    data_summary: dict[str, Any],
    metrics: dict[str, Any],
) -> Checkpoint:
    """The `Checkpoint` of a trained generator."""
    return Checkpoint.of_model(
        kind="plave",
        target=target,
        model=generator,
        model_config=setup.model.to_dict(),
        intensity_model=intensity_model,
        normalization=setup.training.data.normalization,
        training_config=setup.to_dict()["training"],
        data_summary=data_summary,
        metrics=metrics,
        code_version=code_version(),
    )


def write_checkpoint(path: Path, checkpoint: Checkpoint, *, compact: bool) -> Path:
    path = checkpoint.save(path, compact=compact)
    logger.info("wrote %s (%.1f MB)", path, path.stat().st_size / 1e6)
    return path


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass
class StageProgress:
    """Where one stage stands: optimizer steps done of `total`, the trainer's state, last epoch's metrics."""

    step: int
    total: int
    state: dict[str, Any]
    metrics: EpochMetrics | None = None

    def to_dict(self) -> dict[str, Any]:
        row = self.metrics.to_row() if self.metrics is not None else {}
        return {"step": self.step, "total": self.total, "state": self.state, "metrics": row}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StageProgress:
        row = data.get("metrics") or {}
        return cls(data["step"], data["total"], data["state"], EpochMetrics.from_row(row) if row else None)


@dataclass
class ResumeRecord:
    """The resume file of one target, typed; on disk it stays the plain dict of `to_dict` (plus
    `format` and the random state, added by `save_resume`), so files of earlier versions still load."""

    target: str
    model_config: dict[str, Any]
    training_config: dict[str, Any] = field(default_factory=dict)
    stage1: StageProgress | None = None
    stage2: StageProgress | None = None
    rng: dict[str, Any] | None = None
    """The torch random state when the file was written (None for a record not read from a file)."""

    def finished(self, total2: int) -> bool:
        """Stage 2 has reached `total2` steps."""
        return self.stage2 is not None and self.stage2.step >= total2

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "model_config": self.model_config,
            "training_config": self.training_config,
            "stage1": self.stage1.to_dict() if self.stage1 is not None else None,
            "stage2": self.stage2.to_dict() if self.stage2 is not None else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResumeRecord:
        def stage(key: str) -> StageProgress | None:
            value = data.get(key)
            return StageProgress.from_dict(value) if value is not None else None

        return cls(
            target=data["target"],
            model_config=data["model_config"],
            training_config=data.get("training_config", {}),
            stage1=stage("stage1"),
            stage2=stage("stage2"),
            rng=data.get("rng"),
        )


def resume_path(output_dir: Path, target: Modality) -> Path:
    return Path(output_dir) / "resume" / f"{target.value}.pt"


def save_resume(path: Path, record: dict[str, Any]) -> None:
    """Write a resume record's plain dict (`ResumeRecord.to_dict()`) atomically, with the random state."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save({**record, "format": RESUME_FORMAT, "rng": rng_state()}, tmp)


def load_resume(path: Path, target: Modality, setup: TrainingSetup) -> ResumeRecord:
    """Read a resume record and check it belongs to `target` and to the same model configuration."""
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt files
        raise CheckpointError(
            f"{path}: cannot load resume file ({type(exc).__name__}: {exc}); use --no-resume"
        ) from exc
    if not isinstance(record, dict) or record.get("format") != RESUME_FORMAT:
        raise CheckpointError(f"{path}: not a brasyn resume file of format {RESUME_FORMAT}; use --no-resume")
    if record.get("target") != target.value:
        raise CheckpointError(f"{path}: expected a resume file for {target}, found one for {record.get('target')}")
    if record.get("model_config") != setup.model.to_dict():
        raise ConfigError(f"{path}: written for a different model configuration; use --no-resume to start over")
    try:
        return ResumeRecord.from_dict(record)
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: malformed resume file ({type(exc).__name__}: {exc}); use --no-resume") from exc
