"""Atomic file writing: write a temporary file beside the destination, then rename it into place.

Readers never see a half-written file, and a failed write leaves neither the temporary file nor a
truncated destination (an existing destination keeps its old content).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DEFAULT_MODE = 0o644  # mkstemp creates 0600 files; written outputs are meant to be readable by others


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
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{full_suffix(path)}", dir=path.parent)
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
