"""`brasyn evaluate`: BraSyn scores, Dice, prediction-folder checks and QC pictures."""

from __future__ import annotations

from pathlib import Path

import typer

from brasyn.errors import InputError


def evaluate_command(
    pred: Path = typer.Option(..., "--pred", help="Prediction folder: {case}-{missing}.nii.gz, flat."),
    labels: Path = typer.Option(
        ..., "--labels", help="Labels in the MedPerf layout: missing.json + original_data/<case>/."
    ),
    segmentation_dir: Path | None = typer.Option(
        None,
        "--segmentation-dir",
        "--seg",
        help="Folder of the model's {case}-seg.nii.gz maps (infer --segmentation-dir): adds Dice ET/TC/WT.",
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Write cases.csv, summary.json, qc/<case>.png and overview.png here."
    ),
    baseline: Path | None = typer.Option(None, "--baseline", help="A second prediction folder scored side by side."),
    pictures: bool = typer.Option(True, "--pictures/--no-pictures", help="QC montages (with --out)."),
    segmenter: str | None = typer.Option(
        None,
        "--segmenter",
        help="BraSyn's second criterion: an independent tumour segmenter run on the real and on the completed "
        "sets: 'bundled', 'bundled:PATH' or 'cmd:TEMPLATE' with {input} and {output} (see README, Evaluation).",
    ),
    segmenter_layout: str = typer.Option(
        "brats", "--segmenter-layout", help="Input layout of a cmd: segmenter: brats (A/A-t1c.nii.gz) or nnunet "
        "(A_0000.nii.gz ...)."
    ),
    segmenter_channels: str = typer.Option(
        "t1n,t1c,t2w,t2f", "--segmenter-channels", help="nnunet layout: the sequence of channel 0000, 0001, ..."
    ),
    segmenter_labels: str = typer.Option(
        "", "--segmenter-labels", help="Map the segmenter's labels onto BraTS 2023's (1 NCR, 2 ED, 3 ET): '4=3' for "
        "BraTS 2017-2021 maps, '1=2,2=1' for nnU-Net's BraTS 2021 dataset convention."
    ),
) -> None:
    """Score predictions against the ground truth under both BraSyn SSIM conventions and check the folder.

    Exit status 0 when the folder meets the output contract, 1 when problems were found (scores of
    what could be scored are still printed and written); a case the segmenter could not segment is
    such a problem.
    """
    from brasyn.evaluation.report import evaluate, format_table
    from brasyn.evaluation.segmenters import parse_segmenter

    chosen = None
    if segmenter is not None:
        chosen = parse_segmenter(
            segmenter, layout=segmenter_layout, channels=segmenter_channels, relabel=segmenter_labels
        )

    if out is not None:
        for folder in (pred, baseline):
            if folder is not None and out.resolve().is_relative_to(folder.resolve()):
                raise InputError(f"{out}: the report folder must not lie inside the prediction folder {folder}")
    evaluation = evaluate(
        pred,
        labels,
        segmentation_dir=segmentation_dir,
        baseline_dir=baseline,
        out_dir=out,
        pictures=pictures,
        segmenter=chosen,
    )
    typer.echo(format_table(evaluation))
    for run in evaluation.runs:
        problems = run.problems
        if problems:
            typer.echo(f"{run.name}: {len(problems)} problem(s) in {run.pred_dir}:")
            for problem in problems:
                typer.echo(f"  - [{problem.kind}] {problem.message}")
        else:
            typer.echo(f"{run.name}: {run.pred_dir} meets the output contract ({len(run.cases)} cases)")
    if out is not None:
        typer.echo(f"report written to {out}")
    if not evaluation.clean:
        raise typer.Exit(code=1)


