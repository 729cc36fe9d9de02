"""Per-epoch metrics: a CSV file per target (always) and TensorBoard (only if importable), plus the
validation scores of a few held-out slices (unpadded): L1, SSIM (data range 2), SSIM inside the
tumour, and the whole-tumour Dice of the segmentation decoder."""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from skimage.metrics import structural_similarity

from brasyn.data.slices import SliceDataset
from brasyn.data.slicing import crop_slices
from brasyn.evaluation.dice import dice
from brasyn.training.config import LossWeights

logger = logging.getLogger(__name__)

LOSS_COLUMNS: tuple[str, ...] = ("discriminator", *(f.name for f in fields(LossWeights)), "generator")
"""Loss terms logged per epoch (epoch means): the discriminator's, each weighted generator term (one
per `LossWeights` field, so a new loss gets its column) and their weighted sum; stage 1 fills only
`l1` (the autoencoder's)."""

VALIDATION_COLUMNS: tuple[str, ...] = ("val_l1", "val_ssim", "val_ssim_tumour", "val_dice_wt")
"""What `validate` reports (stage 1 and models without a segmentation decoder leave `val_dice_wt` blank)."""

COLUMNS: tuple[str, ...] = ("stage", "epoch", "step", "lr", *LOSS_COLUMNS, *VALIDATION_COLUMNS, "seconds", "elapsed")
"""`seconds`: the epoch's training time; `elapsed`: wall time since the stage started (learning curves)."""


@dataclass(frozen=True)
class EpochMetrics:
    """One epoch of one stage: what the loop measured, then the validation scores. It is the CSV row
    (`to_row`, columns `COLUMNS`), the last row kept in the resume file and the checkpoint's metrics."""

    stage: str
    epoch: int
    step: int
    """Optimizer steps done at the epoch's end."""
    lr: float
    seconds: float
    """The epoch's training time."""
    elapsed: float
    """Wall time since the stage (this run of it) started."""
    losses: dict[str, float] = field(default_factory=dict)
    """Epoch means of the loss terms (`LOSS_COLUMNS`; stage 1 fills only `l1`)."""
    validation: dict[str, float] = field(default_factory=dict)
    """`validate`'s scores (`VALIDATION_COLUMNS`), empty until validated or without validation cases."""

    def validated(self, scores: Mapping[str, float]) -> EpochMetrics:
        return replace(self, validation={**self.validation, **scores})

    def to_row(self) -> dict[str, Any]:
        """The flat row: stage, epoch, step, lr, the loss terms, the validation scores, seconds, elapsed."""
        head = {"stage": self.stage, "epoch": self.epoch, "step": self.step, "lr": float(self.lr)}
        tail = {"seconds": float(self.seconds), "elapsed": float(self.elapsed)}
        plain = {k: float(v) for k, v in {**self.losses, **self.validation}.items()}
        return {**head, **plain, **tail}

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> EpochMetrics:
        """From a flat row (resume files store it so); columns this code does not know are dropped."""
        return cls(
            stage=str(row.get("stage", "")),
            epoch=int(row.get("epoch", 0)),
            step=int(row.get("step", 0)),
            lr=float(row.get("lr", 0.0)),
            seconds=float(row.get("seconds", 0.0)),
            elapsed=float(row.get("elapsed", 0.0)),
            losses={k: float(row[k]) for k in LOSS_COLUMNS if row.get(k) is not None},
            validation={k: float(row[k]) for k in VALIDATION_COLUMNS if row.get(k) is not None},
        )


