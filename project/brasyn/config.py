"""Strict loading of nested frozen dataclasses from dicts / YAML (nanoGPT-style configs).

An unknown key is a `ConfigError` naming its full path (e.g. `training.stage2.lr`), so a typo can
never silently switch something off.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from brasyn.errors import ConfigError

T = TypeVar("T")

# PyYAML reads YAML 1.1, where `2e-4` (no dot) is a string, not a float as in YAML 1.2 and Python.
_EXPONENT_FLOAT = re.compile(r"^[-+]?\d+[eE][-+]?\d+$")


def from_dict(cls: type[T], data: dict[str, Any] | None, path: str = "") -> T:
    """Build dataclass `cls` from `data`; missing keys take the field defaults, unknown keys fail.

    A class may list in `FLAT_FIELDS` fields holding a nested dataclass whose keys are written at its
    own level (`training.data.percentile` for `DataConfig.normalization.percentile`). A `ConfigError`
    whose message starts with a field name ("headroom: expected ...") gets the key path in front."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path or cls.__name__}: expected a mapping, found {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    data = dict(data)
    kwargs = {}
    for name in getattr(cls, "FLAT_FIELDS", ()):
        nested = {key: data.pop(key) for key in _field_names(hints[name]) if key in data}
        kwargs[name] = from_dict(hints[name], nested, path)
    fields = _field_names(cls)
    unknown = sorted((set(data) - set(fields)) | (set(data) & set(kwargs)))  # a flat field by its own name too
    if unknown:
        where = f"{path}." if path else ""
        valid = sorted((set(fields) - set(kwargs)) | {k for n in kwargs for k in _field_names(hints[n])})
        raise ConfigError(f"unknown config key {where}{unknown[0]} (valid: {', '.join(valid)})")
    for name, value in data.items():
        kwargs[name] = _convert(hints[name], value, f"{path}.{name}" if path else name)
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        key = str(exc).split(":", 1)[0]
        if path and key in fields:
            raise ConfigError(f"{path}.{exc}") from exc
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path or cls.__name__}: {exc}") from exc


def _field_names(cls: Any) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _convert(hint: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, path)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _convert(args[0], value, path) if len(args) == 1 else value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, found {value!r}")
        args = typing.get_args(hint)
        item = args[0] if args else Any
        return tuple(_convert(item, v, path) for v in value)
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str) and _EXPONENT_FLOAT.match(value):
        return float(value)
    if hint in (int, float, str, bool):
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            raise ConfigError(f"{path}: expected {hint.__name__}, found {value!r}")
    return value


def to_dict(config: Any) -> dict[str, Any]:
    """Plain-data dict of a dataclass (tuples become lists), safe for YAML and `weights_only` loads."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            flat = getattr(value, "FLAT_FIELDS", ())
            result: dict[str, Any] = {}
            for f in dataclasses.fields(value):
                item = plain(getattr(value, f.name))
                if f.name in flat:
                    result.update(item)
                else:
                    result[f.name] = item
            return result
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(config)


def load_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing or malformed file is a `ConfigError` naming the file."""
    path = Path(path)
    try:
        with open(path) as handle:
            data = yaml.safe_load(handle)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({exc})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, found {type(data).__name__}")
    return data
