"""Camera footage: videos (anything OpenCV / FFmpeg reads) and image folders.

Errors name the file: a video that cannot be opened, or one that stops decoding before the frame
count its header promises (with the last good frame).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mocap.quiet import quiet_ffmpeg

quiet_ffmpeg()  # before any video is opened in this process
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}
log = logging.getLogger(__name__)
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}


@dataclass(frozen=True)
class FootageInfo:
    path: Path
    frames: int
    fps: float | None  # None for image folders
    size: tuple[int, int]  # width, height (of the frames as stored, as they are read)
    rotation: int = 0  # the video's rotation tag (degrees a player turns it by; the frames are read unturned)


def image_files(folder: Path) -> list[Path]:
    """A folder's images in frame order: names compared with their numbers as numbers (``frame2`` before
    ``frame10``, which a plain sort puts after ``frame1``)."""
    files = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_natural)
    if not files:
        raise ValueError(f"{folder}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


def _natural(path: Path) -> list:
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", path.name) if part]


def probe(source: str | Path) -> FootageInfo:
    """Frame count, frame rate and image size of a video or image folder."""
    source = Path(source)
    if source.is_dir():
        files = image_files(source)
        first = cv2.imread(str(files[0]), cv2.IMREAD_COLOR)  # as the frames are read: EXIF orientation applied
        if first is None:
            raise ValueError(f"{files[0]}: unreadable image")
        return FootageInfo(source, len(files), None, (first.shape[1], first.shape[0]))
    if not source.is_file():
        raise FileNotFoundError(f"{source} does not exist")
    key = probe_key(source)  # a video's header is read once per version of the file (opening one takes ~15 ms)
    with _probed_lock:
        if key in _probed:
            return _probed[key]
    info = _probe_video(source)
    with _probed_lock:
        if len(_probed) > 4096:
            _probed.clear()
        _probed[key] = info
    return info


_probed: dict[tuple, FootageInfo] = {}
_probed_lock = threading.Lock()


def fingerprint(path: Path, size: int | None = None, parts: int = 16, chunk: int = 1 << 16) -> str:
    """A video's identity: its size and the digest of ``parts`` chunks spread over it, the first and the last
    included (a re-encode, a trim, another take change them; a small file is read whole), not its time: a session
    copied with ``cp -r`` (new times) keeps its detection. The pipeline's cache key of a large video
    (:mod:`mocap.pipeline_state`), and what a partial detection records per camera (:mod:`mocap.stages.detect`).
    Videos are never rewritten in place by this project."""
    path = Path(path)
    size = path.stat().st_size if size is None else size
    h = hashlib.sha256()
    with path.open("rb") as f:
        if size <= parts * chunk:
            h.update(f.read())
        else:
            for i in range(parts):
                f.seek((size - chunk) * i // (parts - 1))
                h.update(f.read(chunk))
    return f"{size}:{h.hexdigest()[:16]}"


def probe_key(source: Path) -> tuple:
    """The version of a video file that :func:`probe` remembers its header for."""
    st = Path(source).stat()
    return str(source), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def remember(key: tuple, info: FootageInfo) -> None:
    """Take another process's probe of a video (``key``: :func:`probe_key` before it probed): this process's
    :func:`probe` then returns ``info`` without opening the file, while the file is still that version."""
    with _probed_lock:
        _probed[tuple(key)] = info


def _probe_video(source: Path) -> FootageInfo:
    from mocap.quiet import native_stderr_to_log

    if source.stat().st_size == 0:
        raise ValueError(f"{source}: empty file (0 bytes): not a video")
    with native_stderr_to_log(log):  # FFmpeg's own lines ("moov atom not found") go to the run's log
        cap = open_video(source, 1)  # FFmpeg reads a few frames to know the stream: one thread, ~2 ms less each
    try:
        if not cap.isOpened():
            raise ValueError(f"{source}: cannot open video (unsupported or corrupt file){ffmpeg_reason(source)}")
        fps = float(cap.get(cv2.CAP_PROP_FPS)) or None
        size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        rotation = int(round(cap.get(cv2.CAP_PROP_ORIENTATION_META) or 0)) % 360
        rotation = rotation if rotation in (90, 180, 270) else 0  # a backend without it: -1 (read as 359)
    finally:
        cap.release()
    if frames <= 0 or min(size) <= 0:
        raise ValueError(f"{source}: the video reports no frames")
    return FootageInfo(source, frames, fps, size, rotation)


def ffmpeg_reason(source: Path, timeout_s: float = 30.0) -> str:
    """What FFmpeg says opening ``source`` (": FFmpeg: moov atom not found"), or "": this process keeps FFmpeg
    quiet (:func:`mocap.quiet.quiet_ffmpeg`), so a child opens it once more with FFmpeg's errors on."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OPENCV_FFMPEG_LOGLEVEL"}
    code = "import cv2, sys; cv2.VideoCapture(sys.argv[1], cv2.CAP_FFMPEG).release()"
    try:
        r = subprocess.run([sys.executable, "-c", code, str(source)], env=env, capture_output=True, text=True,
                           timeout=timeout_s)
    except (OSError, subprocess.SubprocessError):
        return ""
    if r.returncode != 0:  # the child itself failed (no OpenCV there?): its traceback is no reason of FFmpeg's
        return ""
    lines = [re.sub(r"^\[[^]]*@ 0x[0-9a-f]+\] ", "", x).strip() for x in r.stderr.splitlines()]
    lines = list(dict.fromkeys(x for x in lines if x and not x.startswith(("[ WARN", "WARN", "Traceback"))))
    return f": FFmpeg: {'; '.join(lines[-3:])}" if lines else ""


