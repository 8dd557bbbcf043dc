"""Triangulate's checks of what it made: the hands seen and triangulated, and a take with no 3D point at all."""

from __future__ import annotations

import logging

import numpy as np

from mocap.geometry.triangulation import observation_weights
from mocap.keypoint_sets import get_keypoint_set, hand_joints
from mocap.types import Keypoints2D, Points3D, Rig

log = logging.getLogger(__name__)


def check_hands(kp: Keypoints2D, points: Points3D, min_score: float) -> dict | None:
    """For a keypoint set with hands: each camera's share of frames with a usable hand keypoint, and the
    share of frames with a triangulated hand (``info["hands"]``); one warning when no view saw a hand in
    the whole take (the body is unaffected; fingers are then left to the fit's rest pose)."""
    hands = hand_joints(get_keypoint_set(kp.keypoint_set))
    if not hands.any():
        return None
    seen = observation_weights(kp, min_score)[..., hands] > 0  # (F, C, P, H)
    per_camera = {c: float(seen[:, i].any(axis=(1, 2)).mean()) for i, c in enumerate(kp.camera_names)}
    triangulated = float(np.isfinite(points.xyz[:, :, hands, 0]).any(axis=(1, 2)).mean())
    points.info["hands"] = {"frames_with_hands": per_camera, "triangulated": triangulated}
    if not seen.any():
        log.warning("hands: no hand keypoint in any view for the whole take (cameras %s); the hand points are "
                    "left empty, the body is unaffected", list(kp.camera_names))
    return points.info["hands"]


def check_reconstructed(rig: Rig, kp: Keypoints2D, points: Points3D, min_score: float, min_views: int) -> None:
    """No 3D point in the whole take: an error with what tells why (each camera's keypoints at ``min_score`` or
    more, the highest score): it passed as "0.0 % reconstructed", and the fit, two stages on, said "nothing to
    fit" naming neither."""
    if np.isfinite(points.xyz).any():
        return
    score = kp.data[..., 2]
    seen = (np.isfinite(score) & (score >= min_score)).sum(axis=(0, 2, 3))
    top = float(np.nanmax(score)) if np.isfinite(score).any() else float("nan")
    raise ValueError(f"triangulate: no 3D point in {kp.shape[0]} frames: keypoints at triangulate.min_score = "
                     f"{min_score:g} or more per camera {dict(zip(rig.names, seen.tolist(), strict=True))} (highest "
                     f"score {top:.3g}), min_views = {min_views}: a detector scoring lower (lower min_score), "
                     "cameras not seeing the person together, or the rig of other cameras?")
