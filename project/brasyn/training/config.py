"""Training configuration: frozen dataclasses loaded strictly from YAML presets and overrides.

A preset file (`brasyn/presets/<name>.yaml`) has two top-level keys, `model:` (`ModelConfig`) and
`training:` (`TrainingConfig`). `load_training_setup` accepts a preset name, a YAML path, a mapping
`{"preset": "demo", "model": {...}, "training": {...}}` (overrides merged key by key onto the preset;
without `preset` the dataclass defaults, i.e. the paper's values, are the base) or a ready
`TrainingSetup`. Unknown keys are a `ConfigError` naming their path.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from brasyn.config import from_dict, load_yaml, to_dict
from brasyn.constants import MODALITIES, Modality, parse_targets
from brasyn.data.augment import Augmentation
from brasyn.data.normalization import Normalization
from brasyn.data.slices import CACHE_DTYPES
from brasyn.device import canonical_precision, check_device
from brasyn.errors import ConfigError
from brasyn.models.config import ModelConfig

PRESETS: tuple[str, ...] = ("paper", "synthetic", "synthetic_wide", "synthetic_robust", "demo", "tiny")


@dataclass(frozen=True)
class LossWeights:
    """Weights of the stage-2 generator loss terms, each named after its loss (paper Decision values)."""

    adversarial: float = 1.0
    """Conditional PatchGAN term BCE(D(x, y_hat), 1)."""
    l1: float = 100.0
    """Pixel reconstruction mean |y_hat - y|."""
    contrastive: float = 0.05
    """PatchNCE with QS-Attn queries on the MMA output and F_fus."""
    segmentation: float = 0.1
    """Cross-entropy of the segmentation decoder."""
    sr_decoder: float = 0.1
    """KL between the generator's and the frozen autoencoder's up-stage features."""
    sr_encoder: float = 0.1
    """MSE between the autoencoder's encoding of y and each source branch's encoding."""
    sr_fusion: float = 0.1
    """MSE between the autoencoder's encoding of y and F_fus."""

    def __post_init__(self) -> None:
        for name, value in to_dict(self).items():
            if value < 0:
                raise ConfigError(f"training.stage2.loss_weights.{name}: expected >= 0, found {value}")


