"""One dedicated model applied to one case: normalize the sources, run the network over the axial
slices in batches (by default also over their mirror images, averaged: test-time mirroring), undo
the padding and the normalization, zero the background.

Model-kind agnostic: any module whose forward maps normalized sources (B, 3, S, S) to an object with
`.image` (B, 1, S, S) in [-1, 1] and `.seg_logits` (B, 4, S, S) or None (the PLAVE generator, the
polynomial baseline) is driven the same way. `Predictor.from_checkpoint(path)` needs nothing else.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from brasyn.checkpoint import Checkpoint
from brasyn.constants import Modality, sources_for
from brasyn.data.normalization import BACKGROUND, IntensityModel, Normalization
from brasyn.data.slicing import PadRecord, crop_slices, pad_slices
from brasyn.device import resolve_device, resolve_precision
from brasyn.errors import CheckpointError, GeometryError, InferenceError, InputError
from brasyn.inference.settings import InferenceSettings
from brasyn.inference.tuning import plan_for

logger = logging.getLogger(__name__)

_OOM_ERRORS: tuple[type[BaseException], ...] = tuple(
    {getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError), torch.cuda.OutOfMemoryError}
)


def mirror_flips(axes: tuple[int, ...]) -> list[tuple[int, ...]]:
    """The test-time mirrorings of a (B, C, S, S) slice batch for in-plane volume axes `axes` (as
    `InferenceSettings.mirror_axes` validated them): every subset of their tensor dims (volume axis a
    is dim a + 2), the identity () first.

    >>> mirror_flips((0, 1))
    [(), (2,), (3,), (2, 3)]
    """
    dims = [a + 2 for a in axes]
    return [tuple(d for i, d in enumerate(dims) if k >> i & 1) for k in range(2 ** len(dims))]


class PreparedCase(NamedTuple):
    """What preprocessing did, so that postprocessing undoes it exactly."""

    slices: np.ndarray  # (N, 3, S, S) float32 in [-1, 1]: the padded axial slices that hold brain
    positions: np.ndarray  # (N,) their indices z along the last axis of the volume
    pad: PadRecord  # (H, W) -> (S, S)
    mask: np.ndarray  # (H, W, D) bool: brain = non-zero in any source
    source_scales: dict[Modality, float]  # each source's normalization scale (maps to +1)
    target_scale: float  # predicted scale of the missing modality (from the intensity model)


class Prediction(NamedTuple):
    """The synthesized volume of one case."""

    image: np.ndarray  # (H, W, D) float32, scanner units of the target, exactly 0 outside the brain
    segmentation: np.ndarray | None  # (H, W, D) uint8 labels 0 background, 1 NCR, 2 ED, 3 ET; or None
    target_scale: float  # the intensity that +1 was mapped to


class Predictor:
    """A dedicated model for one target modality, ready for inference (eval mode, on its device)."""

    def __init__(
        self,
        model: nn.Module,
        *,
        target: Modality,
        intensity_model: IntensityModel,
        image_size: int,
        normalization: Normalization | None = None,
        settings: InferenceSettings | None = None,
        source: str = "",
    ) -> None:
        """`model` and the next four describe the trained model (a `Checkpoint`'s fields, see
        `from_record`); `settings` says how to run it (device, precision, batch size, memory layout,
        test-time mirroring), already validated where it was built."""
        self.target = Modality(target)
        self.sources = sources_for(self.target)
        self.intensity_model = intensity_model
        self.image_size = int(image_size)
        self.normalization = normalization or Normalization()
        self.settings = settings or InferenceSettings()
        self.device = resolve_device(self.settings.device)
        self.autocast_dtype = resolve_precision(self.settings.precision, self.device)
        # batch size, memory layout and threads by device unless given (`brasyn.inference.tuning`)
        self.plan = plan_for(self.device, self.settings.batch_size, self.settings.channels_last)
        self._warned_no_seg = False
        self.source = source or f"{self.target} model"
        self.mirrors = mirror_flips(self.settings.mirror_axes)
        self.memory_format = torch.channels_last if self.plan.channels_last else torch.contiguous_format
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed slice size: let cuDNN pick its fastest kernels
        self.model = model.to(self.device).eval().to(memory_format=self.memory_format)
        if tuple(intensity_model.sources) != self.sources:
            raise CheckpointError(
                f"{self.source}: intensity model expects sources {[m.value for m in intensity_model.sources]}, "
                f"expected {[m.value for m in self.sources]}"
            )

    @property
    def batch_size(self) -> int:
        """Slices per forward pass: the plan's, which a CUDA out-of-memory error halves."""
        return self.plan.batch_size

    @classmethod
    def from_checkpoint(
        cls, path: Path, *, target: Modality | None = None, settings: InferenceSettings | None = None
    ) -> Predictor:
        """Load a checkpoint (any model kind) and build its eval-mode model on the settings' device."""
        return cls.from_record(Checkpoint.load(Path(path), target=target), settings=settings, source=str(path))

    @classmethod
    def from_record(
        cls, checkpoint: Checkpoint, *, settings: InferenceSettings | None = None, source: str = ""
    ) -> Predictor:
        """The predictor of a loaded `Checkpoint` (validated and migrated there)."""
        return cls(
            checkpoint.build_model(),
            target=checkpoint.target,
            intensity_model=checkpoint.intensity_model,
            image_size=checkpoint.image_size,
            normalization=checkpoint.normalization,
            settings=settings,
            source=source,
        )

    # ----------------------------------------------------------------------------------------------
    def prepare(self, sources: dict[Modality, np.ndarray], *, case_id: str = "") -> PreparedCase:
        """Normalize the three sources as in training and cut the padded axial slices that hold brain.

        sources: {modality: (H, W, D) float32 scanner units}; must hold this model's three sources.
        """
        name = case_id or "case"
        absent = [m.value for m in self.sources if m not in sources]
        if absent:
            raise InputError(f"{name}: the {self.target} model needs {', '.join(absent)}, which the case lacks")
        volumes = [np.asarray(sources[m], dtype=np.float32) for m in self.sources]
        shape = volumes[0].shape
        if len(shape) != 3 or any(v.shape != shape for v in volumes):
            raise GeometryError(f"{name}: expected three 3-D volumes of one shape, found {[v.shape for v in volumes]}")
        height, width = shape[0], shape[1]
        if height > self.image_size or width > self.image_size:
            raise GeometryError(
                f"{name}: axial slices of {height} x {width} are larger than the model's image_size "
                f"{self.image_size} ({self.source}); expected at most {self.image_size} per side"
            )
        mask, scales, normalized = self.normalization.normalize_case(
            dict(zip(self.sources, volumes, strict=True)), name=name
        )
        target_scale = self.intensity_model.predict_scale(scales)
        if not np.isfinite(target_scale) or target_scale <= 0:
            raise InputError(f"{name}: predicted {self.target} scale is {target_scale}, expected a positive number")
        positions = np.flatnonzero(mask.any(axis=(0, 1)))
        # (3, H, W, D) -> the brain slices as (N, 3, H, W)
        stack = np.stack([normalized[m][..., positions] for m in self.sources])
        stack = np.ascontiguousarray(stack.transpose(3, 0, 1, 2))  # (N, 3, H, W)
        padded, record = pad_slices(stack, self.image_size, value=BACKGROUND)  # (N, 3, S, S)
        return PreparedCase(padded, positions, record, mask, scales, float(target_scale))

    def run(self, slices: np.ndarray, *, with_segmentation: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """The network over (N, 3, S, S) normalized slices in batches -> image (N, S, S) in [-1, 1]
        and labels (N, S, S) uint8 (argmax of the seg logits), or None when not asked for or when the
        model has no segmentation decoder (logged once).

        A CUDA out-of-memory error halves the batch size (logged) and retries; at batch size 1 it is an
        `InferenceError`.
        """
        n = len(slices)
        size = slices.shape[-1] if n else self.image_size
        images = np.empty((n, size, size), dtype=np.float32)
        labels = np.empty((n, size, size), dtype=np.uint8) if with_segmentation else None
        start = 0
        while start < n:
            stop = min(n, start + self.batch_size)
            try:
                image, label = self._forward(slices[start:stop], with_segmentation)
            except _OOM_ERRORS as exc:
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                if self.batch_size == 1:
                    raise InferenceError(f"{self.source}: out of memory even at batch size 1 ({exc})") from exc
                self.plan = replace(self.plan, batch_size=max(1, self.batch_size // 2))
                logger.warning("out of memory on %s; retrying with batch size %d", self.device, self.batch_size)
                continue
            images[start:stop] = image
            if labels is not None:
                if label is None:  # e.g. the polynomial baseline: the synthesis still counts
                    if not self._warned_no_seg:
                        logger.warning("%s has no segmentation decoder: no tumour maps are written", self.source)
                        self._warned_no_seg = True
                    labels = None
                else:
                    labels[start:stop] = label
            start = stop
        return images, labels

    def _forward(self, batch: np.ndarray, with_segmentation: bool) -> tuple[np.ndarray, np.ndarray | None]:
        x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device)  # (B, 3, S, S)
        x = x.contiguous(memory_format=self.memory_format)
        autocast = (
            torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)
            if self.autocast_dtype is not None
            else contextlib.nullcontext()
        )
        with torch.inference_mode(), autocast:
            image, probabilities = 0, None
            for dims in self.mirrors:  # () first; each output (B, C, S, S) is mirrored back before the sum
                out = self.model(x.flip(dims), with_segmentation=with_segmentation)
                image = image + out.image.float().flip(dims)
                if with_segmentation and out.seg_logits is not None:
                    p = out.seg_logits.float().softmax(dim=1).flip(dims)
                    probabilities = p if probabilities is None else probabilities + p
            image = (image[:, 0] / len(self.mirrors)).clamp_(-1.0, 1.0)  # (B, S, S)
            label = probabilities.argmax(dim=1).to(torch.uint8) if probabilities is not None else None  # (B, S, S)
        return image.cpu().numpy(), (label.cpu().numpy() if label is not None else None)

    def restore(self, prepared: PreparedCase, image: np.ndarray, labels: np.ndarray | None) -> Prediction:
        """Undo `prepare`: crop, put the slices back at their z, scanner scale, 0 outside the brain."""
        shape = prepared.mask.shape
        volume = np.zeros(shape, dtype=np.float32)
        mask = prepared.mask
        if len(prepared.positions):
            cropped = crop_slices(image, prepared.pad)  # (N, H, W)
            scanner = self.normalization.denormalize(cropped, prepared.target_scale)  # (N, H, W)
            volume[..., prepared.positions] = scanner.transpose(1, 2, 0)  # (H, W, N)
        volume[~mask] = 0.0
        segmentation = None
        if labels is not None:
            segmentation = np.zeros(shape, dtype=np.uint8)
            if len(prepared.positions):
                segmentation[..., prepared.positions] = crop_slices(labels, prepared.pad).transpose(1, 2, 0)
            segmentation[~mask] = 0
        return Prediction(volume, segmentation, prepared.target_scale)

    def predict(
        self, sources: dict[Modality, np.ndarray], *, with_segmentation: bool = False, case_id: str = ""
    ) -> Prediction:
        """The missing modality of one case from its three sources {modality: (H, W, D) scanner units}."""
        prepared = self.prepare(sources, case_id=case_id)
        image, labels = self.run(prepared.slices, with_segmentation=with_segmentation)
        return self.restore(prepared, image, labels)
