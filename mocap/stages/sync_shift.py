"""A camera's detections read between two frames (a sub-frame sync offset) without blending left into right.

Linear interpolation of every keypoint on its own turns a left/right swap that starts or ends between the two
frames into keypoints halfway between the left and the right joint: neither the view as detected nor its mirror,
so the swap repair after sync can no longer fix them. On the real demo, one video started 10 frames late and
found at -9.5 frames, the camera's reprojection P95 went 45 → 186 px over the frames where its detector swapped
sides. Here a body side (head, arms, legs: :func:`~mocap.geometry.swaps.swap_groups`) whose next frame is
clearly its mirror (its keypoints nearer the other side's in the first frame) is interpolated in the labels of
the nearer frame: the far frame's side is mirrored first. The swap repair then sees a plain view, swapped or not.

The same holds for people: a multi-person detector's slots need not hold the same person from one frame to the next
(OpenPose's, or a synthetic take's shuffled slots), and blending slot k of two frames mixed two people's keypoints
into a body that is nobody's (on a 3-person take with a camera 2.5 frames late, that camera kept a quarter of its
detections and a fourth, phantom person appeared). The far frame's detections are first matched to the nearer
frame's, each body to the one it is nearest (:func:`_same_people`); a body with no counterpart within
``MAX_STEP`` of its size in the other frame is not read between the frames (NaN, as a keypoint seen in one frame
only).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from mocap.geometry.swaps import swap_groups
from mocap.keypoint_sets import get_keypoint_set
from mocap.stages.sync_search import shift_tracks

MIRROR_RATIO = 0.5  # a side is the other frame's mirror when its keypoints are this much nearer mirrored
MAX_STEP = 0.25  # a body's keypoints move less than this share of its size (box diagonal) in one frame
MIN_SEEN = 5  # the keypoints a body's box is measured on, at least, for the camera's typical body size
CHUNK = 2048  # frames matched at a time


def shift_views(data: np.ndarray, offset: float, keypoint_set: str) -> np.ndarray:
    """One camera's detections (F, P, J, 3) read at t + ``offset`` frames (NaN outside the take), like
    :func:`~mocap.stages.sync_search.shift_tracks` but with each body side of the frame farther from t + offset
    mirrored where it is the nearer frame's mirror (see the module's docstring)."""
    whole = np.floor(offset)
    w = float(offset - whole)
    if w < 1e-9 or w > 1 - 1e-9:
        return shift_tracks(data, offset)
    a = shift_tracks(data, whole)  # the frame before t + offset, then the one after
    b = shift_tracks(data, whole + 1)
    near, far = (a, b) if w < 0.5 else (b, a)
    far = _same_people(near, far)
    groups = _mirror_groups(keypoint_set, data.shape[-2])
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


def _same_people(near: np.ndarray, far: np.ndarray) -> np.ndarray:
    """``far`` (F, P, J, 3) with its detections reordered to hold, in each slot, the body nearest the one in
    ``near``'s slot (the least total :func:`_spread` over the frame's pairs), NaN where that body is more than
    ``MAX_STEP`` of the near body's size away (its box diagonal, at least half the camera's typical body's: a body
    seen by a few keypoints, a face, is no smaller) or has no counterpart (a copy). One slot (P = 1): ``far`` as
    it is (a single-person detector's slot holds its one person)."""
    F, P = near.shape[:2]
    if P == 1:
        return far
    xy_n, xy_f = near[..., :2], far[..., :2]
    lo, hi = np.nanmin(xy_n, axis=-2, initial=np.inf), np.nanmax(xy_n, axis=-2, initial=-np.inf)  # (F, P, 2)
    with np.errstate(invalid="ignore"):
        size = np.linalg.norm(hi - lo, axis=-1)  # (F, P); inf − inf (nothing seen): NaN
    whole = np.isfinite(xy_n[..., 0]).sum(axis=-1) >= MIN_SEEN
    typical = float(np.nanmedian(size[whole])) if whole.any() else np.nan
    size = np.fmax(size, 0.5 * typical)
    out = far.copy()
    off = ~np.eye(P, dtype=bool)
    for s0 in range(0, F, CHUNK):  # (n, P, P, J, 2) at a time: memory bounded on long takes with many people
        sl = slice(s0, min(F, s0 + CHUNK))
        d = _spread(xy_n[sl, :, None], xy_f[sl, None])  # (n, P, P): near slot i against far slot j
        match = np.broadcast_to(np.arange(P), d.shape[:2]).copy()  # (n, P): the far slot of each near slot
        for f in np.flatnonzero((np.isfinite(d) & off).any(axis=(1, 2))):  # a body may be in another slot
            rows, cols = linear_sum_assignment(np.where(np.isfinite(d[f]), d[f], 1e12))
            match[f, rows] = cols
        step = np.take_along_axis(d, match[..., None], axis=2)[..., 0]  # (n, P)
        part = np.take_along_axis(far[sl], match[..., None, None], axis=1)
        with np.errstate(invalid="ignore"):  # NaN (nothing seen in both): False, the interpolation is NaN anyway
            part[step > MAX_STEP * size[sl]] = np.nan
        out[sl] = part
    return out


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
