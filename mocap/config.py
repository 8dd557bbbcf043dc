"""Typed configuration: defaults live in dataclasses, files and ``--set`` override them."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
        origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint) and isinstance(value, dict):
        return config_from_dict(hint, value, where)
    if (hint is dict or origin is dict) and isinstance(value, dict):
        return value
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is bool and isinstance(value, bool):
        return value
    if hint is str and isinstance(value, str):
        return value
    if origin is tuple and isinstance(value, list | tuple):
        return tuple(value)
    raise ValueError(f"{where}: expected {getattr(hint, '__name__', hint)}, got {value!r}")


def config_from_dict(cls: type[T], table: dict, where: str) -> T:
    """Build ``cls`` from a TOML table; unknown keys and wrong types are errors naming the key."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    values = {}
    for key, value in table.items():
        if key not in fields:
            raise ValueError(f"{where}: unknown key {key!r} (expected one of {sorted(fields)})")
        values[key] = _coerce(value, hints[key], f"{where}.{key}")
    return cls(**values)
