"""Imported by the detect pool's fork server (:mod:`mocap.detect.pool`) before it forks any worker: what
a worker imports to run a chunk, so that each worker does not import it again (0.3-0.4 CPU s per worker).

The modules mediapipe imports and detection never uses are made stand-ins first (:data:`mocap.warm.DEFERRED`,
as a spawned worker's initializer does). Nothing is created: no detector, no MediaPipe graph (their threads
would not survive the fork). A failure here is only logged: the fork server must start whatever happens (it
would die on anything but an ImportError), and a worker then imports what it lacks itself.
"""

from __future__ import annotations

import importlib
import logging

log = logging.getLogger(__name__)

MODULES = (
    "numpy", "cv2", "tqdm",
    "mocap.io.video", "mocap.io.proxy", "mocap.detect.overlay", "mocap.keypoint_sets",
    "mocap.stages.detect", "mocap.detect.chunks", "mocap.detect.factory", "mocap.detect.scan",
    "mocap.detect.blazepose",
)
# what making a BlazePose landmarker imports (mocap.detect.blazepose._landmarker, mocap.detect.scan)
MEDIAPIPE = (
    "mediapipe.python.packet_creator", "mediapipe.python.packet_getter",
    "mediapipe.tasks.cc.vision.pose_detector.proto.pose_detector_graph_options_pb2",
    "mediapipe.tasks.python.core.base_options", "mediapipe.tasks.python.core.task_info",
    "mediapipe.tasks.python.vision", "mediapipe.tasks.python.vision.core.base_vision_task_api",
    "mediapipe.tasks.python.vision.core.vision_task_running_mode",
)
failed: dict[str, str] = {}


def preload() -> None:
    """Import :data:`MODULES`, then mediapipe (quietly, as a detector would) and :data:`MEDIAPIPE`."""
    from mocap.warm import DEFERRED, defer_import

    for name in DEFERRED:
        defer_import(name)
    for name in MODULES:
        _load(name)
    try:
        from mocap.detect.blazepose import _import_mediapipe

        _import_mediapipe()
    except Exception as e:  # noqa: BLE001 - a worker imports it again and reports it
        failed["mediapipe"] = f"{type(e).__name__}: {e}"
        return
    for name in MEDIAPIPE:
        _load(name)


def in_fork_server() -> bool:
    """Whether this import runs in CPython's fork server (its ``main`` is on the stack)."""
    import sys
    from multiprocessing import forkserver

    frame = sys._getframe()
    while frame is not None:
        if frame.f_code is forkserver.main.__code__:
            return True
        frame = frame.f_back
    return False


def exit_now(pid: int) -> None:
    """The fork server's exit without the interpreter's teardown (0.07 CPU s with these modules loaded): it has
    nothing to save. Only in that process (``pid``): its forked workers end with ``os._exit`` anyway."""
    import contextlib
    import os
    import sys

    if os.getpid() == pid:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(AttributeError, OSError, ValueError):
                stream.flush()
        os._exit(0)


def _load(name: str) -> None:
    try:
        importlib.import_module(name)
    except Exception as e:  # noqa: BLE001 - a worker imports it again and reports it
        failed[name] = f"{type(e).__name__}: {e}"
        log.debug("detect pool preload: importing %s failed: %s", name, e)


preload()
if in_fork_server():
    import atexit
    import os

    atexit.register(exit_now, os.getpid())
