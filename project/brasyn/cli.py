"""The `brasyn` command line. Each sub-command lives in `brasyn.commands.<name>` and registers itself.

A `BrasynError` becomes one line on stderr and exit status 1; unexpected errors keep their traceback.
"""

from __future__ import annotations

import importlib
import logging
import sys

import typer

from brasyn.errors import BrasynError

# Modules under brasyn.commands, each exposing `register(app: typer.Typer) -> None`.
COMMAND_MODULES: tuple[str, ...] = ("infer", "evaluate", "baseline", "train", "phantom")

app = typer.Typer(
    name="brasyn",
    help="Synthesize the missing brain MRI sequence (BraSyn): phantoms, training, inference, evaluation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for _name in COMMAND_MODULES:
    importlib.import_module(f"brasyn.commands.{_name}").register(app)


def configure_logging(verbose: bool = False) -> None:
    """Only the CLI configures handlers: one INFO line per case, DEBUG with --verbose."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
        force=True,
    )


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    configure_logging(verbose)


def main() -> None:
    """Console-script entry point."""
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
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()
