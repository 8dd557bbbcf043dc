"""A rehearsal session for ``mocap live --from-videos`` and ``mocap bench live``: a session's videos scaled
(and padded, keeping the aspect) to a camera size such as 640×480, re-timed to a frame rate, with the
rig's intrinsics scaled to match, so live runs on footage shaped like the studio's cameras."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)


def scaled_camera(cam, size: tuple[int, int]):
    """The camera seen through ``fit_frame`` into ``size`` (width, height): K scaled and shifted."""
    from mocap.types import Camera

    (w, h), (W, H) = cam.size, size
    s = min(W / w, H / h)
    nw, nh = round(w * s), round(h * s)
    sx, sy = nw / w, nh / h
    px, py = (W - nw) // 2, (H - nh) // 2
    K = cam.K.copy()
    # pixel centres at integer coordinates: u' + 0.5 = sx (u + 0.5) + px
    K[0] = K[0] * sx + [0, 0, 0.5 * (sx - 1) + px]
    K[1] = K[1] * sy + [0, 0, 0.5 * (sy - 1) + py]
    return Camera(cam.name, K, cam.dist, cam.cam_from_world, (W, H), cam.model), (nw, nh, px, py)


def fit_frame(img: np.ndarray, layout: tuple[int, int, int, int], size: tuple[int, int]) -> np.ndarray:
    nw, nh, px, py = layout
    out = np.zeros((size[1], size[0], 3), np.uint8)
    out[py:py + nh, px:px + nw] = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)
    return out


def rehearsal_session(videos: dict[str, Path], rig, out: Path, size: tuple[int, int] = (640, 480),
                      fps: float = 30.0) -> Path:
    """Write ``out`` (videos/<camera>.mp4 at ``size`` and ``fps``, calibration/rig.toml) from ``videos``
    (camera → file) shot with ``rig``."""
    from mocap.io.rig_files import check_camera_name, write_rig
    from mocap.io.video import read_frames
    from mocap.types import Rig

    out = Path(out)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    (out / "calibration").mkdir(parents=True, exist_ok=True)
    cams = []
    for name, path in videos.items():
        cam, layout = scaled_camera(rig[name], size)
        cams.append(cam)
        writer = cv2.VideoWriter(str(out / "videos" / f"{check_camera_name('rehearsal', name)}.mp4"),
                                 cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        for _, img in read_frames(path):
            writer.write(fit_frame(img, layout, size))
        writer.release()
    write_rig(Rig(tuple(cams)), out / "calibration" / "rig.toml")
    (out / "session.toml").write_text(f"fps = {float(fps)!r}\n")
    log.info("rehearsal session %s: %d cameras at %dx%d, %g fps", out, len(cams), size[0], size[1], fps)
    return out
