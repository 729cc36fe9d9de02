"""Axial training slices of BraTS-format cases, served from an uncompressed per-case cache.

Pipeline (`build_slice_cache`): for each complete training case (4 modalities + seg), load the
volumes once, normalize each to [-1, 1] with its own robust brain percentile (`brasyn.data.
normalization`), keep the selected axial slices (tumour-containing by default, or every slice with
brain), crop them in-plane to the brain's bounding box and store them as `.npy` files:

    <cache>/<case_id>/images.npy   (n_slices, 4, h, w) float16 or float32, channels in MODALITIES order
    <cache>/<case_id>/seg.npy      (n_slices, h, w) uint8 labels 0..3
    <cache>/<case_id>/meta.json    scales, geometry, bounding box, slice indices, source fingerprint

`meta.json` is written last and records the source files' sizes and modification times and the
options, so a later build reuses a case without touching its NIfTI files and rebuilds it when
anything changed. Training opens the arrays with `np.load(mmap_mode="r")`: epochs never decompress.
Disk use (tumour slices, brain box, float16): BraTS 2023's 81,437 tumour slices x 4 x ~145 x 175 x
2 bytes, about 17 GB; about 18 MB per 240 x 240 x 155 phantom case.

`SliceDataset` serves one target's view of the cache: sources (3, S, S), target (1, S, S) and the
label map (S, S), padded with the background (-1, label 0) to the model size S exactly as inference
pads (`brasyn.data.slicing`), so train and test slices sit at the same place in the frame.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from brasyn.constants import MODALITIES, Modality, sources_for
from brasyn.data.augment import Augmentation, augment_slice
from brasyn.data.cases import Case, load_case
from brasyn.data.normalization import BACKGROUND, IntensityModel, Normalization
from brasyn.data.slicing import PadRecord
from brasyn.errors import ConfigError, InputError
from brasyn.io.atomic import atomic_path, atomic_write_text

logger = logging.getLogger(__name__)

CACHE_VERSION = 2  # bump whenever the code that fills the cache changes what it stores
CACHE_DTYPES = ("float16", "float32")
# Largest segmentation label (BraTS 2023: 1 NCR, 2 ED, 3 ET). Older BraTS label ET as 4: mapped to 3.
MAX_LABEL = 3
OPEN_CASES = 64  # memory-mapped cases a SliceDataset keeps open (LRU)


@dataclass(frozen=True)
class CacheOptions:
    """What the cached arrays depend on besides the source files and the code (`CACHE_VERSION`).

    Every field takes part in the cache key (`key`): a new field is part of it automatically.
    """

    normalization: Normalization = Normalization()
    tumour_slices_only: bool = True
    dtype: str = "float16"

    def __post_init__(self) -> None:
        if self.dtype not in CACHE_DTYPES:
            raise ConfigError(f"slice cache dtype: expected one of {', '.join(CACHE_DTYPES)}, found {self.dtype!r}")

    def key(self) -> dict[str, Any]:
        """The options as plain JSON data, stored in meta.json and compared on reuse."""
        return {"version": CACHE_VERSION, **json.loads(json.dumps(asdict(self)))}


@dataclass(frozen=True)
class CachedCase:
    """One case in the slice cache. Arrays are opened lazily as read-only memory maps."""

    case_id: str
    folder: Path
    shape: tuple[int, int, int]
    """Shape of the original volume (H, W, D); slices are (H, W)."""
    bbox: tuple[int, int, int, int]
    """Stored in-plane crop: rows bbox[0]:bbox[1], columns bbox[2]:bbox[3] of each (H, W) slice."""
    slice_indices: tuple[int, ...]
    """Axial (third-axis) index of each stored slice."""
    scales: dict[Modality, float]
    """Robust scale of each modality (scanner units that map to +1)."""

    @property
    def n_slices(self) -> int:
        return len(self.slice_indices)

    def images(self) -> np.ndarray:
        """(n_slices, 4, h, w) normalized slices, channels in MODALITIES order (read-only memory map)."""
        return np.load(self.folder / "images.npy", mmap_mode="r")

    def seg(self) -> np.ndarray:
        """(n_slices, h, w) uint8 labels (read-only memory map)."""
        return np.load(self.folder / "seg.npy", mmap_mode="r")


def _fingerprint(case: Case) -> list[list[Any]]:
    paths = [case.images[m] for m in MODALITIES] + [case.seg]
    out = []
    for path in paths:
        stat = Path(path).stat()
        out.append([Path(path).name, stat.st_size, stat.st_mtime_ns])
    return out


def _meta_matches(meta: dict[str, Any], case: Case, options: CacheOptions) -> bool:
    return (
        meta.get("options") == options.key()
        and meta.get("case_id") == case.case_id
        and meta.get("fingerprint") == _fingerprint(case)
    )


def _cached_case(folder: Path, meta: dict[str, Any]) -> CachedCase:
    return CachedCase(
        case_id=meta["case_id"],
        folder=folder,
        shape=tuple(meta["shape"]),  # type: ignore[arg-type]
        bbox=tuple(meta["bbox"]),  # type: ignore[arg-type]
        slice_indices=tuple(meta["slice_indices"]),
        scales={Modality(k): float(v) for k, v in meta["scales"].items()},
    )


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, array)


def _read_meta(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError):
        return None


def cache_case(case: Case, cache_dir: Path, options: CacheOptions) -> CachedCase:
    """Normalize, select and store one case's slices (or reuse a valid cache entry without reading NIfTI)."""
    folder = Path(cache_dir) / case.case_id
    meta = _read_meta(folder)
    if meta is not None and _meta_matches(meta, case, options):
        return _cached_case(folder, meta)

    volumes = load_case(case, modalities=MODALITIES, with_labels=True)
    mask, scales, normalized = options.normalization.normalize_case(
        {m: volumes.images[m] for m in MODALITIES}, name=case.case_id
    )
    seg = np.where(volumes.seg == 4, MAX_LABEL, volumes.seg).astype(np.uint8)  # (H, W, D)
    if seg.max(initial=0) > MAX_LABEL:
        name = case.seg.name if case.seg else "seg"
        raise InputError(f"{case.case_id}: {name} has label {int(seg.max())}, expected labels 0..{MAX_LABEL}")
    tumour = seg > 0
    per_slice = (tumour if options.tumour_slices_only else mask | tumour).any(axis=(0, 1))  # (D,)
    selected = np.flatnonzero(per_slice)
    region = (mask | tumour)[:, :, selected].any(axis=2)  # (H, W)
    if selected.size:
        rows, cols = np.flatnonzero(region.any(axis=1)), np.flatnonzero(region.any(axis=0))
        bbox = (int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1)
    else:
        bbox = (0, 0, 0, 0)
        logger.warning("%s: no %s slices; the case contributes nothing", case.case_id,
                       "tumour" if options.tumour_slices_only else "brain")
    r0, r1, c0, c1 = bbox
    crops = np.stack([normalized[m][r0:r1, c0:c1][:, :, selected] for m in MODALITIES])
    crops = np.ascontiguousarray(crops.transpose(3, 0, 1, 2)).astype(options.dtype)  # (n, 4, h, w)
    seg_crops = np.ascontiguousarray(seg[r0:r1, c0:c1][:, :, selected].transpose(2, 0, 1))  # (n, h, w)

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "meta.json").unlink(missing_ok=True)
    _save_npy(folder / "images.npy", crops)
    _save_npy(folder / "seg.npy", seg_crops)
    meta = {
        "options": options.key(),
        "case_id": case.case_id,
        "shape": list(volumes.geometry.shape),
        "bbox": list(bbox),
        "slice_indices": [int(i) for i in selected],
        "scales": {m.value: scales[m] for m in MODALITIES},
        "fingerprint": _fingerprint(case),
    }
    atomic_write_text(folder / "meta.json", json.dumps(meta, indent=1))
    return _cached_case(folder, meta)


