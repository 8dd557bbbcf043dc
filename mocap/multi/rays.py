"""Rays of 2D detections and the distances the association is built on (metres, vectorised)."""

from __future__ import annotations

import numpy as np

from mocap.geometry.camera import pixels_to_normalised
from mocap.types import Keypoints2D, Rig


def detection_rays(rig: Rig, kp: Keypoints2D, min_score: float) -> tuple[np.ndarray, np.ndarray]:
    """World ray directions of every keypoint, (F, C, S, J, 3) unit vectors (NaN where unusable), and
    the camera centres (C, 3)."""
    F, C, S, J = kp.shape
    ok = np.isfinite(kp.score) & (kp.score >= min_score) & np.all(np.isfinite(kp.xy), axis=-1)
    d = np.full((F, C, S, J, 3), np.nan)
    for c, cam in enumerate(rig.cameras):
        xy = pixels_to_normalised(cam, kp.xy[:, c].reshape(-1, 2))
        ray = np.concatenate([xy, np.ones((len(xy), 1))], axis=1) @ cam.R  # camera → world: Rᵀ v
        ray /= np.linalg.norm(ray, axis=1, keepdims=True)
        d[:, c] = ray.reshape(F, S, J, 3)
    d[~ok] = np.nan
    return d, np.stack([cam.center for cam in rig.cameras])


class FrameRays:
    """:func:`detection_rays` computed a block of frames at a time, on demand: ``rays[f, ...]`` indexes like
    the (F, C, S, J, 3) array without holding it (10 detections × 75 keypoints × 8 cameras of a 10-minute take
    would be gigabytes). ``usable``: (F, C, S) detections with at least ``min_joints`` usable keypoints,
    duplicates left out (:func:`duplicates`)."""

    BLOCK = 256
    MAX_BYTES = 256 * 2**20  # blocks kept, the least recently used dropped first (at least two: the current one
    # and the one before it); the walks back and the checks after tracking read earlier blocks again (a 16-camera
    # take of 5 blocks computed 18 with two kept, its association's CPU 9.5 s → 6.8 s with all five)

    def __init__(self, rig: Rig, kp: Keypoints2D, min_score: float, min_joints: int):
        self.rig, self.kp, self.min_score = rig, kp, min_score
        self.origins = np.stack([cam.center for cam in rig.cameras])
        self._cache: dict[int, np.ndarray] = {}
        F = kp.shape[0]
        self.usable = np.concatenate([(np.isfinite(self._block(b)[..., 0]).sum(axis=-1) >= min_joints)
                                      & ~duplicates(kp.data[b: b + self.BLOCK], min_score, min_joints)
                                      for b in range(0, max(F, 1), self.BLOCK)])[:F] if F else \
            np.zeros(kp.shape[:3], bool)

    def _block(self, start: int) -> np.ndarray:
        if start in self._cache:
            self._cache[start] = self._cache.pop(start)  # the most recently used last
            return self._cache[start]
        data = self.kp.data[start: start + self.BLOCK]
        part = Keypoints2D(data, self.kp.camera_names, self.kp.keypoint_set, self.kp.fps)
        block = detection_rays(self.rig, part, self.min_score)[0]
        while len(self._cache) >= 2 and (len(self._cache) + 1) * block.nbytes > self.MAX_BYTES:
            self._cache.pop(next(iter(self._cache)))  # the least recently used
        self._cache[start] = block
        return block

    def __getitem__(self, key):
        f, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        f = int(f)
        start = f - f % self.BLOCK
        return self._block(start)[(f - start,) + rest]


_add = np.add.reduce  # np.sum's arithmetic without its wrapper's cost (these run thousands of times per take)
DUPLICATE_SHARE = 0.05  # two detections of a view this near (share of the body's extent in the image) are one


