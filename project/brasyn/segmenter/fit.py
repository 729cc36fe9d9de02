"""`brasyn segmenter fit`: train the bundled 2-D U-Net segmenter on complete cases (four REAL sequences + seg).

It never sees a synthesized image: its inputs are the training cohort's own acquisitions. Training
samples random axial crops (most of them centred near tumour, flipped, each sequence's contrast
jittered a little), minimises cross-entropy + soft Dice of the BraTS regions (WT, TC, ET), and
follows a cosine learning-rate decay over `steps` or `max_seconds`, whichever comes first. The
held-out cases (if given) are segmented whole at the end; their Dice goes into the checkpoint and
the record.
"""

from __future__ import annotations

import json
import logging
import math
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from brasyn.constants import MODALITIES, REGIONS
from brasyn.data.cases import CaseStatus, discover_cases, load_case
from brasyn.data.normalization import BACKGROUND, Normalization
from brasyn.errors import ConfigError, InputError
from brasyn.evaluation.dice import region_dice
from brasyn.io.atomic import atomic_write_text
from brasyn.models.segmenter import SegmenterConfig, SegmenterUNet
from brasyn.segmenter.model_file import SEGMENTER_FILENAME, save_segmenter
from brasyn.segmenter.predict import case_input, segment_volumes

logger = logging.getLogger(__name__)

RECORD_FILENAME = "record.json"


@dataclass(frozen=True)
class FitSettings:
    """How the segmenter is trained (all recorded beside the checkpoint)."""

    base_channels: int = 8
    depth: int = 3
    crop: int = 128
    """Side of the square training crops (a multiple of 2 ** depth); inference runs on whole slices."""
    batch_size: int = 16
    steps: int = 2000
    max_seconds: float = 20 * 60.0
    """Wall-time budget of the optimisation: the cosine schedule runs on max(step / steps, elapsed / budget)."""
    learning_rate: float = 2e-3
    tumour_fraction: float = 0.7
    """Share of crops centred near a tumour voxel (the others anywhere in a slice holding brain)."""
    contrast_jitter: float = 0.1
    """Std of the log of a per-sequence factor applied to (x + 1): robustness to a slightly off intensity scale."""
    slice_stride: int = 1
    """Keep every n-th axial slice holding brain (1: all)."""
    seed: int = 0
    threads: int = 1


@dataclass
class SliceBank:
    """Normalized axial slices of many cases: inputs (N, 4, X, Y) float16, labels (N, X, Y) uint8."""

    inputs: np.ndarray
    labels: np.ndarray
    tumour: np.ndarray  # (N,) bool: the slice holds tumour
    cases: list[str]


def complete_cases(folder: Path) -> list:
    """The complete cases (four sequences + seg) of `folder`, or of `folder/original_data` (a labels layout)."""
    folder = Path(folder)
    if (folder / "original_data").is_dir():
        folder = folder / "original_data"
    cases = [c for c in discover_cases(folder) if c.status is CaseStatus.COMPLETE and c.seg is not None]
    if not cases:
        raise InputError(f"{folder}: expected case folders with t1n, t1c, t2w, t2f and seg, found none")
    return cases


def load_bank(folder: Path, normalization: Normalization, slice_stride: int = 1) -> SliceBank:
    inputs, labels, names = [], [], []
    for case in complete_cases(folder):
        volumes = load_case(case, modalities=MODALITIES, with_labels=True)
        mask, stacked = case_input(volumes.images, normalization, name=case.case_id)
        chosen = np.flatnonzero(mask.any(axis=(0, 1)))[::slice_stride]
        inputs.append(np.moveaxis(stacked[:, :, :, chosen], 3, 0).astype(np.float16))  # (n, 4, X, Y)
        labels.append(np.moveaxis(volumes.seg[:, :, chosen], 2, 0))  # (n, X, Y)
        names.append(case.case_id)
        logger.info("%s: %d slices", case.case_id, len(chosen))
    all_labels = np.concatenate(labels)
    return SliceBank(np.concatenate(inputs), all_labels, (all_labels > 0).any(axis=(1, 2)), names)


