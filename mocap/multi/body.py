"""The torso of a skeleton: what tells people apart when their limbs move fast.

A kick or an arm swing moves a foot or a hand tens of centimetres between two frames, far more than the
body does; a prediction of the whole skeleton then misses the limbs, and a cost over every joint puts a
fast-moving person outside its own gate. The shoulders and hips move with the body: the tracker's cost
weighs them as much as all the other joints together (:func:`body_cost`), and one person is told from
two by where their torsos are (:func:`torso_centre`).
"""

from __future__ import annotations

import warnings

import numpy as np

from mocap.multi.rays import truncated_mean

TORSO_NAMES = ("shoulder", "hip", "neck")  # left_/right_shoulder, left_/right_hip; Halpe's neck and hip


def torso_mask(keypoint_set: str, n_joints: int) -> np.ndarray:
    """(J,) the torso joints of a keypoint set (shoulders, hips, neck); none where the set is unknown or
    names fewer than two of them (the cost is then the plain one over every joint)."""
    from mocap.keypoint_sets import get_keypoint_set

    try:
        names = get_keypoint_set(keypoint_set).joints
    except (ValueError, OSError):
        return np.zeros(n_joints, bool)
    mask = np.array([any(t in n for t in TORSO_NAMES) and "hand" not in n for n in names[:n_joints]]
                    + [False] * max(0, n_joints - len(names)))
    return mask if mask.sum() >= 2 else np.zeros(n_joints, bool)


def body_cost(dist: np.ndarray, cap: np.ndarray | float, torso: np.ndarray, min_joints: int) -> np.ndarray:
    """Cost of detections against predicted people from the distances (..., J) of their keypoints' rays to
    the predicted joints: the mean capped distance over every joint, averaged with the same over the torso
    joints where at least two of them are seen (a fast limb costs at most half as much; a detection of
    another person still costs about the cap, its torso being as far as its limbs)."""
    full = truncated_mean(dist, cap, min_joints)
    if not torso.any():
        return full
    core = truncated_mean(dist[..., torso], cap, 2)
    return np.where(np.isfinite(core) & np.isfinite(full), 0.5 * (full + core), full)


def torso_centre(X: np.ndarray, torso: np.ndarray) -> np.ndarray:
    """(..., J, 3) skeletons → (..., 3): the mean of the torso joints seen, else the median joint."""
    ok = np.isfinite(X[..., 0])
    if torso.any():
        t = ok & torso
        n = t.sum(axis=-1)
        mean = np.where(t[..., None], X, 0.0).sum(axis=-2) / np.maximum(n, 1)[..., None]
    else:
        n = np.zeros(ok.shape[:-1], int)
        mean = np.zeros(X.shape[:-2] + (3,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a skeleton with no joint: NaN
        med = np.nanmedian(np.where(ok[..., None], X, np.nan), axis=-2)
    return np.where((n >= 2)[..., None], mean, med)
