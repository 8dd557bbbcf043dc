"""The frames where a camera's error is worst, as image crops: the detector's 2D keypoints (as
detected, before any left/right repair) and the 3D points reprojected through the camera drawn over
each other, left and right in different colours, so that a swap, a wrong person or a calibration
shift shows at a glance. Crops come from the session's videos (when the report reads videos), else
the two skeletons are drawn on a plain background."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mocap.geometry.camera_moves import as_detected, project_moved
from mocap.io.proxy import shrink
from mocap.keypoint_sets import get_keypoint_set
from mocap.report.stats import per_frame
from mocap.types import Keypoints2D, Points3D, Rig
from mocap.view.scene import CENTRE, LEFT, RIGHT, keypoint_segments, segment_sides

log = logging.getLogger(__name__)
HEIGHT = 300  # px of each crop in the page
SIDE_BGR = {CENTRE: (235, 235, 235), LEFT: (40, 40, 230), RIGHT: (230, 140, 30)}  # white, red, blue
SIDE_CSS = {LEFT: "#e62828", RIGHT: "#1e8ce6"}
JPEG_QUALITY = 80
CROP_CAMERAS = 8  # worst frames shown of at most this many cameras a person (those whose P95 is highest)


@dataclass(frozen=True)
class Crop:
    camera: str
    frame: int  # the 3D frame (video frame = frame + the camera's sync offset)
    video_frame: int | None  # None: drawn without the video
    error_px: float  # median over joints, detections as detected
    error_repaired_px: float  # after the left/right repair (NaN where the same)
    repaired: str  # body parts whose left/right were exchanged by the repair in this view ("" if none)
    jpeg: bytes

    def data_uri(self) -> str:
        return "data:image/jpeg;base64," + base64.b64encode(self.jpeg).decode("ascii")


def worst_frames(per_frame: np.ndarray, k: int, gap: int) -> list[int]:
    """Up to ``k`` frames of highest error, at least ``gap`` frames apart, in time order."""
    e = np.where(np.isfinite(per_frame), per_frame, -np.inf)
    out: list[int] = []
    for _ in range(k):
        i = int(np.argmax(e))
        if not np.isfinite(e[i]):
            break
        out.append(i)
        e[max(0, i - gap):i + gap + 1] = -np.inf
    return sorted(out)


def repaired_groups(info: dict | None, camera_index: int, person: int = 0) -> dict[int, str]:
    """{frame: 'arms, legs'}: the repairs stored in the triangulated points' info (``swap_repairs``)."""
    if not isinstance(info, dict):
        return {}
    groups = info.get("groups") or []
    out: dict[int, str] = {}
    for row in info.get("views") or []:
        if len(row) == 4 and int(row[1]) == camera_index and int(row[2]) == person:
            names = [g for b, g in enumerate(groups) if int(row[3]) >> b & 1]
            out[int(row[0])] = ", ".join(map(str, names))
    return out


def draw(img: np.ndarray, det: np.ndarray, uv: np.ndarray, segs, sides, scale: float) -> None:
    """Reprojection as thick translucent bones, detections as dots joined by thin lines (side colours)."""
    th = max(3, round(5 * scale))
    over = img.copy()
    ok_uv = np.isfinite(uv).all(axis=1) & (np.abs(np.nan_to_num(uv)) < 1e5).all(axis=1)  # OpenCV draws int32 only
    q = np.round(np.where(ok_uv[:, None], uv, 0.0)).astype(int)
    for (a, b), s in zip(segs, sides, strict=True):
        if ok_uv[a] and ok_uv[b]:
            cv2.line(over, tuple(q[a]), tuple(q[b]), SIDE_BGR[s], th, cv2.LINE_AA)
    cv2.addWeighted(over, 0.55, img, 0.45, 0, dst=img)
    ok = np.isfinite(det).all(axis=1)
    d = np.round(np.nan_to_num(det)).astype(int)
    for (a, b), s in zip(segs, sides, strict=True):
        if ok[a] and ok[b]:
            cv2.line(img, tuple(d[a]), tuple(d[b]), SIDE_BGR[s], 1, cv2.LINE_AA)
    r = max(3, round(4 * scale))
    side_of = joint_sides(segs, sides)
    for i in np.flatnonzero(ok):
        s = side_of.get(int(i), CENTRE)
        cv2.circle(img, tuple(d[i]), r + 1, (0, 0, 0), -1, cv2.LINE_AA)
        cv2.circle(img, tuple(d[i]), r, SIDE_BGR[s], -1, cv2.LINE_AA)