@dataclass(frozen=True)
class StageConfig:
    """What both training stages set: their length, batch, optimizer and learning-rate schedule."""

    KEY: ClassVar[str] = "training.stage"
    """The stage's key path, for error messages."""

    epochs: int = 1
    """Passes over the training slices."""
    max_steps: int | None = None
    """Optional cap on optimizer steps (demos, tests); the schedule spans min(epochs * steps/epoch, max_steps)."""
    max_seconds: float | None = None
    """Optional wall-time budget of the stage: training stops at the first epoch end past it (the
    checkpoint is still written; the learning-rate decay may then be unfinished)."""
    batch_size: int = 4
    """Slices per optimizer step (per process under DDP); incomplete last batches are dropped."""
    lr: float = 1e-4
    """Adam learning rate."""
    beta1: float = 0.5
    """Adam beta1."""
    beta2: float = 0.999
    """Adam beta2."""
    decay_fraction: float = 1 / 3
    """Final fraction of the steps over which the learning rate decays linearly to 0 (ACA-GAN convention)."""

    def __post_init__(self) -> None:
        prefix = self.KEY
        if self.epochs < 1:
            raise ConfigError(f"{prefix}.epochs: expected >= 1, found {self.epochs}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"{prefix}.max_steps: expected >= 1 or null, found {self.max_steps}")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise ConfigError(f"{prefix}.max_seconds: expected > 0 or null, found {self.max_seconds}")
        if self.batch_size < 1:
            raise ConfigError(f"{prefix}.batch_size: expected >= 1, found {self.batch_size}")
        if not self.lr > 0:
            raise ConfigError(f"{prefix}.lr: expected > 0, found {self.lr}")
        if not 0.0 <= self.decay_fraction <= 1.0:
            raise ConfigError(f"{prefix}.decay_fraction: expected a value in [0, 1], found {self.decay_fraction}")
        for name in ("beta1", "beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"{prefix}.{name}: expected a value in [0, 1), found {getattr(self, name)}")


@dataclass(frozen=True)
class AutoencoderStage(StageConfig):
    """Stage 1: the target modality's self-representation autoencoder, trained as an identity map."""

    KEY: ClassVar[str] = "training.stage1"

    epochs: int = 200
    """Passes over the training slices (PLAVE: 200)."""
    lr: float = 2e-4
    """Adam learning rate."""
    l1_weight: float = 100.0
    """Weight of the reconstruction loss mean |AE(y) - y|."""


@dataclass(frozen=True)
class TranslationStage(StageConfig):
    """Stage 2: generator, discriminator and projection heads, with the autoencoder frozen in eval mode.
    `lr`, `beta1`, `beta2` and the decay apply to the generator and the discriminator alike."""

    KEY: ClassVar[str] = "training.stage2"

    epochs: int = 300
    """Passes over the training slices (PLAVE: 300)."""
    head_lr: float = 1e-4
    """Adam learning rate of the PatchNCE projection heads (their own optimizer)."""
    loss_weights: LossWeights = field(default_factory=LossWeights)
    """Weights of the generator loss terms."""
    warmup_fraction: float = 0.0
    """Reconstruction warm-up: the first this fraction of the stage's steps trains the generator on
    L1 and segmentation only (no discriminator, contrastive or self-representation terms: about 3x
    cheaper per step on a CPU), then every term of the paper joins. 0 (the paper): all terms from
    the first step. A fraction, so that a time budget that shortens the schedule keeps the GAN phase."""
    l1_label_weights: tuple[float, ...] | None = None
    """Weights of the L1 term's pixels by their segmentation label (healthy or background, NCR, ED,
    ET: one per class of the segmentation decoder), applied as a weighted mean so that the term's
    size is unchanged (`losses.label_weighted_l1_loss`), in the warm-up and the GAN phase alike.
    None (the paper): a plain mean over all pixels. A project variant for the enhancing rim, a few
    hundred pixels of a slice (docs/training-study.md, section 9)."""
    batchnorm_recalibration_slices: int = 256
    """Before every validation (and so before the checkpoint), the generator's BatchNorm running
    statistics are recomputed on this many fixed training slices with the current weights
    (`brasyn.training.batchnorm`); 0 keeps the moving averages of training."""
    keep_warmup_checkpoint: bool = False
    """Also write the generator as it is at the end of the warm-up (`warmup/brasyn_<target>.pt` in
    the run folder, a weights folder of its own), so that one run judges the warm-up's model against
    the final one. Needs `warmup_fraction` > 0. A run resumed after the warm-up's end has no copy of
    it and writes none (with a warning)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.batchnorm_recalibration_slices < 0:
            raise ConfigError(
                "training.stage2.batchnorm_recalibration_slices: expected >= 0, "
                f"found {self.batchnorm_recalibration_slices}"
            )
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise ConfigError(
                f"training.stage2.warmup_fraction: expected a value in [0, 1), found {self.warmup_fraction}"
            )
        if self.keep_warmup_checkpoint and self.warmup_fraction == 0:
            raise ConfigError("training.stage2.keep_warmup_checkpoint: needs a warm-up (warmup_fraction > 0)")
        if not self.head_lr > 0:
            raise ConfigError(f"training.stage2.head_lr: expected > 0, found {self.head_lr}")
        if self.l1_label_weights is not None and (
            min(self.l1_label_weights, default=-1.0) < 0 or not self.l1_label_weights[0] > 0
        ):
            raise ConfigError(
                "training.stage2.l1_label_weights: expected weights >= 0 with the first (healthy) > 0, "
                f"found {list(self.l1_label_weights)}"
            )


@dataclass(frozen=True)
class DataConfig:
    """Which slices are trained on and how they are prepared."""

    FLAT_FIELDS: ClassVar[tuple[str, ...]] = ("normalization",)

    normalization: Normalization = field(default_factory=Normalization)
    """How each volume is scaled to [-1, 1] (`brasyn.data.normalization`); YAML keys `percentile` (the
    robust brain percentile) and `headroom` (each volume is divided by headroom x its percentile, so
    bright tumour up to `headroom` times the percentile stays inside the generator's range)."""
    tumour_slices_only: bool = True
    """Train on axial slices that contain tumour (paper); False: every slice that contains brain."""
    validation_fraction: float = 0.1
    """Share of the cases held out for validation (split by case, seeded); 0 disables validation."""
    validation_slices: int = 8
    """Validation slices (evenly spread over the held-out cases) scored with SSIM after each epoch."""
    cache_dir: str | None = None
    """Folder of the uncompressed slice cache (relative paths start at the output folder); default
    `<output>/cache`. Shared by the four targets; delete it after training to free the disk."""
    cache_dtype: str = "float16"
    """Storage type of the cached normalized slices (float16 halves the disk use)."""
    augmentation: Augmentation = field(default_factory=Augmentation)
    """nnU-Net-style augmentation of each training slice (`brasyn.data.augment`): spatial transforms of
    sources, target and labels alike, intensity transforms of the sources only. All off by default
    (the paper); validation and BatchNorm recalibration always see the slices as cached."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ConfigError(
                f"training.data.validation_fraction: expected a value in [0, 1), found {self.validation_fraction}"
            )
        if self.validation_slices < 0:
            raise ConfigError(f"training.data.validation_slices: expected >= 0, found {self.validation_slices}")
        if self.cache_dtype not in CACHE_DTYPES:
            raise ConfigError(
                f"training.data.cache_dtype: expected one of {', '.join(CACHE_DTYPES)}, found {self.cache_dtype!r}"
            )


@dataclass(frozen=True)
class TrainingConfig:
    """Everything about a training run except the network architecture (`ModelConfig`)."""

    stage1: AutoencoderStage = field(default_factory=AutoencoderStage)
    """Self-representation autoencoder of the target modality."""
    stage2: TranslationStage = field(default_factory=TranslationStage)
    """Generator / discriminator / projection heads."""
    data: DataConfig = field(default_factory=DataConfig)
    """Slice selection, normalization, validation split, cache."""
    seed: int = 0
    """Seeds Python, NumPy and torch (CPU and CUDA), the data order and the split."""
    device: str = "auto"
    """"auto" (CUDA when available), "cpu", "cuda" or "cuda:N". Under torchrun each process takes its
    LOCAL_RANK GPU."""
    precision: str = "auto"
    """"auto" (bf16 autocast on CUDA, fp32 on CPU), "fp32" or "bf16" (`brasyn.device` names; the old
    "float32" and "bfloat16" are read as aliases). No fp16: the trainer has no loss scaler."""
    num_workers: int = 2
    """DataLoader worker processes (0: load in the main process); also the slice-cache build processes."""
    resume_every_steps: int = 2000
    """Also write the resume file every this many steps inside an epoch (0: only at epoch ends)."""
    compact_checkpoints: bool = False
    """Store the checkpoint weights as float16 (half the size); they load back as float32."""
    tensorboard: bool = True
    """Also log to TensorBoard when `torch.utils.tensorboard` is importable."""
    progress: bool | None = None
    """tqdm progress bars: None shows them when the output is a terminal."""

    def __post_init__(self) -> None:
        check_device(self.device, "training.device")
        object.__setattr__(self, "precision", canonical_precision(self.precision, "training.precision"))
        if self.precision == "fp16":
            raise ConfigError("training.precision: fp16 needs a loss scaler this trainer lacks; use auto, bf16 or fp32")
        if self.resume_every_steps < 0:
            raise ConfigError(f"training.resume_every_steps: expected >= 0, found {self.resume_every_steps}")
        if self.num_workers < 0:
            raise ConfigError(f"training.num_workers: expected >= 0, found {self.num_workers}")


@dataclass(frozen=True)
class TrainingSetup:
    """A resolved run configuration: the networks and how to train them."""

    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict with the preset file's layout (`model:`, `training:`)."""
        return {"model": self.model.to_dict(), "training": to_dict(self.training)}


def preset_path(name: str) -> Path:
    """Path of a packaged preset YAML."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r} (expected one of {', '.join(PRESETS)}, or a .yaml path)")
    return Path(str(resources.files("brasyn.presets").joinpath(f"{name}.yaml")))


def _merge(base: dict[str, Any], overrides: Mapping[str, Any], path: str) -> dict[str, Any]:
    """Recursive key-by-key merge; a mapping replaces a scalar only where the base holds a mapping."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value, f"{path}.{key}")
        else:
            out[key] = copy.deepcopy(dict(value) if isinstance(value, Mapping) else value)
    return out


def _resolve_mapping(data: Mapping[str, Any], where: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    unknown = sorted(set(data) - {"preset", "model", "training"})
    if unknown:
        raise ConfigError(f"{where}: unknown top-level key {unknown[0]!r} (valid: preset, model, training)")
    base: dict[str, Any] = {"model": {}, "training": {}}
    preset = data.get("preset")
    if preset is not None:
        if not isinstance(preset, str):
            raise ConfigError(f"{where}: preset: expected a preset name, found {preset!r}")
        if preset in seen:
            raise ConfigError(f"{where}: preset {preset!r} includes itself")
        base = _resolve_mapping(load_yaml(preset_path(preset)), f"preset {preset}", (*seen, preset))
    for section in ("model", "training"):
        value = data.get(section)
        if value is None:
            continue
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: {section}: expected a mapping, found {type(value).__name__}")
        base[section] = _merge(base[section], value, section)
    return base


def load_training_setup(source: str | Path | Mapping[str, Any] | TrainingSetup | None = None) -> TrainingSetup:
    """Resolve a preset name ("paper", "demo", "tiny"), a YAML path, an override mapping or a setup.

    None means the paper preset. Raises `ConfigError` naming the offending key.
    """
    if isinstance(source, TrainingSetup):
        return source
    if source is None:
        source = "paper"
    if isinstance(source, Mapping):
        data, where = _resolve_mapping(source, "training setup"), "training setup"
    elif isinstance(source, str) and source in PRESETS:
        data, where = _resolve_mapping(load_yaml(preset_path(source)), f"preset {source}"), f"preset {source}"
    else:
        path = Path(source)
        if path.suffix.lower() not in (".yaml", ".yml") and not path.exists():
            raise ConfigError(f"unknown preset {str(source)!r} (expected one of {', '.join(PRESETS)}, or a .yaml path)")
        data, where = _resolve_mapping(load_yaml(path), str(path)), str(path)
    try:
        return TrainingSetup(
            model=from_dict(ModelConfig, data["model"], "model"),
            training=from_dict(TrainingConfig, data["training"], "training"),
        )
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


@dataclass(frozen=True)
class TrainParameters:
    """The `train:` section of the cube's parameters file: which dedicated models to train (`targets`,
    default all four) and the training setup (a preset and overrides, written at the section's level),
    validated together in one place, as `InferParameters` does for the `infer:` section."""

    setup: TrainingSetup = field(default_factory=TrainingSetup)
    targets: tuple[Modality, ...] = MODALITIES

    def __post_init__(self) -> None:
        object.__setattr__(self, "targets", tuple(parse_targets(list(self.targets), "train.targets")))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> TrainParameters:
        """`targets` (names, "all" or comma-separated lists, as `brasyn train --target`) and the rest of
        the mapping as `load_training_setup` reads it (None or empty: the paper preset, all targets)."""
        section = dict(data or {})
        targets = section.pop("targets", None)
        setup = load_training_setup(section)
        return cls(setup=setup) if targets is None else cls(setup=setup, targets=_as_list(targets))


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]
