"""Small copies of the camera videos ("proxies"), written while detection decodes the frames anyway, so
that the report's overlay videos decode small frames instead of the full-size videos again.

A camera's proxy is one or more segments, ``SESSION/.mocap/proxy/<camera>/<first>.mp4`` (video frames
``[first, end)`` shrunk to a size, MPEG-4 part 2), each with a record beside it (``<first>.json``: the
source video's real path, size and time, the frames it covers, its size and this format's version). A
reader takes a camera's proxy only when its records cover every frame of the source video as it is now,
at the size wanted (:func:`segments`); otherwise the caller decodes the source video (nothing breaks).

Measured on the 4-camera 1080×1920 demo (one core, per camera of 100 frames): decoding the source
costs 1.45 CPU s, shrinking to 960×540 0.18, encoding that 0.18, and decoding the proxy again 0.07:
about 0.36 CPU s added to detection per camera saves 1.4 CPU s of decoding after it.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from mocap.io.atomic import atomic_write_text

log = logging.getLogger(__name__)
VERSION = 1  # of the proxy's format: a change makes every proxy stale


class ProxyError(ValueError):
    """A proxy that cannot be read as its records say (the caller decodes the source video instead)."""


def folder(root: Path, camera: str) -> Path:
    """Where ``camera``'s proxy segments are, in the session ``root``: any camera name a rig accepts (the
    videos' file names are camera names too); a ValueError for one that cannot be a folder's name."""
    from mocap.io.rig_files import check_camera_name

    return Path(root) / ".mocap" / "proxy" / check_camera_name(Path(root), camera)


def clear(root: Path, camera: str) -> None:
    """Remove ``camera``'s proxy (its detection starts again)."""
    shutil.rmtree(folder(root, camera), ignore_errors=True)


def scaled_size(size, height: int = 0) -> tuple[int, int]:
    """A video's (width, height): ``size``, or ``height`` px high (even sizes) when lower."""
    w, h = int(size[0]), int(size[1])
    if not height or height >= h:
        return w, h
    return max(2, round(w * height / h / 2) * 2), max(2, int(height) // 2 * 2)


def shrink(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``img`` made ``size`` (smaller): halved (each pixel the mean of 2 × 2) while still at least twice as
    large, then interpolated the rest of the way. OpenCV's area filter is fastest for a factor of 2: on a
    1080×1920 frame, to 304×540 this takes 1.3 ms, where one area step by 3 then an interpolation took 3.2."""
    import cv2

    while img.shape[1] >= 2 * size[0] and img.shape[0] >= 2 * size[1]:
        img = cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2), interpolation=cv2.INTER_AREA)
    if (img.shape[1], img.shape[0]) == tuple(size):
        return img
    return cv2.resize(img, tuple(size), interpolation=cv2.INTER_LINEAR)


def quick_shrink(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``img`` made ``size``, cheaper than :func:`shrink` and measured as its alternative for detection's proxies
    (:func:`mocap.bench.detect.proxy_study`; not used for them: at a factor between 2 and 4 the single bilinear
    step aliases fine detail, e.g. window blinds, for 0.2 CPU s of a 13 s detection): halved (2 × 2 means) only
    while at least 4 times as large, then one bilinear step (which reads 2 source rows per output row). On the
    1080×1920 demo to 304×540 (no halving): 0.45-0.6 ms per frame just decoded against 0.9-1.15 for :func:`shrink`.
    What the user sees (:func:`mocap.bench.detect.proxy_study`, 4 cameras): the overlay video drawn from this proxy
    is 26.9-27.9 dB from the same drawing on the full-size frames without any encoding, against 27.8-28.3 dB from
    :func:`shrink`'s; the two overlays are MSE 15-40 apart, the two codec generations lose MSE 97-109. For a factor
    2, 4 or 8 it makes the same pixels as :func:`shrink` (a bilinear halving averages 2 × 2)."""
    import cv2

    while img.shape[1] >= 4 * size[0] and img.shape[0] >= 4 * size[1]:
        img = cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2), interpolation=cv2.INTER_AREA)
    if (img.shape[1], img.shape[0]) == tuple(size):
        return img
    return cv2.resize(img, tuple(size), interpolation=cv2.INTER_LINEAR)


def for_detection(root: Path, report, cfg, infos: dict) -> dict[str, tuple | None]:
    """camera → (session root, camera, size) of the proxy detection's chunks write for the report's overlay
    videos, when the report (its Config, ``report``) makes them smaller than the camera (``overlay_height``)
    and detection (its Config, ``cfg``) decodes every frame; None for the others. ``infos``: camera → its
    FootageInfo. The cameras' old proxies are removed first. Not part of detection's cache key: a missing or
    stale proxy only makes the overlay videos decode the source videos."""
    out: dict[str, tuple | None] = {}
    for c, info in infos.items():
        clear(root, c)
        size = scaled_size(info.size, report.overlay_height)
        every_frame = cfg.stride == 1 and cfg.start == 0 and (cfg.stop is None or cfg.stop >= info.frames)
        out[c] = (root, c, size) if report.overlay_videos and every_frame and size != tuple(info.size) else None
    return out


