"""Review videos: the 3D skeleton projected over each camera's video (``review/<camera>_reprojected.mp4``).

Rendered camera by camera in threads (OpenCV releases the GIL while it decodes, draws and encodes), in
the background (:func:`start`): ``mocap run`` starts them as soon as the 3D points are final, so they
render while the fit, the retarget, the export and the report's page are made; the report stage waits
for them (with a progress bar). A render started for the same video and the same key is joined, never
repeated; the frames the report's crops need are kept as the render decodes them (:func:`captured`),
so the crops decode nothing more. The frames come from the camera's proxy (:mod:`mocap.io.proxy`: its
frames at the videos' height, written by detection as it decoded them) when there is one that covers the
video as it is now; otherwise from the video. A camera's video is rendered again only when what it shows changed:
a fingerprint beside it (``review/.<camera>_reprojected.mp4.key``) records the
source video (path, size, time), the projected points (what the 3D points, the camera and its sync
offset give), the frame rate and the drawing's version, and the video it wrote (size, time).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mocap.geometry.camera_moves import project_moved
from mocap.io.atomic import atomic_write_text
from mocap.io.proxy import scaled_size, shrink
from mocap.keypoint_sets import get_keypoint_set
from mocap.labels import drawable
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
    (``sampling``: the detection's (start, stride) when not (0, 1), and the video's size when scaled)."""
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



@dataclass(eq=False)
class Job:
    """One camera's render: in flight or finished, in this process."""

    out: Path
    key: str
    source: Path
    source_stat: list[int]
    total: int  # frames of the source video
    wanted: frozenset[int] = frozenset()  # video frames to keep (for the report's crops)
    size: tuple[int, int] | None = None  # the source's (width, height): kept frames decoded smaller are scaled up
    stop: threading.Event = field(default_factory=threading.Event)
    frames: dict[int, np.ndarray] = field(default_factory=dict)
    rendered: int = 0
    future: Future | None = None

    def keep(self, i: int, img: np.ndarray) -> None:
        if i in self.wanted:  # before the skeleton is drawn on it
            if self.size is not None and (img.shape[1], img.shape[0]) != tuple(self.size):  # from the proxy
                import cv2

                self.frames[i] = cv2.resize(img, tuple(self.size), interpolation=cv2.INTER_LINEAR)
            else:
                self.frames[i] = img.copy()
        self.rendered += 1

    def ok(self) -> bool:
        return not self.stop.is_set() and not (self.future is not None and self.future.done()
                                               and self.future.exception() is not None)


_JOBS: dict[Path, Job] = {}  # review video → its latest render in this process
_LOCK = threading.Lock()


def render(source: Path, out: Path, uv: np.ndarray, limbs, offset: float, fps: float, size, label: str,
           stop: threading.Event | None = None, sampling: tuple[int, int] = (0, 1), job: Job | None = None,
           height: int = 0, proxy: list | None = None) -> Path:
    """Write one overlay video (atomically: an interrupted render leaves the previous one). ``sampling``:
    (start, stride) of the detection, :meth:`mocap.session.Session.video_sampling`; ``job``: keeps the
    frames it wants (as decoded) and counts the frames done; ``height``: the video's height when lower
    than the source's (0: the source's size); ``proxy``: the segments of the source's proxy at that
    height (:func:`mocap.io.proxy.segments`), decoded instead of the source (one that cannot be read: the
    source, with a warning)."""
    from mocap.io import proxy as proxies
    from mocap.io.video import probe, read_frames

    args = (out, uv, limbs, fps, size, label, stop, offset, sampling, job, height)
    if proxy:
        try:
            return _draw(proxies.read_frames(proxy, probe(source).frames), *args)
        except proxies.ProxyError as e:
            log.warning("%s: %s; drawing on the video itself", out.name, e)
            if job is not None:
                job.rendered = 0  # every frame is drawn again: counted once
    return _draw(read_frames(source), *args)


FAR_PX = 1e5  # projected points beyond this many pixels from the image origin are not drawn


