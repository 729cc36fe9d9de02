"""`brasyn segmenter fit|run`: the bundled independent tumour segmenter (BraSyn's second criterion)."""

from __future__ import annotations

from pathlib import Path

import typer

segmenter_app = typer.Typer(
    help="The bundled 2-D U-Net tumour segmenter: train it on real sequences, run it on a folder of cases.",
    no_args_is_help=True,
)


@segmenter_app.command("fit")
def fit(
    data: Path = typer.Argument(..., help="Training cases: <case>/<case>-{t1n,t1c,t2w,t2f,seg}.nii.gz."),
    out: Path = typer.Argument(..., help="Folder for segmenter.pt and record.json."),
    validation: Path | None = typer.Option(
        None, "--validation", help="Held-out complete cases (or a labels folder with original_data/) for its Dice."
    ),
    steps: int = typer.Option(2000, "--steps", min=1, help="Optimisation steps (at most)."),
    max_minutes: float = typer.Option(20.0, "--max-minutes", min=0.01, help="Wall-time budget of the optimisation."),
    base_channels: int = typer.Option(8, "--base-channels", min=1, help="Width of the first U-Net stage."),
    crop: int = typer.Option(128, "--crop", min=8, help="Side of the square training crops."),
    batch_size: int = typer.Option(16, "--batch-size", min=1),
    slice_stride: int = typer.Option(1, "--slice-stride", min=1, help="Keep every n-th axial slice holding brain."),
    seed: int = typer.Option(0, "--seed"),
    threads: int = typer.Option(1, "--threads", min=1, help="torch intra-op threads."),
) -> None:
    """Train the segmenter on the four REAL sequences and labels of complete cases (never synthesized images)."""
    from brasyn.segmenter.fit import FitSettings, fit_segmenter

    settings = FitSettings(
        base_channels=base_channels,
        crop=crop,
        batch_size=batch_size,
        steps=steps,
        max_seconds=max_minutes * 60.0,
        slice_stride=slice_stride,
        seed=seed,
        threads=threads,
    )
    record = fit_segmenter(data, out, settings, validation=validation)
    typer.echo(f"trained {record['steps']} steps in {record['training_seconds']:.0f} s; wrote {out}/segmenter.pt")
    dice = record["validation_dice"]
    if dice:
        mean = ", ".join(f"{region} {value:.3f}" for region, value in dice["mean"].items())
        typer.echo(f"Dice on {dice['cases']} held-out cases (real sequences): {mean}")


@segmenter_app.command("run")
def run(
    input_dir: Path = typer.Argument(..., help="Folder of BraTS case folders with all four sequences."),
    output_dir: Path = typer.Argument(..., help="Receives <case>.nii.gz label maps (0..3)."),
    weights: Path | None = typer.Option(None, "--weights", help="Segmenter checkpoint [default: the bundled one]."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="torch intra-op threads."),
) -> None:
    """Segment every case of INPUT_DIR into OUTPUT_DIR (exit 1 if any case failed)."""
    import torch

    from brasyn.segmenter import default_segmenter_path, segment_folder

    if threads is not None:
        torch.set_num_threads(threads)
    problems = segment_folder(weights or default_segmenter_path(), input_dir, output_dir)
    if problems:
        for problem in problems:
            typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(code=1)
