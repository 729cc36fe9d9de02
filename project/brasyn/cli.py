"""The `brasyn` command line. Each sub-command lives in `brasyn.commands.<name>` and registers itself.

A `BrasynError` becomes one line on stderr and exit status 1; unexpected errors keep their traceback.
"""

from __future__ import annotations

import importlib

import typer

from brasyn.cli_support import configure_logging, run_app

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


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    configure_logging(verbose)


def main() -> None:
    """Console-script entry point."""
    run_app(app)


if __name__ == "__main__":
    main()
