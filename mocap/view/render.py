"""A small projective renderer (numpy + OpenCV) for the 3D view: a pinhole camera orbiting the
performers and framing them, a metric floor grid, the rig's cameras labelled, thick bones with
joint markers (left and right in different colours, each person its own colours), and the frame
number and time drawn on the image. The same code draws the window and the headless frames."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from functools import cache, cached_property

import cv2
import numpy as np

from mocap.labels import drawable
from mocap.types import Rig
from mocap.view.scene import CENTRE, LEFT, RIGHT, Figure

BACKGROUND = (38, 34, 32)  # BGR
GRID, GRID_MAJOR = (78, 78, 78), (120, 120, 120)
CAMERA = (235, 180, 90)
TEXT = (245, 245, 245)
# per person (BGR): centre, left, right; more people cycle the hues
PALETTES = [((235, 235, 235), (60, 76, 231), (219, 152, 52)),  # white, red, blue
            ((60, 220, 250), (0, 140, 255), (100, 200, 40)),  # yellow, orange, green
            ((203, 160, 255), (200, 60, 190), (200, 200, 20)),  # pink, magenta, teal
            ((150, 200, 220), (40, 40, 160), (160, 100, 40))]  # sand, dark red, dark blue
FILL = 0.7  # the performers' height as a share of the image height
GRID_STEP = 0.5  # metres between grid lines (every second line brighter: 1 m)
NEAR = 0.05
FONT = cv2.FONT_HERSHEY_SIMPLEX


def palette(p: int) -> tuple[tuple[int, int, int], ...]:
    if p < len(PALETTES):
        return PALETTES[p]
    hue = (p * 47) % 180
    hsv = np.array([[[hue, 60, 240], [(hue + 60) % 180, 230, 230], [(hue + 120) % 180, 230, 230]]], np.uint8)
    return tuple(tuple(int(v) for v in c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0])


@dataclass(frozen=True)
class View:
    """Orbit camera: looks at ``target`` from ``distance`` metres, azimuth / elevation in radians (Z up)."""

    target: np.ndarray
    distance: float
    azimuth: float
    elevation: float
    size: tuple[int, int]  # width, height
    vfov: float = np.radians(40.0)

    @property
    def focal(self) -> float:
        return 0.5 * self.size[1] / np.tan(self.vfov / 2)

    def rotation(self) -> np.ndarray:
        """(3, 3) world → camera (x right, y down, z forward)."""
        return self._rotation

    @cached_property
    def _rotation(self) -> np.ndarray:
        ce = np.cos(self.elevation)
        back = np.array([ce * np.sin(self.azimuth), -ce * np.cos(self.azimuth), np.sin(self.elevation)])
        fwd = -back
        right = np.cross(fwd, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        down = np.cross(fwd, right)
        return np.stack([right, down, fwd])

    def eye(self) -> np.ndarray:
        return self._eye

    @cached_property
    def _eye(self) -> np.ndarray:
        return np.asarray(self.target) - self.distance * self.rotation()[2]

    def to_camera(self, X: np.ndarray) -> np.ndarray:
        return (np.asarray(X) - self.eye()) @ self.rotation().T

    def pixels(self, Xc: np.ndarray) -> np.ndarray:
        """Camera coordinates (..., 3) → pixels (..., 2); NaN behind the near plane."""
        z = np.where(Xc[..., 2] > NEAR, Xc[..., 2], np.nan)
        w, h = self.size
        return np.stack([w / 2 + self.focal * Xc[..., 0] / z, h / 2 + self.focal * Xc[..., 1] / z], axis=-1)


def _smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing along axis 0, NaN-aware (NaN rows are filled from their neighbours)."""
    x = np.asarray(x, float)
    ok = np.isfinite(x).all(axis=tuple(range(1, x.ndim))) if x.ndim > 1 else np.isfinite(x)
    if not ok.any():
        return x
    if sigma <= 0:
        return x
    r = int(np.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    v = np.where(ok.reshape((-1,) + (1,) * (x.ndim - 1)), x, 0.0)
    wts = ok.astype(float)
    pad = [(r, r)] + [(0, 0)] * (x.ndim - 1)
    num = np.apply_along_axis(lambda c: np.convolve(c, k, "valid"), 0, np.pad(v, pad, mode="edge"))
    den = np.convolve(np.pad(wts, r, mode="edge"), k, "valid")
    den = den.reshape((-1,) + (1,) * (x.ndim - 1))
    return np.divide(num, den, out=np.full_like(num, np.nan), where=den > 0)  # NaN far (> 3σ) from any data


def frame_views(figures: list[Figure], size: tuple[int, int], azimuth: float, elevation: float, fps: float,
                fill: float = FILL, follow_s: float = 0.25) -> list[View]:
    """One view per frame that keeps every performer in the picture at ``fill`` of the image height
    (the narrower of height and width decides), looking at their centre, following it smoothly."""
    X = np.concatenate([f.X for f in figures], axis=1)  # (F, N, 3)
    F = len(X)
    ok = np.isfinite(X).all(axis=-1)
    lo = np.where(ok[..., None], X, np.inf).min(axis=1)
    hi = np.where(ok[..., None], X, -np.inf).max(axis=1)
    seen = ok.any(axis=1)
    lo, hi = np.where(seen[:, None], lo, np.nan), np.where(seen[:, None], hi, np.nan)  # no inf − inf: nobody there
    centre, extent = (lo + hi) / 2, np.linalg.norm(hi - lo, axis=1)
    base = View(np.zeros(3), 1.0, azimuth, elevation, size)
    R = base.rotation()
    w, h = size

    def needed(centre: np.ndarray) -> np.ndarray:
        """Per frame, the distance at which the points around ``centre`` fill the picture as asked."""
        Y = np.where(ok[..., None], X - centre[:, None], np.nan) @ R.T  # rotation only: relative to the target
        d = np.maximum(2.0 * np.nan_to_num(extent), 1.0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # frames with nobody: all-NaN
            for _ in range(4):  # projected size ~ 1 / distance: a few rescalings converge
                z = np.maximum(d[:, None] + Y[..., 2], NEAR)
                u, v = base.focal * Y[..., 0] / z, base.focal * Y[..., 1] / z
                spread = np.fmax((np.nanmax(v, 1) - np.nanmin(v, 1)) / (fill * h),
                                 (np.nanmax(u, 1) - np.nanmin(u, 1)) / (0.9 * w))
                off = 2 * np.fmax(np.nanmax(np.abs(u), 1) / (0.95 * w), np.nanmax(np.abs(v), 1) / (0.95 * h))
                d = d * np.maximum(np.fmax(spread, off), 1e-6)  # off-centre points count too
        return np.where(seen & np.isfinite(centre).all(axis=1) & np.isfinite(d), d, np.nan)

    sigma = follow_s * fps
    centre = _smooth(centre, sigma)
    known = np.flatnonzero(np.isfinite(centre).all(axis=1))  # far from anyone: the nearest centre, eased between
    centre = (np.stack([np.interp(np.arange(F), known, centre[known, i]) for i in range(3)], axis=1) if len(known)
              else np.zeros((F, 3)))
    need = needed(centre)  # around the smoothed centre: whoever lags behind it still fits
    dist = np.fmax(_smooth(need, sigma), need)
    dist = np.where(np.isfinite(dist), dist, np.nanmedian(dist) if np.isfinite(dist).any() else 4.0)
    return [replace(base, target=centre[t], distance=float(dist[t])) for t in range(F)]


def _segments(img: np.ndarray, view: View, A: np.ndarray, B: np.ndarray, colour, thickness: int) -> None:
    """World segments A, B (n, 3), clipped at the near plane."""
    a, b = view.to_camera(A), view.to_camera(B)
    keep = (a[:, 2] > NEAR) | (b[:, 2] > NEAR)
    a, b = a[keep], b[keep]
    for p, q in ((a, b), (b, a)):  # move the end behind the near plane onto it
        cut = p[:, 2] <= NEAR
        if cut.any():
            s = ((NEAR + 1e-6 - p[cut, 2]) / (q[cut, 2] - p[cut, 2]))[:, None]
            p[cut] = p[cut] + s * (q[cut] - p[cut])
    pa, pb = view.pixels(a), view.pixels(b)
    good = np.isfinite(pa).all(axis=1) & np.isfinite(pb).all(axis=1)
    lim = 1e5
    for p, q in zip(np.clip(pa[good], -lim, lim).astype(int), np.clip(pb[good], -lim, lim).astype(int), strict=True):
        cv2.line(img, (int(p[0]), int(p[1])), (int(q[0]), int(q[1])), colour, thickness, cv2.LINE_AA)


def draw_floor(img: np.ndarray, view: View, floor: float, centre: np.ndarray, half: float) -> None:
    """Grid lines every GRID_STEP metres over [centre ± half] at height ``floor``."""
    lo = np.floor((centre[:2] - half) / GRID_STEP) * GRID_STEP
    hi = np.ceil((centre[:2] + half) / GRID_STEP) * GRID_STEP
    for axis in (0, 1):
        ticks = np.arange(lo[axis], hi[axis] + 1e-9, GRID_STEP)
        major = np.isclose(np.mod(ticks + 1e-9, 1.0), 0, atol=1e-6)
        for is_major in (False, True):
            t = ticks[major == is_major]
            A = np.zeros((len(t), 3))
            B = np.zeros((len(t), 3))
            A[:, axis], B[:, axis] = t, t
            A[:, 1 - axis], B[:, 1 - axis] = lo[1 - axis], hi[1 - axis]
            A[:, 2] = B[:, 2] = floor
            _segments(img, view, A, B, GRID_MAJOR if is_major else GRID, 1)


def text(img: np.ndarray, s: str, org: tuple[int, int], scale: float, colour=TEXT, thickness: int = 1) -> None:
    """Text with a dark outline, readable on any background (ASCII: :func:`mocap.labels.drawable`)."""
    s = drawable(s)
    cv2.putText(img, s, org, FONT, scale, (0, 0, 0), thickness + 3, cv2.LINE_AA)
    cv2.putText(img, s, org, FONT, scale, colour, thickness, cv2.LINE_AA)


def draw_cameras(img: np.ndarray, view: View, rig: Rig, depth: float = 0.35) -> None:
    """Each camera's frustum (``depth`` metres deep) and its name."""
    scale = img.shape[0] / 720
    for cam in rig:
        W, H = cam.size
        corners = np.array([[0, 0], [W, 0], [W, H], [0, H]], float)
        rays = np.c_[(corners - cam.K[:2, 2]) / np.diag(cam.K)[:2], np.ones(4)]
        tips = cam.center + depth * (rays / np.linalg.norm(rays, axis=1, keepdims=True)) @ cam.R
        A = np.vstack([np.repeat(cam.center[None], 4, 0), tips])
        B = np.vstack([tips, np.roll(tips, -1, axis=0)])
        _segments(img, view, A, B, CAMERA, max(1, round(2 * scale)))
        p = view.pixels(view.to_camera(cam.center[None]))[0]
        if np.isfinite(p).all() and -1e4 < p[0] < 1e4 and -1e4 < p[1] < 1e4:
            text(img, cam.name, (int(p[0]) + 6, int(p[1]) - 6), 0.55 * scale, CAMERA, max(1, round(scale)))


def bone_thickness(height: int) -> int:
    return max(3, round(height / 100))


def draw_figure(img: np.ndarray, view: View, fig: Figure, t: int, p: int, label: bool = True) -> None:
    """Person ``p``'s bones at frame ``t``, far ones first, with joints marked and its name above it."""
    X = fig.X[t]
    Xc = view.to_camera(X)
    uv = view.pixels(Xc)
    ok = np.isfinite(uv).all(axis=1)
    if not ok.any():
        return
    th = bone_thickness(img.shape[0])
    colours = palette(p)
    segs = [(a, b, s) for (a, b), s in zip(fig.segments, fig.sides, strict=True) if ok[a] and ok[b]]
    segs.sort(key=lambda e: -(Xc[e[0], 2] + Xc[e[1], 2]))
    q = np.round(np.clip(np.nan_to_num(uv), -1e5, 1e5)).astype(int)
    for a, b, s in segs:
        cv2.line(img, tuple(q[a]), tuple(q[b]), (20, 20, 20), th + 2, cv2.LINE_AA)
        cv2.line(img, tuple(q[a]), tuple(q[b]), colours[s], th, cv2.LINE_AA)
    used = sorted({i for a, b, _ in segs for i in (a, b)}, key=lambda i: -Xc[i, 2])
    r = max(2, round(th * 0.75))
    for i in used:
        cv2.circle(img, tuple(q[i]), r, (20, 20, 20), -1, cv2.LINE_AA)
        cv2.circle(img, tuple(q[i]), max(1, r - 2), colours[CENTRE], -1, cv2.LINE_AA)
    if label:
        top = q[ok][np.argmin(q[ok, 1])]
        scale = img.shape[0] / 720
        text(img, fig.name, (int(top[0]) - int(30 * scale), int(top[1]) - int(14 * scale)), 0.6 * scale,
             colours[CENTRE], max(1, round(scale)))


def hud_text(t: int, frames: int, fps: float) -> str:
    """The frame-number line drawn at the top left: 'frame 12 / 100   0.200 s'."""
    return f"frame {t} / {frames - 1}   {t / fps:.3f} s"


def hud_origin(height: int, width: int) -> tuple[tuple[int, int], float, int]:
    """(text origin, font scale, thickness) of the frame-number line."""
    s = max(min(height / 720, width / 1280), min(height / 720, 0.6))
    return (int(16 * s), int(36 * s)), 0.9 * s, max(1, round(2 * s))


def draw_hud(img: np.ndarray, t: int, frames: int, fps: float, title: str, figures: list[Figure]) -> None:
    """Frame number and time, the take's name, the grid's scale and a legend of the colours."""
    h, w = img.shape[:2]
    org, scale, th = hud_origin(h, w)
    text(img, hud_text(t, frames, fps), org, scale, TEXT, th)
    s = max(min(h / 720, w / 1280), min(h / 720, 0.6))
    text(img, title, (org[0], org[1] + int(30 * s)), 0.55 * s, TEXT, max(1, round(s)))
    text(img, f"grid: {GRID_STEP:g} m squares", (org[0], h - int(14 * s)), 0.5 * s, GRID_MAJOR, max(1, round(s)))
    y = org[1] + int(64 * s)
    width = max((cv2.getTextSize(f.name, FONT, 0.55 * s, max(1, round(s)))[0][0]
                 for f in figures), default=0)  # the swatches after the longest name ("person3 (not a person?)")
    for p, fig in enumerate(figures):
        c = palette(p)
        x = org[0]
        text(img, fig.name, (x, y), 0.55 * s, c[CENTRE], max(1, round(s)))
        for k, (side, name) in enumerate(((LEFT, "left"), (RIGHT, "right"))):
            x0 = x + max(int(100 * s), width + int(12 * s)) + int(75 * k * s)
            cv2.rectangle(img, (x0, y - int(11 * s)), (x0 + int(14 * s), y + int(2 * s)), c[side], -1)
            text(img, name, (x0 + int(18 * s), y), 0.5 * s, TEXT, max(1, round(s)))
        y += int(24 * s)


@dataclass
class Stage:
    """Everything drawn besides the people: floor height, grid extent, cameras."""

    floor: float
    centre: np.ndarray
    half: float
    rig: Rig | None
    title: str


def stage_for(figures: list[Figure], floor: float, rig: Rig | None, title: str) -> Stage:
    X = np.concatenate([f.X for f in figures], axis=1).reshape(-1, 3)
    X = X[np.isfinite(X).all(axis=1)]
    lo, hi = X.min(axis=0), X.max(axis=0)
    half = float(max(hi[0] - lo[0], hi[1] - lo[1]) / 2 + 1.5)
    return Stage(floor, (lo + hi) / 2, half, rig, title)


def render(figures: list[Figure], stage: Stage, view: View, t: int, fps: float) -> np.ndarray:
    """One BGR frame (view.size) of frame ``t``."""
    img = _background(tuple(view.size)).copy()
    draw_floor(img, view, stage.floor, stage.centre, stage.half)
    if stage.rig is not None:
        draw_cameras(img, view, stage.rig)
    order = sorted(range(len(figures)), key=lambda p: -_depth(view, figures[p].X[t]))
    for p in order:
        draw_figure(img, view, figures[p], t, p)
    F = max(len(f.X) for f in figures)
    draw_hud(img, t, F, fps, stage.title, figures)
    draw_map(img, stage, figures, t, view)
    return img


def draw_map(img: np.ndarray, stage: Stage, figures: list[Figure], t: int, view: View) -> None:
    """A map seen from above at the bottom right: the cameras (labelled, pointing where they look), each
    person where it stands, and the direction the 3D view looks from; 1 m ticks."""
    h, w = img.shape[:2]
    side = int(min(h, w) * 0.28)
    x0, y0 = w - side - 10, h - side - 10
    pts = [f.X[t][np.isfinite(f.X[t]).all(axis=1)].mean(axis=0)[:2] for f in figures if np.isfinite(f.X[t]).any()]
    cams = [] if stage.rig is None else [(c.name, c.center[:2], c.R[2, :2]) for c in stage.rig]
    xy = np.array(pts + [c[1] for c in cams] + [view.eye()[:2], stage.centre[:2] - 1.0, stage.centre[:2] + 1.0])
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    c = (lo + hi) / 2
    k = (side - 50) / max(float((hi - lo).max()), 1.0)

    def px(p) -> tuple[int, int]:  # x right, y up on the map
        return int(x0 + side / 2 + (p[0] - c[0]) * k), int(y0 + side / 2 - (p[1] - c[1]) * k)

    box = img[y0:y0 + side, x0:x0 + side]
    box[:] = (box * 0.35 + np.array(BACKGROUND) * 0.65).astype(np.uint8)
    cv2.rectangle(img, (x0, y0), (x0 + side, y0 + side), GRID_MAJOR, 1)
    for gx in np.arange(np.ceil(lo[0] - 1), hi[0] + 1):  # 1 m ticks along the bottom
        u = px((gx, lo[1]))[0]
        if x0 < u < x0 + side:
            cv2.line(img, (u, y0 + side - 6), (u, y0 + side), GRID_MAJOR, 1)
    scale = min(h / 720, 1.5)
    back = view.eye()[:2]
    cv2.arrowedLine(img, px(back), px(view.target[:2]), GRID_MAJOR, 1, cv2.LINE_AA, tipLength=0.15)
    for name, centre, look in cams:
        q = px(centre)
        d = look / max(np.linalg.norm(look), 1e-9)
        tip = (int(q[0] + 12 * d[0]), int(q[1] - 12 * d[1]))
        cv2.arrowedLine(img, q, tip, CAMERA, 2, cv2.LINE_AA, tipLength=0.4)
        (tw, _), _ = cv2.getTextSize(name, FONT, 0.4 * scale, 1)
        lx = q[0] + 4 if q[0] + 4 + tw < x0 + side - 2 else q[0] - 4 - tw  # inside the map
        text(img, name, (lx, q[1] - 4), 0.4 * scale, CAMERA, 1)
    for p, f in enumerate(figures):
        if np.isfinite(f.X[t]).any():
            cv2.circle(img, px(f.X[t][np.isfinite(f.X[t]).all(axis=1)].mean(axis=0)[:2]), max(3, int(5 * scale)),
                       palette(p)[CENTRE], -1, cv2.LINE_AA)
    text(img, "from above (1 m ticks)", (x0, y0 - 6), 0.4 * scale, GRID_MAJOR, 1)


@cache
def _background(size: tuple[int, int]) -> np.ndarray:
    img = np.empty((size[1], size[0], 3), np.uint8)
    img[:] = BACKGROUND
    img.setflags(write=False)
    return img


def _depth(view: View, X: np.ndarray) -> float:
    ok = np.isfinite(X).all(axis=1)
    return float(view.to_camera(X[ok])[:, 2].mean()) if ok.any() else 0.0
