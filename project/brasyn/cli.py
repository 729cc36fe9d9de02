"""The `brasyn` command line. Each sub-command lives in `brasyn.commands.<name>`; this module imports
them and adds their typer commands and apps by reference, so a misspelt name fails at import.

A `BrasynError` becomes one line on stderr and exit status 1; unexpected errors keep their traceback.
"""

from __future__ import annotations

import typer

from brasyn.cli_support import configure_logging, run_app
from brasyn.commands import baseline, evaluate, infer, phantom, segmenter, train

app = typer.Typer(
    name="brasyn",
    help="Synthesize the missing brain MRI sequence (BraSyn): phantoms, training, inference, evaluation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.command("infer")(infer.infer)
app.command("evaluate")(evaluate.evaluate_command)
app.add_typer(baseline.baseline_app, name="baseline")
app.command("train")(train.train_command)
app.add_typer(phantom.phantom_app, name="phantom")
app.add_typer(segmenter.segmenter_app, name="segmenter")


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    configure_logging(verbose)


def main() -> None:
    """Console-script entry point."""
    run_app(app)


if __name__ == "__main__":
    main()