def _usable(case: Case) -> bool:
    missing = [m.value for m in MODALITIES if m not in case.images]
    if missing or case.seg is None:
        what = ", ".join(missing + ([] if case.seg is not None else ["seg"]))
        logger.warning("%s: skipped for training (lacks %s)", case.case_id, what)
        return False
    return True


def build_slice_cache(
    cases: Sequence[Case],
    cache_dir: Path,
    options: CacheOptions = CacheOptions(),
    *,
    workers: int = 0,
    progress: bool | None = None,
) -> list[CachedCase]:
    """Cache every complete case (4 modalities + seg; others are skipped with a warning).

    `workers` > 1 builds cases in that many processes. Valid entries are reused without reading the
    NIfTI files. Raises `InputError` when no case is usable.
    """
    usable = [c for c in cases if _usable(c)]
    if not usable:
        raise InputError(
            f"expected training cases with 4 modalities and a seg, found none among {len(cases)} case folders"
        )
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    bar = dict(total=len(usable), desc="slice cache", unit="case", disable=None if progress is None else not progress)
    if workers > 1 and len(usable) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            jobs = pool.map(cache_case, usable, [cache_dir] * len(usable), [options] * len(usable))
            cached = list(tqdm(jobs, **bar))
    else:
        cached = [cache_case(case, cache_dir, options) for case in tqdm(usable, **bar)]
    logger.info("slice cache %s: %d cases, %d slices", cache_dir, len(cached), sum(c.n_slices for c in cached))
    return cached


