"""Strict config loading: unknown keys fail with their full path."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from brasyn.config import from_dict, load_yaml, to_dict
from brasyn.errors import ConfigError


@dataclass(frozen=True)
class Inner:
    lr: float = 1e-4
    betas: tuple[float, ...] = (0.5, 0.999)


@dataclass(frozen=True)
class Outer:
    name: str = "x"
    steps: int = 10
    use_dropout: bool = True
    stage: Inner = field(default_factory=Inner)


def test_nested_values_and_defaults():
    config = from_dict(Outer, {"steps": 3, "stage": {"lr": 2, "betas": [0.9, 0.99]}})
    assert config == Outer(steps=3, stage=Inner(lr=2.0, betas=(0.9, 0.99)))
    assert isinstance(config.stage.lr, float)
    assert from_dict(Outer, to_dict(config)) == config


def test_unknown_key_names_its_path():
    with pytest.raises(ConfigError, match="unknown config key stage.no_dropout"):
        from_dict(Outer, {"stage": {"no_dropout": False}})


def test_wrong_type_is_rejected():
    with pytest.raises(ConfigError, match="steps: expected int, found '3'"):
        from_dict(Outer, {"steps": "3"})
    with pytest.raises(ConfigError, match="use_dropout: expected bool"):
        from_dict(Outer, {"use_dropout": 1})


def test_load_yaml_errors_name_the_file(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="p.yaml: invalid YAML"):
        load_yaml(bad)
    with pytest.raises(ConfigError, match="absent.yaml: cannot read"):
        load_yaml(tmp_path / "absent.yaml")
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping at the top level, found list"):
        load_yaml(bad)
