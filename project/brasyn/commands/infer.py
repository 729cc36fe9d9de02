"""`brasyn infer DATA OUT`: synthesize the missing modality of every case in a BraSyn data folder."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    app.command("infer")(infer)


def infer(
    data: Path = typer.Argument(..., help="Folder of case folders (each holding 3 of the 4 modalities)."),
    output: Path = typer.Argument(..., help="Folder for {case}-{missing}.nii.gz (only predictions are written here)."),
    weights: Path | None = typer.Option(
        None, "--weights", help="Folder holding brasyn_{t1n,t1c,t2w,t2f}.pt [default: $BRASYN_WEIGHTS or workspace/additional_files]."
    ),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="Axial slices per forward pass."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    precision: str = typer.Option("auto", "--precision", help="Autocast on CUDA: auto, fp32, bf16 or fp16."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing predictions (default: skip those cases)."),
    seg_output: Path | None = typer.Option(
        None, "--seg-output", help="Also write the tumour map {case}-seg.nii.gz (labels 0-3) into this separate folder."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Synthesize each case's missing modality; exit status 1 if any case failed."""
    from brasyn.inference import InferenceSettings, synthesize_folder

    settings = InferenceSettings(
        batch_size=batch_size,
        device=device,
        precision=precision,
        overwrite=overwrite,
        write_segmentation=seg_output is not None,
        segmentation_path=str(seg_output) if seg_output is not None else None,
        progress=progress,
    )
    summary = synthesize_folder(data, output, weights, settings=settings)
    typer.echo(summary.format())
    if not summary.ok:
        raise typer.Exit(1)