def open_video(source: Path, threads: int = 0):
    """An OpenCV capture of a video file; ``threads`` > 0: its FFmpeg decoder uses that many threads (0: FFmpeg's
    choice, one per core). The frames are the same either way (H.264 decoding is exact); on the 1080×1920 demo one
    thread takes 1.90-1.99 CPU s for its 400 frames against 2.14-2.21 with FFmpeg's two (where the cores are
    busy anyway, the threads' hand-offs are only a cost). A backend that refuses the option opens the default way."""
    if threads > 0:
        cap = cv2.VideoCapture(str(source), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, int(threads)])
        if cap.isOpened():
            return cap
        cap.release()
    return cv2.VideoCapture(str(source))


def read_frames(source: str | Path, stride: int = 1, start: int = 0, stop: int | None = None,
                grey: bool = False, threads: int = 0) -> Iterator[tuple[int, np.ndarray]]:
    """(frame number, image) for every ``stride``-th frame in [start, stop) of a video or image folder;
    ``threads``: the video decoder's (:func:`open_video`).

    A video that ends before its header's frame count raises, naming the last good frame; a frame that cannot be
    decoded while later ones can (a damaged packet) is given as a black image (no detection there), said in one
    warning naming those frames (it stopped the whole detection as "truncated or corrupt")."""
    source = Path(source)
    if stride < 1:
        raise ValueError(f"stride must be ≥ 1, got {stride}")
    flag = cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR
    if source.is_dir():
        files = image_files(source)
        for i in range(start, len(files) if stop is None else min(stop, len(files)), stride):
            img = cv2.imread(str(files[i]), flag)
            if img is None:
                raise ValueError(f"{files[i]}: unreadable image")
            yield i, img
        return
    info = probe(source)
    end = info.frames if stop is None else min(stop, info.frames)
    cap = open_video(source, threads)
    bad: list[int] = []  # frames that could not be decoded while later ones could
    blank = np.zeros((info.size[1], info.size[0]) + (() if grey else (3,)), np.uint8)
    try:
        if start:
            cap.set(cv2.CAP_PROP_POS_FRAMES, start)
        run: list[int] = []  # the frames failing since the last one decoded
        for i in range(start, end):
            ok = cap.grab()
            if ok and (i - start) % stride == 0:
                ok, frame = cap.retrieve()
            if not ok:
                run.append(i)
                continue
            yield from _blanks(run, bad, start, stride, blank)
            if (i - start) % stride == 0:
                yield i, cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if grey else frame
        if run and end < info.frames and cap.grab():  # a range cut before the video's end: decoding resumes after
            yield from _blanks(run, bad, start, stride, blank)
        if run and bad:  # a packet lost (not only damaged): the frames after it came one early, out of step
            raise ValueError(f"{source}: corrupt video: frame {bad[0]} cannot be decoded and the video ends "
                             f"{len(run)} frame(s) before its header's {info.frames}: frames were lost, those after "
                             f"frame {bad[0]} out of step; re-export or re-encode it")
        if run:  # nothing decoded after: the video ends there
            raise ValueError(f"{source}: truncated or corrupt video: frame {run[0]} of {info.frames} cannot be read "
                             + (f"(last good frame {run[0] - 1})" if run[0] > 0 else "(nor any frame of it)"))
    finally:
        cap.release()
        if bad and not run:
            log.warning("%s: frames %s (%d) cannot be decoded (damaged): given as black images, no detection there",
                        source.name, ", ".join(map(str, bad[:10])) + (", …" if len(bad) > 10 else ""), len(bad))


