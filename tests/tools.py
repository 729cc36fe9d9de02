"""External tools some tests need: skipped locally when missing, a failure under CI (CI=true)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def in_ci() -> bool:
    """True when the environment variable CI is set to anything but "", "0" or "false"."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false")


def require_tool(path: Path, why: str) -> None:
    """Skip the calling test when `path` does not exist; under CI fail it instead (a silent skip would hide the gap)."""
    if Path(path).exists():
        return
    if in_ci():
        pytest.fail(f"{why} (CI is set: a missing tool fails instead of skipping)", pytrace=False)
    pytest.skip(why)
