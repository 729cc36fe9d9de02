"""CLI sub-commands; each module exposes `register(app)` and is listed in `brasyn.cli.COMMAND_MODULES`."""