def _blanks(run: list[int], bad: list[int], start: int, stride: int, blank: np.ndarray):
    """The undecodable frames of ``run`` (emptied) as black images, those on the stride; noted in ``bad``."""
    for j in run:
        if (j - start) % stride == 0:
            yield j, blank.copy()
    bad.extend(run)
    run.clear()


def unused_videos(folder: Path, cameras) -> list[str]:
    """The video files in ``folder`` whose stem is no camera of the rig (a file name is its camera's name): not
    used by any stage (``[]`` without the folder)."""
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and p.stem not in cameras)


def find_videos(folder: Path, cameras: tuple[str, ...] | None = None) -> dict[str, Path]:
    """camera → video in ``folder`` (file stem = camera name), in the rig's camera order when given."""
    if not folder.is_dir():
        raise FileNotFoundError(f"video folder {folder} does not exist")
    by_name: dict[str, list[Path]] = {}  # names compared in one Unicode form (macOS writes file names decomposed)
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() in VIDEO_SUFFIXES:
            by_name.setdefault(unicodedata.normalize("NFC", p.stem), []).append(p)
    if not by_name:
        raise ValueError(f"{folder}: no camera videos ({', '.join(sorted(VIDEO_SUFFIXES))})")
    given = None if cameras is None else list(cameras)  # the rig's names, as the caller keys them
    cameras = None if cameras is None else [unicodedata.normalize("NFC", c) for c in cameras]
    twice = {c: ps for c, ps in by_name.items() if len(ps) > 1 and (cameras is None or c in cameras)}
    if twice:  # the later in sort order was taken, silently (cam01.webm over cam01.mp4)
        raise ValueError(f"{folder}: several videos for one camera: " + "; ".join(
            f"{c}: {', '.join(p.name for p in ps)}" for c, ps in twice.items()) + "; keep one in the folder")
    found = {c: ps[0] for c, ps in by_name.items()}
    if cameras is None:
        return found
    missing = [c for c in cameras if c not in found]
    if missing:
        case = [f"{found[f].name} for {c}" for c in missing for f in found if f.lower() == c.lower()]
        raise ValueError(f"{folder}: no video for cameras {missing} of the rig (found {sorted(found)})"
                         + (f"; names differ only in case: {', '.join(case)}" if case else
                            "; add their videos, or leave those cameras out of the rig file (Qualisys: "
                            "active=\"0\" on their <camera>; other formats: delete their entries)"))
    unused = tuple(sorted(found[c].name for c in set(found) - set(cameras)))
    if unused and (str(folder), unused) not in _told_unused:  # once per process: several stages look
        _told_unused.add((str(folder), unused))
        log.warning("%s: %s not used: no camera of that name in the rig %s (a file name is its camera's name)",
                    folder, ", ".join(unused), list(cameras))
    return {g: found[c] for g, c in zip(given, cameras, strict=True)}


_told_unused: set[tuple[str, tuple[str, ...]]] = set()


SIZE_TOLERANCE = 0.1  # a video within this share of its camera's size guessed from the principal point (EasyMocap's
# intri.yml has none) is taken as that size; a size the rig gives, within PADDING_PX (codec padding: 1080 against 1088
# rows; a video scaled to 0.93 passed the 10 %, its keypoints not scaled: rig_refine moved the camera 119 mm to fit it,
# the 3D 59 mm off, PASS) ...
PADDING_PX = 16
ASPECT_TOLERANCE = 0.05  # ... when its shape is within this share too (1920×1080 footage of a 1920×1200 calibration
# is 10 % off in height alone: another sensor mode, the keypoints 60 px off)


