"""`brasyn train DATA OUT`: train the dedicated models (SR autoencoder, then the GAN) per target."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer

from brasyn.cli_support import progress_option
from brasyn.constants import TARGET_CHOICES
from brasyn.device import DEVICES, check_device


def train_command(
    data: Path = typer.Argument(..., help="Folder of complete BraTS-format training cases (4 modalities + seg)."),
    out: Path = typer.Argument(
        ..., help="Run folder: checkpoints brasyn_<target>.pt, config.yaml, metrics, resume state."
    ),
    config: str = typer.Option("paper", "--config", "-c", help="Preset (paper, synthetic, demo, tiny) or a YAML file."),
    target: list[str] = typer.Option(
        ["all"], "--target", "-t", help=f"{TARGET_CHOICES}; repeatable or comma-separated."
    ),
    max_steps: int | None = typer.Option(None, "--max-steps", min=1, help="Cap the optimizer steps of each stage."),
    device: str | None = typer.Option(None, "--device", help=f"{DEVICES} (overrides the config)."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Continue from the run folder's resume files."),
    prepare_only: bool = typer.Option(
        False, "--prepare-only", help="Only build the slice cache (then per-target runs started in parallel share it)."
    ),
    progress: bool | None = progress_option(),
) -> None:
    """Train one dedicated model per target modality and write its checkpoint into OUT.

    Multi-GPU: `torchrun --nproc_per_node N -m brasyn.cli train ...` (DDP; rank 0 writes).
    """
    from brasyn.constants import parse_targets
    from brasyn.training import load_training_setup, train

    if device is not None:
        check_device(device, "--device")
    setup = load_training_setup(config)
    training = setup.training
    if max_steps is not None:
        training = dataclasses.replace(
            training,
            stage1=dataclasses.replace(training.stage1, max_steps=max_steps),
            stage2=dataclasses.replace(training.stage2, max_steps=max_steps),
        )
    if device is not None:
        training = dataclasses.replace(training, device=device)
    if progress is not None:
        training = dataclasses.replace(training, progress=progress)
    setup = dataclasses.replace(setup, training=training)
    checkpoints = train(data, out, setup, parse_targets(target), resume=resume, prepare_only=prepare_only)
    if prepare_only:
        typer.echo(f"slice cache ready in {out / (setup.training.data.cache_dir or 'cache')}")
    for modality, path in checkpoints.items():
        typer.echo(f"{modality}: {path}")
