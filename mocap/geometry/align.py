"""Rotations and rigid transforms that best align point or direction sets (Kabsch / Umeyama)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mocap.geometry.rotations import geodesic_deg

if TYPE_CHECKING:
    from mocap.types import Rig


def kabsch(q: np.ndarray, o: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Rotations (F, 3, 3) minimising Σ w |R q − o|². q: (N, 3); o: (F, N, 3); w: (F, N)."""
    H = np.einsum("fn,ni,fnj->fij", w, q, o)
    U, _, Vt = np.linalg.svd(H)
    d = np.sign(np.linalg.det(np.swapaxes(Vt, -1, -2) @ np.swapaxes(U, -1, -2)))
    D = np.tile(np.eye(3), (len(H), 1, 1))
    D[:, 2, 2] = d
    return np.swapaxes(Vt, -1, -2) @ D @ np.swapaxes(U, -1, -2)


def rigid_align(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """R (3, 3), t (3,) minimising Σ |R src + t − dst|² over corresponding points (N, 3), N ≥ 3."""
    src, dst = np.asarray(src, float), np.asarray(dst, float)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 3 or len(src) < 3:
        raise ValueError(f"rigid_align: expected two (N ≥ 3, 3) arrays, got {src.shape} and {dst.shape}")
    ms, md = src.mean(axis=0), dst.mean(axis=0)
    R = kabsch(src - ms, (dst - md)[None], np.ones((1, len(src))))[0]
    return R, md - R @ ms


def rig_alignment(rig: Rig, truth: Rig) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(R, t, cameras): the rigid transform taking ``rig``'s world frame onto ``truth``'s, from the
    centres of the cameras both have (a calibrated rig has its own world frame; the board gives scale)."""
    names = [n for n in truth.names if n in rig.names]
    R, t = rigid_align(np.array([rig[n].center for n in names]), np.array([truth[n].center for n in names]))
    return R, t, names


def aligned_camera_errors(est: Rig, truth: Rig) -> tuple[np.ndarray, np.ndarray]:
    """Centre errors (mm) and rotation errors (°) per camera (C,) after the similarity best aligning ``est``
    onto ``truth``, cameras in order (rotation from the cameras' orientations, then scale and translation
    from their centres): what differs between two rigs once their world frames are made to agree, for
    example how far camera refinement moved each camera beyond a change of the whole rig's frame."""
    if len(est.cameras) != len(truth.cameras):
        raise ValueError(f"aligned_camera_errors: {len(est.cameras)} cameras against {len(truth.cameras)}")
    U, _, Vt = np.linalg.svd(sum(t.R.T @ e.R for e, t in zip(est.cameras, truth.cameras, strict=True)))
    Q = U @ np.diag([1, 1, np.linalg.det(U @ Vt)]) @ Vt
    A = np.array([Q @ c.center for c in est.cameras])
    B = np.array([c.center for c in truth.cameras])
    A, B = A - A.mean(0), B - B.mean(0)
    s = np.sum(A * B) / np.sum(A * A) if np.sum(A * A) > 0 else 1.0
    rot = np.array([geodesic_deg(e.R @ Q.T, t.R) for e, t in zip(est.cameras, truth.cameras, strict=True)])
    return np.linalg.norm(s * A - B, axis=1) * 1000, rot


def mean_distance_scale(rig: Rig, given: Rig) -> float:
    """The factor that, applied about the first camera's centre, gives ``rig``'s cameras the mean distance to it
    that ``given``'s have (1 with fewer than two cameras): the scale of a rig known up to a similarity, taken
    from every camera of the given one rather than from one pair."""
    c, g = (np.stack([cam.center for cam in r.cameras]) for r in (rig, given))
    d, d0 = np.linalg.norm(c[1:] - c[0], axis=1), np.linalg.norm(g[1:] - g[0], axis=1)
    return float(d0.mean() / d.mean()) if len(d) and d.mean() > 0 else 1.0


def scaled_about_first(rig: Rig, X: np.ndarray, k: float) -> tuple[Rig, np.ndarray]:
    """``rig`` and its points X (..., 3) scaled by ``k`` about the first camera's centre (every projection and
    reprojection error unchanged)."""
    o = rig.cameras[0].center
    cams = []
    for cam in rig.cameras:
        T = cam.cam_from_world.copy()
        T[:3, 3] = -cam.R @ (o + k * (cam.center - o))
        cams.append(cam.with_pose(T))
    return type(rig)(tuple(cams)), o + k * (np.asarray(X) - o)
