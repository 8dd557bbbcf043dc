"""``mocap live --record OUT``: every frame the cameras deliver (detected or dropped by the preview) into a
session that ``mocap run OUT`` processes offline at full quality: ``videos/<camera>.<ext>``, the rig
(``calibration/rig.toml``), ``session.toml`` (the frame rate) and ``live.json`` (what live saw).

Codecs: ``mjpg`` (default, ~5 ms a 640×480 frame; lossy, JPEG quality 95), ``ffv1`` (lossless: the
recorded frames are the frames the cameras sent, so offline results equal those of the same footage as
files; ~25 ms a frame, too slow for many 30 fps cameras on few cores), ``mp4v`` (fastest, lossy).
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)
CODECS = {"mjpg": ("MJPG", ".avi"), "ffv1": ("FFV1", ".mkv"), "mp4v": ("mp4v", ".mp4")}


class Recorder:
    def __init__(self, out: Path, rig, names: list[str], fps: float, codec: str = "mjpg"):
        from mocap.io.rig_files import check_camera_name, write_rig

        if codec not in CODECS:
            raise ValueError(f"record: codec must be one of {sorted(CODECS)}, got {codec!r}")
        # the rules a rig's camera names follow (a space, an accent are fine), not the stricter safe_name; before
        # anything is written
        self.names = [check_camera_name("record", n) for n in names]
        self.out = Path(out)
        if (self.out / "videos").exists() and any((self.out / "videos").iterdir()):
            raise FileExistsError(f"record: {self.out / 'videos'} already holds videos; choose a new folder")
        (self.out / "videos").mkdir(parents=True, exist_ok=True)
        (self.out / "calibration").mkdir(parents=True, exist_ok=True)
        self.rig = rig.subset(names)  # close() leaves out the cameras that delivered nothing
        write_rig(self.rig, self.out / "calibration" / "rig.toml")
        self.recorded: list[str] = []  # the cameras with a video (known at close)
        (self.out / "session.toml").write_text(f"fps = {float(fps)!r}\n")
        self.fourcc, self.ext = CODECS[codec]
        self.fps = fps
        self.writers: dict[int, cv2.VideoWriter] = {}
        self.rates: dict[str, float] = {}  # per camera, as its source reports it
        self.frames = [0] * len(names)
        self.lock = threading.Lock()

    def write(self, camera: int, image: np.ndarray, fps: float | None = None) -> None:
        """Called by the camera's reader thread with every frame, in order. ``fps``: the rate the source
        reports (a live camera's is known only once it is open); the session's rate follows the first."""
        w = self.writers.get(camera)
        if w is None:
            with self.lock:
                if fps and fps > 0 and not self.rates:
                    (self.out / "session.toml").write_text(f"fps = {float(fps)!r}\n")
                if fps and fps > 0:
                    self.rates[self.names[camera]] = float(fps)
                    if abs(fps - next(iter(self.rates.values()))) > 1e-3 * fps:
                        log.warning("record: cameras run at different rates %s; the session is recorded at %g fps",
                                    self.rates, next(iter(self.rates.values())))
            rate = next(iter(self.rates.values()), self.fps)
            path = self.out / "videos" / f"{self.names[camera]}{self.ext}"
            w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*self.fourcc), rate,
                                (image.shape[1], image.shape[0]))
            if self.fourcc == "MJPG":
                w.set(cv2.VIDEOWRITER_PROP_QUALITY, 95)
            if not w.isOpened():
                raise OSError(f"record: cannot write {path} with the {self.fourcc} codec")
            with self.lock:
                self.writers[camera] = w
        w.write(image)
        self.frames[camera] += 1

    def close(self, summary: dict | None = None) -> Path:
        """Finish the videos and ``live.json``; the rig keeps only the cameras with a video (a camera that never
        delivered, e.g. a stream down at the start, has none, and ``mocap run`` refuses a rig camera without
        one), unless fewer than two have one (then no 3D can come of it: said, the rig left whole)."""
        from mocap.io.rig_files import write_rig

        with self.lock:
            for w in self.writers.values():
                w.release()
        self.recorded = [n for n, f in zip(self.names, self.frames, strict=True) if f]
        missing = [n for n in self.names if n not in self.recorded]
        info = {"frames": dict(zip(self.names, self.frames, strict=True)), "cameras": self.recorded,
                "cameras_without_frames": missing, "fps": next(iter(self.rates.values()), self.fps),
                "fps_per_camera": self.rates, "live": summary or {}}
        (self.out / "live.json").write_text(json.dumps(info, indent=1, default=float))
        if missing and len(self.recorded) >= 2:
            write_rig(self.rig.subset(self.recorded), self.out / "calibration" / "rig.toml")
            log.warning("record: cameras %s delivered no frame: left out of %s (mocap run processes the other %d)",
                        missing, self.out / "calibration" / "rig.toml", len(self.recorded))
        elif missing:
            log.warning("record: %s delivered frames (none from %s): %s cannot be processed by mocap run, which "
                        "needs the videos of at least two cameras of its rig",
                        f"only {self.recorded}" if self.recorded else "no camera", missing, self.out)
        got = [f for f in self.frames if f]
        short = [n for n, f in zip(self.names, self.frames, strict=True) if 0 < f < max(got, default=0)]
        if short:
            rate = next(iter(self.rates.values()), self.fps)
            log.warning("record: cameras %s recorded fewer frames than the others %s (a stream stopped); mocap run "
                        "pads the shorter ones as missing when the counts differ by at most "
                        "detect.max_length_difference_s (2 s by default; here %.1f s) and refuses the session beyond",
                        short, dict(zip(self.names, self.frames, strict=True)), (max(got) - min(got)) / rate)
        return self.out