def check_sizes(infos: dict[str, FootageInfo], rig, rig_source) -> None:
    """A clear error, before any detection, when a camera's footage is not the size its calibration was made at
    (keypoints in its pixels would not fit the intrinsics): rotated, scaled (another resolution) or cropped.
    ``rig``: the :class:`~mocap.types.Rig` (None: nothing to check)."""
    sizes = {c.name: c.size for c in rig.cameras} if rig is not None else {}
    guessed = {c.name: bool(np.all(np.round(2 * c.K[:2, 2] + 1) == np.asarray(c.size))) for c in rig.cameras} \
        if rig is not None else {}  # the size may be the principal point's (then only roughly the footage's)

    def near(a: float, b: float, loose: bool = True) -> bool:
        return abs(a / b - 1) <= SIZE_TOLERANCE and (loose or abs(a - b) <= PADDING_PX)

    problems = []
    for c, info in infos.items():
        if c not in sizes or info.size is None:
            continue
        (w, h), (W, H) = info.size, sizes[c]
        if near(w, W, guessed[c]) and near(h, H, guessed[c]) and abs((w / h) / (W / H) - 1) <= ASPECT_TOLERANCE:
            continue
        if near(w, H) and near(h, W) and info.rotation in (90, 270):
            why = (f"rotated by 90°: {info.path.name} carries a rotation tag of {info.rotation}° (a phone's: players "
                   f"show it turned, its frames are stored {w}×{h} and read so); calibrate on the stored frames, or "
                   "re-encode the video with the rotation applied")
        elif near(w, H) and near(h, W):
            why = "rotated by 90° (width and height exchanged in the rig, or a video re-encoded turned?)"
        elif abs((w / W) / (h / H) - 1) <= 0.02:
            k = (w / W + h / H) / 2
            why = (f"{k:.3g} × the calibrated size: calibrated at another resolution; give the footage at "
                   f"{W}×{H}, or scale that camera's intrinsics by {k:.3g} (fx, fy; cx + 0.5 and cy + 0.5, then − 0.5) "
                   f"and set its size to [{w}, {h}]")
            if str(rig_source).lower().endswith(".qca.txt"):  # the file's own fields (units of 1/64 pixel)
                why += (f" (in the Qualisys file, its <camera>: focalLengthU and focalLengthV × {k:.4g}; centerPointU: "
                        f"÷ 64, − left, + 0.5, × {k:.4g}, − 0.5, + left, × 64, and centerPointV likewise with top; "
                        f"<fov_video> right = left + {w - 1}, bottom = top + {h - 1})")
        else:
            why = ("another aspect ratio (cropped footage, another sensor mode, or another camera's calibration? a "
                   "rig file without the image size, EasyMocap's intri.yml, takes it from the principal point: add "
                   "size_<camera>)")
        problems.append(f"{c}: the footage is {w}×{h}, the rig's camera {W}×{H}: {why}")
    if problems:
        raise ValueError(f"the footage does not match the calibration {rig_source}: " + "; ".join(problems))


def check_footage(infos: dict[str, FootageInfo], max_difference_s: float = 0.0, rig=None,
                  rig_source=None) -> tuple[int, float]:
    """(the longest camera's frame count, the common fps); a clear error when a camera's footage is not its
    calibrated size (:func:`check_sizes`, with a ``rig``), the frame rates differ or the lengths differ by more
    than ``max_difference_s`` (what synchronisation can still explain)."""
    check_sizes(infos, rig, rig_source)
    fps = {c: i.fps for c, i in infos.items()}
    frames = {c: i.frames for c, i in infos.items()}
    unknown = [c for c, f in fps.items() if f is None]
    if unknown:
        raise ValueError(f"cameras {unknown}: the video does not report its frame rate")
    ref = next(iter(fps.values()))
    seconds = max(frames[c] / fps[c] for c in frames)  # the take's length (each camera at its own rate)

    def same(f: float, g: float) -> bool:  # within 0.1 %, and drifting apart by under a frame over the take
        return abs(f - g) <= 1e-3 * g and abs(f - g) * seconds < 1.0  # (59.94 beside 60: 7 frames in 2 minutes)

    if not all(same(f, ref) for f in fps.values()):
        most = max(fps.values(), key=lambda f: sum(same(g, f) for g in fps.values()))
        odd = sorted(c for c, f in fps.items() if not same(f, most))
        drift = max(abs(fps[c] - most) for c in odd) * seconds
        low, high = min(fps.values()), max(fps.values())
        k = round(high / low)
        keep = (f"; or, where the cameras were synchronised by hardware, keep one frame in {k} of the {high:g} fps "
                f"videos (the same instants as the {low:g} fps ones)" if k > 1 and abs(high / low - k) < 1e-3 else "")
        raise ValueError(f"cameras record at different frame rates {fps} ({drift:.3g} frames apart by the end of the "
                         f"take); synchronised videos are expected: set {', '.join(odd)} to {most:g} fps and film "
                         "again (converting a video's rate only repeats or blends frames; it cannot film the instants "
                         f"between them){keep}")
    spread = max(frames.values()) - min(frames.values())
    if spread > max_difference_s * ref:
        raise ValueError(f"cameras have different frame counts {frames}: {spread} frames apart, more than the "
                         f"{max_difference_s:g} s synchronisation can explain; trim the videos to the same take")
    if spread:
        log.warning("cameras differ in length by %d frames %s; shorter ones are padded as missing; sync looks for "
                    "their time offsets (applied when proven)",
                    spread, frames)
    return max(frames.values()), float(ref)
