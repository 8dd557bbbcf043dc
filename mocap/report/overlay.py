"""Review videos: the 3D skeleton projected over each camera's video (``review/<camera>_reprojected.mp4``).

Rendered camera by camera in threads (OpenCV releases the GIL while it decodes, draws and encodes), in
the background of the rest of the report (:func:`start`). A camera's video is rendered again only when
what it shows changed: a fingerprint beside it (``review/.<camera>_reprojected.mp4.key``) records the
source video (path, size, time), the projected points (what the 3D points, the camera and its sync
offset give), the frame rate and the drawing's version, and the video it wrote (size, time).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from mocap.io.atomic import atomic_write_text
from mocap.keypoint_sets import get_keypoint_set
from mocap.view.render import palette
from mocap.view.scene import CENTRE

log = logging.getLogger(__name__)
VERSION = 1  # of the drawing: a change re-renders every video


class StoppedError(Exception):
    """Rendering was asked to stop (the report failed or was interrupted)."""


def video_path(review: Path, camera: str) -> Path:
    return review / f"{camera}_reprojected.mp4"


def key_path(video: Path) -> Path:
    return video.with_name(f".{video.name}.key")


def _stat(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def fingerprint(source: Path, uv: np.ndarray, offset: float, fps: float, limbs, *sampling) -> str:
    """What a camera's overlay video shows: the source video's identity and the points drawn on it
    (``sampling``: the detection's (start, stride) when not (0, 1))."""
    h = hashlib.sha256()
    real = Path(source).resolve()
    h.update(json.dumps([VERSION, str(real), _stat(real), float(offset), float(fps),
                         [list(map(int, limb)) for limb in limbs]] + [list(s) for s in sampling]).encode())
    h.update(np.ascontiguousarray(np.nan_to_num(uv, nan=-1e9), dtype=np.float64).tobytes())
    return h.hexdigest()


def up_to_date(video: Path, key: str) -> bool:
    """Whether ``video`` is the one rendered for ``key`` (and not changed since)."""
    try:
        rec = json.loads(key_path(video).read_text())
        return rec.get("key") == key and rec.get("video") == _stat(video)
    except (OSError, ValueError, AttributeError):
        return False


def render(source: Path, out: Path, uv: np.ndarray, limbs, offset: float, fps: float, size, label: str,
           stop: threading.Event | None = None, sampling: tuple[int, int] = (0, 1)) -> Path:
    """Write one overlay video (atomically: an interrupted render leaves the previous one). ``sampling``:
    (start, stride) of the detection, :meth:`mocap.session.Session.video_sampling`."""
    import cv2

    from mocap.detect.overlay import OverlayWriter
    from mocap.io.video import read_frames

    writer = OverlayWriter(out, fps, size)
    ok = False
    try:
        for i, img in read_frames(source):
            if stop is not None and stop.is_set():
                raise StoppedError(label)
            t = int(round((i - sampling[0]) / sampling[1] - offset))
            if 0 <= t < len(uv):  # (J, 2): one person in green; (P, J, 2): each person in its colour
                people = [(uv[t], (0, 220, 0))] if uv.ndim == 3 else \
                    [(uv[t, k], palette(k)[CENTRE]) for k in range(uv.shape[1])]
                for p, colour in people:
                    good = np.isfinite(p).all(axis=1)
                    q = np.round(np.nan_to_num(p)).astype(int)
                    for a, b in limbs:
                        if good[a] and good[b]:
                            cv2.line(img, tuple(q[a]), tuple(q[b]), colour, 3, cv2.LINE_AA)
            cv2.putText(img, f"{label} frame {i}", (20, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 255), 2)
            writer.write(img)
        ok = True
    finally:
        writer.close(ok)
    return out


def _one(source: Path, out: Path, uv: np.ndarray, limbs, offset: float, fps: float, size, label: str,
         key: str, stop: threading.Event | None, sampling: tuple[int, int] = (0, 1)) -> Path:
    key_path(out).unlink(missing_ok=True)  # the old record must not vouch for a half-replaced video
    render(source, out, uv, limbs, offset, fps, size, label, stop, sampling)
    atomic_write_text(key_path(out), json.dumps({"key": key, "video": _stat(out), "source": str(source)}))
    return out


class Pending:
    """Overlay videos being rendered; :meth:`result` waits for them, :meth:`cancel` stops them."""

    def __init__(self, paths: list[Path], futures: list[Future], pool: ThreadPoolExecutor | None,
                 stop: threading.Event):
        self.paths, self.futures, self.pool, self.stop = paths, futures, pool, stop

    def result(self) -> list[Path]:
        try:
            for f in self.futures:
                f.result()
        except BaseException:
            self.cancel()
            raise
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True)
        return self.paths

    def cancel(self) -> None:
        self.stop.set()
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


def workers() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores)


def start(session, rig, pts, offsets: dict[str, float], person: int = 0, threads: int | None = None) -> Pending:
    """Start rendering the overlay videos of the cameras that have a video and whose video is out of
    date; returns at once. Nothing to render: an already finished :class:`Pending`."""
    from mocap.io.video import find_videos, probe

    stop = threading.Event()
    try:
        videos = find_videos(session.root / "videos", rig.names)
    except (FileNotFoundError, ValueError):
        return Pending([], [], None, stop)
    limbs = get_keypoint_set(pts.keypoint_set).limbs
    X = pts.xyz[:, person] if pts.xyz.shape[1] == 1 else pts.xyz  # several people: all of them
    review = session.root / "review"
    sampling = session.video_sampling()
    paths, todo = [], []
    for cam in rig:
        info = probe(videos[cam.name])
        uv = cam.project(X.reshape(-1, 3)).reshape(X.shape[:-1] + (2,))
        out = video_path(review, cam.name)
        paths.append(out)
        offset, fps = float(offsets.get(cam.name, 0.0)), float(info.fps or pts.fps)
        key = fingerprint(videos[cam.name], uv, offset, fps, limbs, *([sampling] if sampling != (0, 1) else []))
        if out.is_file() and up_to_date(out, key):
            log.info("%s is up to date", out.name)
            continue
        todo.append((videos[cam.name], out, uv, limbs, offset, fps, info.size, cam.name, key, stop, sampling))
    if not todo:
        return Pending(paths, [], None, stop)
    pool = ThreadPoolExecutor(min(len(todo), threads or workers()), thread_name_prefix="overlay")
    return Pending(paths, [pool.submit(_one, *args) for args in todo], pool, stop)


def overlay_videos(session, rig, pts, offsets: dict[str, float], person: int = 0,
                   threads: int | None = None) -> list[Path]:
    """The overlay videos of every camera with a video (rendered where out of date); returns their paths."""
    return start(session, rig, pts, offsets, person, threads).result()
