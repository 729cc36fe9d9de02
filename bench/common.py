"""Shared pieces of the benchmarks: model sizes, synthetic full-size cases on disk, random-initialised
checkpoints with the real schema, the machine's description and peak memory."""

from __future__ import annotations

import os
import platform
import resource
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "project") not in sys.path:
    sys.path.insert(0, str(REPO / "project"))

from brasyn.checkpoint import Checkpoint, checkpoint_filename  # noqa: E402
from brasyn.constants import BRATS_AFFINE, BRATS_SHAPE, MODALITIES, Modality, image_filename, sources_for  # noqa: E402
from brasyn.data.normalization import IntensityModel, Normalization  # noqa: E402
from brasyn.io.nifti import new_geometry, write_volume  # noqa: E402
from brasyn.models.config import ModelConfig  # noqa: E402
from brasyn.models.generator import Generator  # noqa: E402


def model_config(name: str) -> ModelConfig:
    """tiny (64 x 64, for tests), demo and paper: the presets in brasyn/presets."""
    from brasyn.training import load_training_setup

    return load_training_setup(name).model


def brain_volumes(shape=BRATS_SHAPE, seed: int = 0) -> dict[Modality, np.ndarray]:
    """Four volumes inside an ellipsoid 'brain' spanning ~90 % of the axial slices (background 0)."""
    rng = np.random.default_rng(seed)
    axes = [np.linspace(-1, 1, s, dtype=np.float32) for s in shape]
    x, y, z = np.meshgrid(*axes, indexing="ij")
    brain = (x / 0.75) ** 2 + (y / 0.85) ** 2 + (z / 0.92) ** 2 < 1
    pattern = 1 + 0.3 * x + 0.2 * np.sin(6 * y)
    out = {}
    for k, m in enumerate(MODALITIES):
        volume = 500.0 * (k + 1) * pattern + 20 * rng.standard_normal(shape, dtype=np.float32)
        out[m] = np.where(brain, np.clip(volume, 1, None), 0).astype(np.float32)
    return out


def write_cases(root: Path, n: int, *, shape=BRATS_SHAPE, target: Modality | None = None) -> list[str]:
    """`n` BraSyn validation-style case folders under `root` (three sources each, compressed NIfTI).
    The missing modality is `target`, or cycles through the four when None."""
    geometry = new_geometry(shape, BRATS_AFFINE)
    ids = []
    for k in range(n):
        case_id = f"BraTS-GLI-{k:05d}-000"
        missing = target or MODALITIES[k % len(MODALITIES)]
        folder = Path(root) / case_id
        folder.mkdir(parents=True, exist_ok=True)
        for m, volume in brain_volumes(shape, seed=k).items():
            if m != missing:
                write_volume(volume, folder / image_filename(case_id, m), geometry, dtype=np.int16)
        ids.append(case_id)
    return ids


def write_weights(folder: Path, config: ModelConfig, targets=MODALITIES, *, seed: int = 0) -> Path:
    """Random-initialised checkpoints brasyn_{target}.pt (real schema) for `targets`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for target in targets:
        torch.manual_seed(seed)
        sources = sources_for(target)
        intensity = IntensityModel(target, sources, intercept=0.0, coefficients=(1 / 3,) * 3)
        checkpoint = Checkpoint.of_model(
            kind="plave", target=target, model=Generator.from_config(config), model_config=config.to_dict(),
            intensity_model=intensity, normalization=Normalization(),
        )
        checkpoint.save(folder / checkpoint_filename(target))
    return folder


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """What ran the benchmark: CPU, cores, threads, torch, GPU."""
    info = {
        "cpu": cpu_name(),
        "cpus_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "gpu": None,
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info["gpu"] = f"{props.name} ({props.total_memory / 2**30:.0f} GiB, sm {props.major}.{props.minor})"
        info["cuda"] = torch.version.cuda
    return info


def reset_peak_rss() -> bool:
    """Reset this process's peak resident memory (Linux: VmHWM); False where it cannot be reset."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mib() -> float:
    """Peak resident memory of this process since the last reset (else since its start), MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
