"""Animation file formats behind one registry: ``mocap export --format NAME``.

An exporter is a function ``write(motion, extra, path, options) -> path`` registered under a name with
its file suffix (:func:`register`). ``extra`` is what the capture file holds besides the motion (the 3D
keypoints ``points`` and their ``point_names``, when the motion is a fit). BVH and TRC are written here,
FBX and GLB by Blender in a child process (:mod:`mocap.io.blender`), C3D in :mod:`mocap.io.c3d`.
Adding a format: one module that calls :func:`register`, named in :data:`MODULES` (or exposed through
the ``mocap.exporters`` entry point by another package).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mocap.types import Motion

MODULES = ("mocap.io.bvh_export", "mocap.io.blender", "mocap.io.c3d")


@dataclass(frozen=True)
class Options:
    units: str = "m"  # m | cm | cmu (the rig's preference when not set)
    up: str = "y"  # y | z
    order: str = "ZXY"  # BVH rotation order


@dataclass(frozen=True)
class Exporter:
    name: str
    suffix: str
    write: Callable[[Motion, dict, Path, Options], Path]
    help: str = ""


_REGISTRY: dict[str, Exporter] = {}
_loaded = False


def register(name: str, suffix: str, help: str = ""):
    """Decorator: ``@register("c3d", ".c3d", "...")`` on ``write(motion, extra, path, options)``."""

    def wrap(func):
        _REGISTRY[name] = Exporter(name, suffix, func, help)
        return func

    return wrap


def exporters() -> dict[str, Exporter]:
    global _loaded
    if not _loaded:
        from importlib.metadata import entry_points

        for module in MODULES:
            importlib.import_module(module)
        for ep in entry_points(group="mocap.exporters"):
            ep.load()
        _loaded = True
    return dict(_REGISTRY)


def names() -> tuple[str, ...]:
    return tuple(exporters())


def get(name: str) -> Exporter:
    found = exporters()
    if name not in found:
        raise ValueError(f"export: unknown format {name!r} (expected one of {', '.join(found)})")
    return found[name]
