"""``mocap view --grid``: the 3D view beside every camera's video with the skeleton reprojected over
it (through the camera's calibration and sync offset), so one video shows the whole take."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mocap.types import Camera
from mocap.view.render import bone_thickness, palette, text
from mocap.view.scene import Figure

log = logging.getLogger(__name__)


class VideoSource:
    """Frames of one video by number: read on when asked for the next one, a seek otherwise."""

    def __init__(self, path: Path):
        from mocap.io.video import open_video  # FFmpeg kept quiet: a damaged frame is said once, by detection

        self.path = Path(path)
        self.cap = open_video(self.path)
        if not self.cap.isOpened():
            raise ValueError(f"{self.path}: cannot open the video")
        self.frames = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.next = 0
        self.last: tuple[int, np.ndarray | None] = (-1, None)

    def get(self, i: int) -> np.ndarray | None:
        if not 0 <= i < self.frames:
            return None
        if i == self.last[0]:
            return self.last[1]
        if i != self.next:
            if self.next < i <= self.next + 30:  # a short hop forward: decoding on is cheaper than a seek
                while self.next < i and self.cap.grab():
                    self.next += 1
            else:
                self.cap.set(cv2.CAP_PROP_POS_FRAMES, i)
                self.next = i
        ok, img = self.cap.read()
        self.next = i + 1
        self.last = (i, img if ok else None)
        return self.last[1]

    def close(self) -> None:
        self.cap.release()


@dataclass(frozen=True)
class Layout:
    """Where each panel goes on the canvas: the 3D view's box, then one box per camera (x, y, w, h)."""

    size: tuple[int, int]
    view: tuple[int, int, int, int]
    tiles: tuple[tuple[int, int, int, int], ...]


def layout(size: tuple[int, int], aspects: list[float], max_share: float = 0.6) -> Layout:
    """The cameras on the right, in the rows × columns that show them largest within ``max_share`` of
    the width (``aspects``: each video's width / height); the 3D view takes the rest on the left."""
    W, H = size
    n = max(len(aspects), 1)
    a = float(np.median(aspects)) if aspects else 1.0
    best = None
    for rows in range(1, n + 1):
        cols = -(-n // rows)
        th = H // rows
        tw = int(min(th * a, max_share * W / cols))
        height = min(th, tw / a)  # the height a video gets
        if best is None or height > best[0]:
            best = (height, cols, tw, th)
    _, cols, tw, th = best
    th = int(min(th, tw / a))  # no taller than the videos: the rows centred on the canvas
    top = (H - th * (-(-n // cols))) // 2
    vw = W - cols * tw
    tiles = tuple((vw + (k % cols) * tw, top + (k // cols) * th, tw, th) for k in range(len(aspects)))
    return Layout(size, (0, 0, vw, H), tiles)


def reprojected(cam: Camera, figures: list[Figure], moves=(), offset: float = 0.0) -> list[np.ndarray]:
    """Each person's points in this camera's pixels (F, N, 2), through its distortion, and in the frames of each
    of its moves mid-take (``moves``: :meth:`mocap.session.Session.camera_moves`) through that move's pose
    (``offset``: the camera's sync offset, frames)."""
    from mocap.geometry.camera_moves import project_moved

    return [project_moved(cam, moves, f.X, 0, offset) for f in figures]


def offset_at(t: int, parts: list | None, offset: float) -> float:
    """The camera's sync offset at 3D frame ``t``: its part's when its offset changes mid-take (``parts``: sync's
    ``steps`` [[first frame, offset], …], read by triangulate part by part), else ``offset``."""
    if not parts:
        return float(offset)
    return float([d for first, d in parts if first <= t][-1] if parts[0][0] <= t else parts[0][1])


def draw_tile(canvas: np.ndarray, box, img: np.ndarray | None, cam: Camera, uv: list[np.ndarray],
              figures: list[Figure], t: int, video_frame: int) -> None:
    """One camera's frame fitted in ``box`` with each person's bones drawn over it."""
    x, y, w, h = box
    W, H = cam.size
    if img is not None:
        H, W = img.shape[:2]
    s = min(w / W, h / H)
    dw, dh = max(1, int(W * s)), max(1, int(H * s))
    ox, oy = x + (w - dw) // 2, y + (h - dh) // 2
    sub = canvas[oy:oy + dh, ox:ox + dw]
    if img is not None:
        while img.shape[1] >= 2 * dw and img.shape[0] >= 2 * dh:  # halving by area is fast; then linear
            img = cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2), interpolation=cv2.INTER_AREA)
        sub[:] = cv2.resize(img, (dw, dh), interpolation=cv2.INTER_LINEAR)
    else:
        sub[:] = (0, 0, 0)
    th = max(2, bone_thickness(dh) // 2 + 1)
    for p, (fig, pts) in enumerate(zip(figures, uv, strict=True)):
        if t >= len(pts):
            continue
        q = pts[t] * s
        ok = np.isfinite(q).all(axis=1) & (np.abs(q) < 1e5).all(axis=1)
        qi = np.round(np.nan_to_num(q)).astype(int)
        colours = palette(p)
        for (a, b), side in zip(fig.segments, fig.sides, strict=True):
            if ok[a] and ok[b]:
                cv2.line(sub, tuple(qi[a]), tuple(qi[b]), (20, 20, 20), th + 2, cv2.LINE_AA)
                cv2.line(sub, tuple(qi[a]), tuple(qi[b]), colours[side], th, cv2.LINE_AA)
    scale = max(dh / 720, 0.45)
    label = f"{cam.name}  video frame {video_frame}" if img is not None else f"{cam.name}  (no frame)"
    text(sub, label, (8, int(22 * scale) + 4), 0.6 * scale, thickness=1)


def video_frame(t: int, offset: float, start: int = 0, stride: int = 1) -> int:
    """The video frame shown with 3D frame ``t``: ``start + (t + offset) · stride`` (the detection's first frame
    and stride, :meth:`mocap.session.Session.video_sampling`; ``offset``: the camera's sync offset in keypoint
    frames)."""
    return int(round(start + (t + offset) * stride))
