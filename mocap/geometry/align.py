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


def mean_distance_scale(rig: Rig, given: Rig, about: int = 0) -> float:
    """The factor that, applied about camera ``about``'s centre (the first by default), gives ``rig``'s cameras the
    mean distance to it that ``given``'s have (1 with fewer than two cameras): the scale of a rig known up to a
    similarity, taken from every camera of the given one rather than from one pair."""
    c, g = (np.stack([cam.center for cam in r.cameras]) for r in (rig, given))
    others = np.arange(len(c)) != about
    d, d0 = np.linalg.norm(c[others] - c[about], axis=1), np.linalg.norm(g[others] - g[about], axis=1)
    return float(d0.mean() / d.mean()) if len(d) and d.mean() > 0 else 1.0


def scaled_about_first(rig: Rig, X: np.ndarray, k: float, about: int = 0) -> tuple[Rig, np.ndarray]:
    """``rig`` and its points X (..., 3) scaled by ``k`` about camera ``about``'s centre (the first by default;
    every projection and reprojection error unchanged)."""
    o = rig.cameras[about].center
    cams = []
    for cam in rig.cameras:
        T = cam.cam_from_world.copy()
        T[:3, 3] = -cam.R @ (o + k * (cam.center - o))
        cams.append(cam.with_pose(T))
    return type(rig)(tuple(cams)), o + k * (np.asarray(X) - o)


def _poses(rig: Rig) -> tuple[np.ndarray, np.ndarray]:
    return np.stack([c.R for c in rig.cameras]), np.stack([c.center for c in rig.cameras])


def _similarity(R: np.ndarray, c: np.ndarray, Rg: np.ndarray, cg: np.ndarray, cams: np.ndarray):
    U, _, Vt = np.linalg.svd(np.einsum("nji,njk->ik", Rg[cams], R[cams]))
    Q = U @ np.diag([1, 1, np.linalg.det(U @ Vt)]) @ Vt
    A, B = c[cams] @ Q.T, cg[cams]
    a, b = A - A.mean(0), B - B.mean(0)
    s = float(np.sum(a * b) / np.sum(a * a)) if len(cams) > 1 and np.sum(a * a) > 0 else 1.0
    return s, Q, B.mean(0) - s * A.mean(0)


def _errors(R: np.ndarray, c: np.ndarray, Rg: np.ndarray, cg: np.ndarray, s: float, Q: np.ndarray,
            t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return geodesic_deg(R @ Q.T, Rg), np.linalg.norm(s * c @ Q.T + t - cg, axis=1)


def similarity_onto(rig: Rig, given: Rig, cams) -> tuple[float, np.ndarray, np.ndarray]:
    """(s, Q, t): the change of world frame x ↦ s Q x + t that best places the cameras ``cams`` (indices, ≥ 1)
    of ``rig`` on ``given``'s: Q the chordal mean of their orientation differences, then s and t the least-squares
    fit of their centres turned by Q (s = 1 with one camera: one centre gives no scale)."""
    cams = np.asarray(list(cams), int)
    if not cams.size:
        raise ValueError("similarity_onto: expected at least one camera, got none")
    return _similarity(*_poses(rig), *_poses(given), cams)


def similarity_errors(rig: Rig, given: Rig, s: float, Q: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per camera (C,): rotation (degrees) and centre distance (metres) between ``given``'s cameras and
    ``rig``'s placed by the similarity (s, Q, t) (:func:`similarity_onto`)."""
    return _errors(*_poses(rig), *_poses(given), s, Q, t)


def consistent_cameras(rig: Rig, given: Rig, tol_deg: float, tol_m: float) -> np.ndarray:
    """The largest set of cameras (indices, ascending) whose poses in ``rig`` agree with ``given``'s up to one
    change of world frame (a similarity), each within ``tol_deg`` and ``tol_m`` of its given pose: the cameras
    that kept their given poses relative to one another, when others were bumped. Every pair of cameras not
    both in the best set so far proposes a similarity, its agreeing cameras refit it (twice at most); among sets
    of equal size, one holding the first camera wins, then the one of least error. Empty when no two agree."""
    C = len(rig.cameras)
    if len(given.cameras) != C:
        raise ValueError(f"consistent_cameras: {C} cameras against {len(given.cameras)}")
    poses = (*_poses(rig), *_poses(given))
    best, best_key = np.zeros(0, int), None
    for i in range(C):
        for j in range(i + 1, C):
            if i in best and j in best:
                continue
            inl = new = np.array([i, j])
            for _ in range(3):
                deg, m = _errors(*poses, *_similarity(*poses, inl))
                new = np.flatnonzero((deg <= tol_deg) & (m <= tol_m))
                if np.array_equal(new, inl) or new.size < 2:
                    break
                inl = new
            if new.size < 2 or not np.array_equal(new, inl):
                continue
            key = (inl.size, 0 in inl, -float(np.sum(deg[inl] / tol_deg + m[inl] / tol_m)))
            if best_key is None or key > best_key:
                best, best_key = inl, key
    return best


def with_similarity(rig: Rig, X: np.ndarray, s: float, Q: np.ndarray, t: np.ndarray) -> tuple[Rig, np.ndarray]:
    """``rig`` and its points X (..., 3) in the world frame x ↦ s Q x + t (every projection unchanged)."""
    cams = []
    for cam in rig.cameras:
        T = np.eye(4)
        T[:3, :3] = cam.R @ Q.T
        T[:3, 3] = -T[:3, :3] @ (s * Q @ cam.center + t)
        cams.append(cam.with_pose(T))
    return type(rig)(tuple(cams)), s * np.asarray(X) @ Q.T + t
