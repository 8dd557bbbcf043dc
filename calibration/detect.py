"""Board detection in images and videos, one camera per worker thread (OpenCV releases the GIL).

A camera's board views come back as :class:`Detections`: ``corners`` (V, n_corners, 2) pixels
with NaN for corners not seen, and the frame number of each view.
"""

from __future__ import annotations

import logging
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from calibration.boards import Board
from mocap.io.video import probe, read_frames

log = logging.getLogger(__name__)
SUBPIX = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 100, 1e-4)


@dataclass(frozen=True)
class Detections:
    camera: str
    image_size: tuple[int, int]  # width, height
    frames: np.ndarray  # (V,) frame numbers of the views with a board
    corners: np.ndarray  # (V, n_corners, 2) pixels, NaN where a corner was not seen
    searched: int  # frames searched
    foreign_ids: tuple[int, ...] = ()  # ArUco ids seen that the board does not have
    foreign_frames: int = 0  # frames where such ids were seen

    @property
    def counts(self) -> np.ndarray:
        return np.sum(np.isfinite(self.corners[..., 0]), axis=1)


def _grid_fit(board: Board, grid: np.ndarray) -> float:
    """Largest deviation (px) of a corner listing from the homography of the board plane."""
    obj = np.ascontiguousarray(board.object_points[:, :2], dtype=np.float64)
    img = np.ascontiguousarray(grid.reshape(-1, 2), dtype=np.float64)
    H, _ = cv2.findHomography(obj, img)
    if H is None:
        return np.inf
    return float(np.max(np.linalg.norm(cv2.perspectiveTransform(obj[None], H)[0] - img, axis=1)))


def _orient_checkerboard(board: Board, gray: np.ndarray, pts: np.ndarray) -> np.ndarray | None:
    """Put a checkerboard corner listing in the board's order, or None when it is not a grid.

    Detectors may list the corners from any end and, rarely, mirrored; the listing kept is the one
    that is a planar grid (homography fit), not mirrored, and whose first interior square is dark.
    """
    grid = pts.reshape(board.corners_y, board.corners_x, 2)
    candidates = [grid, grid[:, ::-1], grid[::-1, :], grid[::-1, ::-1]]
    good = []
    for g in candidates:
        a, b = g[0, 1] - g[0, 0], g[1, 0] - g[0, 0]
        if a[0] * b[1] - a[1] * b[0] > 0:  # same handedness as the board seen from its front
            good.append((_grid_fit(board, g), g))
    fit, grid = min(good, key=lambda x: x[0])
    spacing = np.median(np.linalg.norm(np.diff(grid, axis=1), axis=-1))
    if not fit < 0.3 * spacing:  # a wrong listing is off by whole squares; lens distortion bends far less
        return None

    def shade(q: np.ndarray) -> float:
        centre = q.mean(axis=0)
        r = max(1, int(0.15 * np.min(np.linalg.norm(q - centre, axis=1))))
        x, y = int(round(centre[0])), int(round(centre[1]))
        patch = gray[max(0, y - r) : y + r + 1, max(0, x - r) : x + r + 1]
        return float(patch.mean()) if patch.size else 0.0

    first = shade(np.array([grid[0, 0], grid[0, 1], grid[1, 0], grid[1, 1]]))
    last = shade(np.array([grid[-1, -1], grid[-1, -2], grid[-2, -1], grid[-2, -2]]))
    if first > last:  # the first interior square must be the dark one: turned by 180°
        grid = grid[::-1, ::-1]
    return grid.reshape(-1, 2)


