"""Where the detect stage's second pass (:mod:`mocap.detect.recover`) expects each tracked person, and how sure it is:
triangulated where seen by two views, moving linearly between such frames, its uncertainty growing with the time
since."""

from __future__ import annotations

import numpy as np

from mocap.types import Keypoints2D, Rig


def predict_people(rig: Rig, kp: Keypoints2D, slots: np.ndarray, min_score: float, min_joints: int,
                   gate_m: float, speed: float, coast_frames: int,
                   max_reproj_px: float | None = None, masks: list | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every tracked person's skeleton in every frame and its uncertainty.

    ``slots`` (F, C, P) from :func:`mocap.multi.track.associate_take`. Returns X (F, P, J, 3): triangulated
    from the person's detections where it has ``min_joints`` joints, else the linear motion between the nearest
    such frames (held past the ends), NaN farther than ``coast_frames`` from one; and radius (F, P) in
    metres: ``gate_m`` (the tracker's acceptance radius) plus ``speed`` (m/frame) times the frames since the
    nearest triangulated one (inf where NaN)."""
    from mocap.geometry.triangulation import observation_weights, triangulate
    from mocap.multi.slots import apply_slots

    own = apply_slots(kp, slots, masks)  # ``masks``: the association's keypoint_masks (another body's keypoints)
    F, C, P, J = own.shape
    uv = np.moveaxis(own.xy, 1, 3).reshape(-1, C, 2)
    w = np.moveaxis(observation_weights(own, min_score), 1, 3).reshape(-1, C)
    X = triangulate(rig, uv, w, min_views=2, max_reproj_px=max_reproj_px)[0].reshape(F, P, J, 3)
    fixed = np.isfinite(X[..., 0]).sum(axis=-1) >= min_joints  # (F, P)
    out = np.full_like(X, np.nan)
    radius = np.full((F, P), np.inf)
    frames = np.arange(F)
    for p in range(P):
        known = np.flatnonzero(fixed[:, p])
        if not len(known):
            continue
        k = np.searchsorted(known, frames)  # the first fix at or after each frame
        lo, hi = known[np.maximum(k - 1, 0)], known[np.minimum(k, len(known) - 1)]  # past the ends: held
        t = np.where(hi > lo, (frames - lo) / np.maximum(hi - lo, 1), 0.0)[:, None, None]
        a, b = X[lo, p], X[hi, p]
        Xp = np.where(np.isfinite(a) & np.isfinite(b), (1 - t) * a + t * b, np.where(np.isfinite(a), a, b))
        age = np.minimum(np.abs(frames - lo), np.abs(frames - hi))
        age = np.where(fixed[:, p], 0, age)
        Xp[fixed[:, p]] = X[fixed[:, p], p]
        near = age <= coast_frames
        out[near, p] = Xp[near]
        radius[near, p] = gate_m + speed * age[near]
    return out, radius
