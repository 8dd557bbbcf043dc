"""Camera projection, lens distortion and its exact inverse, with analytic Jacobians.

Models:

* ``pinhole``: OpenCV Brown-Conrady, ``dist = (k1, k2, p1, p2, k3)``;
* ``fisheye``: OpenCV Kannala-Brandt equidistant, ``dist = (k1, k2, k3, k4)``.

Normalised coordinates are ``(x/z, y/z)`` in the camera frame before distortion. Pixels follow
``u = K @ [x_d, y_d, 1]``, with the centre of the top-left pixel at (0, 0).

The functions take any object with the attributes of :class:`CameraModel` (:class:`mocap.types.Camera`
has them); this module does not import :mod:`mocap.types`, which imports it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Protocol

import numpy as np

from mocap.geometry._checks import check_trailing

DIST_SIZES = {"pinhole": 5, "fisheye": 4}


class CameraModel(Protocol):
    """What projection needs of a camera: K (3, 3), dist, cam_from_world (4, 4), model."""

    K: np.ndarray
    dist: np.ndarray
    cam_from_world: np.ndarray
    model: str


def fold_r2(dist: np.ndarray, model: str) -> float:
    """Squared normalised radius (x² + y², x = X/z) where the lens model folds back: where the radial map's
    derivative, d(r·(1 + k1 r² + k2 r⁴ + k3 r⁶))/dr for ``pinhole`` (d(θ_d)/dθ for ``fisheye``, θ = atan r),
    first reaches zero; ``inf`` where it never does. Beyond it the polynomial maps points *back towards the
    image centre* (a wide lens' k1 < 0 calibration: a point 80° off axis lands inside the image, on points
    that are there), so :func:`project` gives NaN there: no camera images a point past its model's fold."""
    return _fold_r2(model, tuple(float(v) for v in np.asarray(dist, dtype=float).ravel()))


@lru_cache(maxsize=256)
def _fold_r2(model: str, dist: tuple[float, ...]) -> float:
    if model == "pinhole":  # 1 + 3 k1 s + 5 k2 s² + 7 k3 s³ in s = r²
        coefficients = (1.0, 3 * dist[0], 5 * dist[1], 7 * dist[4])
    elif model == "fisheye":  # 1 + 3 k1 t + 5 k2 t² + 7 k3 t³ + 9 k4 t⁴ in t = θ²
        coefficients = (1.0, 3 * dist[0], 5 * dist[1], 7 * dist[2], 9 * dist[3])
    else:
        raise ValueError(f"unknown camera model {model!r}: expected one of {sorted(DIST_SIZES)}")
    roots = np.polynomial.polynomial.polyroots(coefficients) if any(coefficients[1:]) else np.empty(0)
    real = roots.real[(np.abs(roots.imag) <= 1e-9 * np.maximum(1.0, np.abs(roots.real))) & (roots.real > 0)]
    if not real.size:
        return float("inf")
    first = float(real.min())
    if model == "fisheye":  # θ² → r² = tan²θ; a fold at or past 90° is behind the camera already
        return float(np.tan(np.sqrt(first)) ** 2) if first < (np.pi / 2) ** 2 else float("inf")
    return first


