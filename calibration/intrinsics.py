"""Intrinsics of one camera from its board views (pinhole + Brown-Conrady, or fisheye)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from calibration.boards import Board
from calibration.detect import Detections

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Intrinsics:
    camera: str
    K: np.ndarray
    dist: np.ndarray
    model: str
    size: tuple[int, int]
    rms_px: float
    views: np.ndarray  # indices into the camera's Detections used for the fit


def select_views(det: Detections, max_views: int = 40, grid: tuple[int, int] = (8, 6),
                 min_corners: int = 8) -> np.ndarray:
    """Greedy choice of views that cover the image: each pick adds the most uncovered grid cells
    (ties go to views with more corners and a more oblique board)."""
    W, H = det.image_size
    usable = np.flatnonzero(det.counts >= min_corners)
    cells = []
    for v in usable:
        pts = det.corners[v][np.isfinite(det.corners[v, :, 0])]
        cx = np.clip((pts[:, 0] / W * grid[0]).astype(int), 0, grid[0] - 1)
        cy = np.clip((pts[:, 1] / H * grid[1]).astype(int), 0, grid[1] - 1)
        cells.append(set((cy * grid[0] + cx).tolist()))
    chosen: list[int] = []
    covered: set[int] = set()
    remaining = list(range(len(usable)))
    while remaining and len(chosen) < max_views:
        gains = [len(cells[i] - covered) for i in remaining]
        best = max(range(len(remaining)), key=lambda k: (gains[k], det.counts[usable[remaining[k]]]))
        if gains[best] == 0:  # everything covered: spread the rest evenly over the take
            rest = np.array(remaining)
            step = max(1, len(rest) // (max_views - len(chosen)))
            chosen.extend(rest[::step][: max_views - len(chosen)].tolist())
            break
        covered |= cells[remaining[best]]
        chosen.append(remaining.pop(best))
    return np.sort(usable[chosen])


def calibrate_intrinsics(board: Board, det: Detections, model: str = "pinhole", max_views: int = 40,
                         min_views: int = 5, fix_k3: bool = False) -> Intrinsics:
    """OpenCV calibration on coverage-selected views. Raises when there are too few views."""
    views = select_views(det, max_views)
    if len(views) < min_views:
        raise ValueError(f"camera {det.camera!r}: only {len(views)} board views with ≥ 8 corners out of "
                         f"{det.searched} frames searched; intrinsics need at least {min_views} views that "
                         "cover the image")
    obj, img = [], []
    for v in views:
        ok = np.isfinite(det.corners[v, :, 0])
        obj.append(board.object_points[ok].astype(np.float32))
        img.append(det.corners[v, ok].astype(np.float32))
    W, H = det.image_size
    if model == "pinhole":
        flags = cv2.CALIB_FIX_K3 if fix_k3 else 0
        rms, K, dist, _, _ = cv2.calibrateCamera(obj, img, (W, H), None, None, flags=flags)
        dist = dist.ravel()[:5]
    elif model == "fisheye":
        K0 = np.array([[W, 0, (W - 1) / 2], [0, W, (H - 1) / 2], [0, 0, 1]], float)
        flags = cv2.fisheye.CALIB_RECOMPUTE_EXTRINSIC | cv2.fisheye.CALIB_FIX_SKEW
        rms, K, dist, _, _ = cv2.fisheye.calibrate([o[:, None] for o in obj], [i[:, None] for i in img], (W, H), K0,
                                                  np.zeros(4), flags=flags)
        dist = dist.ravel()
    else:
        raise ValueError(f"camera model must be pinhole or fisheye, got {model!r}")
    log.info("camera %s: intrinsics from %d views, RMS %.3f px, f = %.1f, %.1f", det.camera, len(views), rms,
             K[0, 0], K[1, 1])
    return Intrinsics(det.camera, K, dist, model, (W, H), float(rms), views)
