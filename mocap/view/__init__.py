"""``mocap view``: the session's performers in 3D (fitted skeleton, else 3D keypoints; every person
its own colours, left and right apart), the floor grid and the labelled cameras, framed automatically
so the performers fill most of the picture as they move; the frame number and time drawn.

Shown in a window (play/pause, step, scrub, orbit: :mod:`mocap.view.window`), or rendered headless to
an MP4, a folder of PNG frames or one PNG. ``grid=True`` composes the 3D view with every camera's
video and the skeleton reprojected over it (:mod:`mocap.view.grid`).

Rendering is numpy + OpenCV (:mod:`mocap.view.render`): no OpenGL context, hence nothing printed by
graphics libraries and the same picture with or without a display.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mocap.display import has_display
from mocap.session import Session
from mocap.types import Rig
from mocap.view import grid as grid_mod
from mocap.view.render import Stage, View, frame_views, render, stage_for
from mocap.view.scene import Figure, facing, floor_height, load_figures, session_rig

log = logging.getLogger(__name__)
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv")
ELEVATION = np.radians(15.0)
THREE_QUARTER = np.radians(30.0)  # the default view: from the performers' front, turned this much
ORBIT_FRAMES = 120  # a turntable's images (4 s at 30 fps) unless --frames says


@dataclass
class Scene:
    """What one take shows: the people, the stage, the frame rate, the views per frame."""

    figures: list[Figure]
    stage: Stage
    fps: float
    rig: Rig | None
    session: Session
    azimuth: float

    @property
    def frames(self) -> int:
        return max(len(f.X) for f in self.figures)

    def views(self, size: tuple[int, int], azimuth: float | None = None, elevation: float = ELEVATION,
              zoom: float = 1.0) -> list[View]:
        az = self.azimuth if azimuth is None else azimuth
        views = frame_views(self.figures, size, az, elevation, self.fps)
        if zoom != 1.0:
            views = [View(v.target, v.distance / zoom, v.azimuth, v.elevation, v.size) for v in views]
        return views


def load_scene(session: str | Path | Session) -> Scene:
    s = session if isinstance(session, Session) else Session(Path(session))
    figures, fps = load_figures(s)
    rig = session_rig(s)
    face = facing(figures)
    if face is not None:  # the camera stands in front of the performers, a little to their right
        azimuth = float(np.arctan2(face[0], -face[1])) + THREE_QUARTER
    elif rig is not None:
        c = rig[0].center
        azimuth = float(np.arctan2(c[0], -c[1]))
    else:
        azimuth = THREE_QUARTER
    stage = stage_for(figures, floor_height(figures), rig, s.name)
    return Scene(figures, stage, fps, rig, s, azimuth)


def frames_3d(scene: Scene, size: tuple[int, int], indices: list[int], turntable: bool = False,
              orbit: int = ORBIT_FRAMES) -> Iterator[np.ndarray]:
    """The 3D view of each frame in ``indices`` (turntable: orbiting once around the first of them in ``orbit``
    images)."""
    if turntable:
        t = indices[0]
        still = Scene([Figure(f.name, f.X[t:t + 1], f.segments, f.sides, f.joint_names) for f in scene.figures],
                      scene.stage, scene.fps, scene.rig, scene.session, scene.azimuth)  # framed on frame t alone
        for k in range(orbit):
            v = still.views(size, azimuth=scene.azimuth + 2 * np.pi * k / orbit)[0]
            yield render(scene.figures, scene.stage, v, t, scene.fps)
        return
    views = scene.views(size)
    for t in indices:
        yield render(scene.figures, scene.stage, views[t], t, scene.fps)


class GridComposer:
    """The 3D view with every camera's video beside it, the skeleton reprojected over each video."""

    def __init__(self, scene: Scene, size: tuple[int, int]):
        from mocap.io.video import find_videos
        from mocap.stages.sync import read_timing

        if scene.rig is None:
            raise ValueError(f"session {scene.session.root}: --grid needs the cameras' calibration")
        try:
            videos = find_videos(scene.session.root / "videos", scene.rig.names)
        except (FileNotFoundError, ValueError) as e:
            raise ValueError(f"session {scene.session.root}: --grid needs the cameras' videos ({e})") from e
        self.scene = scene
        self.cams = [c for c in scene.rig if c.name in videos]
        self.sources = [grid_mod.VideoSource(videos[c.name]) for c in self.cams]
        self.offsets, self.steps = read_timing(scene.session)  # steps: a camera's parts read at their own offsets
        self.sampling = scene.session.video_sampling()
        self.layout = grid_mod.layout(size, [c.size[0] / c.size[1] for c in self.cams])
        moves = scene.session.camera_moves()  # a camera moved mid-take: its frames from there through that pose
        self.uv = [grid_mod.reprojected(c, scene.figures, moves, float(self.offsets.get(c.name, 0.0)))
                   for c in self.cams]
        self.views = scene.views(self.layout.view[2:])
        self.pool = ThreadPoolExecutor(max(1, len(self.sources)), thread_name_prefix="view-video")

    def frame(self, t: int, view: View | None = None) -> np.ndarray:
        W, H = self.layout.size
        canvas = np.zeros((H, W, 3), np.uint8)
        x, y, w, h = self.layout.view
        canvas[y:y + h, x:x + w] = render(self.scene.figures, self.scene.stage, view or self.views[t], t,
                                          self.scene.fps)
        idx = [grid_mod.video_frame(t, grid_mod.offset_at(t, self.steps.get(c.name), self.offsets.get(c.name, 0.0)),
                                    *self.sampling) for c in self.cams]
        images = list(self.pool.map(lambda s, i: s.get(i), self.sources, idx))  # decoding frees the GIL
        for cam, img, i, uv, box in zip(self.cams, images, idx, self.uv, self.layout.tiles, strict=True):
            grid_mod.draw_tile(canvas, box, img, cam, uv, self.scene.figures, t, i)
        return canvas

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        for s in self.sources:
            s.close()