def detect_board(board: Board, gray: np.ndarray, min_corners: int = 6) -> tuple[np.ndarray | None, list[int]]:
    """Corners (n_corners, 2) with NaN where unseen, or None; plus ArUco ids foreign to the board."""
    out = np.full((board.n_corners, 2), np.nan)
    if board.type == "checkerboard":
        size = (board.corners_x, board.corners_y)
        found, pts = cv2.findChessboardCornersSB(gray, size, flags=cv2.CALIB_CB_EXHAUSTIVE | cv2.CALIB_CB_ACCURACY)
        oriented = _orient_checkerboard(board, gray, pts.reshape(-1, 2).astype(float)) if found else None
        if oriented is None:  # the sector-based detector sometimes lists a broken grid: try the classic one
            found, pts = cv2.findChessboardCorners(gray, size, flags=cv2.CALIB_CB_ADAPTIVE_THRESH
                                                   | cv2.CALIB_CB_NORMALIZE_IMAGE)
            if found:
                pts = cv2.cornerSubPix(gray, pts, (5, 5), (-1, -1), SUBPIX)
                oriented = _orient_checkerboard(board, gray, pts.reshape(-1, 2).astype(float))
        return oriented, []
    cv_board = board.cv_charuco()
    corners, ids, _, marker_ids = cv2.aruco.CharucoDetector(cv_board).detectBoard(gray)
    foreign: list[int] = []
    if marker_ids is not None:
        known = set(np.asarray(cv_board.getIds()).ravel().tolist())
        foreign = sorted(set(marker_ids.ravel().tolist()) - known)
    if ids is None or len(ids) < min_corners:
        return None, foreign
    # OpenCV refines ChArUco corners with windows wide enough to reach the markers, which biases them
    # (half a pixel on sharp images); refine again with a window well inside the squares.
    pts = corners.reshape(-1, 2).astype(np.float32)
    d = np.linalg.norm(pts[:, None] - pts[None], axis=-1)
    d[d == 0] = np.inf
    win = int(np.clip(0.12 * np.median(d.min(axis=1)), 2, 5))
    pts = cv2.cornerSubPix(gray, pts[:, None].copy(), (win, win), (-1, -1), SUBPIX).reshape(-1, 2)
    out[ids.ravel()] = pts
    return out, foreign


def camera_name(path: Path) -> str:
    """``cam01.mp4`` → cam01; Pose2Sim folders ``int_cam01_img`` / ``ext_cam01`` → cam01."""
    stem = path.stem if path.is_file() else path.name
    return re.sub(r"(_img|_images|_ext|_int)$", "", re.sub(r"^(int|ext)_", "", stem))


def detect_source(board: Board, source: Path, camera: str, stride: int = 1, min_corners: int = 6,
                  position: int = 0) -> Detections:
    frames, corners, foreign = [], [], set()
    size, searched, foreign_frames = None, 0, 0
    total = probe(source).frames
    with tqdm(total=(total + stride - 1) // stride or None, desc=f"{camera:>10}", position=position, leave=False,
              unit="frame", disable=None) as bar:
        for i, gray in read_frames(source, stride, grey=True):
            size = size or (gray.shape[1], gray.shape[0])
            if (gray.shape[1], gray.shape[0]) != size:  # a photo turned (EXIF) or from another camera
                raise ValueError(f"camera {camera!r}: {source}: frame {i} is {gray.shape[1]}×{gray.shape[0]}, the "
                                 f"first {size[0]}×{size[1]}: every image of a camera must be the same size and way "
                                 "up (a phone turned for some photos?)")
            searched += 1
            pts, bad = detect_board(board, gray, min_corners)
            foreign.update(bad)
            foreign_frames += bool(bad)
            if pts is not None:
                frames.append(i)
                corners.append(pts)
            bar.update(1)
    if size is None:
        raise ValueError(f"camera {camera!r}: {source} holds no frames")
    arr = np.array(corners) if corners else np.zeros((0, board.n_corners, 2))
    log.info("camera %s: board in %d of %d frames searched", camera, len(frames), searched)
    return Detections(camera, size, np.array(frames, int), arr, searched, tuple(sorted(foreign)), foreign_frames)


def detect_all(board: Board, sources: dict[str, Path], stride: int = 1, min_corners: int = 6,
               workers: int | None = None) -> dict[str, Detections]:
    """Detect the board in every camera's source in parallel (one thread per camera)."""
    import os

    workers = workers or min(len(sources), os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {cam: pool.submit(detect_source, board, src, cam, stride, min_corners, i)
                   for i, (cam, src) in enumerate(sources.items())}
        return {cam: f.result() for cam, f in futures.items()}
