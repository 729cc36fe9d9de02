"""CLI sub-commands, one module each; `brasyn.cli` imports them and adds their commands to the app."""