def duplicates(data: np.ndarray, min_score: float, min_joints: int) -> np.ndarray:
    """(F, C, S) the detections (F, C, S, J, 3) that repeat another of the same view and frame: their keypoints
    in common (at least ``min_joints``) within ``DUPLICATE_SHARE`` of the body's extent of each other (median),
    the detector (or its second pass) finding one person twice. Of two, the one with fewer keypoints (then the
    lower mean score) is the duplicate: it would otherwise compete with the whole detection for the person."""
    F, C, S = data.shape[:3]
    out = np.zeros((F, C, S), bool)
    if S < 2:
        return out
    ok = np.isfinite(data[..., 2]) & (data[..., 2] >= min_score) & np.isfinite(data[..., :2]).all(axis=-1)
    xy = np.where(ok[..., None], data[..., :2], np.nan)
    n = ok.sum(axis=-1)
    with np.errstate(invalid="ignore"):
        lo, hi = np.fmin.reduce(xy, axis=-2), np.fmax.reduce(xy, axis=-2)  # (F, C, S, 2)
    extent = np.max(hi - lo, axis=-1)  # (F, C, S)
    mean_score = np.where(ok, data[..., 2], 0.0).sum(axis=-1) / np.maximum(n, 1)
    for a in range(S):
        for b in range(a + 1, S):
            d = robust_median(np.linalg.norm(xy[:, :, a] - xy[:, :, b], axis=-1), min_joints)  # (F, C)
            same = d <= DUPLICATE_SHARE * np.fmin(extent[:, :, a], extent[:, :, b])
            worse_b = (n[:, :, b] < n[:, :, a]) | ((n[:, :, b] == n[:, :, a])
                                                   & (mean_score[:, :, b] <= mean_score[:, :, a]))
            out[:, :, b] |= same & worse_b
            out[:, :, a] |= same & ~worse_b
    return out


