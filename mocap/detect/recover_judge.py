"""What the second pass (:mod:`mocap.detect.recover`) keeps of a skeleton found in a crop: which one is the person
looked for (:func:`judge`), against the skeletons it must not duplicate (:func:`others_in_view`)."""

from __future__ import annotations

import numpy as np


def median_distance(a: np.ndarray, b: np.ndarray, min_joints: int) -> np.ndarray:
    """Median over joints of the pixel distance between skeletons a (..., J, 2) and b (..., J, 2)
    (broadcast), over the joints both have; inf with fewer than ``min_joints`` in common."""
    from mocap.multi.rays import robust_median

    return robust_median(np.linalg.norm(a - b, axis=-1), min_joints)


def judge(found: np.ndarray, predicted: np.ndarray, gate_px: float, others: np.ndarray, min_score: float,
          min_joints: int, duplicate_px: float) -> tuple[int, str, float]:
    """Which skeleton found in a person box is that person.

    found (N, J, 3) in image pixels (x, y, score); predicted (J, 2): the person's projected joints;
    others (M, J, 2): the detections already in that view and the projections of the other people. Returns
    (index or -1, why: "recovered" | "nothing found" | "outside the gate" | "duplicate", its distance px)."""
    found = np.asarray(found, float).reshape(-1, *predicted.shape[:-1], 3)
    xy = np.where((found[..., 2:] >= min_score) & np.isfinite(found[..., 2:]), found[..., :2], np.nan)
    d_own = median_distance(xy, predicted[None], min_joints)  # (N,)
    if not np.isfinite(d_own).any():
        return -1, "nothing found", float("inf")
    others = np.asarray(others, float).reshape(-1, *predicted.shape[:-1], 2)
    d_other = median_distance(xy[:, None], others[None], min_joints).min(axis=1) if len(others) else \
        np.full(len(xy), np.inf)  # (N,)
    inside = d_own <= gate_px
    if not inside.any():
        return -1, "outside the gate", float(np.min(d_own))
    distinct = inside & (d_other > d_own) & (d_other > duplicate_px)
    if not distinct.any():
        return -1, "duplicate", float(np.min(d_own[inside]))
    best = int(np.argmin(np.where(distinct, d_own, np.inf)))
    return best, "recovered", float(d_own[best])


def others_in_view(kp_view: np.ndarray, predicted_others: np.ndarray, mirror: np.ndarray | None = None) -> np.ndarray:
    """The skeletons a recovered one must not duplicate: the view's detections (S, J, 3) with any keypoint, also
    with their sides exchanged (``mirror``: a swapped detection is the same body, 15-29 px from it, where a
    duplicate is within ~12), and the other people's projected joints (P', J, 2)."""
    dets = kp_view[np.isfinite(kp_view[..., 0]).any(axis=-1), :, :2]
    n = kp_view.shape[1]
    if mirror is not None and len(dets) and (mirror[:n] < n).all():
        dets = np.concatenate([dets, dets[:, mirror[:n]]])
    return np.concatenate([dets, predicted_others.reshape(-1, n, 2)])