def _draw(frames, out: Path, uv: np.ndarray, limbs, fps: float, size, label: str, stop, offset: float,
          sampling: tuple[int, int], job: Job | None, height: int) -> Path:
    import cv2

    from mocap.detect.overlay import OverlayWriter

    out_size = scaled_size(size, height)
    scale = out_size[1] / size[1]
    thick = max(1, round(3 * scale))
    writer = OverlayWriter(out, fps, out_size)
    ok = False
    try:
        for i, img in frames:
            if stop is not None and stop.is_set():
                raise StoppedError(label)
            if job is not None:
                job.keep(i, img)
            if tuple(out_size) != (img.shape[1], img.shape[0]):
                img = shrink(img, out_size)
            t = int(round((i - sampling[0]) / sampling[1] - offset))
            if 0 <= t < len(uv):  # (J, 2): one person in green; (P, J, 2): each person in its colour
                people = [(uv[t], (0, 220, 0))] if uv.ndim == 3 else \
                    [(uv[t, k], palette(k)[CENTRE]) for k in range(uv.shape[1])]
                for p, colour in people:
                    # a point far outside the image (near the camera's plane, or a person beside it) is left out:
                    # OpenCV's line drawing fails on coordinates near its fixed-point range
                    good = np.isfinite(p).all(axis=1) & (np.abs(np.nan_to_num(p)) < FAR_PX).all(axis=1)
                    q = np.round(np.where(good[:, None], p, 0.0) * scale).astype(int)
                    for a, b in limbs:
                        if good[a] and good[b]:
                            cv2.line(img, tuple(q[a]), tuple(q[b]), colour, thick, cv2.LINE_AA)
            cv2.putText(img, drawable(f"{label} frame {i}"), (round(20 * scale), round(40 * scale)),
                        cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), max(1, round(2 * scale)))
            writer.write(img)
        ok = True
    finally:
        writer.close(ok)
    return out


def _one(source: Path, out: Path, uv: np.ndarray, limbs, offset: float, fps: float, size, label: str,
         key: str, job: Job, sampling: tuple[int, int] = (0, 1), height: int = 0, proxy: list | None = None) -> Path:
    key_path(out).unlink(missing_ok=True)  # the old record must not vouch for a half-replaced video
    render(source, out, uv, limbs, offset, fps, size, label, job.stop, sampling, job=job, height=height, proxy=proxy)
    atomic_write_text(key_path(out), json.dumps({"key": key, "video": _stat(out), "source": str(source)}))
    return out


class Pending:
    """Overlay videos being rendered; :meth:`result` waits for them, :meth:`cancel` stops them."""

    def __init__(self, paths: list[Path], jobs: list[Job], pool: ThreadPoolExecutor | None):
        self.paths, self.jobs, self.pool = paths, jobs, pool

    def result(self, progress: bool | None = None) -> list[Path]:
        """Wait for the renders (a progress bar of their frames while they run; ``progress=False``: none)."""
        try:
            self._wait(progress)
            for job in self.jobs:
                job.future.result()
        except BaseException:
            self.cancel()
            raise
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True)
            self._forget()
        return self.paths

    def _wait(self, progress: bool | None) -> None:
        running = [j for j in self.jobs if not j.future.done()]
        if not running or progress is False:
            return
        from tqdm import tqdm

        total = sum(j.total for j in self.jobs)
        with tqdm(total=total, desc="overlay videos", unit="frame", disable=None if progress else True) as bar:
            while any(not j.future.done() for j in self.jobs):
                bar.update(min(sum(j.rendered for j in self.jobs), total) - bar.n)
                time.sleep(0.1)
            bar.update(total - bar.n)

    def cancel(self) -> None:
        for job in self.jobs:
            job.stop.set()
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
        self._forget()

    def _forget(self) -> None:
        """Drop the kept frames and the finished jobs (their records now say they are up to date)."""
        with _LOCK:
            for job in self.jobs:
                if job.future is None or job.future.done():
                    job.frames.clear()
                    if _JOBS.get(job.out) is job:
                        del _JOBS[job.out]


def camera_videos(folder: Path, names, warn: bool = False) -> dict[str, Path]:
    """camera → its video in ``folder`` (file stem = camera name) for those of the cameras ``names`` that have one,
    in that order ({}: no folder or no video in it); ``warn``: a warning naming each camera without one when
    others have one (no review video for it, its worst frames drawn without the video)."""
    from mocap.io.video import find_videos

    try:
        return find_videos(folder, tuple(names))  # every camera has one (videos of no camera: said once)
    except FileNotFoundError:
        return {}
    except ValueError:  # no video at all, or cameras without one
        try:
            found = find_videos(folder)
        except ValueError:
            return {}
    out = {c: found[c] for c in names if c in found}
    for c in [c for c in names if c not in found] if warn and out else []:
        log.warning("report: camera %s has no video in %s (none named %s.mp4, .mov, …: a video's file name is its "
                    "camera's name): no review video %s for it, and any worst frame of it is drawn on grey", c,
                    folder, c, video_path(Path(), c).name)
    return out