def split_cases(case_ids: Sequence[str], validation_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Deterministic train / validation split by case: a seeded permutation of the sorted ids.

    At least one case stays in training; with `validation_fraction` > 0 and two or more cases at least
    one goes to validation. Returns (train_ids, validation_ids), each sorted.
    """
    ids = sorted(case_ids)
    if validation_fraction <= 0 or len(ids) < 2:
        return ids, []
    n_val = min(len(ids) - 1, max(1, round(validation_fraction * len(ids))))
    order = np.random.default_rng(seed).permutation(len(ids))
    val = {ids[i] for i in order[:n_val]}
    return [i for i in ids if i not in val], sorted(val)


def fit_intensity_model(cases: Sequence[CachedCase], target: Modality) -> IntensityModel:
    """The model that predicts `target`'s scale from its sources' scales, fitted on `cases`."""
    return IntensityModel.fit(target, sources_for(target), [c.scales for c in cases])


class SliceSample(NamedTuple):
    """One training example at the model size S: sources (3, S, S) and target (1, S, S) float32 in
    [-1, 1] (background and padding -1); seg (S, S) int64 labels 0..3."""

    sources: torch.Tensor
    target: torch.Tensor
    seg: torch.Tensor


def collate_slices(samples: SliceSample | Sequence[SliceSample]) -> SliceSample:
    """A batch as it comes from `SliceDataset.__getitems__`, or samples stacked with NumPy into one.

    torch's default collate stacks with its intra-op thread pool; on a small machine whose cores are
    busy (the training step, other processes) waking that pool costs ~10 ms a batch, 30 times the copy.
    """
    if isinstance(samples, SliceSample):
        return samples
    return SliceSample(
        *(torch.from_numpy(np.stack([field.numpy() for field in fields])) for fields in zip(*samples, strict=True))
    )


AUGMENT_STREAM = 0x61756700  # "aug": separates the augmentation draws from other seeded streams


class SliceDataset(Dataset):
    """The slices of `cases` for the dedicated model of `target`, padded to `image_size`.

    With an enabled `augmentation` every item is augmented (`brasyn.data.augment`) with a generator
    seeded by (seed, epoch, item): the same epoch gives the same slices whatever the worker count;
    `set_epoch` moves on to the next epoch's draws.
    """

    def __init__(
        self,
        cases: Sequence[CachedCase],
        target: Modality,
        image_size: int,
        augmentation: Augmentation | None = None,
        seed: int = 0,
    ) -> None:
        self.cases = list(cases)
        self.target = Modality(target)
        self.image_size = int(image_size)
        self.channels = [MODALITIES.index(m) for m in (*sources_for(self.target), self.target)]
        self.pads = [PadRecord.for_shape(c.shape[0], c.shape[1], self.image_size) for c in self.cases]
        self.index = [(k, j) for k, case in enumerate(self.cases) for j in range(case.n_slices)]
        self._arrays: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self.augmentation = augmentation if augmentation is not None and augmentation.enabled else None
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw the augmentation of `epoch` (set before the epoch's DataLoader starts its workers)."""
        self.epoch = int(epoch)

    def __getstate__(self) -> dict[str, Any]:  # memory maps are reopened in each worker process
        state = dict(self.__dict__)
        state["_arrays"] = OrderedDict()
        return state

    def __len__(self) -> int:
        return len(self.index)

    def _case_arrays(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The case's memory maps; the `OPEN_CASES` most recently used stay open (each map holds a
        file descriptor: caching all of BraTS would exceed the usual limit of 1024)."""
        if k in self._arrays:
            self._arrays.move_to_end(k)
        else:
            self._arrays[k] = (self.cases[k].images(), self.cases[k].seg())
            if len(self._arrays) > OPEN_CASES:
                self._arrays.popitem(last=False)
        return self._arrays[k]

    def locate(self, i: int) -> tuple[str, int, PadRecord]:
        """(case id, axial slice index, pad record) of item `i`; crop with the record to compare unpadded."""
        k, j = self.index[i]
        return self.cases[k].case_id, self.cases[k].slice_indices[j], self.pads[k]

    def __getitem__(self, i: int) -> SliceSample:
        batch = self.__getitems__([i])
        return SliceSample(batch.sources[0], batch.target[0], batch.seg[0])

    def __getitems__(self, indices: Sequence[int]) -> SliceSample:
        """Items `indices` as one batch: sources (B, 3, S, S), target (B, 1, S, S), seg (B, S, S).

        The DataLoader fetches a whole batch through this method (then `collate_slices` passes it
        on): each slice is written once into the batch arrays, with no per-item arrays to stack.
        """
        return self.batch(indices, augment=True)

    def batch(self, indices: Sequence[int], *, augment: bool = True) -> SliceSample:
        """`__getitems__`; `augment=False` serves the slices as cached even when augmentation is on
        (BatchNorm recalibration, inspection)."""
        n, size = len(indices), self.image_size
        sources = torch.from_numpy(np.full((n, 3, size, size), BACKGROUND, dtype=np.float32))  # (B, 3, S, S)
        target = torch.from_numpy(np.full((n, 1, size, size), BACKGROUND, dtype=np.float32))  # (B, 1, S, S)
        labels = np.zeros((n, size, size), dtype=np.int64)
        for b, i in enumerate(indices):
            k, j = self.index[i]
            images, seg = self._case_arrays(k)
            r0, r1, c0, c1 = self.cases[k].bbox
            pad = self.pads[k]
            rows = slice(pad.top + r0, pad.top + r1)
            cols = slice(pad.left + c0, pad.left + c1)
            block = torch.from_numpy(np.ascontiguousarray(images[j][self.channels]))  # (3 sources + target, h, w)
            _copy_serial(sources[b, :, rows, cols], block[:3])
            _copy_serial(target[b, :, rows, cols], block[3:])
            labels[b, rows, cols] = seg[j]
            if augment and self.augmentation is not None:
                rng = np.random.default_rng([self.seed, AUGMENT_STREAM, self.epoch, int(i)])
                s, t, lab = augment_slice(sources[b].numpy(), target[b].numpy(), labels[b], self.augmentation, rng)
                sources[b], target[b], labels[b] = torch.from_numpy(s), torch.from_numpy(t), lab
        return SliceSample(sources, target, torch.from_numpy(labels))


_SERIAL_ELEMENTS = 32768  # torch's grain size: element-wise ops on fewer elements stay on the calling thread


def _copy_serial(destination: torch.Tensor, src: torch.Tensor) -> None:
    """destination (C, h, w) float32 <- src (C, h, w) float16 or float32, in row blocks small enough to
    stay on this thread. torch's conversion is ~10x faster than NumPy's float16 cast; its thread pool
    is what this avoids (see `collate_slices`)."""
    step = max(1, _SERIAL_ELEMENTS // max(1, src.shape[0] * src.shape[2]))
    for start in range(0, src.shape[1], step):
        destination[:, start : start + step].copy_(src[:, start : start + step])
