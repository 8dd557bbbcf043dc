"""Initial rig from simultaneous board views: board poses by PnP, robust relative poses of camera
pairs, a maximum spanning tree over the cameras (weighted by shared views), composed poses."""

from __future__ import annotations

import logging
from itertools import combinations

import cv2
import numpy as np

from calibration.boards import Board
from calibration.detect import Detections
from mocap.geometry.camera import pixels_to_normalised
from mocap.geometry.rotations import axis_angle_to_matrix
from mocap.types import Camera

log = logging.getLogger(__name__)


def board_poses(board: Board, det: Detections, cam: Camera, min_corners: int = 6) -> dict[int, np.ndarray]:
    """cam_from_board (4, 4) for every view with enough corners, keyed by frame number."""
    poses = {}
    for frame, pts in zip(det.frames, det.corners, strict=True):
        ok = np.isfinite(pts[:, 0])
        if ok.sum() < min_corners:
            continue
        xn = pixels_to_normalised(cam, pts[ok])  # undistorted normalised coordinates: identity K
        success, rvec, tvec = cv2.solvePnP(board.object_points[ok], xn, np.eye(3), None, flags=cv2.SOLVEPNP_IPPE)
        if not success:
            continue
        rvec, tvec = cv2.solvePnPRefineLM(board.object_points[ok], xn, np.eye(3), None, rvec, tvec)
        T = np.eye(4)
        T[:3, :3], T[:3, 3] = axis_angle_to_matrix(rvec.ravel()), tvec.ravel()
        if T[2, 3] > 0:
            poses[int(frame)] = T
    return poses


def inverse(T: np.ndarray) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3] = T[:3, :3].T
    out[:3, 3] = -T[:3, :3].T @ T[:3, 3]
    return out


def average_pose(Ts: list[np.ndarray]) -> np.ndarray:
    """Robust mean of rigid transforms: the medoid's neighbourhood, chordal mean of rotations."""
    Ts = np.asarray(Ts)
    if len(Ts) == 1:
        return Ts[0]
    R, t = Ts[:, :3, :3], Ts[:, :3, 3]
    d = np.linalg.norm(R[:, None] - R[None], axis=(2, 3)) + np.linalg.norm(t[:, None] - t[None], axis=2) / (
        np.median(np.linalg.norm(t, axis=1)) + 1e-9)
    medoid = np.argmin(np.median(d, axis=1))
    keep = d[medoid] <= max(3 * np.median(d[medoid]), 1e-9)
    U, _, Vt = np.linalg.svd(R[keep].sum(axis=0))
    Rm = U @ np.diag([1, 1, np.linalg.det(U @ Vt)]) @ Vt
    out = np.eye(4)
    out[:3, :3], out[:3, 3] = Rm, np.median(t[keep], axis=0)
    return out


def initial_rig(poses: dict[str, dict[int, np.ndarray]], min_shared: int = 3) -> tuple[dict[str, np.ndarray], str]:
    """(cam_from_ref (4, 4) for every camera, the reference camera: the best-connected one)."""
    names = list(poses)
    shared = {(a, b): sorted(set(poses[a]) & set(poses[b])) for a, b in combinations(names, 2)}
    weight = {k: len(v) for k, v in shared.items() if len(v) >= min_shared}
    degree = {n: sum(w for k, w in weight.items() if n in k) for n in names}
    root = max(names, key=lambda n: degree[n])
    tree = {root: np.eye(4)}
    while len(tree) < len(names):  # Prim: attach the camera sharing most views with the tree
        best = None
        for (a, b), w in weight.items():
            if (a in tree) != (b in tree) and (best is None or w > best[2]):
                best = (a, b, w)
        if best is None:
            lonely = [n for n in names if n not in tree]
            raise ValueError(f"cameras {lonely} never share a board view (≥ {min_shared} frames) with cameras "
                             f"{sorted(tree)}; record the board where both groups see it at once")
        a, b, _ = best
        new, old = (b, a) if a in tree else (a, b)
        frames = shared[(a, b)] if (a, b) in shared else shared[(b, a)]
        new_from_old = average_pose([poses[new][f] @ inverse(poses[old][f]) for f in frames])
        tree[new] = new_from_old @ tree[old]
        log.info("camera %s placed from %s over %d shared views", new, old, len(frames))
    return {n: tree[n] for n in names}, root


def initial_board_poses(poses: dict[str, dict[int, np.ndarray]], rig: dict[str, np.ndarray]) -> dict[int, np.ndarray]:
    """ref_from_board for every frame seen by any camera."""
    per_frame: dict[int, list[np.ndarray]] = {}
    for cam, views in poses.items():
        for f, T in views.items():
            per_frame.setdefault(f, []).append(inverse(rig[cam]) @ T)
    return {f: average_pose(v) for f, v in sorted(per_frame.items())}
