"""`brasyn infer DATA OUT`: synthesize the missing modality of every case in a BraSyn data folder."""

from __future__ import annotations

from pathlib import Path

import typer

from brasyn.cli_support import progress_option
from brasyn.errors import ConfigError
from brasyn.inference.settings import InferenceSettings, check_mirror_axes

DEFAULTS = InferenceSettings()  # the one source of the options' defaults (options left out stay None)


def _format_axes(axes: tuple[int, ...]) -> str:
    return ",".join(map(str, axes)) or "none"


def infer(
    data: Path = typer.Argument(..., help="Folder of case folders (each holding 3 of the 4 modalities)."),
    output: Path = typer.Argument(..., help="Folder for {case}-{missing}.nii.gz (only predictions are written here)."),
    weights: Path | None = typer.Option(
        None,
        "--weights",
        help="Folder holding brasyn_{t1n,t1c,t2w,t2f}.pt [default: $BRASYN_WEIGHTS or workspace/additional_files].",
    ),
    batch_size: str | None = typer.Option(
        None,
        "--batch-size",
        show_default=str(DEFAULTS.batch_size),
        help="Axial slices per forward pass: auto (by device) or a positive integer.",
    ),
    device: str | None = typer.Option(
        None, "--device", show_default=DEFAULTS.device, help="auto, cpu, cuda or cuda:N."
    ),
    precision: str | None = typer.Option(
        None, "--precision", show_default=DEFAULTS.precision, help="Autocast on CUDA: auto, fp32, bf16 or fp16."
    ),
    mirror_axes: str | None = typer.Option(
        None,
        "--mirror-axes",
        show_default=_format_axes(DEFAULTS.mirror_axes),
        help="Test-time mirroring over these in-plane axes, averaged: 0,1 (4 passes), 0 or 1 (2), none (1).",
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace existing predictions (default: skip those cases)."
    ),
    segmentation_dir: Path | None = typer.Option(
        None,
        "--segmentation-dir",
        "--seg-output",
        help="Also write the tumour map {case}-seg.nii.gz (labels 0-3) into this separate folder.",
    ),
    progress: bool | None = progress_option(),
) -> None:
    """Synthesize each case's missing modality; exit status 1 if any case failed."""
    from brasyn.inference import synthesize_folder

    given = {
        "batch_size": _batch_size(batch_size),
        "device": device,
        "precision": precision,
        "mirror_axes": _mirror_axes(mirror_axes),
        "overwrite": overwrite,
        "segmentation_dir": str(segmentation_dir) if segmentation_dir is not None else None,
        "progress": progress,
    }
    settings = InferenceSettings(**{name: value for name, value in given.items() if value is not None})
    summary = synthesize_folder(data, output, weights, settings=settings)
    typer.echo(summary.format())
    if not summary.ok:
        raise typer.Exit(1)


def _mirror_axes(text: str | None) -> tuple[int, ...] | None:
    """"none" or comma-separated in-plane axes such as "0,1"; anything else is a usage error."""
    if text is None:
        return None
    try:
        axes = () if text.strip().lower() == "none" else tuple(int(part) for part in text.split(","))
        return check_mirror_axes(axes, "--mirror-axes")
    except (ValueError, ConfigError):
        message = f"expected none or in-plane axes such as 0,1, found {text!r}"
        raise typer.BadParameter(message, param_hint="--mirror-axes") from None


def _batch_size(text: str | None) -> int | str | None:
    """"auto" or a positive integer; anything else is a usage error."""
    if text is None or text == "auto":
        return text
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise typer.BadParameter(f"expected auto or a positive integer, found {text!r}", param_hint="--batch-size")
