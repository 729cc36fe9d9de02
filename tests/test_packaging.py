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


# ---------------------------------------------------------------------------------------------------
# One torch (and one set of dependencies) for the tests and the image


def constraints(*, here_only: bool = False) -> dict[str, str]:
    """name -> pinned version from constraints.txt (with `here_only`, only pins whose marker holds here)."""
    from packaging.requirements import Requirement

    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", f"constraints.txt: {line!r} is not pinned with =="
        if here_only and requirement.marker is not None and not requirement.marker.evaluate():
            continue
        pins[canonical(requirement.name)] = specifier.version
    return pins


def test_the_image_python_satisfies_every_pin_marker():
    from packaging.requirements import Requirement
    from test_container import instructions

    base = [args for keyword, args in instructions() if keyword == "FROM"][-1]  # the image's own stage
    python = re.match(r"python:(3\.\d+)", base).group(1)
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and Requirement(line).marker is not None:
            assert Requirement(line).marker.evaluate({"python_version": python}), (
                f"{line} does not apply to the image's Python {python}"
            )


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_requirements() -> dict[str, str]:
    """name -> specifier of the package's runtime dependencies (pyproject.toml)."""
    import tomllib

    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    out = {}
    for dep in deps:
        match = re.match(r"^\s*([A-Za-z0-9_.-]+)\s*(.*)$", dep)
        out[canonical(match.group(1))] = match.group(2).strip()
    return out


def release(version: str) -> str:
    return version.split("+", 1)[0]  # 2.13.0+cpu -> 2.13.0 (the local label names the build, not the release)


def test_the_tests_run_the_pinned_torch():
    import torch

    assert release(torch.__version__) == constraints()["torch"], (
        "the test venv's torch is not the image's (run `make install`)"
    )


def test_make_test_lints_with_the_configured_line_length_before_pytest():
    """`make test` fails on a lint error (a line over `line-length` included) before running the tests."""
    import tomllib

    recipe = make_recipe("test").splitlines()
    lint = next(i for i, line in enumerate(recipe) if "ruff check project tests bench" in line)
    assert lint < next(i for i, line in enumerate(recipe) if "pytest" in line)
    lint_config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["ruff"]
    assert lint_config["line-length"] == 120
    assert "E" in lint_config["lint"]["select"] and "E501" not in lint_config["lint"]["ignore"]


def test_makefile_installs_the_pinned_torch_and_constraints():
    result = subprocess.run(
        ["make", "-s", "--no-print-directory", "--eval", "print-%: ; @echo $($*)", "print-TORCH_SPEC"],
        cwd=REPO, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"torch=={constraints()['torch']}"
    recipe = make_recipe("$(VENV)/.installed")
    assert '-c $(CONSTRAINTS) -e ".[dev]"' in recipe
    assert "CONSTRAINTS := constraints.txt" in MAKEFILE.read_text()


def test_every_runtime_dependency_is_pinned_within_its_range_and_installed_at_the_pin():
    from importlib.metadata import version

    from packaging.specifiers import SpecifierSet

    pins, here, requirements = constraints(), constraints(here_only=True), runtime_requirements()
    assert set(requirements) <= set(pins), f"unpinned: {sorted(set(requirements) - set(pins))}"
    for name, specifier in requirements.items():
        assert pins[name] in SpecifierSet(specifier), f"{name}=={pins[name]} is outside pyproject's {specifier}"
        if name in here:  # (on Python 3.10 the pins needing 3.11 do not apply)
            assert release(version(name)) == pins[name], (
                f"{name}: the tests run {version(name)}, the image ships {pins[name]}"
            )


def test_the_image_installs_torch_and_the_rest_from_the_same_pins():
    from test_container import copies, instructions

    assert ("constraints.txt", "/tmp/build/") in copies()
    runs = [args for keyword, args in instructions() if keyword == "RUN"]
    (install,) = [r for r in runs if "-r /tmp/build/requirements.txt" in r]
    assert "-c /tmp/build/constraints.txt" in install
    assert (
        "torch" not in install.split("-c /tmp/build/constraints.txt")[0].split("pip install")[-1]
    )  # no torch of its own
    generated = install.split(">", 1)[0]
    assert "startswith('torch')" not in generated  # torch is no longer left to a base image
    # PyPI's (CUDA) Linux wheel by default; PyTorch's index only for another CUDA build asked for by name
    # (the build argument, test_container.py), for the same pinned release
    pip_commands = [c for r in runs for c in r.split("&&") if "pip install" in c]
    requirements = next(c for c in pip_commands if "-r /tmp/build/requirements.txt" in c)
    assert "--index-url" not in requirements and "--extra-index-url" not in install
    assert [c for c in pip_commands if "--index-url" in c] == [c for c in pip_commands if "TORCH_CUDA" in c]
    for base in [args for keyword, args in instructions() if keyword == "FROM"]:
        assert not base.startswith("pytorch/"), base


# ---------------------------------------------------------------------------------------------------
# One image name


def test_one_image_name_in_the_makefile_and_the_manifests():
    import yaml

    cube = yaml.safe_load((REPO / "mlcube" / "mlcube.yaml").read_text())
    medperf = yaml.safe_load((REPO / "mlcube" / "container_config.yaml").read_text())
    brats = yaml.safe_load((REPO / "mlcube" / "brats_algorithm.yml").read_text())["algorithms"]
    names = {
        "Makefile IMAGE": make_variable("IMAGE"),
        "mlcube.yaml": cube["docker"]["image"],
        "container_config.yaml": medperf["image"],
        **{f"brats_algorithm.yml {key}": entry["run_args"]["docker_image"] for key, entry in brats.items()},
    }
    assert len(set(names.values())) == 1, names
    assert re.fullmatch(
        r"[a-z0-9]+(?:[._-][a-z0-9]+)*/[a-z0-9]+(?:[._-][a-z0-9]+)*:[\w][\w.-]*", names["Makefile IMAGE"]
    )
    assert "-t $(IMAGE) ." in make_recipe("docker-build")
    assert "$(if $(TORCH_CUDA),--build-arg TORCH_CUDA=$(TORCH_CUDA))" in make_recipe("docker-build")


def test_mlcube_builds_the_image_when_missing():
    """mlcube 0.0.9's default build_strategy `pull` never builds; `auto` builds when the image is missing
    and the Dockerfile exists, and pulls where it does not (a MedPerf data owner has only mlcube.yaml)."""
    import yaml

    cube = yaml.safe_load((REPO / "mlcube" / "mlcube.yaml").read_text())
    assert cube["docker"]["build_strategy"] == "auto"
    assert "-Pdocker.build_strategy=auto" in make_recipe("mlcube-run")
