"""Animation file formats behind one registry: ``mocap export --formats NAME``.

An exporter is a function ``write(motion, extra, path, options) -> path`` registered under a name with its file
suffix (:func:`register`). A motion's NaN frames before its first fitted frame and after its last are where the
person is not (:func:`mocap.motion.absent_frames`): a writer hides the person there if its format can. ``extra`` is
what the capture file holds besides the motion (the 3D keypoints ``points`` and their ``point_names``, when the
motion is a fit). BVH and TRC are written here, FBX natively (:mod:`mocap.io.fbx`; through Blender with
``Options.fbx_writer="blender"``), GLB by Blender in a child process (:mod:`mocap.io.blender`), C3D in
:mod:`mocap.io.c3d`. An exporter may also register ``write_many(jobs) -> paths`` for a list of ``(motion, extra,
path, options)`` (one start-up for many files: Blender's), and ``batched(options) -> bool`` when only some of its
files go there (FBX: those for Blender); :func:`write_files` gives each such function all its files of a run at
once, exporters that share the function (Blender's FBX and GLB) together, and the others one file at a time.
Adding a format: one module that calls :func:`register`, named in :data:`MODULES` (or exposed through
the ``mocap.exporters`` entry point by another package).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mocap.types import Motion

MODULES = ("mocap.io.bvh_export", "mocap.io.fbx", "mocap.io.blender", "mocap.io.c3d")
FBX_WRITERS = ("native", "blender")  # Options.fbx_writer: mocap.io.fbx, or Blender's exporter in a child


@dataclass(frozen=True)
class Options:
    units: str = "m"  # m | cm | cmu (the rig's preference when not set)
    up: str = "y"  # y | z
    order: str = "ZXY"  # BVH rotation order
    fbx_writer: str = "native"  # native | blender (FBX_WRITERS)
    # the export stage's export.absent: "hide" leaves a person's frames before the first fitted frame and after the
    # last NaN for the writers to hide (FBX, glTF: the root scaled to 0; TRC, C3D: no markers; BVH holds the pose)
    absent: str = "hide"


Job = tuple[Motion, dict, Path, Options]  # what one file is written from


@dataclass(frozen=True)
class Exporter:
    name: str
    suffix: str
    write: Callable[[Motion, dict, Path, Options], Path]
    help: str = ""
    write_many: Callable[[list[Job]], list[Path]] | None = None  # optional: many files at once
    batched: Callable[[Options], bool] | None = None  # which files go to write_many (None: all)
    # takes a motion's NaN frames at its ends (where the person is not) and hides the person there as its format can,
    # or holds the pose itself (else: the pose held, filled before it is called)
    takes_absent: bool = False

    def goes_to_many(self, options: Options) -> bool:
        """Whether a file with these options is written by ``write_many`` (with others), not ``write``."""
        return self.write_many is not None and (self.batched is None or self.batched(options))


_REGISTRY: dict[str, Exporter] = {}
_loaded = False


def register(name: str, suffix: str, help: str = "", write_many: Callable[[list[Job]], list[Path]] | None = None,
             batched: Callable[[Options], bool] | None = None, takes_absent: bool = False):
    """Decorator: ``@register("c3d", ".c3d", "...")`` on ``write(motion, extra, path, options)``;
    ``write_many``, when given, writes a list of jobs at once (see :func:`write_files`), those whose options
    ``batched`` accepts when it is given; ``takes_absent``: the writer takes NaN frames at the motion's ends (where
    the person is not) and hides the person there as its format can (an exporter without it gets them filled: the
    pose held)."""

    def wrap(func):
        _REGISTRY[name] = Exporter(name, suffix, func, help, write_many, batched, takes_absent)
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


def write_files(jobs: list[tuple[str, Motion, dict, Path, Options]]) -> list[Path]:
    """Write ``(format, motion, extra, path, options)`` jobs; returns the paths in the jobs' order. The
    files of exporters without ``write_many`` (or that it does not take: ``batched``) are written first,
    one by one; then each ``write_many`` is called once with all its files (those of every format that
    shares it)."""
    from mocap.motion import fill_gaps

    batches: dict[Callable, list[int]] = {}
    jobs = list(jobs)
    out: list[Path | None] = [None] * len(jobs)
    for i, (fmt, motion, extra, path, options) in enumerate(jobs):
        exporter = get(fmt)
        if options.absent == "hold" or not exporter.takes_absent:  # the pose held where the person is not
            motion = fill_gaps(motion)[0]
            jobs[i] = (fmt, motion, extra, path, options)
        if not exporter.goes_to_many(options):
            out[i] = Path(exporter.write(motion, extra, Path(path), options))
        else:
            batches.setdefault(exporter.write_many, []).append(i)
    for write_many, index in batches.items():
        written = write_many([jobs[i][1:] for i in index])
        for i, p in zip(index, written, strict=True):
            out[i] = Path(p)
    return out
