"""The naive reference for `bench_inference.py`: what an ordinary first implementation does.

One case at a time with synchronous file I/O; every axial slice (no empty-slice skip) through the
network one at a time (batch 1, float32, NCHW, torch's default threads); the same normalization, the
same padding and its inverse, the same checkpoints, the same output files as the engine.
"""

from __future__ import annotations

import time
from pathlib import Path

import common  # noqa: F401  (puts project/ on sys.path)
import numpy as np
import torch

from brasyn.checkpoint import Checkpoint, checkpoint_filename
from brasyn.constants import Modality, image_filename, sources_for
from brasyn.data.cases import discover_cases, load_case
from brasyn.data.normalization import BACKGROUND, denormalize
from brasyn.data.slicing import crop_slices, pad_slices
from brasyn.io.nifti import write_volume


class NaiveModel:
    """One checkpoint on `device` in eval mode, float32."""

    def __init__(self, path: Path, device: str) -> None:
        checkpoint = Checkpoint.load(path)
        self.device = torch.device(device)
        self.model = checkpoint.build_model().to(self.device).eval()
        self.intensity = checkpoint.intensity_model
        self.size = checkpoint.image_size
        self.normalization = checkpoint.normalization


def synthesize_case(
    model: NaiveModel, images: dict[Modality, np.ndarray], target: Modality, timings: dict
) -> np.ndarray:
    """The missing modality (H, W, D) scanner units; adds seconds per stage to `timings`."""
    clock = time.perf_counter()
    mask, scales, normalized = model.normalization.normalize_case({m: images[m] for m in sources_for(target)})
    stack = np.stack([normalized[m] for m in sources_for(target)])  # (3, H, W, D)
    stack = stack.transpose(3, 0, 1, 2)  # (D, 3, H, W)
    now = time.perf_counter()
    timings["normalize"] += now - clock
    clock = now
    outputs = []
    with torch.inference_mode():
        for z in range(stack.shape[0]):
            padded, record = pad_slices(
                np.ascontiguousarray(stack[z : z + 1]), model.size, value=BACKGROUND
            )  # (1, 3, S, S)
            out = model.model(torch.from_numpy(padded).to(model.device), with_segmentation=False)
            outputs.append(out.image[:, 0].clamp(-1, 1).cpu().numpy())  # (1, S, S)
    now = time.perf_counter()
    timings["network"] += now - clock
    clock = now
    image = crop_slices(np.concatenate(outputs), record)  # (D, H, W)
    volume = denormalize(image, model.intensity.predict_scale(scales)).transpose(1, 2, 0)  # (H, W, D)
    volume = np.where(mask, volume, 0.0).astype(np.float32)
    timings["restore"] += time.perf_counter() - clock
    return volume


def synthesize_folder(data: Path, output: Path, weights: Path, device: str = "cpu", models: dict | None = None) -> dict:
    """Every case of `data` into `output`; returns {stage: seconds summed over cases}, n cases."""
    timings = dict.fromkeys(("read", "normalize", "network", "restore", "write"), 0.0)
    models = {} if models is None else models
    output.mkdir(parents=True, exist_ok=True)
    cases = discover_cases(data)
    for case in cases:
        target = case.target
        if target not in models:
            models[target] = NaiveModel(Path(weights) / checkpoint_filename(target), device)
        clock = time.perf_counter()
        volumes = load_case(case, modalities=sources_for(target))
        timings["read"] += time.perf_counter() - clock
        volume = synthesize_case(models[target], volumes.images, target, timings)
        clock = time.perf_counter()
        write_volume(volume, output / image_filename(case.case_id, target), volumes.geometry, dtype=np.int16)
        timings["write"] += time.perf_counter() - clock
    return {"cases": len(cases), "stages": timings}
