"""Operations on :class:`~mocap.types.Motion`: change of axes and of units."""

from __future__ import annotations

import numpy as np

from mocap.filters import gap_brackets
from mocap.geometry.rotations import matrix_to_quat, quat_continuous, quat_to_matrix
from mocap.types import Motion, Skeleton

# world Z up (this project) → Y up (BVH, OpenSim, glTF): (x, y, z) → (x, z, −y)
Z_UP_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


def change_axes(motion: Motion, M: np.ndarray) -> Motion:
    """The same motion seen in axes rotated by ``M`` (3×3 rotation): world positions become
    ``M @ p``; every local rotation is conjugated (``M R Mᵀ``), every offset rotated."""
    M = np.asarray(M, float)
    if M.shape != (3, 3) or not np.allclose(M @ M.T, np.eye(3)) or np.linalg.det(M) < 0:
        raise ValueError(f"change_axes: expected a 3x3 rotation matrix, got {M.tolist()}")
    sk = motion.skeleton
    R = quat_to_matrix(motion.rotations)
    q = quat_continuous(matrix_to_quat(M @ R @ M.T), axis=0)
    skeleton = Skeleton(sk.joint_names, sk.parents, sk.offsets @ M.T)
    return Motion(skeleton, q, motion.root_positions @ M.T, motion.fps)


def turn_world(motion: Motion, Q: np.ndarray, t: np.ndarray) -> Motion:
    """The same motion in a world turned by x ↦ Q x + t (3×3 rotation ``Q``): the root's rotation and position
    follow; the skeleton and every other local rotation are the same (unlike :func:`change_axes`, which turns
    the axes the rest pose is written in)."""
    Q, t = np.asarray(Q, float), np.asarray(t, float)
    if Q.shape != (3, 3) or not np.allclose(Q @ Q.T, np.eye(3)) or np.linalg.det(Q) < 0 or t.shape != (3,):
        raise ValueError(f"turn_world: expected a 3x3 rotation and a 3-vector, got {Q.tolist()}, {t.tolist()}")
    q = motion.rotations.copy()
    q[:, 0] = quat_continuous(matrix_to_quat(Q @ quat_to_matrix(motion.rotations[:, 0])), axis=0)
    return Motion(motion.skeleton, q, motion.root_positions @ Q.T + t, motion.fps)


def scale_motion(motion: Motion, factor: float) -> Motion:
    """Lengths multiplied by ``factor`` (e.g. 100 for metres → centimetres)."""
    sk = motion.skeleton
    return Motion(Skeleton(sk.joint_names, sk.parents, sk.offsets * factor), motion.rotations,
                  motion.root_positions * factor, motion.fps)


def motion_from_world(skeleton: Skeleton, world_rotations: np.ndarray, root_positions: np.ndarray,
                      fps: float) -> Motion:
    """The exact inverse of :meth:`Motion.fk`: local rotations from world rotations (F, J, 3, 3).

    Local rotation of joint j = Rw[parent]ᵀ Rw[j]; quaternions are made sign-continuous in time."""
    Rw = np.asarray(world_rotations, float)
    J = len(skeleton.joint_names)
    if Rw.ndim != 4 or Rw.shape[1:] != (J, 3, 3):
        raise ValueError(f"motion_from_world: expected world rotations (frames, {J}, 3, 3), got {Rw.shape}")
    local = Rw.copy()
    par = skeleton.parents
    local[:, 1:] = np.swapaxes(Rw[:, par[1:]], -1, -2) @ Rw[:, 1:]
    q = quat_continuous(matrix_to_quat(local), axis=0)
    return Motion(skeleton, q, root_positions, fps)


def _fitted(motion: Motion) -> np.ndarray:
    """(T,) the frames with a pose: every rotation and the root finite."""
    return np.isfinite(motion.rotations).all(axis=(1, 2)) & np.isfinite(motion.root_positions).all(axis=1)


def gap_counts(motion: Motion) -> tuple[int, int, int]:
    """The frames :func:`fill_gaps` fills: (between two fitted frames: interpolated, before the first fitted frame,
    after the last one: both held at that frame's pose, or left empty with ``ends`` False, :func:`absent_frames`)."""
    good = _fitted(motion)
    idx = np.flatnonzero(good)
    if not idx.size:
        return 0, 0, 0
    inner = int((~good[idx[0]: idx[-1] + 1]).sum())
    return inner, int(idx[0]), int(len(good) - 1 - idx[-1])


def absent_frames(motion: Motion) -> np.ndarray:
    """(T,) bool: the frames before the first fitted frame and after the last one (a person not yet in the
    take, or gone; one who was never fitted: every frame)."""
    good = _fitted(motion)
    idx = np.flatnonzero(good)
    out = np.ones(len(good), bool)
    if idx.size:
        out[idx[0]: idx[-1] + 1] = False
    return out


def fill_gaps(motion: Motion, ends: bool = True) -> tuple[Motion, int]:
    """Frames with NaN (gaps) filled: rotations by slerp and root by linear interpolation between the
    nearest valid frames, held at the ends (``ends`` False: the frames before the first fitted one and after
    the last, :func:`absent_frames`, are left NaN). Returns the motion and how many frames were filled."""
    good = _fitted(motion)
    bad = ~good if ends else ~good & ~absent_frames(motion)
    if not bad.any():
        return motion, 0
    if not good.any():
        raise ValueError("motion has no valid frame to fill gaps from")
    a, b, t = gap_brackets(good)
    a, b, t = a[bad], b[bad], t[bad][:, None]
    qa, qb = motion.rotations[a], motion.rotations[b]
    qb = np.where(np.sum(qa * qb, axis=-1, keepdims=True) < 0, -qb, qb)
    mix = (1 - t[..., None]) * qa + t[..., None] * qb  # nlerp: close to slerp for the short gaps a fit leaves
    q = motion.rotations.copy()
    root = motion.root_positions.copy()
    q[bad] = mix / np.linalg.norm(mix, axis=-1, keepdims=True)
    root[bad] = (1 - t) * root[a] + t * root[b]
    return Motion(motion.skeleton, q, root, motion.fps), int(bad.sum())
