"""`brasyn baseline fit DATA OUT`: fit the polynomial reference baseline and write its checkpoints."""

from __future__ import annotations

from pathlib import Path

import typer

from brasyn.cli_support import progress_option
from brasyn.constants import TARGET_CHOICES, parse_targets

baseline_app = typer.Typer(
    help="The non-neural reference baseline (per-voxel polynomial regression).", no_args_is_help=True
)


@baseline_app.command("fit")
def fit_command(
    data: Path = typer.Argument(..., help="BraTS training folder: one sub-folder per case with 4 modalities (+ seg)."),
    out: Path = typer.Argument(..., help="Weights folder; receives brasyn_<target>.pt for `brasyn infer --weights`."),
    target: list[str] = typer.Option(
        ["all"], "--target", "-t", help=f"{TARGET_CHOICES}; repeatable or comma-separated."
    ),
    degree: int = typer.Option(2, "--degree", min=1, max=3, help="Polynomial degree (cross terms included)."),
    voxels_per_case: int = typer.Option(20000, "--voxels-per-case", min=1, help="Brain voxels sampled per case."),
    max_cases: int = typer.Option(0, "--max-cases", min=0, help="Use at most this many cases (0: all)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the voxel and case sampling."),
    progress: bool | None = progress_option(),
) -> None:
    """Fit one polynomial per target on DATA and save the checkpoints into OUT."""
    from brasyn.checkpoint import checkpoint_filename
    from brasyn.training.baseline_fit import BaselineFitConfig, fit_baselines

    targets = parse_targets(target)
    config = BaselineFitConfig(degree=degree, voxels_per_case=voxels_per_case, max_cases=max_cases, seed=seed)
    checkpoints = fit_baselines(data, targets, config, progress=progress)
    for modality, checkpoint in checkpoints.items():
        path = checkpoint.save(Path(out) / checkpoint_filename(modality))
        metrics, summary = checkpoint.metrics, checkpoint.data_summary
        typer.echo(
            f"{modality}: {path} ({summary['cases']} cases, {summary['voxels']} voxels, "
            f"RMSE {metrics['train_rmse']:.4f}, R² {metrics['train_r2']:.3f})"
        )

