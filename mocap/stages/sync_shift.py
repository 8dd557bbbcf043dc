"""A camera's detections read between two frames (a sub-frame sync offset) without blending left into right.

Linear interpolation of every keypoint on its own turns a left/right swap that starts or ends between the two
frames into keypoints halfway between the left and the right joint: neither the view as detected nor its mirror,
so the swap repair after sync can no longer fix them. On the real demo, one video started 10 frames late and
found at -9.5 frames, the camera's reprojection P95 went 45 → 186 px over the frames where its detector swapped
sides. Here a body side (head, arms, legs: :func:`~mocap.geometry.swaps.swap_groups`) whose next frame is
clearly its mirror (its keypoints nearer the other side's in the first frame) is interpolated in the labels of
the nearer frame: the far frame's side is mirrored first. The swap repair then sees a plain view, swapped or not.
"""

from __future__ import annotations

import numpy as np

from mocap.geometry.swaps import swap_groups
from mocap.keypoint_sets import get_keypoint_set
from mocap.stages.sync_search import shift_tracks

MIRROR_RATIO = 0.5  # a side is the other frame's mirror when its keypoints are this much nearer mirrored


def shift_views(data: np.ndarray, offset: float, keypoint_set: str) -> np.ndarray:
    """One camera's detections (F, P, J, 3) read at t + ``offset`` frames (NaN outside the take), like
    :func:`~mocap.stages.sync_search.shift_tracks` but with each body side of the frame farther from t + offset
    mirrored where it is the nearer frame's mirror (see the module's docstring)."""
    whole = np.floor(offset)
    w = float(offset - whole)
    groups = _mirror_groups(keypoint_set, data.shape[-2])
    if w < 1e-9 or w > 1 - 1e-9 or not groups:
        return shift_tracks(data, offset)
    a = shift_tracks(data, whole)  # the frame before t + offset, then the one after
    b = shift_tracks(data, whole + 1)
    near, far = (a, b) if w < 0.5 else (b, a)
    far = far.copy()
    for left, right in groups:
        xy_n, xy_f = near[..., :2], far[..., :2]
        same = _spread(xy_n[..., left, :], xy_f[..., left, :]) + _spread(xy_n[..., right, :], xy_f[..., right, :])
        mirror = _spread(xy_n[..., left, :], xy_f[..., right, :]) + _spread(xy_n[..., right, :], xy_f[..., left, :])
        flip = mirror < MIRROR_RATIO * same  # (F, P); NaN (a side unseen in either frame) compares False
        if flip.any():
            sel = np.flatnonzero(flip.ravel())
            flat = far.reshape((-1,) + far.shape[-2:])
            flat[sel[:, None], np.r_[left, right][None]] = flat[sel[:, None], np.r_[right, left][None]]
    a2, b2 = (near, far) if w < 0.5 else (far, near)
    return (1 - w) * a2 + w * b2


def _spread(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Mean distance of keypoints p and q (..., K, 2) over those seen in both; NaN when none is."""
    d = np.linalg.norm(p - q, axis=-1)
    seen = np.isfinite(d)
    n = seen.sum(axis=-1)
    return np.where(n > 0, np.where(seen, d, 0.0).sum(axis=-1) / np.maximum(n, 1), np.nan)


def _mirror_groups(keypoint_set: str, joints: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per body side group, its left and right keypoint indices (each pair's two joints, in order)."""
    try:
        ks = get_keypoint_set(keypoint_set)
    except (ValueError, FileNotFoundError):  # a set not known here: no left/right pairs to keep apart
        return []
    if len(ks.joints) != joints or not ks.pairs:
        return []
    member = swap_groups(ks)[1]
    out = []
    for g in range(member.shape[1]):
        pairs = [(a, b) for a, b in ks.pairs if member[a, g]]
        out.append((np.array([a for a, _ in pairs]), np.array([b for _, b in pairs])))
    return out
