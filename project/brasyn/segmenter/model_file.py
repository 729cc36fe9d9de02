"""The bundled segmenter's checkpoint: a plain dict that loads with `torch.load(weights_only=True)`.

    format           int, SEGMENTER_FORMAT
    kind             "segmenter"
    channels         input sequences in channel order ["t1n", "t1c", "t2w", "t2f"]
    model_config     `SegmenterConfig.to_dict()`
    state_dict       weights (float16 on disk)
    normalization    `Normalization.to_dict()` (the synthesis models' definition, applied to each sequence)
    training_config  plain dict: cohort, steps, crop, batch, learning rate, seed, threads, seconds
    metrics          plain dict: Dice ET/TC/WT on the real four sequences of held-out cases
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from brasyn import __version__
from brasyn.constants import MODALITIES
from brasyn.data.normalization import Normalization
from brasyn.errors import CheckpointError
from brasyn.io.torch_files import float32_state, load_weights_file, save_weights_file
from brasyn.models.segmenter import SegmenterConfig, SegmenterUNet

SEGMENTER_FORMAT = 1
SEGMENTER_KIND = "segmenter"
SEGMENTER_FILENAME = "segmenter.pt"
REQUIRED_KEYS = ("format", "kind", "channels", "model_config", "state_dict", "normalization")


def default_segmenter_path() -> Path:
    """`workspace/segmenter/segmenter.pt` of the source tree this package is installed from (editable install)."""
    return Path(__file__).resolve().parents[3] / "workspace" / "segmenter" / SEGMENTER_FILENAME


def save_segmenter(
    path: Path,
    model: SegmenterUNet,
    config: SegmenterConfig,
    normalization: Normalization,
    *,
    training_config: dict[str, Any],
    metrics: dict[str, Any],
) -> Path:
    """Write the checkpoint atomically with float16 weights (BatchNorm's step counters stay integers)."""
    payload = {
        "format": SEGMENTER_FORMAT,
        "kind": SEGMENTER_KIND,
        "channels": [m.value for m in MODALITIES],
        "model_config": config.to_dict(),
        "state_dict": {
            k: (v.detach().cpu().half() if torch.is_floating_point(v) else v.detach().cpu())
            for k, v in model.state_dict().items()
        },
        "normalization": normalization.to_dict(),
        "training_config": training_config,
        "metrics": metrics,
        "code_version": __version__,
    }
    return save_weights_file(payload, path)


def load_segmenter(path: Path) -> tuple[SegmenterUNet, Normalization, dict[str, Any]]:
    """(eval-mode float32 network, normalization, the whole checkpoint dict); errors are `CheckpointError`s."""
    path = Path(path)
    payload = load_weights_file(path, "segmenter checkpoint", " (train one with `brasyn segmenter fit`)")
    if not isinstance(payload, dict) or any(k not in payload for k in REQUIRED_KEYS):
        raise CheckpointError(f"{path}: not a brasyn segmenter checkpoint (expected keys {', '.join(REQUIRED_KEYS)})")
    if payload["kind"] != SEGMENTER_KIND or payload["format"] != SEGMENTER_FORMAT:
        raise CheckpointError(
            f"{path}: expected a {SEGMENTER_KIND} checkpoint of format {SEGMENTER_FORMAT}, "
            f"found {payload['kind']!r} format {payload['format']!r}"
        )
    if list(payload["channels"]) != [m.value for m in MODALITIES]:
        raise CheckpointError(f"{path}: unexpected channel order {payload['channels']}")
    config = SegmenterConfig.from_dict(dict(payload["model_config"]))
    model = SegmenterUNet.from_config(config)
    try:
        model.load_state_dict(float32_state(payload["state_dict"]))
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not match the model config ({exc})") from exc
    model.eval()
    return model, Normalization.from_dict(payload["normalization"]), payload