def sample_batch(bank: SliceBank, settings: FitSettings, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 4, crop, crop) float32 inputs and (B, crop, crop) int64 labels."""
    crop = settings.crop
    n, _, height, width = bank.inputs.shape
    tumour_slices = np.flatnonzero(bank.tumour)
    xs, ys = [], []
    for _ in range(settings.batch_size):
        near_tumour = tumour_slices.size and rng.random() < settings.tumour_fraction
        index = int(rng.choice(tumour_slices)) if near_tumour else int(rng.integers(n))
        image, label = bank.inputs[index], bank.labels[index]
        if near_tumour:
            points = np.argwhere(label > 0)
            centre = points[rng.integers(len(points))] + rng.integers(-crop // 4, crop // 4 + 1, size=2)
        else:
            centre = rng.integers([0, 0], [height, width])
        top = int(np.clip(centre[0] - crop // 2, 0, max(height - crop, 0)))
        left = int(np.clip(centre[1] - crop // 2, 0, max(width - crop, 0)))
        x = image[:, top : top + crop, left : left + crop].astype(np.float32)
        y = label[top : top + crop, left : left + crop]
        x = _pad(x, crop, BACKGROUND)
        y = _pad(y[None], crop, 0)[0]
        for axis in (1, 2):
            if rng.random() < 0.5:
                x, y = np.flip(x, axis), np.flip(y, axis - 1)
        factors = np.exp(rng.normal(0.0, settings.contrast_jitter, size=(x.shape[0], 1, 1))).astype(np.float32)
        x = (x + 1.0) * factors - 1.0
        xs.append(np.ascontiguousarray(x))
        ys.append(np.ascontiguousarray(y))
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys).astype(np.int64))


def _pad(array: np.ndarray, size: int, value: float) -> np.ndarray:
    pad_h, pad_w = size - array.shape[-2], size - array.shape[-1]
    if pad_h <= 0 and pad_w <= 0:
        return array
    return np.pad(array, [(0, 0), (0, max(pad_h, 0)), (0, max(pad_w, 0))], constant_values=value)


def region_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy + (1 - soft Dice) averaged over the BraTS regions WT, TC and ET."""
    probabilities = logits.softmax(dim=1)  # (B, 4, H, W)
    dice_terms = []
    for labels in REGIONS.values():
        predicted = probabilities[:, list(labels)].sum(dim=1)
        truth = torch.isin(target, torch.tensor(labels)).float()
        overlap = (predicted * truth).sum()
        dice_terms.append(1.0 - (2.0 * overlap + 1.0) / (predicted.sum() + truth.sum() + 1.0))
    return F.cross_entropy(logits, target) + torch.stack(dice_terms).mean()


def validate(model: SegmenterUNet, normalization: Normalization, folder: Path) -> dict[str, Any]:
    """Dice ET / TC / WT of whole-volume segmentations of held-out complete cases: per case and mean."""
    per_case = {}
    for case in complete_cases(folder):
        volumes = load_case(case, modalities=MODALITIES, with_labels=True)
        labels = segment_volumes(model, normalization, volumes.images, name=case.case_id)
        per_case[case.case_id] = region_dice(labels, volumes.seg)
        logger.info("validation %s: %s", case.case_id, _format_dice(per_case[case.case_id]))
    mean = {region: float(np.mean([d[region] for d in per_case.values()])) for region in REGIONS}
    return {"cases": len(per_case), "mean": mean, "per_case": per_case}


def _format_dice(dice: dict[str, float]) -> str:
    return ", ".join(f"{region} {value:.3f}" for region, value in dice.items())


def fit_segmenter(
    data: Path, out: Path, settings: FitSettings = FitSettings(), *, validation: Path | None = None
) -> dict[str, Any]:
    """Train on the complete cases of `data`, validate on `validation`, write `out/segmenter.pt` and
    `out/record.json`; returns the record."""
    torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    config = SegmenterConfig(base_channels=settings.base_channels, depth=settings.depth)
    if settings.crop % 2**settings.depth:
        raise ConfigError(f"crop: expected a multiple of {2 ** settings.depth}, found {settings.crop}")
    normalization = Normalization()
    started = time.monotonic()
    bank = load_bank(data, normalization, settings.slice_stride)
    loading_seconds = time.monotonic() - started
    logger.info("%d cases, %d slices (%d with tumour) in %.0f s", len(bank.cases), len(bank.labels),
                int(bank.tumour.sum()), loading_seconds)
    model = SegmenterUNet.from_config(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    model.train()
    curve: list[dict[str, float]] = []
    running, step, progress = 0.0, 0, 0.0
    train_started = time.monotonic()
    while progress < 1.0:
        lr = settings.learning_rate * 0.5 * (1.0 + math.cos(math.pi * progress))
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = sample_batch(bank, settings, rng)
        loss = region_loss(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        running += float(loss.detach())
        elapsed = time.monotonic() - train_started
        progress = max(step / settings.steps, elapsed / settings.max_seconds)
        if step % 50 == 0 or progress >= 1.0:
            curve.append({"step": step, "seconds": round(elapsed, 1), "lr": lr, "loss": running / (step % 50 or 50)})
            logger.info("step %d  %.0f s  lr %.2e  loss %.4f", step, elapsed, lr, curve[-1]["loss"])
            running = 0.0
    train_seconds = time.monotonic() - train_started
    model.eval()
    metrics = validate(model, normalization, validation) if validation is not None else {}
    record = {
        "command": "brasyn segmenter fit",
        "data": str(data),
        "validation": None if validation is None else str(validation),
        "settings": asdict(settings),
        "model_config": config.to_dict(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "training_cases": bank.cases,
        "training_slices": len(bank.labels),
        "steps": step,
        "loading_seconds": round(loading_seconds, 1),
        "training_seconds": round(train_seconds, 1),
        "validation_dice": metrics,
        "curve": curve,
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "torch": torch.__version__},
    }
    out = Path(out)
    training_config = {k: record[k] for k in ("data", "settings", "steps", "training_seconds", "training_slices")}
    training_config["training_cases"] = len(bank.cases)
    save_segmenter(out / SEGMENTER_FILENAME, model, config, normalization, training_config=training_config,
                   metrics={"validation_dice": metrics.get("mean", {}), "validation_cases": metrics.get("cases", 0)})
    atomic_write_text(out / RECORD_FILENAME, json.dumps(record, indent=2) + "\n")
    if metrics:
        logger.info("validation mean over %d cases: %s", metrics["cases"], _format_dice(metrics["mean"]))
    return record
