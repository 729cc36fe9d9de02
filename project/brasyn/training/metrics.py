"""Per-epoch metrics: a CSV file per target (always) and TensorBoard (only if importable), plus the
validation scores (L1 and SSIM of a few held-out slices, unpadded, data range 2)."""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from skimage.metrics import structural_similarity

from brasyn.data.slices import SliceDataset
from brasyn.data.slicing import crop_slices

logger = logging.getLogger(__name__)

LOSS_COLUMNS: tuple[str, ...] = (
    "l1",
    "discriminator",
    "adversarial",
    "contrastive",
    "segmentation",
    "sr_decoder",
    "sr_encoder",
    "sr_fusion",
    "generator",
)
"""Loss terms logged per epoch (epoch means); stage 1 fills only `l1` (the autoencoder's)."""

COLUMNS: tuple[str, ...] = ("stage", "epoch", "step", "lr", *LOSS_COLUMNS, "val_l1", "val_ssim", "seconds")


def _format(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return str(value)


class MetricsLog:
    """Appends one row per epoch to `csv_path` (header written when the file is new or `fresh`)."""

    def __init__(self, csv_path: Path, *, fresh: bool = False, tensorboard_dir: Path | None = None) -> None:
        self.csv_path = Path(csv_path)
        self.csv_path.parent.mkdir(parents=True, exist_ok=True)
        if fresh or not self.csv_path.exists():
            with open(self.csv_path, "w", newline="") as handle:
                csv.writer(handle).writerow(COLUMNS)
        self._writer = None
        if tensorboard_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                logger.debug("tensorboard is not installed; metrics go to %s only", self.csv_path.name)
            else:
                self._writer = SummaryWriter(log_dir=str(tensorboard_dir))

    def write(self, row: Mapping[str, Any]) -> None:
        """One epoch's row; keys outside `COLUMNS` are ignored, missing ones left blank."""
        with open(self.csv_path, "a", newline="") as handle:
            csv.writer(handle).writerow([_format(row.get(c)) for c in COLUMNS])
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
    predict: Callable[[torch.Tensor], torch.Tensor],
    dataset: SliceDataset | None,
    indices: list[int],
    *,
    device: torch.device,
    use_sources: bool = True,
) -> dict[str, float]:
    """Mean L1 and SSIM (skimage, data_range 2) of `predict` on the unpadded validation slices.

    `predict` maps a batch (B, C, S, S) to images (B, 1, S, S) in [-1, 1]; it gets the sources
    (C = 3) or, with `use_sources=False`, the target itself (C = 1, the autoencoder). Empty dict when
    there is nothing to validate.
    """
    if dataset is None or not indices:
        return {}
    samples = [dataset[i] for i in indices]
    inputs = torch.stack([s.sources if use_sources else s.target for s in samples]).to(device)
    predictions = predict(inputs).float().cpu().numpy()[:, 0]  # (B, S, S)
    l1s, ssims = [], []
    for i, sample, prediction in zip(indices, samples, predictions, strict=True):
        _, _, record = dataset.locate(i)
        truth = crop_slices(sample.target.numpy()[0], record)  # (H, W)
        estimate = crop_slices(prediction, record)
        l1s.append(float(np.abs(estimate - truth).mean()))
        ssims.append(float(structural_similarity(truth, estimate, data_range=2.0)))
    return {"val_l1": float(np.mean(l1s)), "val_ssim": float(np.mean(ssims))}
