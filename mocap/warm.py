"""Imports done ahead: the modules the stages after detection import on first use (SciPy's ndimage for
sync's smoothing, the left/right repair, the report's page and crops), imported in a thread once
detection leaves a core idle (:meth:`mocap.ahead.Ahead.core_free`, called by its last chunks), so that
the stages after it do not pay them. A module that fails to import here is only logged: the stage that
needs it imports it again and reports the error itself.

And the opposite, imports put off: :func:`defer_import` makes a module a stand-in imported on first use (the
detection workers' :data:`DEFERRED`, what mediapipe imports and detection never uses)."""

from __future__ import annotations

import importlib
import logging
import threading
import time

log = logging.getLogger(__name__)

# imported lazily by the stages after detection (``mocap run`` imports every stage module up front)
MODULES = (
    "scipy.ndimage",  # sync: smoothing the tracks (mocap.stages.sync_search)
    "mocap.geometry.swaps",  # triangulate: the left/right repair
    "mocap.geometry.swaps_repair",
    "mocap.multi.track",  # triangulate: several people
    "mocap.report.crops",  # report
    "mocap.report.overlay",
    "mocap.report.page",
    "mocap.report.people",
    "xml.etree.ElementTree",  # rig_refine: reading the session's Qualisys rig (mocap.io.qualisys)
    "mocap.io.qualisys",
    "mocap.detect.select",  # rig_refine, triangulate: the performer among several people per view
    "mocap.stages.keypoints_memo",  # triangulate: the keypoints shared with refine and the report
    "encodings.cp437",  # retarget, export: the names in the motion's .npz (zipfile)
)


class WarmUp:
    """Import :data:`MODULES` in one daemon thread, started at most once; :meth:`join` waits for it."""

    def __init__(self, modules: tuple[str, ...] = MODULES):
        self.modules = modules
        self.thread: threading.Thread | None = None
        self.seconds: float | None = None  # how long the imports took (None: not started or not done)
        self.failed: dict[str, str] = {}

    def start(self) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="mocap-warm-imports", daemon=True)
            self.thread.start()

    def _run(self) -> None:
        t0 = time.perf_counter()
        for name in self.modules:
            try:
                importlib.import_module(name)
            except Exception as e:  # logged only: the stage that needs it raises it itself
                self.failed[name] = f"{type(e).__name__}: {e}"
                log.debug("warm-up: importing %s failed: %s", name, e)
        self.seconds = time.perf_counter() - t0
        log.debug("warm-up: %d modules imported in %.2f s", len(self.modules), self.seconds)

    def join(self, timeout: float | None = None) -> None:
        if self.thread is not None:
            self.thread.join(timeout)


def defer_import(name: str) -> None:
    """Make ``name``, and each of its packages not imported yet, a stand-in module that imports the real one
    on first attribute use (then the stand-ins of that chain all leave ``sys.modules``). In a worker:
    mediapipe imports matplotlib.pyplot for a plotting helper detection never calls (0.26 s of CPU per worker
    start of its 0.45 s import; 0.08 s of it is the matplotlib package alone, so the package is deferred too)
    and sounddevice (PortAudio through cffi) for audio recording."""
    import importlib
    import sys
    import types

    if name in sys.modules:
        return
    parts = name.split(".")
    chain = [".".join(parts[:k]) for k in range(1, len(parts) + 1)]
    group = [n for n in chain if n not in sys.modules]

    class Deferred(types.ModuleType):
        def __getattr__(self, attr: str):
            for n in group:
                if isinstance(sys.modules.get(n), Deferred):
                    del sys.modules[n]
            return getattr(importlib.import_module(self.__name__), attr)

    for n in group:
        stand_in = Deferred(n)
        sys.modules[n] = stand_in
        parent, _, child = n.rpartition(".")
        if parent:  # `import a.b` then `a.b.f()` finds b on a
            setattr(sys.modules[parent], child, stand_in)


DEFERRED = ("matplotlib.pyplot", "sounddevice")  # what mediapipe imports and detection never uses
