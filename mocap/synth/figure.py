"""A small synthetic walker in COCO 17 keypoints, for multi-person takes without a motion clip.

The figure walks in place: legs and arms swing (pendulum about hips and shoulders), the body bobs
and sways a little. ``seed`` varies its size, pace and phase, so several figures differ.
"""

from __future__ import annotations

import numpy as np

# standing pose, metres: x left, y forward (−), z up, hips centre at the origin (COCO 17 order)
REST = np.array([
    [0.0, -0.08, 0.62], [0.03, -0.06, 0.66], [-0.03, -0.06, 0.66], [0.07, 0.0, 0.64], [-0.07, 0.0, 0.64],
    [0.18, 0.0, 0.45], [-0.18, 0.0, 0.45], [0.20, 0.0, 0.17], [-0.20, 0.0, 0.17], [0.21, 0.0, -0.08],
    [-0.21, 0.0, -0.08], [0.10, 0.0, 0.0], [-0.10, 0.0, 0.0], [0.10, 0.0, -0.45], [-0.10, 0.0, -0.45],
    [0.10, 0.0, -0.88], [-0.10, 0.0, -0.88],
])
_LIMBS = {5: (7, 9), 6: (8, 10), 11: (13, 15), 12: (14, 16)}  # root joint → the joints it swings


def _swing(points: np.ndarray, root: int, joints: tuple[int, ...], angle: np.ndarray) -> None:
    """Rotate ``joints`` about the x axis through ``root`` by ``angle`` (F,), in place."""
    c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
    rel = points[:, joints] - points[:, root : root + 1]
    y = c * rel[..., 1] - s * rel[..., 2]
    z = s * rel[..., 1] + c * rel[..., 2]
    points[:, joints, 1] = points[:, root : root + 1, 1] + y
    points[:, joints, 2] = points[:, root : root + 1, 2] + z


def walking_figure(frames: int, fps: float = 60.0, seed: int = 0) -> np.ndarray:
    """(F, 17, 3) COCO keypoints of a figure walking in place, standing on z = 0."""
    rng = np.random.default_rng(seed)
    scale = rng.uniform(0.9, 1.1)
    pace = rng.uniform(0.8, 1.2)  # steps per second / 2
    phase = rng.uniform(0, 2 * np.pi)
    t = np.arange(frames) / fps
    w = 2 * np.pi * pace * t + phase
    pts = np.repeat(REST[None] * scale, frames, axis=0)
    for root, sign in ((11, 1), (12, -1)):
        _swing(pts, root, _LIMBS[root], 0.45 * sign * np.sin(w))
    for root, sign in ((5, -1), (6, 1)):
        _swing(pts, root, _LIMBS[root], 0.35 * sign * np.sin(w))
    pts[..., 2] += 0.88 * scale + 0.02 * np.cos(2 * w)[:, None]
    yaw = 0.15 * np.sin(w)
    c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
    x, y = pts[..., 0].copy(), pts[..., 1].copy()
    pts[..., 0], pts[..., 1] = c * x - s * y, s * x + c * y
    return pts
