"""Which folder the checkpoints are read from, when the folder a runner gives may hold none.

MedPerf always mounts the cube's `additional_files` folder and passes it as `--weights`: empty when
the cube was registered without a weights tarball (the weights are baked into the image), or holding
the tarball's top folder when the tarball was made of the folder itself (`tar czf w.tar.gz
additional_files/` unpacks to `additional_files/additional_files/brasyn_*.pt`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from brasyn.checkpoint import checkpoint_filename
from brasyn.constants import MODALITIES
from brasyn.errors import CheckpointError

logger = logging.getLogger(__name__)

CHECKPOINT_NAMES = "brasyn_{t1n,t1c,t2w,t2f}.pt"
WEIGHTS_ENV = "BRASYN_WEIGHTS"


def default_weights_dir() -> Path:
    """$BRASYN_WEIGHTS, else `workspace/additional_files` of the source checkout this package runs from."""
    if os.environ.get(WEIGHTS_ENV):
        return Path(os.environ[WEIGHTS_ENV])
    return Path(__file__).resolve().parents[3] / "workspace" / "additional_files"


def holds_checkpoints(folder: Path) -> bool:
    """True when `folder` holds at least one `brasyn_{target}.pt`."""
    return any((Path(folder) / checkpoint_filename(target)).is_file() for target in MODALITIES)


def find_checkpoint_folder(folder: Path) -> Path | None:
    """`folder` when it holds checkpoints, else its only sub-folder that does (a tarball unpacked one
    folder deep), else None. Two such sub-folders are ambiguous: a `CheckpointError`."""
    folder = Path(folder)
    if holds_checkpoints(folder):
        return folder
    if not folder.is_dir():
        return None
    inside = [sub for sub in sorted(folder.iterdir()) if sub.is_dir() and holds_checkpoints(sub)]
    if len(inside) > 1:
        names = ", ".join(sub.name for sub in inside)
        raise CheckpointError(
            f"{folder}: expected {CHECKPOINT_NAMES} in it or in one folder inside it, found several folders ({names})"
        )
    return inside[0] if inside else None


def resolve_weights(given: Path, fallback: Path | None = None) -> Path:
    """The folder to load checkpoints from: `given` (or the one folder inside it that holds them);
    when it holds none, `fallback` (the weights in the image) with a warning naming both folders.

    Raises `CheckpointError` when neither holds a checkpoint: no case could be synthesized.
    """
    given = Path(given)
    found = find_checkpoint_folder(given)
    if found is not None:
        if found != given:
            logger.info("weights: %s holds no checkpoint itself; using the folder inside it, %s", given, found)
        return found
    if fallback is not None and Path(fallback).resolve() != given.resolve():
        found = find_checkpoint_folder(Path(fallback))
        if found is not None:
            logger.warning(
                "weights: %s holds no %s (nor does a folder inside it); using the weights in the image, %s",
                given, CHECKPOINT_NAMES, found,
            )
            return found
        raise CheckpointError(
            f"{given}: expected {CHECKPOINT_NAMES} (or one folder holding them), found none; "
            f"the image's {fallback} holds none either"
        )
    raise CheckpointError(f"{given}: expected {CHECKPOINT_NAMES} (or one folder holding them), found none")
