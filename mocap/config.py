"""Typed configuration: defaults live in dataclasses, files and ``--set`` override them.

One dialect everywhere: a stage's settings are the keys of its table (``[refine] accel_sigma = 15``).
A field marked :func:`inline` (a solver's own config held by a stage, e.g. ``refine.Config.solver``)
is not a table of its own: its keys are the stage's keys, so ``refine.accel_sigma`` is the setting in
files, ``--set`` and the command-line flags alike. Nested tables exist only where a Config really
nests one (``retarget.lock.height_m``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")
INLINE = "mocap.inline"
# keys of earlier versions → what replaced them (a file or a kept --set naming one gets this, not "unknown key")
RENAMED = {"max_gap_frames": "refine.max_gap_s, in seconds (30 frames at 60 fps = 0.5)"}


def inline(factory) -> Any:
    """A dataclass field whose own keys are written at its parent's level."""
    return dataclasses.field(default_factory=factory, metadata={INLINE: True})


def _is_inline(f: dataclasses.Field) -> bool:
    return bool(f.metadata.get(INLINE))


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
    if origin is tuple and isinstance(value, str):  # a list written as words: "bvh,glb" or "bvh"
        value = [v.strip() for v in value.split(",") if v.strip()]
    if origin is tuple and isinstance(value, list | tuple):
        inner = args[0] if args and args[-1] is Ellipsis else None
        return tuple(_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)) if inner else tuple(value)
    if hint is Any:
        return value
    name = getattr(hint, "__name__", str(hint))
    raise ValueError(f"{where}: expected {name}, got {value!r}")


def keys(cls: type) -> list[str]:
    """Every key a table for ``cls`` accepts (inline fields' keys in place of the field)."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        out += keys(hints[f.name]) if _is_inline(f) else [f.name]
    return out


def config_from_dict(cls: type[T], table: dict, where: str) -> T:
    """Build ``cls`` from a TOML table; unknown keys and wrong types are errors naming the key."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    inlined = {n: hints[n] for n, f in fields.items() if _is_inline(f)}
    owner = {k: n for n, sub in inlined.items() for k in keys(sub)}
    values: dict = {}
    routed: dict[str, dict] = {n: {} for n in inlined}
    for key, value in table.items():
        if key in owner and key not in fields:
            routed[owner[key]][key] = value
        elif key in fields and key not in inlined:
            values[key] = _coerce(value, hints[key], f"{where}.{key}")
        elif key in RENAMED:
            raise ValueError(f"{where}: {key!r} was renamed: {RENAMED[key]}")
        else:
            raise ValueError(f"{where}: unknown key {key!r} (expected one of {sorted(keys(cls))})")
    for name, sub in routed.items():
        values[name] = config_from_dict(inlined[name], sub, where)
    try:
        return cls(**values)
    except ValueError as e:  # a Config's own check (__post_init__): say where the values came from
        raise ValueError(f"{where}: {e}") from None


def config_to_dict(cfg: Any, keep_none: bool = False) -> dict:
    """The table of a config in the dialect files use (inline fields flattened; None left out, as TOML
    has no null, unless ``keep_none``)."""
    out = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if _is_inline(f):
            out.update(config_to_dict(v, keep_none))
        elif dataclasses.is_dataclass(v):
            out[f.name] = config_to_dict(v, keep_none)
        elif v is not None or keep_none:
            out[f.name] = list(v) if isinstance(v, tuple) else v
    return out
