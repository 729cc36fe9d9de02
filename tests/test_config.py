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


def test_exponent_without_dot_is_a_float(tmp_path):
    # PyYAML (YAML 1.1) reads `6e-4` as a string; a user writing it in a config means a float.
    path = tmp_path / "c.yaml"
    path.write_text("stage:\n  lr: 6e-4\n  betas: [5E-1, 0.9]\n")
    config = from_dict(Outer, load_yaml(path))
    assert config.stage.lr == pytest.approx(6e-4) and config.stage.betas == (0.5, 0.9)
    with pytest.raises(ConfigError, match="stage.lr: expected float, found '6e-4x'"):
        from_dict(Outer, {"stage": {"lr": "6e-4x"}})
    with pytest.raises(ConfigError, match="name: expected str"):
        from_dict(Outer, {"name": 6e-4})