def joint_sides(segs, sides) -> dict[int, int]:
    """{joint: :func:`sides_of_joint`} for the joints of a side segment (the others are centre): one pass
    over the segments instead of one per joint drawn."""
    out: dict[int, int] = {}
    for (a, b), s in zip(segs, sides, strict=True):
        if s != CENTRE:
            out.setdefault(int(a), int(s))
            out.setdefault(int(b), int(s))
    return out


def sides_of_joint(i: int, segs, sides) -> int:
    for (a, b), s in zip(segs, sides, strict=True):
        if i in (a, b) and s != CENTRE:
            return int(s)
    return CENTRE


def _box(points: np.ndarray, size: tuple[int, int]) -> tuple[int, int, int, int] | None:
    ok = np.isfinite(points).all(axis=1)
    p = points[ok]
    W, H = size
    p = p[(p[:, 0] > -W) & (p[:, 0] < 2 * W) & (p[:, 1] > -H) & (p[:, 1] < 2 * H)]
    if not len(p):
        return None
    lo, hi = p.min(axis=0), p.max(axis=0)
    pad = 0.12 * max(hi - lo) + 20
    x0, y0 = int(max(0, lo[0] - pad)), int(max(0, lo[1] - pad))
    x1, y1 = int(min(W, hi[0] + pad)), int(min(H, hi[1] + pad))
    return (x0, y0, x1, y1) if x1 - x0 > 8 and y1 - y0 > 8 else None