def view(session: str | Path, out: str | Path | None = None, frames: int = 0, turntable: bool = False,
         size: tuple[int, int] | None = None, grid: bool = False, start: int | None = None) -> Path | None:
    """Open a window (a display and no ``out``) or render to ``out``: a video (.mp4 …), one image (.png:
    frame ``start``) or a folder of PNG frames. ``frames``: how many from ``start`` (0: to the end; with
    ``turntable``, the orbit's images, 0: :data:`ORBIT_FRAMES`); ``start`` defaults to the first frame, the middle
    one for a single image and the turntable.
    Without a display and without ``out``: ``review/view.mp4`` (``grid_view.mp4``, ``turntable.mp4``)."""
    scene = load_scene(session)
    size = size or ((1920, 1080) if grid else (1280, 720))
    if out is None and has_display():
        from mocap.view.window import show

        show(scene, size, grid)
        return None
    if out is None and os.environ.get("DISPLAY"):
        log.warning("display %s cannot be reached: rendering instead", os.environ["DISPLAY"])
    if out is None:
        name = "turntable.mp4" if turntable else "grid_view.mp4" if grid else "view.mp4"
        out = scene.session.root / "review" / name
        log.info("no display: rendering to %s", out)
    out = Path(out)
    if out.suffix and out.suffix.lower() not in (*VIDEO_SUFFIXES, ".png", ".jpg") and not out.is_dir():
        raise ValueError(f"{out}: cannot render a {out.suffix} file: give a video ({', '.join(VIDEO_SUFFIXES)}), "
                         "one image (.png, .jpg) or a folder for PNG frames")  # a folder named x.gif was made
    F = scene.frames
    one = out.suffix.lower() in (".png", ".jpg")
    if start is None:
        start = F // 2 if one or turntable else 0
    if not 0 <= start < F:
        raise ValueError(f"start frame must be in 0..{F - 1}, got {start}")
    stop = start + 1 if one else (F if not frames else min(F, start + frames))
    indices = list(range(start, stop))
    if grid:
        comp = GridComposer(scene, size)
        try:
            images: Iterator[np.ndarray] = (comp.frame(t) for t in indices)
            return _write(images, out, scene.fps, len(indices))
        finally:
            comp.close()
    orbit = (frames or ORBIT_FRAMES) if turntable else 0
    return _write(frames_3d(scene, size, indices, turntable, orbit), out, 30.0 if turntable else scene.fps,
                  orbit or len(indices))


def _write(images: Iterator[np.ndarray], out: Path, fps: float, total: int) -> Path:
    import cv2
    from tqdm import tqdm

    bar = tqdm(images, total=total, desc="view", unit="frame", leave=False, disable=None)
    suffix = out.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        from mocap.detect.overlay import OverlayWriter

        writer = None
        ok = False
        try:
            for img in bar:
                if writer is None:
                    writer = OverlayWriter(out, fps, (img.shape[1], img.shape[0]))
                writer.write(img)
            ok = True
        finally:
            if writer is not None:
                writer.close(ok)
        return out
    if suffix in (".png", ".jpg"):
        out.parent.mkdir(parents=True, exist_ok=True)
        for img in bar:
            if not cv2.imwrite(str(out), img):
                raise ValueError(f"{out}: cannot write the image")
        return out
    out.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(bar):
        cv2.imwrite(str(out / f"frame_{i:05d}.png"), img)
    return out