def _identity(source: Path) -> list:
    real = Path(source).resolve()
    st = real.stat()
    return [str(real), st.st_size, st.st_mtime_ns]


class SegmentWriter:
    """Writes the video frames ``first, first + 1, ...`` of ``source`` shrunk to ``size`` as one segment
    (atomically, its record last: a segment interrupted, or whose frames were not consecutive, leaves
    nothing)."""

    def __init__(self, root: Path, camera: str, source: Path, first: int, size: tuple[int, int], fps: float):
        from mocap.detect.overlay import OverlayWriter

        self.dir = folder(root, camera)
        self.source, self.first, self.size = Path(source), int(first), (int(size[0]), int(size[1]))
        self.identity = _identity(source)
        self.path = self.dir / f"{self.first:08d}.mp4"
        self.record_path(self.path).unlink(missing_ok=True)
        self.writer = OverlayWriter(self.path, fps or 30.0, self.size)
        self.end = self.first
        self.broken = False

    @staticmethod
    def record_path(path: Path) -> Path:
        return path.with_suffix(".json")

    def write(self, i: int, img: np.ndarray) -> None:
        if i != self.end:  # a gap (a stride, a seek): this segment cannot stand for the video
            self.broken = True
            return
        self.writer.write(shrink(img, self.size) if (img.shape[1], img.shape[0]) != self.size else img)
        self.end += 1

    def close(self, ok: bool = True) -> None:
        ok = ok and not self.broken and self.end > self.first
        self.writer.close(ok)
        if ok:
            atomic_write_text(self.record_path(self.path), json.dumps(
                {"version": VERSION, "source": self.identity, "first": self.first, "end": self.end,
                 "size": list(self.size)}))


def segments(root: Path, camera: str, source: Path, total: int, size) -> list[tuple[Path, int, int]] | None:
    """``camera``'s proxy of ``source`` at ``size``: its segments (path, first, end) in order, covering
    video frames 0 to ``total``; None when there is none, or it is stale, partial or of another size."""
    d = folder(root, camera)
    if not d.is_dir():
        return None
    try:
        identity = _identity(source)
    except OSError:
        return None
    found = []
    for rec in sorted(d.glob("*.json")):
        try:
            r = json.loads(rec.read_text())
            video = rec.with_suffix(".mp4")
            if r.get("version") == VERSION and r.get("source") == identity and list(r.get("size")) == list(size) \
                    and video.is_file():
                found.append((video, int(r["first"]), int(r["end"])))
        except (OSError, ValueError, TypeError, KeyError):
            continue
    found.sort(key=lambda s: (s[1], -s[2]))
    covered, out = 0, []
    for video, first, end in found:
        if first > covered:
            return None  # a gap
        if end > covered:
            out.append((video, first, end))
            covered = end
    return out if out and covered >= total else None


def read_frames(parts: list[tuple[Path, int, int]], total: int) -> Iterator[tuple[int, np.ndarray]]:
    """(video frame, image) for frames 0 to ``total`` from a proxy's segments (overlaps read once)."""
    from mocap.io.video import open_video  # FFmpeg kept quiet

    nxt = 0
    for video, first, end in parts:
        cap = open_video(video)
        try:
            for i in range(first, min(end, total)):
                ok, img = cap.read()
                if not ok:
                    raise ProxyError(f"proxy {video}: frame {i} cannot be read")
                if i < nxt:
                    continue
                yield i, img
                nxt = i + 1
        finally:
            cap.release()
    if nxt < total:
        raise ProxyError(f"proxy of {parts[0][0].parent.name}: frames {nxt}–{total - 1} missing")


# ----- written by detection's frame reader: a proxy is optional, detection goes on without it ----------------

def open_segment(proxy: tuple | None, source: Path, start: int, stride: int, fps: float | None):
    """The segment a detection chunk's reader writes from video frame ``start`` (``proxy``: session root,
    camera, size, from :func:`for_detection`); None when none is asked, frames are skipped (a stride), or
    it cannot be opened (a warning: the overlay videos then decode the source video)."""
    if proxy is None or stride != 1:
        return None
    root, camera, size = proxy
    try:
        return SegmentWriter(root, camera, source, start, size, fps or 30.0)
    except Exception as e:  # noqa: BLE001 - optional: the overlay videos then decode the source video (slower)
        log.warning("%s: no proxy for the overlay videos (%s)", camera, e)
        return None


def write_or_drop(segment: SegmentWriter, i: int, img: np.ndarray) -> SegmentWriter | None:
    """``segment`` with frame ``i`` written; None (and nothing left of it) when it cannot be written."""
    try:
        segment.write(i, img)
        return segment
    except Exception as e:  # noqa: BLE001 - optional: the overlay videos then decode the source video
        log.warning("%s: proxy for the overlay videos abandoned at frame %d (%s)", segment.path.parent.name, i, e)
        segment.close(False)
        return None


def close_quietly(segment: SegmentWriter, ok: bool) -> None:
    """Finish ``segment`` (kept when ``ok``); one that cannot be finished (a full disk) is left with a warning."""
    try:
        segment.close(ok)
    except Exception as e:  # noqa: BLE001 - optional: the overlay videos then decode the source video
        log.warning("%s: proxy for the overlay videos not finished (%s)", segment.path.parent.name, e)
