"""What the Makefile, the Dockerfile and the container manifests must agree on: the mlcube client's venv
works on Python >= 3.12, the image's torch and other dependencies are the versions the tests run, and
one image name is used everywhere."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tools import require_tool

REPO = Path(__file__).resolve().parents[1]
MAKEFILE = REPO / "Makefile"
MLCUBE_PYTHON = REPO / ".venv-mlcube" / "bin" / "python"


def make_recipe(target: str) -> str:
    """The recipe lines of `target` (or of its `$(VAR)/.installed` stamp rule) in the Makefile."""
    lines = MAKEFILE.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(rf"^{re.escape(target)}:", line))
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    return "\n".join(recipe)


def make_variable(name: str) -> str:
    match = re.search(rf"^{name} \?= (.+)$", MAKEFILE.read_text(), flags=re.M)
    assert match, f"{name} is not set in the Makefile"
    return match.group(1).strip()


# ---------------------------------------------------------------------------------------------------
# The mlcube client's venv


def test_mlcube_venv_installs_setuptools_for_distutils():
    """mlcube 0.0.9 does `from distutils import dir_util` (mlcube/shell.py); Python 3.12 removed
    distutils, and a 3.12 venv has no setuptools to provide it unless asked."""
    recipe = make_recipe("$(MLCUBE_VENV)/.installed")
    install_lines = [line for line in recipe.splitlines() if "pip install" in line]
    assert any(re.search(r"\bsetuptools\b", line) for line in install_lines), recipe
    assert "import distutils, mlcube.shell" in recipe  # the recipe checks it at once


def test_mlcube_venv_imports_distutils_and_the_client():
    require_tool(MLCUBE_PYTHON, "the mlcube client venv is missing (run `make mlcube-venv`)")
    result = subprocess.run(
        [str(MLCUBE_PYTHON), "-c", "import distutils.dir_util, mlcube.shell, mlcube_docker.docker_run"],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