def robust_median(dist: np.ndarray, min_count: int) -> np.ndarray:
    """Median over the last axis ignoring NaN; inf where fewer than ``min_count`` values are finite."""
    finite = np.isfinite(dist)
    n = _add(finite, -1)
    s = np.sort(np.where(finite, dist, np.inf), axis=-1)
    flat, rows = s.reshape(-1, s.shape[-1]), np.arange(n.size)  # the middle values picked by flat index
    lo = flat[rows, np.maximum((n.ravel() - 1) // 2, 0)].reshape(n.shape)
    hi = flat[rows, n.ravel() // 2].reshape(n.shape)  # n ≤ the axis length, so n // 2 is inside it
    out = np.where(n % 2 == 1, lo, 0.5 * (lo + hi))
    return np.where(n >= min_count, out, np.inf)


def _cross_parts(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three components of a × b over the last axis (broadcasting), not stacked."""
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    return a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0


def cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product over the last axis (broadcasting), without :func:`numpy.cross`'s overhead."""
    return np.stack(_cross_parts(a, b), axis=-1)


def point_ray_distance(X: np.ndarray, origin: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Distance of points X (..., 3) to rays (origin (..., 3), unit direction d (..., 3)); broadcasts.
    |(X − origin) × d| from the components, without stacking them (the association calls this thousands of
    times on small arrays: the same values in half the time)."""
    c0, c1, c2 = _cross_parts(X - origin, d)
    return np.sqrt(c0 * c0 + c1 * c1 + c2 * c2)


def ray_ray_distance(o1: np.ndarray, d1: np.ndarray, o2: np.ndarray, d2: np.ndarray) -> np.ndarray:
    """Closest distance between two rays given by origins and unit directions; broadcasts. NaN where either ray
    is (a joint one of the detections does not see). Rays, not lines: where the lines' closest points lie behind a
    camera, the distance between the half-lines (two cameras' detections of different things met 12 m behind both
    as a "person" of a 12-camera take)."""
    n0, n1, n2 = _cross_parts(d1, d2)
    nn = np.sqrt(n0 * n0 + n1 * n1 + n2 * n2)
    w = o2 - o1
    skew = np.abs(w[..., 0] * n0 + w[..., 1] * n1 + w[..., 2] * n2) / np.maximum(nn, 1e-12)
    c0, c1, c2 = _cross_parts(w, d1)
    out = np.where(nn <= 1e-9, np.sqrt(c0 * c0 + c1 * c1 + c2 * c2), skew)  # (NaN compares false: skew's NaN)
    b, e1, e2 = _add(d1 * d2, -1), _add(d1 * w, -1), _add(d2 * w, -1)
    with np.errstate(invalid="ignore"):  # where the lines' closest points are along each ray (times 1 - b²)
        behind = np.where(nn > 1e-9, (e1 - b * e2 < 0) | (b * e1 - e2 < 0), (b < 0) & (e1 < 0))  # parallel: opposite
    if not behind.any():
        return out
    # then (or parallel, pointing away from each other) one ray's origin is the nearest point to the other ray:
    # |w - s d1|² = |w|² - s², s = max(e1, 0), and |w + t d2|² = |w|² - t², t = max(-e2, 0), the smaller of the two
    reach = np.maximum(np.maximum(e1, 0.0), np.maximum(-e2, 0.0))
    near = np.sqrt(np.maximum(_add(w * w, -1) - reach * reach, 0.0))
    return np.where(behind, near, out)


MIN_RAY_ANGLE_DEG = 5.0  # rays closer to parallel than this (opposite cameras, one line) fix no depth
_COS_MIN_RAY_ANGLE = float(np.cos(np.radians(MIN_RAY_ANGLE_DEG)))
_EYE3 = np.eye(3)


def triangulate_rays(origin: np.ndarray, d: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Least-squares point closest to weighted rays: origin (..., V, 3), d (..., V, 3) unit (NaN: not
    used), w (..., V) weights. Returns (..., 3), NaN where fewer than two rays or where the rays are all
    within ``MIN_RAY_ANGLE_DEG`` of one line (two facing cameras: the point could be anywhere along it)."""
    ok = np.isfinite(d[..., 0]) & (w > 0)
    w = np.where(ok, w, 0.0)
    d = np.where(ok[..., None], d, 0.0)
    wd = w[..., None] * d
    # Σ w (I − d dᵀ) X = Σ w (I − d dᵀ) o
    A = _add(w, -1)[..., None, None] * _EYE3 - np.einsum("...vi,...vj->...ij", wd, d)
    b = _add(w[..., None] * origin, -2) - np.einsum("...vi,...v->...i", wd, _add(d * origin, -1))
    n = _add(ok, -1)
    # two rays: |cos θ| = | |d1 + d2|² / 2 - 1 |
    s = _add(d, -2)
    cos = np.abs(_add(s * s, -1) / 2 - 1)
    enough = (n > 2) | ((n == 2) & (cos < _COS_MIN_RAY_ANGLE))
    A = np.where(enough[..., None, None], A, _EYE3)
    try:
        X = np.linalg.solve(A, b[..., None])[..., 0]
    except np.linalg.LinAlgError:  # three rays or more on one line (cameras in a row, one listed twice): no depth
        flat = np.abs(np.linalg.det(A)) <= 1e-12 * np.maximum(_add(w, -1), 1.0) ** 3
        enough &= ~flat
        X = np.linalg.solve(np.where(flat[..., None, None], _EYE3, A), b[..., None])[..., 0]
    return np.where(enough[..., None], X, np.nan)


def truncated_mean(dist: np.ndarray, cap: float, min_count: int) -> np.ndarray:
    """Mean over the last axis of distances capped at ``cap`` (an outlying keypoint costs at most
    ``cap``, yet every joint's evidence counts), ignoring NaN; inf where fewer than ``min_count``."""
    finite = np.isfinite(dist)
    n = finite.sum(axis=-1)
    total = np.where(finite, np.minimum(dist, cap), 0.0).sum(axis=-1)
    return np.where(n >= min_count, total / np.maximum(n, 1), np.inf)
