"""Imports done ahead: the modules the stages after detection import on first use (SciPy's ndimage for
sync's smoothing, the left/right repair, the report's page and crops), and what they compute once per process
from the settings alone (:func:`first_uses`), done in a thread once detection leaves a core idle
(:meth:`mocap.ahead.Ahead.core_free`, called by its last chunks), so that the stages after it do not pay them.
A module that fails to import here, or a first use that fails, is only logged: the stage that needs it does it
again and reports the error itself.

Some modules are imported as the run starts instead (:data:`EARLY`, :func:`import_early`): too slow to import in
that thread, and kept out of every other command's start-up.

And the opposite, imports put off: :func:`defer_import` makes a module a stand-in imported on first use (the
detection workers' :data:`DEFERRED`, what mediapipe imports and detection never uses)."""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable

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


# imported as a run starts, before detection. scipy.optimize (the association's assignments: several people
# per view) costs 0.3-0.5 s: imported at the top of mocap.multi.track, which building the parser imports, it made
# every command that much slower to start; in the warm-up thread it would run past detection's idle tail into the
# stages after detection. scipy.linalg and scipy.sparse (refine's banded solver, the fit's smoothing: 0.25-0.35 s)
# likewise, from the top of mocap.optim.banded, mocap.fit.smooth and mocap.fit.gaps. The detect stage imports its own
# (:data:`SECOND_PASS`) while its workers' fork server starts, when a detection with a second pass runs.
EARLY = {"scipy.optimize": ("rig_refine", "sync", "triangulate"), "scipy.linalg": ("refine", "fit"),
         "scipy.sparse": ("refine",)}
PEOPLE_ONLY = ("scipy.optimize",)  # needed only where the take may hold several people (detect.persons ≠ 1)


SECOND_PASS = ("scipy.optimize",)  # detection's second pass: the association's assignments


def import_second_pass() -> None:
    """The modules detection's second pass imports (:data:`SECOND_PASS`: 0.3-0.5 s), imported while the workers'
    fork server starts (the stage waits for it then): after the pool, every core idle, the stage waited on them."""
    for module in SECOND_PASS:
        importlib.import_module(module)


def import_early(names: list[str], several_people: bool = True) -> None:
    """Import the :data:`EARLY` modules that the stages ``names`` of a run need (those of :data:`PEOPLE_ONLY`
    only when ``several_people``: a run with ``detect.persons = 1`` never associates people)."""
    for module, stages in EARLY.items():
        if any(n in names for n in stages) and (several_people or module not in PEOPLE_ONLY):
            importlib.import_module(module)


def first_uses(settings, names: list[str]) -> list[tuple[str, Callable[[], object]]]:
    """What the stages ``names`` of a run compute on first use from the settings alone, kept for the process
    once done (each cached where it is defined): the installed packages' versions the report records (their
    metadata parsed: 15-30 ms), the fit's skeleton and the retarget's target rig presets (TOML parsed once per
    content). Done ahead with the imports; nothing here depends on the take, and an error is the stage's to
    report (it computes the same again)."""
    out: list[tuple[str, Callable[[], object]]] = []
    if "report" in names:
        from mocap.report.metrics import versions

        out.append(("the packages' versions", versions))
    if "fit" in names:
        from mocap.skeletons import load_skeleton

        out.append(("the fit's skeleton", lambda: load_skeleton(settings.fit.solver.skeleton)))
    if "retarget" in names:
        from mocap.retarget import load_target_rig

        out.append(("the target rig", lambda: load_target_rig(settings.retarget.target)))
    return out


class WarmUp:
    """Import :data:`MODULES`, then make the ``calls`` (:func:`first_uses`), in one daemon thread started at
    most once; :meth:`join` waits for it."""

    def __init__(self, modules: tuple[str, ...] = MODULES, calls: list[tuple[str, Callable[[], object]]] = ()):
        self.modules = modules
        self.calls = list(calls)
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
        for what, call in self.calls:
            try:
                call()
            except Exception as e:  # logged only: the stage that needs it raises it itself
                self.failed[what] = f"{type(e).__name__}: {e}"
                log.debug("warm-up: %s failed: %s", what, e)
        self.seconds = time.perf_counter() - t0
        log.debug("warm-up: %d modules imported, %d first uses in %.2f s", len(self.modules), len(self.calls),
                  self.seconds)

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
