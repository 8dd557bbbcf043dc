"""Rotation conversions, batched over leading dimensions.

Quaternions are (w, x, y, z), unit norm. Rotation matrices act on column vectors (``R @ v``).
Euler angles: ``order`` names the axes in the order the matrices are multiplied, so
``euler_to_matrix(a, "ZXY") == Rz(a[0]) @ Rx(a[1]) @ Ry(a[2])`` (intrinsic rotations, as BVH
channel lists are read).
"""

from __future__ import annotations

import numpy as np

from mocap.geometry._checks import check_trailing


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """(..., 4) wxyz → (..., 3, 3). The quaternion is normalised first."""
    q = check_trailing("quaternion", q, (4,))
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        axis=-1,
    ).reshape(q.shape[:-1] + (3, 3))


def matrix_to_quat(R: np.ndarray) -> np.ndarray:
    """(..., 3, 3) → (..., 4) wxyz with w ≥ 0 (numerically stable branch selection)."""
    R = check_trailing("rotation matrix", R, (3, 3))
    m = R.reshape(-1, 3, 3)
    tr = np.trace(m, axis1=1, axis2=2)
    diag = np.stack([tr, m[:, 0, 0], m[:, 1, 1], m[:, 2, 2]], axis=1)
    best = np.argmax(diag, axis=1)
    q = np.empty((m.shape[0], 4))
    for case in range(4):
        s = best == case
        if not s.any():
            continue
        a = m[s]
        if case == 0:
            r = np.sqrt(1.0 + tr[s]) * 2
            q[s] = np.stack([0.25 * r, (a[:, 2, 1] - a[:, 1, 2]) / r,
                             (a[:, 0, 2] - a[:, 2, 0]) / r, (a[:, 1, 0] - a[:, 0, 1]) / r], 1)
        elif case == 1:
            r = np.sqrt(1.0 + a[:, 0, 0] - a[:, 1, 1] - a[:, 2, 2]) * 2
            q[s] = np.stack([(a[:, 2, 1] - a[:, 1, 2]) / r, 0.25 * r,
                             (a[:, 0, 1] + a[:, 1, 0]) / r, (a[:, 0, 2] + a[:, 2, 0]) / r], 1)
        elif case == 2:
            r = np.sqrt(1.0 + a[:, 1, 1] - a[:, 0, 0] - a[:, 2, 2]) * 2
            q[s] = np.stack([(a[:, 0, 2] - a[:, 2, 0]) / r, (a[:, 0, 1] + a[:, 1, 0]) / r,
                             0.25 * r, (a[:, 1, 2] + a[:, 2, 1]) / r], 1)
        else:
            r = np.sqrt(1.0 + a[:, 2, 2] - a[:, 0, 0] - a[:, 1, 1]) * 2
            q[s] = np.stack([(a[:, 1, 0] - a[:, 0, 1]) / r, (a[:, 0, 2] + a[:, 2, 0]) / r,
                             (a[:, 1, 2] + a[:, 2, 1]) / r, 0.25 * r], 1)
    q *= np.where(q[:, :1] < 0, -1.0, 1.0)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return q.reshape(R.shape[:-2] + (4,))


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a ⊗ b of (..., 4) wxyz quaternions (broadcasting)."""
    a = check_trailing("quaternion a", a, (4,))
    b = check_trailing("quaternion b", b, (4,))
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack([
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ], axis=-1)


def quat_conjugate(q: np.ndarray) -> np.ndarray:
    """Inverse of a unit quaternion."""
    q = check_trailing("quaternion", q, (4,))
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def quat_continuous(q: np.ndarray, axis: int = 0) -> np.ndarray:
    """Flip signs along ``axis`` (time) so consecutive quaternions have a positive dot product.

    Quaternion i is flipped when its dot product with quaternion i − 1, as already flipped, is negative: its
    sign is that of i − 1 times the sign of the two given quaternions' dot product, and + where that product is
    0 or NaN (nothing to follow). So the sign is (−1) to the number of negative products since the last such
    reset: counted with cumulative sums, not a loop over the frames (the same values; 4,500 frames of one joint
    in 1.5 ms instead of 144, which reading a BVH clip paid per joint)."""
    q = check_trailing("quaternion", q, (4,))
    if q.ndim < 2:
        raise ValueError(f"quaternion: expected shape (T, ..., 4) with a time axis, got {q.shape}")
    q = np.moveaxis(q, axis, 0)
    if q.shape[0] < 2:
        return np.moveaxis(q.copy(), 0, axis)
    dot = np.sum(q[1:] * q[:-1], axis=-1)  # (T − 1, ...): the given neighbours'
    neg = np.concatenate([np.zeros((1,) + dot.shape[1:], bool), dot < 0])  # (T, ...)
    reset = np.concatenate([np.ones((1,) + dot.shape[1:], bool), ~(dot < 0) & ~(dot > 0)])
    count = np.cumsum(neg, axis=0)
    index = np.arange(q.shape[0]).reshape((-1,) + (1,) * (dot.ndim - 1))
    last = np.maximum.accumulate(np.where(reset, index, 0), axis=0)  # the last reset at or before each frame
    odd = (count - np.take_along_axis(count, last, axis=0)) % 2 == 1
    return np.moveaxis(np.where(odd[..., None], -q, q), 0, axis)


def skew(v: np.ndarray) -> np.ndarray:
    """(..., 3) → (..., 3, 3) cross-product matrices: ``skew(v) @ u == cross(v, u)``."""
    k = np.zeros(v.shape[:-1] + (3, 3))
    k[..., 0, 1], k[..., 0, 2], k[..., 1, 2] = -v[..., 2], v[..., 1], -v[..., 0]
    return k - np.swapaxes(k, -1, -2)


def axis_angle_to_matrix(v: np.ndarray) -> np.ndarray:
    """Rodrigues: (..., 3) rotation vectors (angle = norm, radians) → (..., 3, 3)."""
    v = check_trailing("axis-angle", v, (3,))
    theta = np.linalg.norm(v, axis=-1)[..., None, None]
    k = skew(v)
    small = theta < 1e-8
    th = np.where(small, 1.0, theta)
    a = np.where(small, 1.0 - theta**2 / 6, np.sin(th) / th)
    b = np.where(small, 0.5 - theta**2 / 24, (1 - np.cos(th)) / th**2)
    return np.eye(3) + a * k + b * (k @ k)


def matrix_to_axis_angle(R: np.ndarray) -> np.ndarray:
    """(..., 3, 3) → (..., 3) rotation vectors, via quaternions (stable near 0 and π)."""
    q = matrix_to_quat(R)
    w = np.clip(q[..., 0], -1.0, 1.0)
    s = np.linalg.norm(q[..., 1:], axis=-1)
    angle = 2 * np.arctan2(s, w)
    scale = np.where(s < 1e-12, 2.0, angle / np.where(s < 1e-12, 1.0, s))
    return q[..., 1:] * scale[..., None]


def _axis_matrix(axis: str, angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    one, zero = np.ones_like(angle), np.zeros_like(angle)
    rows = {
        "X": [one, zero, zero, zero, c, -s, zero, s, c],
        "Y": [c, zero, s, zero, one, zero, -s, zero, c],
        "Z": [c, -s, zero, s, c, zero, zero, zero, one],
    }[axis]
    return np.stack(rows, axis=-1).reshape(angle.shape + (3, 3))


def euler_to_matrix(angles: np.ndarray, order: str) -> np.ndarray:
    """(..., 3) angles in radians, applied as ``R_order[0] @ R_order[1] @ R_order[2]``."""
    angles = check_trailing("euler angles", angles, (3,))
    order = order.upper()
    if sorted(order) != ["X", "Y", "Z"]:
        raise ValueError(f"euler order must be a permutation of XYZ, got {order!r}")
    R = _axis_matrix(order[0], angles[..., 0])
    for i in (1, 2):
        R = R @ _axis_matrix(order[i], angles[..., i])
    return R


def matrix_to_euler(R: np.ndarray, order: str) -> np.ndarray:
    """Inverse of :func:`euler_to_matrix` (middle angle in [-π/2, π/2])."""
    R = check_trailing("rotation matrix", R, (3, 3))
    order = order.upper()
    if sorted(order) != ["X", "Y", "Z"]:
        raise ValueError(f"euler order must be a permutation of XYZ, got {order!r}")
    i, j, k = ("XYZ".index(a) for a in order)
    sign = 1.0 if (j - i) % 3 == 1 else -1.0
    mid = np.arcsin(np.clip(sign * R[..., i, k], -1.0, 1.0))
    first = np.arctan2(-sign * R[..., j, k], R[..., k, k])
    last = np.arctan2(-sign * R[..., i, j], R[..., i, i])
    gimbal = np.abs(np.cos(mid)) < 1e-9
    if np.any(gimbal):
        first = np.where(gimbal, np.arctan2(sign * R[..., k, j], R[..., j, j]), first)
        last = np.where(gimbal, 0.0, last)
    return np.stack([first, mid, last], axis=-1)


def matrix_to_6d(R: np.ndarray) -> np.ndarray:
    """(..., 3, 3) → (..., 6): the first two columns, stacked (Zhou et al. 2019)."""
    R = check_trailing("rotation matrix", R, (3, 3))
    return np.concatenate([R[..., :, 0], R[..., :, 1]], axis=-1)


def sixd_to_matrix(d6: np.ndarray) -> np.ndarray:
    """(..., 6) → (..., 3, 3) by Gram-Schmidt; the inverse of :func:`matrix_to_6d` on rotations."""
    d6 = check_trailing("6D rotation", d6, (6,))
    a = d6[..., :3] / np.linalg.norm(d6[..., :3], axis=-1, keepdims=True)
    b = d6[..., 3:] - np.sum(a * d6[..., 3:], axis=-1, keepdims=True) * a
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return np.stack([a, b, np.cross(a, b)], axis=-1)


def rotation_between(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(..., 3, 3): the smallest rotation taking direction ``u`` onto direction ``v`` (..., 3)."""
    u = check_trailing("direction", u, (3,))
    v = check_trailing("direction", v, (3,))
    u = u / np.linalg.norm(u, axis=-1, keepdims=True)
    v = v / np.linalg.norm(v, axis=-1, keepdims=True)
    axis = np.cross(u, v)
    s = np.linalg.norm(axis, axis=-1, keepdims=True)
    c = np.sum(u * v, axis=-1, keepdims=True)
    # opposite directions: any axis perpendicular to u
    perp = np.cross(u, np.where(np.abs(u[..., :1]) < 0.9, [1.0, 0, 0], [0, 1.0, 0]))
    perp = perp / np.linalg.norm(perp, axis=-1, keepdims=True)
    axis = np.where(s > 1e-9, axis / np.maximum(s, 1e-12), perp)
    return axis_angle_to_matrix(axis * np.arctan2(s, c))


def geodesic_deg(Ra: np.ndarray, Rb: np.ndarray) -> np.ndarray:
    """Angle (degrees) of the rotation taking ``Rb`` to ``Ra`` (..., 3, 3)."""
    tr = np.einsum("...ij,...ij->...", Ra, Rb)
    return np.degrees(np.arccos(np.clip((tr - 1) / 2, -1.0, 1.0)))


def so3_log_jacobian_inv(phi: np.ndarray) -> np.ndarray:
    """(..., 3) → (..., 3, 3): d log(exp(δ) R) / dδ at δ = 0 for R = exp(phi) (left Jacobian inverse)."""
    theta = np.linalg.norm(phi, axis=-1)[..., None, None]
    k = skew(phi)
    small = theta < 1e-6
    th = np.where(small, 1.0, theta)
    c = np.where(small, 1.0 / 12, (1.0 / th**2) - (1 + np.cos(th)) / (2 * th * np.sin(np.minimum(th, np.pi - 1e-6))))
    return np.eye(3) - 0.5 * k + c * (k @ k)
