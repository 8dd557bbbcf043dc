"""Synthetic calibration takes: a ring of cameras and a board moved through the volume.

Detections come either from projecting the corners (σ px noise, random partial occlusion), or
from rendering every view (the board image warped with the true K, pose and lens distortion,
blurred, noisy, partly occluded) and running the real detector on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from calibration.boards import Board
from calibration.detect import Detections, detect_board
from mocap.geometry.camera import pixels_to_normalised
from mocap.geometry.rotations import axis_angle_to_matrix
from mocap.synth import RigSpec, ring_rig
from mocap.types import Camera, Rig


@dataclass(frozen=True)
class BoardTakeSpec:
    n_cameras: int = 6
    frames: int = 300
    radius: float = 3.0  # camera ring radius (m)
    size: tuple[int, int] = (1280, 720)
    dist: tuple[float, ...] = (-0.12, 0.05, 0.0008, -0.0006, -0.01)
    model: str = "pinhole"
    noise_px: float = 0.3
    occlusion: float = 0.1  # fraction of views with a part of the board hidden
    seed: int = 0


def board_trajectory(board: Board, spec: BoardTakeSpec) -> np.ndarray:
    """world_from_board (F, 4, 4): centre wandering through the volume, facing a turning direction."""
    rng = np.random.default_rng(spec.seed)
    F = spec.frames
    t = np.linspace(0, 1, F)
    centre = np.stack([0.6 * np.sin(2 * np.pi * 1.3 * t + 0.3), 0.6 * np.sin(2 * np.pi * 0.9 * t),
                       1.2 + 0.4 * np.sin(2 * np.pi * 2.1 * t)], axis=1)
    heading = 2 * np.pi * 2.0 * t + rng.uniform(0, 2 * np.pi)  # board faces a turning horizontal direction
    tilt = np.radians(35) * np.sin(2 * np.pi * 3.7 * t)
    roll = np.radians(40) * np.sin(2 * np.pi * 2.9 * t + 1.0)
    poses = np.tile(np.eye(4), (F, 1, 1))
    w, h = board.corners_x * board.square_size, board.corners_y * board.square_size
    for i in range(F):
        face = np.array([np.cos(heading[i]), np.sin(heading[i]), 0.0])  # direction the printed side faces
        z = -face  # board z points into the board
        x = np.cross([0.0, 0.0, 1.0], z)
        x /= np.linalg.norm(x)
        y = np.cross(z, x)
        R = np.stack([x, y, z], axis=1)
        R = R @ axis_angle_to_matrix(np.array([tilt[i], 0.0, 0.0])) @ axis_angle_to_matrix(np.array([0, 0, roll[i]]))
        poses[i, :3, :3] = R
        poses[i, :3, 3] = centre[i] - R @ np.array([w / 2, h / 2, 0.0])
    return poses


def make_rig(spec: BoardTakeSpec) -> Rig:
    """Ring of cameras; like real ones, each has its principal point off the image centre (σ 1% of
    the width) and slightly non-square pixels."""
    volume = np.array([[-1.0, -1.0, 0.4], [1.0, 1.0, 2.0]])
    W, H = spec.size
    ring = ring_rig(RigSpec(n_cameras=spec.n_cameras, radius=spec.radius, height=1.6, height_spread=0.6,
                            size=spec.size, focal_px=0.55 * W, dist=spec.dist, model=spec.model), volume)
    rng = np.random.default_rng(spec.seed + 10)
    cams = []
    for c in ring:
        K = c.K.copy()
        K[0, 2] += rng.normal(0, 0.01 * W)
        K[1, 2] += rng.normal(0, 0.01 * W)
        K[1, 1] *= 1 + rng.normal(0, 0.001)
        cams.append(Camera(c.name, K, c.dist, c.cam_from_world, c.size, c.model))
    return Rig(tuple(cams))


def project_take(board: Board, rig: Rig, poses: np.ndarray, spec: BoardTakeSpec) -> dict[str, Detections]:
    rng = np.random.default_rng(spec.seed + 1)
    out = {}
    for cam in rig:
        frames, corners = [], []
        for f, T in enumerate(poses):
            X = board.object_points @ T[:3, :3].T + T[:3, 3]
            facing = np.dot(cam.center - T[:3, 3], T[:3, 2]) < 0
            uv = cam.project(X)
            inside = np.all((uv >= 0) & (uv <= np.array(cam.size) - 1), axis=1)
            if not facing or inside.sum() < 6:
                continue
            uv = uv + rng.normal(0, spec.noise_px, uv.shape)
            uv[~inside] = np.nan
            if rng.random() < spec.occlusion:  # hide a band of columns
                cols = board.object_points[:, 0] / board.square_size
                a = rng.integers(0, board.corners_x)
                uv[(cols >= a) & (cols < a + max(1, board.corners_x // 3))] = np.nan
            if np.isfinite(uv[:, 0]).sum() >= 6:
                frames.append(f)
                corners.append(uv)
        out[cam.name] = Detections(cam.name, cam.size, np.array(frames, int),
                                   np.array(corners) if corners else np.zeros((0, board.n_corners, 2)), len(poses))
    return out


def camera_rays(cam, supersample: int = 2) -> np.ndarray:
    """(s·H, s·W, 2) undistorted normalised coordinates of the centres of s × s sub-pixels."""
    W, H = cam.size
    s = supersample
    u, v = np.meshgrid((np.arange(s * W) + 0.5) / s - 0.5, (np.arange(s * H) + 0.5) / s - 0.5)
    return pixels_to_normalised(cam, np.stack([u, v], axis=-1))


def render_view(board: Board, cam, T: np.ndarray, rng: np.random.Generator, rays: np.ndarray | None = None,
                px_per_square: int = 60, blur: float = 0.8, noise: float = 3.0, occlude: bool = False) -> np.ndarray:
    """Grey image of the board seen by ``cam`` at world_from_board ``T``, lens distortion included.

    Each pixel integrates the sub-pixel samples of ``rays`` (see :func:`camera_rays`), as a sensor does."""
    W, H = cam.size
    xn = camera_rays(cam) if rays is None else rays
    ss = xn.shape[1] // W  # supersampling factor
    # only the pixels around the board are rendered: its outline (sampled densely, distortion bends it)
    tx, ty = np.linspace(-1.0, board.corners_x, 24), np.linspace(-1.0, board.corners_y, 24)  # in squares
    outline = np.concatenate([np.stack([tx, np.full(24, v)], 1) for v in (-1.0, board.corners_y)]
                             + [np.stack([np.full(24, u), ty], 1) for u in (-1.0, board.corners_x)])
    X = np.concatenate([outline * board.square_size, np.zeros((len(outline), 1))], 1) @ T[:3, :3].T + T[:3, 3]
    uv = cam.project(X)
    img = np.full((H, W), 110.0, np.float32)
    if np.isfinite(uv).all():
        x0, y0 = np.maximum(np.floor(uv.min(0)).astype(int) - 4, 0)
        x1, y1 = np.minimum(np.ceil(uv.max(0)).astype(int) + 5, [W, H])
    else:
        x0, y0, x1, y1 = 0, 0, W, H
    if x1 > x0 and y1 > y0:
        img[y0:y1, x0:x1] = _render_region(board, cam, T, xn[ss * y0 : ss * y1, ss * x0 : ss * x1], px_per_square, ss)
    if occlude:
        x0, y0 = rng.integers(0, W), rng.integers(0, H)
        cv2.circle(img, (int(x0), int(y0)), int(0.08 * W), 60.0, -1)
    img = cv2.GaussianBlur(img, (0, 0), blur)
    img += rng.normal(0, noise, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _render_region(board: Board, cam, T: np.ndarray, xn: np.ndarray, px_per_square: int, ss: int) -> np.ndarray:
    texture = board.image(px_per_square)
    margin = px_per_square  # white border of one square around the pattern
    texture = cv2.copyMakeBorder(texture, margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=255)
    board_from_cam = np.linalg.inv(cam.cam_from_world @ T)
    o = board_from_cam[:3, 3]
    d = np.concatenate([xn, np.ones(xn.shape[:-1] + (1,))], axis=-1) @ board_from_cam[:3, :3].T
    s = -o[2] / d[..., 2]  # ray hits the plane z = 0
    bx, by = o[0] + s * d[..., 0], o[1] + s * d[..., 1]
    # board frame origin = first inner corner = one square in from the pattern's corner
    map_x = ((bx / board.square_size + 1) * px_per_square + margin - 0.5).astype(np.float32)
    map_y = ((by / board.square_size + 1) * px_per_square + margin - 0.5).astype(np.float32)
    img = cv2.remap(texture, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=110)
    img = np.where(s > 0, img, 110).astype(np.float32)
    h, w = img.shape[0] // ss, img.shape[1] // ss
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA) if ss > 1 else img


def render_take(board: Board, rig: Rig, poses: np.ndarray, spec: BoardTakeSpec) -> dict[str, Detections]:
    """Render every view where the board faces the camera and run the detector on it."""
    rng = np.random.default_rng(spec.seed + 2)
    out = {}
    for cam in rig:
        frames, corners, searched = [], [], 0
        rays = camera_rays(cam)
        for f, T in enumerate(poses):
            X = board.object_points @ T[:3, :3].T + T[:3, 3]
            if np.dot(cam.center - T[:3, 3], T[:3, 2]) >= 0 or np.isnan(cam.project(X)).any():
                continue
            searched += 1
            img = render_view(board, cam, T, rng, rays, occlude=rng.random() < spec.occlusion)
            pts, _ = detect_board(board, img)
            if pts is not None:
                frames.append(f)
                corners.append(pts)
        out[cam.name] = Detections(cam.name, cam.size, np.array(frames, int),
                                   np.array(corners) if corners else np.zeros((0, board.n_corners, 2)), searched)
    return out
