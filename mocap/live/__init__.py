"""``mocap live``: a 3D preview while filming (see :mod:`mocap.live.engine` for how it works).

:func:`run_live` opens the session's cameras (``SESSION/live.toml``) or plays its videos at their real
rate (``from_videos``), shows the skeleton and each camera's health through a sink (window, MJPEG
stream, PNG file), optionally records a session for ``mocap run``, and returns what it measured:
3D update rate, latency from exposure to skeleton, frames read / detected / dropped per camera, and
the cameras that stopped.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from mocap.live.engine import LiveConfig, LiveEngine

__all__ = ["LiveConfig", "LiveEngine", "run_live"]
log = logging.getLogger(__name__)


def run_live(session: str | Path, cfg: LiveConfig | None = None, *, from_videos: bool = False, loop: bool = False,
             seconds: float | None = None, record: str | Path | None = None, codec: str = "mjpg", sink=None,
             display_fps: float = 10.0, stop_after: dict[str, float] | None = None) -> dict:
    from mocap.live.display import render
    from mocap.live.record import Recorder
    from mocap.live.sources import session_sources
    from mocap.session import Session

    cfg = cfg or LiveConfig()
    s = Session(Path(session))
    rig = s.rig()
    sources = session_sources(s, rig.names, from_videos)
    fps = 30.0
    if from_videos:
        from mocap.io.video import probe

        fps = probe(next(iter(sources.values()))).fps or fps
    recorder = Recorder(Path(record), rig, list(sources), fps, codec) if record else None
    engine = LiveEngine(rig, sources, cfg, realtime=from_videos, loop=loop, recorder=recorder, stop_after=stop_after)
    cpu0, wall0 = os.times(), time.monotonic()
    engine.start()
    summary: dict = {}
    try:
        end = None if seconds is None else engine.t0 + seconds
        while end is None or time.monotonic() < end:
            time.sleep(1.0 / display_fps)
            if sink is not None and not sink.show(render(engine.latest_update, engine.health(),
                                                         engine.keypoints.limbs, engine.summary())):
                break
            if time.monotonic() > engine.t0 + 1.0 and not engine.running():
                time.sleep(0.3)  # the last detections reach the fusion
                break
    except KeyboardInterrupt:
        log.info("live stopped by Ctrl-C")
    finally:
        engine.stop()
        cpu1 = os.times()
        summary = engine.summary() | {
            "seconds": time.monotonic() - max(wall0, engine.t0), "cores": os.cpu_count(),
            "cpu_s": (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system),
            "load_avg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "sources": {n: str(v) for n, v in sources.items()}, "detector": f"{cfg.detector} {cfg.variant}"}
        if recorder is not None:
            summary["recorded"] = str(recorder.close(summary))
            summary["recorded_cameras"] = recorder.recorded
        if sink is not None:
            sink.show(render(engine.latest_update, engine.health(), engine.keypoints.limbs, summary))
            sink.close()
    return summary