def distort(xy: np.ndarray, dist: np.ndarray, model: str,
            jacobian: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Distort normalised points (..., 2). Returns distorted points and their Jacobian (..., 2, 2)
    (None with ``jacobian=False``)."""
    xy = check_trailing("normalised points", xy, (2,))
    x, y = xy[..., 0], xy[..., 1]
    if model == "pinhole" and not jacobian:
        k1, k2, p1, p2, k3 = dist
        r2 = x * x + y * y
        radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
        xy2 = 2 * x * y
        return np.stack([x * radial + p1 * xy2 + p2 * (r2 + 2 * x * x),
                         y * radial + p1 * (r2 + 2 * y * y) + p2 * xy2], axis=-1), None
    J = np.empty(xy.shape + (2,))
    if model == "pinhole":
        k1, k2, p1, p2, k3 = dist
        r2 = x * x + y * y
        radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
        dr = k1 + r2 * (2 * k2 + 3 * k3 * r2)
        xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
        yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
        cross = 2 * x * y * dr + 2 * p1 * x + 2 * p2 * y
        J[..., 0, 0] = radial + 2 * x * x * dr + 2 * p1 * y + 6 * p2 * x
        J[..., 0, 1] = cross
        J[..., 1, 0] = cross
        J[..., 1, 1] = radial + 2 * y * y * dr + 6 * p1 * y + 2 * p2 * x
    elif model == "fisheye":
        k1, k2, k3, k4 = dist
        r = np.sqrt(x * x + y * y)
        th = np.arctan(r)
        t2 = th * th
        thd = th * (1 + t2 * (k1 + t2 * (k2 + t2 * (k3 + t2 * k4))))
        dthd = 1 + t2 * (3 * k1 + t2 * (5 * k2 + t2 * (7 * k3 + t2 * 9 * k4)))
        small = r < 1e-4  # series s = 1 + (k1 - 1/3) r^2 + O(r^4) avoids cancellation near the centre
        rs = np.where(small, 1.0, r)
        s = np.where(small, 1 + (k1 - 1 / 3) * r * r, thd / rs)
        dsr = np.where(small, 2 * (k1 - 1 / 3), (dthd * rs / (1 + rs * rs) - thd) / rs**3)
        xd, yd = s * x, s * y
        J[..., 0, 0] = s + dsr * x * x
        J[..., 0, 1] = dsr * x * y
        J[..., 1, 0] = dsr * x * y
        J[..., 1, 1] = s + dsr * y * y
    else:
        raise ValueError(f"unknown camera model {model!r}: expected one of {sorted(DIST_SIZES)}")
    return np.stack([xd, yd], axis=-1), (J if jacobian else None)


def undistort(xy_d: np.ndarray, dist: np.ndarray, model: str, iterations: int = 30) -> np.ndarray:
    """Exact inverse of :func:`distort` by Newton's method (..., 2) → (..., 2)."""
    xy_d = check_trailing("distorted points", xy_d, (2,))
    if not np.any(dist):
        return xy_d.copy()
    if model == "pinhole":
        flat = xy_d.reshape(-1, 2)
        seen = np.isfinite(flat).all(axis=1)
        if seen.all():
            return _undistort_brown(xy_d, dist, iterations)
        out = np.full(flat.shape, np.nan)  # missing detections (NaN: often half a multi-person take's slots) skipped:
        out[seen] = _undistort_brown(flat[seen], dist, iterations)  # each point its own Newton steps, the same stop
        return out.reshape(xy_d.shape)
    xy = xy_d.copy()
    for _ in range(iterations):
        d, J = distort(xy, dist, model)
        r = d - xy_d
        det = J[..., 0, 0] * J[..., 1, 1] - J[..., 0, 1] * J[..., 1, 0]
        step = np.stack([J[..., 1, 1] * r[..., 0] - J[..., 0, 1] * r[..., 1],
                         J[..., 0, 0] * r[..., 1] - J[..., 1, 0] * r[..., 0]], axis=-1) / det[..., None]
        xy = xy - step
        if np.nanmax(np.abs(step), initial=0.0) < 1e-14:
            break
    return xy


def _undistort_brown(xy_d: np.ndarray, dist: np.ndarray, iterations: int) -> np.ndarray:
    """:func:`undistort`'s Newton iteration for the Brown-Conrady model on flat coordinate arrays."""
    x0, y0 = xy_d[..., 0].ravel(), xy_d[..., 1].ravel()
    x, y = x0.copy(), y0.copy()
    for _ in range(iterations):
        xd, yd, d00, cross, d11 = _brown(x, y, dist, True)
        rx, ry = xd - x0, yd - y0
        det = d00 * d11 - cross * cross
        sx, sy = (d11 * rx - cross * ry) / det, (d00 * ry - cross * rx) / det
        x -= sx
        y -= sy
        if max(np.nanmax(np.abs(sx), initial=0.0), np.nanmax(np.abs(sy), initial=0.0)) < 1e-14:
            break
    return np.stack([x, y], axis=-1).reshape(xy_d.shape)


def _brown(x: np.ndarray, y: np.ndarray, dist: np.ndarray, jacobian: bool) -> tuple[np.ndarray, ...]:
    """Brown-Conrady distortion of flat normalised coordinates: (x_d, y_d), and with ``jacobian`` also
    ∂x_d/∂x, ∂x_d/∂y (= ∂y_d/∂x) and ∂y_d/∂y; :func:`distort`'s formulas on one array per coordinate."""
    k1, k2, p1, p2, k3 = (float(v) for v in dist)
    xx, yy, xy = x * x, y * y, x * y
    r2 = xx + yy
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    xd = x * radial + 2 * p1 * xy + p2 * (r2 + 2 * xx)
    yd = y * radial + p1 * (r2 + 2 * yy) + 2 * p2 * xy
    if not jacobian:
        return xd, yd
    dr2 = 2 * (k1 + r2 * (2 * k2 + 3 * k3 * r2))  # 2·d(radial)/d(r²)
    cross = xy * dr2 + 2 * p1 * x + 2 * p2 * y
    return (xd, yd, radial + xx * dr2 + 2 * p1 * y + 6 * p2 * x, cross,
            radial + yy * dr2 + 6 * p1 * y + 2 * p2 * x)


def pixels_to_normalised(cam: CameraModel, uv: np.ndarray) -> np.ndarray:
    """Undistorted normalised coordinates of pixel observations (..., 2)."""
    uv = check_trailing("pixels", uv, (2,))
    Kinv = np.linalg.inv(cam.K)
    xy_d = uv @ Kinv[:2, :2].T + Kinv[:2, 2]
    return undistort(xy_d, cam.dist, cam.model)


def project(cam: CameraModel, X: np.ndarray, jacobian: bool = False):
    """Project world points (..., 3) to pixels (..., 2); NaN where the point is not in front, or past the
    lens model's fold (:func:`fold_r2`: where the distortion polynomial turns back into the image).

    With ``jacobian=True`` also returns d(pixel)/d(X_world), shape (..., 2, 3).
    """
    X = check_trailing("world points", X, (3,))
    R, t = cam.cam_from_world[:3, :3], cam.cam_from_world[:3, 3]
    if cam.model == "pinhole":
        return _project_pinhole(cam, X, jacobian)
    Xc = X @ R.T + t
    z = Xc[..., 2]
    behind = ~(z > 1e-9)
    zs = np.where(behind, np.nan, z)
    xy = Xc[..., :2] / zs[..., None]
    fold = fold_r2(cam.dist, cam.model)
    if fold < np.inf:
        past = np.einsum("...i,...i->...", xy, xy) >= fold
        if past.any():
            zs = np.where(past, np.nan, zs)
            xy = np.where(past[..., None], np.nan, xy)
    xyd, Jd = distort(xy, cam.dist, cam.model, jacobian)
    A = cam.K[:2, :2]
    uv = xyd @ A.T + cam.K[:2, 2]
    if not jacobian:
        return uv
    # d(uv)/dX = A · J_distort · d(x/z, y/z)/dXc · R, written out element-wise (fast for large batches)
    (a00, a01), (a10, a11) = A
    m00 = (a00 * Jd[..., 0, 0] + a01 * Jd[..., 1, 0])[..., None]  # M = A · J_distort, (..., 1) each
    m01 = (a00 * Jd[..., 0, 1] + a01 * Jd[..., 1, 1])[..., None]
    m10 = (a10 * Jd[..., 0, 0] + a11 * Jd[..., 1, 0])[..., None]
    m11 = (a10 * Jd[..., 0, 1] + a11 * Jd[..., 1, 1])[..., None]
    inv_z = (1.0 / zs)[..., None]
    N0 = (R[0] - xy[..., 0:1] * R[2]) * inv_z  # (..., 3): rows of d(x/z, y/z)/dX
    N1 = (R[1] - xy[..., 1:2] * R[2]) * inv_z
    return uv, np.stack([m00 * N0 + m01 * N1, m10 * N0 + m11 * N1], axis=-2)


def project_rows(cam: CameraModel, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`project` with its Jacobian for flat points X (n, 3), coordinate-major: pixels (2, n) and
    d(pixel)/d(X_world) (2, 3, n), each component a contiguous row (for sums over many points, as in the
    normal equations of :mod:`mocap.optim.refine`). The same values as :func:`project`."""
    X = check_trailing("world points", X, (3,))
    if X.ndim != 2:
        raise ValueError(f"project_rows: expected flat points (n, 3), got {X.shape}")
    if cam.model == "pinhole":
        u, v, J = _pinhole(cam, X, True)
        return np.stack([u, v]), J
    uv, J = project(cam, X, jacobian=True)
    return np.ascontiguousarray(uv.T), np.ascontiguousarray(J.transpose(1, 2, 0))


def _project_pinhole(cam: CameraModel, X: np.ndarray, jacobian: bool):
    """:func:`project` for the Brown-Conrady model, from :func:`_pinhole`."""
    shape = X.shape[:-1]
    u, v, J = _pinhole(cam, X.reshape(-1, 3), jacobian)
    uv = np.stack([u, v], axis=-1).reshape(shape + (2,))
    if not jacobian:
        return uv
    return uv, np.ascontiguousarray(J.transpose(2, 0, 1)).reshape(shape + (2, 3))


def _pinhole(cam: CameraModel, Xf: np.ndarray, jacobian: bool):
    """Pixels (u, v) of flat points (n, 3) under the Brown-Conrady model and, with ``jacobian``, the rows of
    d(pixel)/d(X_world) as an array (2, 3, n) ([[∂u/∂X, ∂u/∂Y, ∂u/∂Z], [∂v/∂X, ...]]): one flat array per coordinate,
    no (..., 2, 2) distortion Jacobian or stacked temporaries (the formulas of :func:`distort`, about twice
    as fast as through it)."""
    R, t = cam.cam_from_world[:3, :3], cam.cam_from_world[:3, 3]
    z = Xf @ R[2] + t[2]
    behind = ~(z > 1e-9)
    if behind.any():
        z[behind] = np.nan
    inv_z = 1.0 / z
    x = (Xf @ R[0] + t[0]) * inv_z
    y = (Xf @ R[1] + t[1]) * inv_z
    fold = fold_r2(cam.dist, "pinhole")
    if fold < np.inf:
        past = x * x + y * y >= fold
        if past.any():
            x[past] = y[past] = inv_z[past] = np.nan
    (a00, a01, cx), (a10, a11, cy) = cam.K[:2]
    if not jacobian:
        xd, yd = _brown(x, y, cam.dist, False)
        return a00 * xd + a01 * yd + cx, a10 * xd + a11 * yd + cy, None
    xd, yd, d00, cross, d11 = _brown(x, y, cam.dist, True)
    u = a00 * xd + a01 * yd + cx
    v = a10 * xd + a11 * yd + cy
    d00, cross, d11 = d00 * inv_z, cross * inv_z, d11 * inv_z  # the distortion's Jacobian, over z
    # d(pixel)/dXc = A · J_distort · d(x/z, y/z)/dXc, whose rows are (1, 0, −x)/z and (0, 1, −y)/z; then · R
    Jc = np.empty((2, 3, Xf.shape[0]))
    for row, (ax, ay) in enumerate(((a00, a01), (a10, a11))):
        mx, my = Jc[row, 0], Jc[row, 1]
        np.add(ax * d00, ay * cross, out=mx)
        np.add(ax * cross, ay * d11, out=my)
        np.negative(mx * x + my * y, out=Jc[row, 2])
    RT = np.ascontiguousarray(R.T)
    for row in range(2):  # d(pixel)/dX = d(pixel)/dXc · R, one row at a time (a broadcast matmul is far slower)
        Jc[row] = RT @ Jc[row]
    return u, v, Jc
