"""Atomic file writing: write a temporary file beside the destination, then rename it into place.

Readers never see a half-written file, and a failed write leaves neither the temporary file nor a
truncated destination (an existing destination keeps its old content). Only a process killed
outright (SIGKILL: the OOM killer, a runner's timeout) can leave its temporary file behind:
`remove_stale_temporaries` clears those, and only those, from a folder before the next run writes
to it. The temporary file stays in the destination's folder because a rename is atomic only within
one filesystem (MedPerf mounts /tmp and the output folder separately).
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

logger = logging.getLogger(__name__)

DEFAULT_MODE = 0o644  # mkstemp creates 0600 files; written outputs are meant to be readable by others
TEMPORARY_SUFFIX = ".tmp"
# atomic_path's temporary names: ".{destination}.{8 characters of mkstemp}.tmp{destination's suffix}"
_TEMPORARY_NAME = re.compile(r"^\.(?P<destination>.+)\.[a-z0-9_]{8}\.tmp(?P<suffix>.*)$")


def full_suffix(path: Path) -> str:
    """The suffix writers look at: ".nii.gz" kept whole (nibabel picks gzip from it), else `path.suffix`."""
    name = Path(path).name
    return ".nii.gz" if name.endswith(".nii.gz") else Path(name).suffix


@contextmanager
def atomic_path(path: Path, *, mode: int = DEFAULT_MODE) -> Iterator[Path]:
    """Yield a unique temporary path beside `path` (same suffix); on success chmod it to `mode` and rename it to `path`.

    The temporary file exists (empty) when the block starts; the block writes to it by name. On any
    exception (including KeyboardInterrupt) it is removed and `path` is left untouched. The parent
    folder must exist.
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=f"{TEMPORARY_SUFFIX}{full_suffix(path)}", dir=path.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str, *, mode: int = DEFAULT_MODE, newline: str | None = None) -> Path:
    """Write `text` (UTF-8) to `path` atomically; returns `path`."""
    path = Path(path)
    with atomic_path(path, mode=mode) as tmp, open(tmp, "w", encoding="utf-8", newline=newline) as handle:
        handle.write(text)
    return path


def is_temporary_name(name: str) -> bool:
    """True for a name `atomic_path` gives its temporary files (and for no other name)."""
    match = _TEMPORARY_NAME.match(name)
    return bool(match) and match["suffix"] == full_suffix(Path(match["destination"]))


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files an earlier, killed writer left in `folder` (not in sub-folders);
    returns them. Other files are never touched. Not for a folder another process is writing to."""
    removed = []
    for path in sorted(Path(folder).iterdir()):
        if is_temporary_name(path.name) and path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)
            removed.append(path)
            logger.warning("removed %s, left by an interrupted earlier run", path)
    return removed
