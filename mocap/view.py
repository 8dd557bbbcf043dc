"""``mocap view``: the session's 3D skeleton, cameras and floor in an open3d window, or rendered
headless (EGL) to an MP4 / PNG frames: the take played, or a turntable around one frame."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from mocap.quiet import native_stderr_to_log
from mocap.session import Session

log = logging.getLogger(__name__)


def _skeleton(session: Session) -> tuple[np.ndarray, list[tuple[int, int]], float]:
    """(F, N, 3) points, the segments joining them, fps: the fitted skeleton, else the 3D keypoints."""
    from mocap.settings import load_config
    from mocap.stages.fit import skeleton_name

    fitted = session.motion(skeleton_name(load_config(session)[0]))  # the session's fit.skeleton
    if fitted.is_file():
        from mocap.io.capture import read_capture

        m, _ = read_capture(fitted)
        _, p = m.fk()
        return p, [(int(m.skeleton.parents[j]), j) for j in range(1, len(p[0]))], m.fps
    from mocap.io.hdf5 import read_points3d
    from mocap.keypoint_sets import get_keypoint_set

    for stage in ("refined", "triangulated"):
        if session.points3d(stage).is_file():
            pts = read_points3d(session.points3d(stage))
            return pts.xyz[:, 0], list(get_keypoint_set(pts.keypoint_set).limbs), pts.fps
    raise FileNotFoundError(f"session {session.root}: nothing to show yet (run mocap run first)")


def _static_geometry(session: Session, P: np.ndarray):
    import open3d as o3d

    good = P[np.isfinite(P).all(axis=-1)]
    lo, hi = good.min(axis=0), good.max(axis=0)
    floor = float(lo[2])
    c = (lo + hi) / 2
    half = max(hi[0] - lo[0], hi[1] - lo[1], 2.0) / 2 + 0.5
    ticks = np.arange(-half, half + 1e-9, 0.5)
    pts, lines = [], []
    for t in ticks:
        pts += [[c[0] + t, c[1] - half, floor], [c[0] + t, c[1] + half, floor],
                [c[0] - half, c[1] + t, floor], [c[0] + half, c[1] + t, floor]]
        n = len(pts)
        lines += [[n - 4, n - 3], [n - 2, n - 1]]
    grid = o3d.geometry.LineSet(o3d.utility.Vector3dVector(pts), o3d.utility.Vector2iVector(lines))
    grid.paint_uniform_color([0.75, 0.75, 0.75])
    geoms = [grid]
    try:
        rig = session.rig()
    except (FileNotFoundError, ValueError):
        rig = None
    if rig is not None:  # camera frustums, 30 cm deep
        for cam in rig:
            R, C = cam.R, cam.center
            W, H = cam.size
            corners = np.array([[0, 0], [W, 0], [W, H], [0, H]], float)
            rays = np.c_[(corners - cam.K[:2, 2]) / np.diag(cam.K)[:2], np.ones(4)]
            tips = C + 0.3 * (rays / np.linalg.norm(rays, axis=1, keepdims=True)) @ R
            fr = o3d.geometry.LineSet(o3d.utility.Vector3dVector(np.vstack([C, tips])),
                                      o3d.utility.Vector2iVector([[0, 1], [0, 2], [0, 3], [0, 4], [1, 2], [2, 3],
                                                                  [3, 4], [4, 1]]))
            fr.paint_uniform_color([0.2, 0.4, 0.9])
            geoms.append(fr)
    return geoms, c


def _lineset(X: np.ndarray, segs: list[tuple[int, int]], ls=None):
    import open3d as o3d

    ok = np.isfinite(X).all(axis=1)
    use = [(a, b) for a, b in segs if ok[a] and ok[b]]
    ls = ls or o3d.geometry.LineSet()
    ls.points = o3d.utility.Vector3dVector(np.nan_to_num(X))
    ls.lines = o3d.utility.Vector2iVector(np.array(use, int).reshape(-1, 2))
    ls.paint_uniform_color([0.85, 0.2, 0.1])
    return ls


def view(session: str | Path, out: str | Path | None = None, frames: int = 0, turntable: bool = False,
         size: tuple[int, int] = (960, 720)) -> Path | None:
    """Open a window (when a display exists and ``out`` is None) or render to ``out`` (.mp4 or a folder)."""
    with native_stderr_to_log(log):
        import open3d as o3d

    s = Session(Path(session))
    P, segs, fps = _skeleton(s)
    F = len(P) if not frames else min(frames, len(P))
    static, centre = _static_geometry(s, P)
    headless = not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY")
    if out is None and headless:
        out = s.root / "review" / ("turntable.mp4" if turntable else "view.mp4")
        log.info("no display: rendering to %s", out)
    vis = o3d.visualization.Visualizer()
    # "error: XDG_RUNTIME_DIR is invalid", "GLFW Error: Failed to detect any supported platform", "falling back
    # to EGL": printed on success; Open3D's own messages below errors are dropped, the rest goes to the log
    with o3d.utility.VerbosityContextManager(o3d.utility.VerbosityLevel.Error), native_stderr_to_log(log):
        opened = vis.create_window(window_name=f"mocap: {s.name}", width=size[0], height=size[1],
                                   visible=out is None)
    if not opened:
        raise RuntimeError("open3d could not open a window or an offscreen (EGL) context (run mocap -v to see what "
                           "the graphics libraries said)")
    for g in static:
        vis.add_geometry(g)
    mid = len(P) // 2
    skel = _lineset(P[mid if turntable else 0], segs)
    vis.add_geometry(skel)
    vis.get_render_option().line_width = 4.0
    ctr = vis.get_view_control()

    def look(angle: float) -> None:
        ctr.set_lookat(centre.tolist())
        ctr.set_up([0.0, 0.0, 1.0])
        ctr.set_front([np.sin(angle), -np.cos(angle), 0.35])
        ctr.set_zoom(0.7)

    look(0.3)
    if out is None:
        state = {"f": 0}

        def step(v):
            state["f"] = (state["f"] + 1) % F
            _lineset(P[state["f"]], segs, skel)
            v.update_geometry(skel)
            return True

        vis.register_animation_callback(step)
        vis.run()
        vis.destroy_window()
        return None
    out = Path(out)
    n = 120 if turntable else F
    images = []
    for i in range(n):
        if turntable:
            look(0.3 + 2 * np.pi * i / n)
        else:
            _lineset(P[i], segs, skel)
            vis.update_geometry(skel)
        vis.poll_events()
        vis.update_renderer()
        img = np.asarray(vis.capture_screen_float_buffer(do_render=True))
        images.append((np.clip(img, 0, 1) * 255).astype(np.uint8)[:, :, ::-1].copy())
    vis.destroy_window()
    return _write(images, out, fps if not turntable else 30.0)


def _write(images: list[np.ndarray], out: Path, fps: float) -> Path:
    import cv2

    if out.suffix.lower() in (".mp4", ".avi", ".mov"):
        from mocap.detect.overlay import OverlayWriter

        h, w = images[0].shape[:2]
        writer = OverlayWriter(out, fps, (w, h))
        ok = False
        try:
            for img in images:
                writer.write(img)
            ok = True
        finally:
            writer.close(ok)
        return out
    out.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(images):
        cv2.imwrite(str(out / f"frame_{i:05d}.png"), img)
    return out
