"""`brasyn phantom train|validation`: write synthetic BraTS-format cohorts (MNI152 anatomy + MR physics)."""

from __future__ import annotations

from pathlib import Path

import typer

from brasyn.cli_support import progress_option

SMALL_SHAPE = (48, 48, 31)

phantom_app = typer.Typer(
    help="Synthetic BraTS-2023-format cohorts from real anatomy and MR physics (deterministic per seed).",
    no_args_is_help=True,
)


def _shape(shape: str | None, small: bool) -> tuple[int, int, int]:
    from brasyn.constants import BRATS_SHAPE
    from brasyn.errors import ConfigError

    if shape is None:
        return SMALL_SHAPE if small else BRATS_SHAPE
    try:
        sizes = tuple(int(part) for part in shape.replace("x", ",").split(","))
    except ValueError:
        sizes = ()
    if len(sizes) != 3:
        raise ConfigError(f"--shape: expected three sizes like 48,48,31, found {shape!r}")
    return sizes  # type: ignore[return-value]


def _config(shape: str | None, small: bool, site: str = "default"):
    from brasyn.phantom import PhantomConfig

    return PhantomConfig(shape=_shape(shape, small), site=site)


CASES = typer.Option(..., "--cases", "-n", min=1, help="Number of cases.")
SEED = typer.Option(0, "--seed", help="Cohort seed; case k depends only on (seed, case number).")
SMALL = typer.Option(
    False, "--small", help=f"Small volumes {'x'.join(map(str, SMALL_SHAPE))} (same field of view) for quick tests."
)
SHAPE = typer.Option(None, "--shape", help="Grid size such as 96,96,62 (overrides --small); default 240,240,155.")
SITE = typer.Option(
    "default",
    "--site",
    help="Acquisition site: default (the bundled models' training cohorts), varied (wider ranges of protocols, "
    "noise, gains and anatomy: domain randomisation for training) or shifted (other protocols, resolution, noise, "
    "gains and anatomy; for measuring generalisation only, never for training or tuning). See brasyn.phantom.site.",
)


@phantom_app.command("train")
def train(
    out: Path = typer.Argument(..., help="Folder for <case>/<case>-{t1n,t1c,t2w,t2f,seg}.nii.gz."),
    cases: int = CASES,
    seed: int = SEED,
    first_id: int = typer.Option(10000, "--first-id", help="Number of the first case: BraTS-GLI-<first-id>-000."),
    small: bool = SMALL,
    shape: str | None = SHAPE,
    site: str = SITE,
    progress: bool | None = progress_option(),
) -> None:
    """Write a training cohort: 4 modalities + seg per case, and phantom.json with each case's protocol."""
    from brasyn.phantom import write_training_cohort

    config = _config(shape, small, site)  # write_training_cohort refuses the held-out shifted site
    result = write_training_cohort(out, cases, seed, config, first_id=first_id, progress=progress)
    size = "x".join(map(str, config.shape)) + ("" if site == "default" else f", site {site}")
    typer.echo(f"wrote {len(result.case_ids)} training cases ({size}) to {out}:")
    for name in result.case_ids:
        typer.echo(f"  {name}: t1n t1c t2w t2f seg")
    typer.echo(f"  protocols: {Path(out) / 'phantom.json'}")


@phantom_app.command("validation")
def validation(
    data_out: Path = typer.Argument(..., help="Folder for <case>/ with 3 of the 4 modalities (one dropped per case)."),
    labels_out: Path = typer.Argument(..., help="Folder for original_data/<case>/ (4 + seg) and missing.json."),
    cases: int = CASES,
    seed: int = SEED,
    first_id: int = typer.Option(
        20000, "--first-id", help="Number of the first case (default keeps clear of training ids)."
    ),
    small: bool = SMALL,
    shape: str | None = SHAPE,
    site: str = SITE,
    progress: bool | None = progress_option(),
) -> None:
    """Write a challenge-style validation cohort with its ground truth kept aside (MedPerf layout)."""
    from brasyn.phantom import write_validation_cohort

    config = _config(shape, small, site)
    result = write_validation_cohort(data_out, labels_out, cases, seed, config, first_id=first_id, progress=progress)
    size = "x".join(map(str, config.shape)) + ("" if site == "default" else f", site {site}")
    typer.echo(f"wrote {len(result.case_ids)} validation cases ({size}) to {data_out}:")
    for name in result.case_ids:
        typer.echo(f"  {name}: missing {result.missing[name]}")
    typer.echo(f"  ground truth: {Path(labels_out) / 'original_data'}, {Path(labels_out) / 'missing.json'}")
