#!/usr/bin/env python3
"""MLCube / MedPerf / plain-Docker entrypoint of the brasyn model.

    python mlcube.py infer --data_path=DATA --output_path=OUT [--parameters_file=FILE] [--weights=DIR]
    python mlcube.py train --data_path=DATA --output_path=WEIGHTS [--parameters_file=FILE]

Options come in `--key=value` form (as MLCube and MedPerf pass them). Defaults for
`--parameters_file` and `--weights` are found next to this file: `workspace/parameters.yaml` and
`workspace/additional_files/` (in the image: /mlcube_project/workspace/...), else in the repository's
top-level `workspace/` (this file lives in <repo>/project/). Runs without installing the package:
<repo>/project is put on sys.path when it holds `brasyn/`.
"""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if (HERE / "brasyn").is_dir() and str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import typer  # noqa: E402

from brasyn.cli_support import configure_logging, run_app  # noqa: E402
from brasyn.errors import ConfigError  # noqa: E402

logger = logging.getLogger("brasyn.mlcube")


def workspace_default(relative: str) -> Path:
    """`relative` under the first workspace that has it: <here>/workspace (image), <here>/../workspace (repo)."""
    candidates = [HERE / "workspace" / relative, HERE.parent / "workspace" / relative]
    for candidate in candidates:
        if candidate.exists():
            return candidate
    return candidates[-1]


DEFAULT_PARAMETERS = workspace_default("parameters.yaml")
DEFAULT_WEIGHTS = workspace_default("additional_files")
TRAINING_SUBFOLDER = "training"  # train's run state under output_path

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, help="brasyn MLCube entrypoint.")


def read_parameters(path: Path) -> dict:
    """The parameters file as a mapping with optional infer:/train: sections.

    A missing or empty file means the defaults, with one log line: current MedPerf mounts a
    parameters file only when one was registered with the cube, and the `brats` package passes an
    empty one. A file that is not a mapping, or has another section, is a `ConfigError`.
    """
    from brasyn.config import load_yaml

    path = Path(path)
    if not path.exists():
        logger.info("parameters file %s not found: using the default settings", path)
        return {}
    if not path.is_file():
        raise ConfigError(f"{path}: expected a parameters file (YAML), found a folder")
    data = load_yaml(path)  # {} when empty; a ConfigError when not a mapping
    if not data:
        logger.info("parameters file %s is empty: using the default settings", path)
        return {}
    unknown = sorted(set(data) - {"infer", "train"})
    if unknown:
        raise ConfigError(f"{path}: unknown section {unknown[0]} (valid: infer, train)")
    return data


@app.command("infer")
def infer(
    data_path: Path = typer.Option(..., "--data_path", help="Folder of case folders."),
    output_path: Path = typer.Option(..., "--output_path", help="Folder for {case}-{missing}.nii.gz."),
    parameters_file: Path = typer.Option(DEFAULT_PARAMETERS, "--parameters_file", help="YAML with an infer: section."),
    weights: Path = typer.Option(
        DEFAULT_WEIGHTS, "--weights", help="Folder holding brasyn_{target}.pt (empty: the image's weights are used)."
    ),
) -> None:
    """Synthesize each case's missing modality into output_path.

    Exit status (brasyn.inference.exit_policy): 0 when every case was attempted and the only failures
    are cases' own input errors (listed in the summary); 1 for failures every case may share (weights,
    output folder, configuration, unexpected errors) or when no case has a prediction; with
    `infer.strict: true` in the parameters file, 1 whenever any case failed.
    """
    from brasyn.inference import exit_decision, resolve_weights, synthesize_folder
    from brasyn.inference.settings import InferParameters

    parameters = InferParameters.from_dict(read_parameters(parameters_file).get("infer"))
    settings, strict = parameters.settings, parameters.strict
    weights = resolve_weights(weights, fallback=DEFAULT_WEIGHTS)  # MedPerf's additional_files may be empty
    logger.info(
        "infer: data %s -> %s, weights %s, settings %s, strict %s",
        data_path,
        output_path,
        weights,
        settings.to_dict(),
        strict,
    )
    summary = synthesize_folder(data_path, output_path, weights, settings=settings)
    decision = exit_decision(summary, strict=strict)
    typer.echo(summary.format())
    typer.echo(f"exit status {decision.status}: {decision.reason}")
    if decision.status:
        raise typer.Exit(decision.status)


@app.command("train")
def train(
    data_path: Path = typer.Option(..., "--data_path", help="Folder of complete training cases (with segmentations)."),
    output_path: Path = typer.Option(..., "--output_path", help="Folder for the four checkpoints brasyn_{target}.pt."),
    parameters_file: Path = typer.Option(DEFAULT_PARAMETERS, "--parameters_file", help="YAML with a train: section."),
) -> None:
    """Train the four dedicated models; their checkpoints land in output_path (run state in output_path/training/)."""
    from brasyn.checkpoint import checkpoint_filename
    from brasyn.io.atomic import atomic_path
    from brasyn.training import TrainParameters
    from brasyn.training import train as run_training

    parameters = TrainParameters.from_dict(read_parameters(parameters_file).get("train"))
    setup, targets = parameters.setup, parameters.targets
    output_path.mkdir(parents=True, exist_ok=True)
    # Run state (slice cache, resume files, metrics) stays in a sub-folder so that output_path's top
    # level holds exactly the checkpoints inference reads (the additional_files MedPerf ships).
    checkpoints = run_training(data_path, output_path / TRAINING_SUBFOLDER, setup, targets, resume=True)
    for target, path in checkpoints.items():
        destination = output_path / checkpoint_filename(target)
        if Path(path).resolve() != destination.resolve():
            with atomic_path(destination) as tmp:
                shutil.copy2(path, tmp)
        typer.echo(f"{target}: {destination}")


@app.command("hotfix")
def hotfix() -> None:
    """No-op (MLCube templates call it; it also keeps `infer` an explicit sub-command)."""


def main() -> None:
    configure_logging()
    run_app(app)


if __name__ == "__main__":
    main()