def crop_frames(rig: Rig, kp: Keypoints2D, pts: Points3D, person: int,
                k: int) -> tuple[np.ndarray, dict[int, list[int]]]:
    """The (F, C, J) reprojection error of the detections and each camera's ``k`` worst 3D frames (with more than
    :data:`CROP_CAMERAS` cameras, those of the cameras whose frames' P95 error is highest)."""
    from mocap.report.metrics import reprojection

    err = reprojection(rig, kp, pts, person=person)
    gap = max(2, len(pts.xyz) // 25)
    if k <= 0:
        return err, {}
    per = [per_frame(err[:, c]) for c in range(len(rig))]
    chosen = range(len(rig))
    if len(rig) > CROP_CAMERAS:  # the cameras whose bad frames are worst: a 16-camera rig's 48 crops a person, the
        # healthy ones' too, made a 7.4 MB page for 8 people; ranked by their P95 (a camera off in every frame, the
        # one flagged, before healthy ones with one bad frame each)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            p95 = np.array([np.nanpercentile(v, 95) if np.isfinite(v).any() else -np.inf for v in per])
        chosen = sorted(np.argsort(-p95, kind="stable")[:CROP_CAMERAS].tolist())
    return err, {c: worst_frames(per[c], k, gap) for c in chosen}


def wanted_video_frames(rig: Rig, kp: Keypoints2D, pts: Points3D, k: int, offsets: dict[str, float],
                        sampling: tuple[int, int] = (0, 1)) -> dict[str, set[int]]:
    """camera → the video frames the crops of every person will show (for the overlay render to keep)."""
    from mocap.view.grid import video_frame

    out: dict[str, set[int]] = {name: set() for name in rig.names}
    for p in range(pts.xyz.shape[1]):
        _, frames = crop_frames(rig, kp, pts, p, k)
        for c, ts in frames.items():
            name = rig.names[c]
            out[name] |= {video_frame(t, float(offsets.get(name, 0.0)), *sampling) for t in ts}
    return out


def read_video_frames(path: Path, frames: list[int], hop: int = 250) -> dict[int, np.ndarray]:
    """The ``frames`` of a video in one forward pass: frames in between are grabbed (decoded, never
    converted), a seek only over a jump longer than ``hop`` (a seek decodes from the keyframe before
    its target, which in a video of one keyframe is the first frame)."""
    from mocap.io.video import open_video  # FFmpeg kept quiet: a damaged frame is said once, by detection

    cap = open_video(path)
    if not cap.isOpened():
        raise ValueError(f"{path}: cannot open the video")
    out: dict[int, np.ndarray] = {}
    try:
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        pos = 0
        for i in sorted({f for f in frames if 0 <= f < count}):
            if i - pos > hop:
                cap.set(cv2.CAP_PROP_POS_FRAMES, i)
                pos = i
            while pos < i and cap.grab():
                pos += 1
            ok, img = cap.read()
            if not ok or pos != i:
                break
            out[i] = img
            pos += 1
    finally:
        cap.release()
    return out


class CropCache:
    """Crops cut from the videos, by what they show (``report/.crops/<key>.jpg``): a report made again with
    the same video frames, detections and points (a fit or threshold change) decodes no video. :meth:`prune`
    removes the crops this report did not use."""

    VERSION = 1  # of the crop's drawing

    def __init__(self, folder: Path, frames_height: int = 0):
        """``frames_height``: the height of the frames the crops are cut from when the overlay videos' render
        keeps them from a proxy (``report.overlay_height``; 0: the camera's): crops cut from smaller frames
        are not taken for crops of the full-size ones."""
        self.folder = Path(folder)
        self.frames_height = int(frames_height)
        self.used: set[str] = set()

    def key(self, video: Path, frame: int, *what) -> str:
        real = Path(video).resolve()
        st = real.stat()
        detail = [self.frames_height] if self.frames_height else []  # keys of full-size crops as before
        h = hashlib.sha256(json.dumps([self.VERSION, HEIGHT, JPEG_QUALITY, str(real), st.st_size, st.st_mtime_ns,
                                       int(frame)] + detail + [w for w in what if not isinstance(w, np.ndarray)],
                                      default=str).encode())
        for w in what:
            if isinstance(w, np.ndarray):
                h.update(np.ascontiguousarray(np.nan_to_num(w, nan=-1e9), dtype=np.float64).tobytes())
        return h.hexdigest()[:32]

    def get(self, key: str) -> bytes | None:
        self.used.add(key)
        try:
            return (self.folder / f"{key}.jpg").read_bytes()
        except OSError:
            return None

    def put(self, key: str, jpeg: bytes) -> None:
        from mocap.io.atomic import atomic_write

        self.used.add(key)
        atomic_write(self.folder / f"{key}.jpg", lambda part: Path(part).write_bytes(jpeg))

    def prune(self) -> None:
        for f in self.folder.glob("*.jpg") if self.folder.is_dir() else []:
            if f.stem not in self.used:
                f.unlink(missing_ok=True)


def camera_crops(rig: Rig, kp: Keypoints2D, kp_repaired: Keypoints2D, pts: Points3D, person: int, k: int,
                 videos: dict[str, Path] | None, offsets: dict[str, float], repairs: dict | None,
                 sampling: tuple[int, int] = (0, 1), frames_of=None, cache: CropCache | None = None,
                 moves=()) -> list[Crop]:
    """The ``k`` worst frames of each camera (by the error of the detections as detected); ``sampling``: the
    detection's (start, stride), :meth:`mocap.session.Session.video_sampling`; ``frames_of(camera, path,
    frames)``: {frame: image} of a camera's video (default: :func:`read_video_frames`); ``cache``: crops
    from the videos made before from the same inputs are taken from it (no video decoded for them); ``moves``: the
    cameras moved mid-take (:mod:`mocap.geometry.camera_moves`): their frames drawn where the video shows them."""
    from mocap.report.metrics import reprojection
    from mocap.view.grid import video_frame

    if k <= 0:
        return []
    kps = get_keypoint_set(pts.keypoint_set)
    segs, mids = keypoint_segments(kps)
    sides = segment_sides(tuple(kps.joints) + ("",) * len(mids), segs)
    err, worst = crop_frames(rig, kp, pts, person, k)
    err_rep = reprojection(rig, kp_repaired, pts, person=person)
    X = pts.xyz[:, person]
    read = frames_of or (lambda camera, path, frames: read_video_frames(path, frames))

    def one(c: int) -> list[Crop]:
        cam = rig[c]
        per, per_rep = per_frame(err[:, c]), per_frame(err_rep[:, c])
        frames = worst[c]
        rep = repaired_groups(repairs, c, person)
        shift = float(offsets.get(cam.name, 0.0))
        index = {t: video_frame(t, shift, *sampling) for t in frames}
        video = videos.get(cam.name) if videos else None
        args = {}
        for t in frames:  # where the video shows them (a camera moved mid-take: through its pose then)
            det = np.where((kp.score[t, c, person] >= 0.2)[:, None], kp.xy[t, c, person], np.nan)
            uv = project_moved(cam, moves, X[t: t + 1], t, shift)[0]
            det = as_detected(cam, moves, det[None], t, shift)[0]
            args[t] = (uv, det, float(per[t]), float(per_rep[t]), rep.get(t, ""))
        keys = {t: cache.key(video, index[t], cam.name, cam.size, pts.keypoint_set, *args[t]) for t in frames} \
            if cache is not None and video is not None else {}
        hits = {t: jpeg for t in keys if (jpeg := cache.get(keys[t])) is not None}
        images: dict[int, np.ndarray] = {}
        if video is not None and (need := sorted({index[t] for t in frames if t not in hits})):
            try:
                images = read(cam.name, video, need)
            except ValueError as e:
                log.warning("report: %s", e)
        out = []
        for t in frames:
            uv, det, e, e_rep, repaired = args[t]
            if t in hits:
                out.append(Crop(cam.name, t, index[t], e, e_rep if repaired else float("nan"), repaired, hits[t]))
                continue
            img = images.get(index[t])
            crop = _crop(cam.name, t, index[t] if img is not None else None, img, cam.size, det, uv, mids, segs,
                         sides, e, e_rep, repaired)
            if img is not None and t in keys:
                cache.put(keys[t], crop.jpeg)
            out.append(crop)
        return out

    if not videos:
        return [c for i in sorted(worst) for c in one(i)]
    from concurrent.futures import ThreadPoolExecutor

    from mocap.report.overlay import workers

    with ThreadPoolExecutor(min(len(rig), workers()), thread_name_prefix="crops") as pool:  # decoding frees the GIL
        return [c for crops in pool.map(one, sorted(worst)) for c in crops]


def _extend(p: np.ndarray, mids) -> np.ndarray:
    return np.concatenate([p, np.array([(p[a] + p[b]) / 2 for a, b in mids]).reshape(-1, 2)]) if mids else p


def _crop(camera, t, video_frame, img, size, det, uv, mids, segs, sides, e, e_rep, repaired) -> Crop:
    det, uv = _extend(det, mids), _extend(uv, mids)
    box = _box(np.vstack([det, uv]), size)
    x0, y0, x1, y1 = box or ((0, 0, img.shape[1], img.shape[0]) if img is not None else (0, 0, size[0], size[1]))
    s = HEIGHT / (y1 - y0)
    width = max(1, round((x1 - x0) * s))
    if img is None:  # a plain background: nothing to scale
        crop = np.full((HEIGHT, width, 3), 60, np.uint8)
    else:
        crop = shrink(img[y0:y1, x0:x1], (width, HEIGHT)) if y1 - y0 > HEIGHT else \
            cv2.resize(img[y0:y1, x0:x1], (width, HEIGHT), interpolation=cv2.INTER_LINEAR)
    shift = np.array([x0, y0])
    draw(crop, (det - shift) * s, (uv - shift) * s, segs, sides, 1.0)
    ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError(f"report: cannot encode the crop of {camera} frame {t}")
    return Crop(camera, t, video_frame, e, e_rep if repaired else float("nan"), repaired, buf.tobytes())
