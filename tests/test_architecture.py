"""The package's layering, read from the source with `ast` (nothing is imported).

Networks and data know nothing of how they are trained, served or scored, so `brasyn.models` and
the data packages stay usable (and testable) on their own, and no two modules import each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "project" / "brasyn"

LOWER_PACKAGES: tuple[str, ...] = ("brasyn.models", "brasyn.data", "brasyn.phantom")
"""Packages at the bottom of the pipeline (the synthetic cohort generator `brasyn.phantom` included)."""

UPPER_PACKAGES: tuple[str, ...] = (
    "brasyn.training",
    "brasyn.inference",
    "brasyn.checkpoint",
    "brasyn.commands",
    "brasyn.cli",
    "brasyn.evaluation",
)
"""What the lower packages must never import."""


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE_ROOT.rglob("*.py"))}


def _imports(path: Path, module: str, known: set[str]) -> set[str]:
    """The brasyn modules `module` imports anywhere in its file (functions included).

    `from a.b import c` counts as an import of the module `a.b.c` when that is a module, else of `a.b`."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {name for name in found if name == "brasyn" or name.startswith("brasyn.")}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(path, name, known) - {name} for name, path in modules.items()}


def _within(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_the_graph_is_read():
    graph = _graph()
    assert "brasyn.models.generator" in graph and "brasyn.models.config" in graph["brasyn.models.generator"]
    assert "brasyn.data.cases" in graph["brasyn.inference.engine"]


def test_cycle_finder_finds_a_cycle():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle():
    cycle = _find_cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize("lower", LOWER_PACKAGES)
def test_lower_packages_never_import_upward(lower):
    upward = sorted(
        f"{module} imports {target}"
        for module, targets in _graph().items()
        if _within(module, (lower,))
        for target in targets
        if _within(target, UPPER_PACKAGES)
    )
    assert upward == []


# ---------------------------------------------------------------------------------------------------
# Error families: the runners' exit status depends on the class of what was raised


def _raised_names(path: Path) -> list[tuple[int, str]]:
    """(line, class name) of every `raise Name(...)` / `raise Name` in the file (re-raises skipped)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Raise) and node.exc is not None:
            target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)
            if name and name[0].isupper():  # a class; `raise exc` re-raises a caught error
                found.append((node.lineno, name))
    return found


def _family_problems(path: Path, package: str, shown: str | None = None) -> list[str]:
    import brasyn.errors as errors

    families = (
        errors.InputError, errors.ConfigError, errors.CheckpointError, errors.InferenceError, errors.OutputError,
        errors.ContractError,
    )
    problems = []
    for line, name in _raised_names(path):
        cls = getattr(errors, name, None)
        where = f"{shown or path.relative_to(PACKAGE_ROOT)}:{line} raises {name}"
        if not (isinstance(cls, type) and issubclass(cls, families)):
            problems.append(f"{where}: not one of the families in brasyn.errors")
        elif package == "models" and issubclass(cls, errors.InputError):
            problems.append(f"{where}: a network never judges a case's input (ContractError or ConfigError)")
    return problems


@pytest.mark.parametrize("package", ["models", "data", "inference"])
def test_every_raise_belongs_to_an_error_family(package):
    files = sorted((PACKAGE_ROOT / package).rglob("*.py"))
    assert files
    problems = [problem for path in files for problem in _family_problems(path, package)]
    assert problems == []


def test_the_family_check_can_fail(tmp_path):
    bad = tmp_path / "probe.py"
    bad.write_text("def f(x):\n    raise ValueError(x)\n\ndef g():\n    raise InputError('case')\n")
    problems = _family_problems(bad, "models", shown="models/probe.py")
    assert [p.split(": ", 1)[0] for p in problems] == [
        "models/probe.py:2 raises ValueError",
        "models/probe.py:5 raises InputError",
    ]


# ---------------------------------------------------------------------------------------------------
# The checkpoint's keys: read by `brasyn.checkpoint.Checkpoint` only

CHECKPOINT_KEYS = frozenset(
    {"intensity_model", "model_config", "state_dict", "normalization", "training_config", "data_summary"}
)
RESUME_FILE_KEYS = {
    "brasyn.training.state": {"model_config", "training_config"},
    "brasyn.segmenter.model_file": {"model_config", "state_dict", "normalization"},
}
"""Files of their own format, each read by one module, that share key names with checkpoints: the
training resume file and the bundled segmenter's file."""


def _key_reads(path: Path) -> list[tuple[int, str]]:
    """(line, key) of `x["key"]` loads and `x.get("key")` calls with a checkpoint key."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        key = None
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            key = getattr(node.slice, "value", None)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
            key = getattr(node.args[0], "value", None) if node.args else None
        if isinstance(key, str) and key in CHECKPOINT_KEYS:
            found.append((node.lineno, key))
    return found


def test_only_the_checkpoint_record_reads_checkpoint_keys():
    reads = {
        module: [(line, key) for line, key in _key_reads(path) if key not in RESUME_FILE_KEYS.get(module, ())]
        for module, path in _modules().items()
        if module != "brasyn.checkpoint"
    }
    assert {module: found for module, found in reads.items() if found} == {}
    assert _key_reads(PACKAGE_ROOT / "checkpoint.py")  # the check sees the reads where they belong


RUN_OPTIONS = ("device", "precision", "batch_size", "channels_last", "mirror_axes", "overwrite", "progress")
"""`InferenceSettings` fields: how a run goes, which travel as that one record, never loose."""


def _signatures(tree: ast.Module) -> dict[str, ast.arguments]:
    return {node.name: node.args for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}


def test_inference_settings_travel_as_one_record():
    """The inference entry points (engine, one-call API, predictor) take the settings record: no loose
    run option and no `**overrides` beside it, so a setting is validated once, where it is made."""
    checked = {
        "inference/engine.py": ("synthesize_folder", "load_predictors"),
        "inference/api.py": ("synthesize",),
        "inference/predictor.py": ("__init__", "from_checkpoint", "from_record"),
    }
    for relative, functions in checked.items():
        signatures = _signatures(ast.parse((PACKAGE_ROOT / relative).read_text()))
        for function in functions:
            args = signatures[function]
            names = {a.arg for a in args.args + args.kwonlyargs}
            assert args.kwarg is None, f"{relative}: {function} takes **{args.kwarg.arg}"
            assert "settings" in names, f"{relative}: {function} does not take the settings record"
            assert not names & set(RUN_OPTIONS), f"{relative}: {function} takes {sorted(names & set(RUN_OPTIONS))}"
