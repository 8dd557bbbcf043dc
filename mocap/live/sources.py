"""Live camera sources: one reader thread per camera, time-stamped frames, bounded queues (drop oldest).

A source is an OpenCV device index (``0``), a stream URL (``rtsp://…``, ``http://…``) or, for tests and
rehearsals, a video file played at its real rate (each frame is released at its time from the start,
and stamped with that time: the moment it would have left the camera's glass). A device or stream
frame is stamped when OpenCV hands it over, which leaves out the camera's own exposure-to-driver
delay. A source that stops delivering (end of stream, unplugged, read error) ends; the others go on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


@dataclass
class Frame:
    camera: int
    index: int  # frames delivered by this source so far (0, 1, …)
    t_glass: float  # time.monotonic() of the exposure (see the module)
    image: np.ndarray


class LatestQueue:
    """A bounded queue that drops its oldest item when full (counted in ``dropped``): the consumer always
    gets the freshest frames and nothing waits without bound."""

    def __init__(self, maxsize: int = 2):
        if maxsize < 1:
            raise ValueError(f"queue size must be ≥ 1, got {maxsize}")
        self._items: deque = deque()
        self._maxsize = maxsize
        self._cond = threading.Condition()
        self.dropped = 0
        self.closed = False
        self.on_put = None  # called after each put and at close (a consumer of many queues waits on it)

    def put(self, item) -> None:
        with self._cond:
            if len(self._items) >= self._maxsize:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            self._cond.notify()
        if self.on_put is not None:
            self.on_put()

    def get(self, timeout: float | None = None):
        """The oldest item kept, or None when closed and empty (or after ``timeout``)."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._items or self.closed, timeout):
                return None
            return self._items.popleft() if self._items else None

    def wait(self, timeout: float | None = None) -> bool:
        """Until an item is there (True) or the queue is closed / ``timeout`` passed (False)."""
        with self._cond:
            return bool(self._cond.wait_for(lambda: self._items or self.closed, timeout) and self._items)

    def get_latest(self, timeout: float | None = None):
        """The newest item (older ones are dropped and counted), or None as :meth:`get`."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._items or self.closed, timeout):
                return None
            if not self._items:
                return None
            self.dropped += len(self._items) - 1
            item = self._items.pop()
            self._items.clear()
            return item

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()
        if self.on_put is not None:
            self.on_put()

    def __len__(self) -> int:
        return len(self._items)


def parse_source(value: str | int) -> str | int:
    """``"0"`` → device 0; anything else (URL, file) stays a string."""
    if isinstance(value, int):
        return value
    text = str(value).strip()
    return int(text) if text.isdigit() else text


class Source(threading.Thread):
    """Reads one camera into ``queue``; ``recorder`` (optional) gets every frame read, dropped or not."""

    def __init__(self, camera: int, name: str, target: str | int, queue: LatestQueue, realtime: bool = False,
                 t0: float | None = None, loop: bool = False, recorder=None, stop_after_s: float | None = None):
        super().__init__(daemon=True, name=f"source-{name}")
        self.camera, self.camera_name, self.target, self.queue = camera, name, target, queue
        self.realtime, self.loop, self.recorder = realtime, loop, recorder
        self.t0 = t0 if t0 is not None else time.monotonic()
        self.stop_after_s = stop_after_s  # tests: a stream that stops mid-take
        self.halt = threading.Event()
        self.frames = 0
        self.fps: float | None = None
        self.ended: str | None = None  # why it stopped, or None while it runs
        self.ended_at: float | None = None
        self.last_frame_t: float | None = None  # time.monotonic() when the last frame was delivered (a hung read: old)
        self.late_s = 0.0  # file playback: how far behind its schedule the reader fell (decode too slow)
        self.expected: int | None = None  # file playback: the frame count its header gives

    def _open(self):
        import cv2

        from mocap.quiet import native_stderr_to_log

        with native_stderr_to_log(log):  # OpenCV's and FFmpeg's own lines ("Connection refused") go to the log
            cap = cv2.VideoCapture(self.target)
        if not cap.isOpened():
            raise OSError(f"cannot open {self.target!r}")  # logged as "camera NAME: ..." by _end
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and fps > 0 else None
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT) if self.realtime else 0
        self.expected = int(count) if count and count > 0 else None
        return cap

    def run(self) -> None:
        try:
            cap = self._open()
        except OSError as e:
            self._end(str(e))
            return
        period = 1.0 / (self.fps or 30.0)
        try:
            while not self.halt.is_set():
                if self.stop_after_s is not None and time.monotonic() - self.t0 >= self.stop_after_s:
                    self._end("stream stopped (simulated)")
                    return
                ok, image = cap.read()
                if not ok:
                    if self.realtime and self.loop and self.frames:
                        cap.release()
                        cap = self._open()
                        continue
                    self._end(self._why_no_frame())
                    return
                if self.realtime:  # a file played at its rate: release the frame at its time
                    due = self.t0 + self.frames * period
                    wait = due - time.monotonic()
                    if wait > 0:
                        self.halt.wait(wait)
                    else:
                        self.late_s = max(self.late_s, -wait)
                    t = due
                else:
                    t = time.monotonic()
                if self.recorder is not None:
                    self.recorder.write(self.camera, image, self.fps)
                self.queue.put(Frame(self.camera, self.frames, t, image))
                self.last_frame_t = time.monotonic()  # before the count: frames > 0 has a time
                self.frames += 1
        finally:
            cap.release()
            self.queue.close()

    def delivered_until(self) -> float | None:
        """Up to when it delivered, in the take's time as ``ended_at`` (None before its first frame)."""
        if not self.frames:
            return None
        return self.t0 + self.frames / self.fps if self.realtime and self.fps else self.last_frame_t

    def _why_no_frame(self) -> str:
        if not self.realtime:
            return "no frame from the camera (stopped or unplugged)"
        if self.expected and self.expected - self.frames > max(2, self.expected // 100):
            # the file promised more (beyond a container's estimate of its own count): cut short or corrupt
            return f"video cut short at frame {self.frames} of {self.expected}"
        return "end of stream"

    def _end(self, why: str) -> None:
        """``ended_at`` is in the take's time: a file played at its rate ends when its next frame was due (a
        reader that fell behind on a busy machine ends later in wall time, at the same point of the take)."""
        self.ended = why
        self.ended_at = self.t0 + self.frames / self.fps if self.realtime and self.fps else time.monotonic()
        if self.frames:
            log.log(logging.INFO if why == "end of stream" else logging.WARNING,
                    "camera %s stopped after %d frames (%.1f s): %s; live goes on with the others",
                    self.camera_name, self.frames, self.ended_at - self.t0, why)
        else:
            log.warning("camera %s: %s", self.camera_name, why)


def session_sources(session, names: tuple[str, ...], from_videos: bool) -> dict[str, str | int]:
    """camera → source: the session's videos (``from_videos``), else ``SESSION/live.toml``'s ``[cameras]``
    table (``cam01 = 0`` a device index, ``cam02 = "rtsp://…"`` a stream URL)."""
    import tomllib

    root = Path(session.root)
    if from_videos:
        from mocap.io.video import find_videos

        return {c: str(p) for c, p in find_videos(root / "videos", names).items()}
    cfg = root / "live.toml"
    if not cfg.is_file():
        raise FileNotFoundError(f"{cfg} does not exist: list the cameras there ([cameras] cam01 = 0, cam02 = "
                                "\"rtsp://host/stream\"), or pass --from-videos to play the session's videos")
    table = tomllib.loads(cfg.read_text()).get("cameras")
    if not isinstance(table, dict):
        raise ValueError(f"{cfg}: expected a [cameras] table of camera name = device index or URL")
    unknown = sorted(set(table) - set(names))
    if unknown:
        raise ValueError(f"{cfg}: cameras {unknown} are not in the rig {list(names)}")
    missing = [c for c in names if c not in table]
    if len(names) - len(missing) < 2:
        raise ValueError(f"{cfg}: live needs at least 2 of the rig's cameras {list(names)}, got {sorted(table)}")
    bad = {c: v for c, v in table.items() if not isinstance(v, int | str)}
    if bad:
        raise ValueError(f"{cfg}: a camera is a device index or a URL string, got {bad}")
    return {c: parse_source(table[c]) for c in names if c in table}