def _format(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return str(value)


class MetricsLog:
    """Appends one row per epoch to `csv_path` (header written when the file is new or `fresh`).

    Appending to an existing file (a resumed run) keeps that file's header, so rows stay aligned
    with it even when `COLUMNS` changed in between (columns the file lacks are dropped)."""

    def __init__(self, csv_path: Path, *, fresh: bool = False, tensorboard_dir: Path | None = None) -> None:
        self.csv_path = Path(csv_path)
        self.csv_path.parent.mkdir(parents=True, exist_ok=True)
        self.columns = COLUMNS
        if fresh or not self.csv_path.exists():
            with open(self.csv_path, "w", newline="") as handle:
                csv.writer(handle).writerow(COLUMNS)
        else:
            with open(self.csv_path, newline="") as handle:
                self.columns = tuple(next(csv.reader(handle), COLUMNS))
        self._writer = None
        if tensorboard_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                logger.debug("tensorboard is not installed; metrics go to %s only", self.csv_path.name)
            else:
                self._writer = SummaryWriter(log_dir=str(tensorboard_dir))

    def write(self, metrics: EpochMetrics) -> None:
        """One epoch's row; keys outside the file's columns are ignored, missing ones left blank."""
        row = metrics.to_row()
        with open(self.csv_path, "a", newline="") as handle:
            csv.writer(handle).writerow([_format(row.get(c)) for c in self.columns])
        if self._writer is not None:
            for name, value in row.items():
                if name not in ("stage", "epoch", "step") and isinstance(value, (int, float)) and not math.isnan(value):
                    self._writer.add_scalar(f"{row.get('stage', '')}/{name}", value, int(row.get("step", 0)))
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def validation_indices(dataset: SliceDataset | None, n: int) -> list[int]:
    """`n` slice indices spread evenly over `dataset` (all of them when it holds fewer)."""
    if dataset is None or len(dataset) == 0 or n <= 0:
        return []
    return sorted({int(round(i)) for i in np.linspace(0, len(dataset) - 1, min(n, len(dataset)))})


@torch.no_grad()
def validate(
    predict: Callable[[torch.Tensor], torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]],
    dataset: SliceDataset | None,
    indices: list[int],
    *,
    device: torch.device,
    use_sources: bool = True,
) -> dict[str, float]:
    """Validation scores of `predict` on the unpadded slices `indices` of `dataset`.

    `predict` maps a batch (B, C, S, S) to images (B, 1, S, S) in [-1, 1], or to (images, seg logits
    (B, K, S, S) or None); it gets the sources (C = 3) or, with `use_sources=False`, the target itself
    (C = 1, the autoencoder). Returns the mean L1 and SSIM (skimage, data_range 2) per slice, the
    mean of the SSIM map inside the tumour (label > 0) over all tumour pixels, and the whole-tumour
    Dice pooled over the slices (when seg logits are given). Empty dict when there is nothing to validate.
    """
    if dataset is None or not indices:
        return {}
    samples = [dataset[i] for i in indices]
    inputs = torch.stack([s.sources if use_sources else s.target for s in samples]).to(device)
    output = predict(inputs)
    images, logits = output if isinstance(output, tuple) else (output, None)
    predictions = images.float().cpu().numpy()[:, 0]  # (B, S, S)
    labels = logits.argmax(dim=1).cpu().numpy() if logits is not None else None  # (B, S, S)
    l1s, ssims, tumour_ssim = [], [], []
    wt_pred, wt_true = [], []
    for k, (i, sample, prediction) in enumerate(zip(indices, samples, predictions, strict=True)):
        _, _, record = dataset.locate(i)
        truth = crop_slices(sample.target.numpy()[0], record)  # (H, W)
        estimate = crop_slices(prediction, record)
        tumour = crop_slices(sample.seg.numpy(), record) > 0
        l1s.append(float(np.abs(estimate - truth).mean()))
        score, ssim_map = structural_similarity(truth, estimate, data_range=2.0, full=True)
        ssims.append(float(score))
        tumour_ssim.append(ssim_map[tumour])
        if labels is not None:
            wt_pred.append(crop_slices(labels[k], record) > 0)
            wt_true.append(tumour)
    scores = {"val_l1": float(np.mean(l1s)), "val_ssim": float(np.mean(ssims))}
    inside = np.concatenate(tumour_ssim)
    if inside.size:
        scores["val_ssim_tumour"] = float(inside.mean())
    if wt_pred:
        scores["val_dice_wt"] = dice(np.stack(wt_pred), np.stack(wt_true))
    return scores