def workers() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores)


def start(session, rig, pts, offsets: dict[str, float], person: int = 0, threads: int | None = None,
          wanted: dict[str, set[int]] | None = None, height: int = 0) -> Pending:
    """Start rendering the overlay videos of the cameras that have a video and whose video is out of
    date (joining a render of the same video and key already under way); returns at once. ``wanted``:
    camera → video frames to keep for :func:`captured`; ``height``: of the videos, when lower than the
    source's (0: the source's size). Nothing to render: an already finished :class:`Pending`."""
    from mocap.io import proxy
    from mocap.io.video import probe

    videos = camera_videos(session.root / "videos", rig.names)
    if not videos:
        return Pending([], [], None)
    limbs = get_keypoint_set(pts.keypoint_set).limbs
    X = pts.xyz[:, person] if pts.xyz.shape[1] == 1 else pts.xyz  # several people: all of them
    moves = session.camera_moves()  # a camera moved mid-take: those frames through where it was
    review = session.root / "review"
    sampling = session.video_sampling()
    paths, jobs, todo = [], [], []
    for cam in rig:
        if cam.name not in videos:  # no video of this camera (said once by the report): the others are rendered
            log.info("%s: no video of camera %s to draw on", video_path(review, cam.name).name, cam.name)
            continue
        info = probe(videos[cam.name])
        offset, fps = float(offsets.get(cam.name, 0.0)), float(info.fps or pts.fps)
        uv = project_moved(cam, moves, X, 0, offset)
        out = video_path(review, cam.name)
        paths.append(out)
        size = scaled_size(info.size, height)
        extra = ([sampling] if sampling != (0, 1) else []) + ([size] if size != tuple(info.size) else [])
        key = fingerprint(videos[cam.name], uv, offset, fps, limbs, *extra)
        with _LOCK:
            job = _JOBS.get(out)
        if job is not None and job.key == key and job.ok() and not job.future.done():
            log.info("%s: joining its render under way", out.name)
            jobs.append(job)
            continue
        if out.is_file() and up_to_date(out, key):
            log.info("%s is up to date", out.name)
            continue
        if job is not None and not job.future.done():  # an older render of this video: stop it first
            job.stop.set()
            _quietly(job.future)
        real = Path(videos[cam.name]).resolve()
        job = Job(out, key, real, _stat(real), info.frames, frozenset((wanted or {}).get(cam.name, ())),
                  size=tuple(info.size))
        parts = proxy.segments(session.root, cam.name, videos[cam.name], info.frames, size) \
            if size != tuple(info.size) else None
        log.info("%s: drawn on %s", out.name, "the small copy of the video detection made (its proxy)" if parts
                 else "the source video")
        todo.append((job, (videos[cam.name], out, uv, limbs, offset, fps, info.size, cam.name, key, job, sampling,
                           height, parts)))
    if not todo:
        return Pending(paths, jobs, None)
    pool = ThreadPoolExecutor(min(len(todo), threads or workers()), thread_name_prefix="overlay")
    with _LOCK:
        for job, args in todo:
            job.future = pool.submit(_one, *args)
            _JOBS[job.out] = job
            jobs.append(job)
    return Pending(paths, jobs, pool)


def _quietly(future: Future) -> None:
    try:
        future.result()
    except Exception:  # noqa: BLE001 - a stopped or failed older render: its error is not this one's
        log.debug("an older render ended", exc_info=True)


def captured(review: Path, camera: str, source: Path) -> dict[int, np.ndarray]:
    """The frames of ``source`` kept by this process's render of ``camera``'s overlay video (waits for it
    to finish); {} when there is none, it failed, or the video changed since."""
    with _LOCK:
        job = _JOBS.get(video_path(review, camera))
    if job is None or job.future is None:
        return {}
    try:
        job.future.result()
        real = Path(source).resolve()
        return dict(job.frames) if job.source == real and job.source_stat == _stat(real) else {}
    except Exception:  # noqa: BLE001 - the render's failure is raised by the report's wait on it
        return {}


def overlay_videos(session, rig, pts, offsets: dict[str, float], person: int = 0,
                   threads: int | None = None) -> list[Path]:
    """The overlay videos of every camera with a video (rendered where out of date); returns their paths."""
    return start(session, rig, pts, offsets, person, threads).result(progress=False)
