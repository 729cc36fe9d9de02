"""Packaged training presets: paper.yaml, demo.yaml, tiny.yaml (see brasyn.training.config)."""
