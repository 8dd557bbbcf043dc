"""Pipeline stages, in order. A stage is one module that owns its whole contract:

``NAME``
    the stage's name: its table in configuration files (``[triangulate]``), its ``--set`` prefix, its
    command (``mocap triangulate``) and its entry in ``--from``.
``Config``
    a frozen dataclass of typed settings with their defaults (see :mod:`mocap.config` for the dialect).
``inputs(session, settings) -> list[Path]``
    the files it reads (fingerprinted: a change re-runs the stage; a missing one is an error that names
    the stage making it). ``settings`` is the whole resolved configuration, so a stage can follow a
    setting another stage owns (``fit.skeleton`` decides what retarget and export read).
``outputs(session, settings) -> list[Path]``
    the files it writes.
``run(...)``
    the pure computation, no files.
``main(session, settings, overwrite=False)``
    reads its inputs, calls ``run``, writes its outputs atomically; it never calls another stage.
Optional: ``needed(session, settings) -> str | None`` (a reason not to run, or None), ``RESUMABLE``
(an interrupted run continues; with ``checked_inputs(session, settings)`` also after those inputs changed: its
``main`` checks them itself, e.g. detection each camera's video), ``NAMED_BY_SESSION`` (its outputs carry the session
folder's name: part of its cache key), ``HELP`` (one line for ``mocap --help``), ``FLAGS``
(command-line sugar: each flag is one documented key, see :class:`Flag`) and ``resolved(settings) -> dict`` (values
the stage derives from other stages' settings, e.g. detection's hands from the fit skeleton: part of its
cache key).

Adding a stage: write its module here and put its name in :data:`ORDER`. The pipeline, the
configuration, the fingerprints and the command line are built from this list. A stage may also come
from another package through the ``mocap.stages`` entry point (the calibration package's
``calibrate``); such a stage not named in :data:`ORDER` says where it goes with ``AFTER = "stage"``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from functools import cache
from types import ModuleType

ORDER = ("calibrate", "detect", "rig_refine", "sync", "triangulate", "refine", "fit", "retarget", "export", "report")
REQUIRED = ("NAME", "Config", "inputs", "outputs", "run", "main")


@dataclass(frozen=True)
class Flag:
    """``--persons 2`` is ``--set detect.persons=2``: ``key`` is the stage's key the flag sets."""

    flag: str
    key: str
    help: str = ""
    type: type | None = None  # None: a switch that sets the key to ``value``
    value: object = True
    choices: tuple = ()
    kwargs: dict = field(default_factory=dict)
    aliases: tuple[str, ...] = ()  # former names of the flag, still read (a flag is named as its key)


def _entry_points() -> dict[str, ModuleType]:
    from importlib.metadata import entry_points

    out = {}
    for ep in entry_points(group="mocap.stages"):
        out[ep.name] = ep.load()
    return out


def _check(module: ModuleType, name: str) -> ModuleType:
    missing = [a for a in REQUIRED if not hasattr(module, a)]
    if missing:
        raise TypeError(f"stage module {module.__name__} lacks {missing} (see mocap.stages: the stage contract)")
    if name != module.NAME:
        raise TypeError(f"stage module {module.__name__} is named {module.NAME!r}, listed as {name!r}")
    return module


@cache
def stages() -> tuple[ModuleType, ...]:
    """The stage modules in pipeline order."""
    plugins = None
    out = []
    for name in ORDER:
        try:
            out.append(_check(importlib.import_module(f"mocap.stages.{name}"), name))
            continue
        except ModuleNotFoundError as e:
            if e.name != f"mocap.stages.{name}":
                raise
        plugins = _entry_points() if plugins is None else plugins
        if name in plugins:
            out.append(_check(plugins[name], name))
    for name, module in (plugins if plugins is not None else _entry_points()).items():
        if name not in ORDER:
            after = getattr(module, "AFTER", ORDER[-2])
            index = next((i for i, m in enumerate(out) if after == m.NAME), len(out) - 1)
            out.insert(index + 1, _check(module, name))
    return tuple(out)


def names() -> tuple[str, ...]:
    return tuple(m.NAME for m in stages())


def get(name: str) -> ModuleType:
    for m in stages():
        if name == m.NAME:
            return m
    raise ValueError(f"unknown stage {name!r} (stages: {', '.join(names())})")
