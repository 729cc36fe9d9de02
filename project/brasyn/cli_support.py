"""What every command-line entry point shares: logging set-up and turning errors into exit statuses.

Imports no sub-command, so `mlcube.py` can use it without loading the whole `brasyn` CLI.
"""

from __future__ import annotations

import logging
import sys

import typer

from brasyn.errors import BrasynError


def configure_logging(verbose: bool = False) -> None:
    """Only entry points configure handlers: one INFO line per case on stderr, DEBUG with `verbose`."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
        force=True,
    )


def progress_option() -> bool | None:
    """The `--progress/--no-progress` option of the long-running sub-commands (train, baseline fit);
    left out (None), the configuration decides, and by default bars show only on a terminal."""
    return typer.Option(None, "--progress/--no-progress", help="Show progress bars [default: when on a terminal].")


def _usage_error_types() -> tuple[type[Exception], ...]:
    """Click's usage-error base: `click.ClickException` where typer uses the click package, and typer's
    own `TyperException` where it bundles its click (typer >= 0.2x has no click dependency)."""
    types: list[type[Exception]] = [typer.TyperException] if hasattr(typer, "TyperException") else []
    try:
        import click
    except ModuleNotFoundError:
        pass
    else:
        types.append(click.ClickException)
    return tuple(types)


def run_app(app: typer.Typer) -> None:
    """Run `app` on sys.argv and exit: a `BrasynError` becomes one line "error: ..." on stderr and
    status 1; `typer.Exit` codes pass through; usage errors are shown as click shows them (status 2);
    an abort (Ctrl-C at a prompt) is status 1; unexpected errors keep their traceback."""
    try:
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except BrasynError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(1)
    except _usage_error_types() as exc:
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            typer.echo(f"error: {exc}", err=True)
        sys.exit(getattr(exc, "exit_code", 1))
