"""How the detect stage starts its worker processes: a fork server that has imported the workers' modules.

A worker started with ``spawn`` is a new interpreter: 0.03 CPU s to start, then 0.3-0.4 s of imports (numpy,
OpenCV, the stage, mediapipe's package) before it makes its detector, and every worker pays them. On Linux
the pool's context is ``forkserver`` whose server imports them once (:mod:`mocap.detect.pool_preload`):
each worker is forked from it with those modules loaded, and only makes its own detector (a MediaPipe
graph starts threads, so none is made before the fork). Importing them starts no thread of theirs
(checked: mediapipe's package, OpenCV and the stage leave the server with the one OpenBLAS thread numpy
starts, which handles a fork), so forking from the server is safe where forking from the stage's process,
with its progress-bar and import threads, is not. onnxruntime does start a thread when imported (1.32 here):
it is left to the workers that need it (hands, the ONNX detectors). Elsewhere (macOS: system frameworks
are not fork-safe; Windows: no fork) the workers are spawned as before. ``MOCAP_DETECT_START`` =
``spawn`` | ``forkserver`` picks one (a start method the platform lacks is an error).

The fork server is Python's, one per process: started by the first pool and kept for later ones (it
holds the imported modules, ~100 MB, until the process ends). Its preload is set before it starts; one
started earlier by something else serves without it (the workers then import what they need).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)
PRELOAD = ("mocap.detect.pool_preload",)  # imported by the fork server before it forks any worker
ENV = "MOCAP_DETECT_START"


def start_method() -> str:
    """``forkserver`` on Linux, ``spawn`` elsewhere, unless ``MOCAP_DETECT_START`` names one."""
    wanted = os.environ.get(ENV, "").strip()
    if wanted:
        if wanted not in ("spawn", "forkserver"):
            raise ValueError(f"{ENV}: expected 'spawn' or 'forkserver', got {wanted!r}")
        if wanted not in multiprocessing.get_all_start_methods():
            raise ValueError(f"{ENV}={wanted}: this platform ({sys.platform}) has only "
                             f"{multiprocessing.get_all_start_methods()}")
        return wanted
    return "forkserver" if sys.platform.startswith("linux") else "spawn"


def context():
    """The multiprocessing context the detect stage's pool starts its workers with (see the module's text): the
    fork server's, started now if it is not running; ``spawn``'s, with a warning, when it cannot be started
    (no Unix socket to reach it, say)."""
    method = start_method()
    if method == "spawn":
        return multiprocessing.get_context("spawn")
    from multiprocessing import forkserver

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["__main__", *PRELOAD])  # no effect on a server already running
    try:
        forkserver.ensure_running()
    except OSError as e:
        log.warning("detect: the workers' fork server cannot start (%s); they are spawned instead (each imports "
                    "its modules: ~0.3 CPU s more per worker)", e)
        return multiprocessing.get_context("spawn")
    return ctx


def warm() -> None:
    """Start the fork server now, without waiting for it (it imports the workers' modules while the caller goes
    on, e.g. probing the videos); nothing with ``spawn``, or when it runs already."""
    if start_method() == "forkserver":
        context()


def warm_for(pose2d: Path, overwrite: bool = False) -> bool:
    """:func:`warm` when a detection will run in this process: its output ``pose2d`` is to be (re)written and
    no Dask cluster takes the chunks (``mocap run --scheduler``). Returns whether one will."""
    from mocap import distributed

    if (overwrite or not Path(pose2d).exists()) and not distributed.active():
        warm()
        return True
    return False


def prestart(pool, workers: int) -> None:
    """Start ``workers`` processes of ``pool`` now, all at once. A ProcessPoolExecutor not forking starts one
    per task submitted while none is idle: the stage's first task (its detector probe) would start one
    worker, and the next only once that probe is back, a whole worker's start-up later. A no-op task
    per extra worker starts them together."""
    for _ in range(max(0, workers - 1)):
        pool.submit(ready)


def ready() -> int:
    """A pool worker's no-op task (see :func:`prestart`)."""
    return os.getpid()


def server_pid() -> int | None:
    """This process's fork server, when it runs (CPython's ``multiprocessing.forkserver``), else None."""
    from multiprocessing import forkserver

    return getattr(getattr(forkserver, "_forkserver", None), "_forkserver_pid", None)


def server_cpu() -> tuple[float, float]:
    """(CPU seconds of the fork server itself, of its children it reaped: the workers that exited), from
    Linux's ``/proc``; (0, 0) when there is no server or no ``/proc``. A pool's workers are the server's
    children, not this process's: ``os.times()`` here counts none of their CPU."""
    pid = server_pid()
    return (0.0, 0.0) if pid is None else process_cpu(pid)


def process_cpu(pid: int | str) -> tuple[float, float]:
    """(CPU seconds of process ``pid``, of its children it reaped), from Linux's ``/proc``; (0, 0) without."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        # after the ")": state is field 3, utime 14, stime 15, cutime 16, cstime 17 (1-based, man 5 proc)
        utime, stime, cutime, cstime = (int(fields[k - 3]) / tick for k in (14, 15, 16, 17))
    except (OSError, ValueError, IndexError):
        return 0.0, 0.0
    return utime + stime, cutime + cstime


def stop_server() -> None:
    """Stop this process's fork server (the next pool starts a fresh one): for a benchmark whose every run
    should pay the server's start as a first run does. Nothing when none runs."""
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    stop = getattr(server, "_stop", None)
    if stop is not None and server_pid() is not None:
        stop()
