"""Operations on :class:`~mocap.types.Motion`: change of axes and of units."""

from __future__ import annotations

import numpy as np

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


def scale_motion(motion: Motion, factor: float) -> Motion:
    """Lengths multiplied by ``factor`` (e.g. 100 for metres → centimetres)."""
    sk = motion.skeleton
    return Motion(Skeleton(sk.joint_names, sk.parents, sk.offsets * factor), motion.rotations,
                  motion.root_positions * factor, motion.fps)
