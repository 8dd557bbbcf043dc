"""Imports done ahead: the modules the stages after detection import on first use (SciPy's ndimage for
sync's smoothing, the left/right repair, the report's page and crops), imported in a thread once
detection leaves a core idle (:meth:`mocap.ahead.Ahead.core_free`, called by its last chunks), so that
the stages after it do not pay them. A module that fails to import here is only logged: the stage that
needs it imports it again and reports the error itself."""

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
    "mocap.multi.track",  # triangulate: several people
    "mocap.report.crops",  # report
    "mocap.report.overlay",
    "mocap.report.page",
    "mocap.report.people",
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
