"""Two people in one detection: keypoints told apart by where each tracked person is expected.

When one person passes behind another, a view's detection can mix both bodies (one body side each): its
cost is half outliers for both people. :func:`own_rays` leaves out of a person's skeleton the keypoints
whose rays pass nearer another person's predicted joint; :func:`assign_merged` gives such detections
(left over, or shared with the person in front) to the person behind, scored on its own keypoints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mocap.multi.rays import point_ray_distance, truncated_mean

if TYPE_CHECKING:
    from mocap.multi.track import Tracker
    from mocap.multi.tracklets import Track

BIG = 1e6  # an impossible pairing in a Hungarian assignment
RECENT = 30  # frames: a person's usual detection cost (its noise) is the median over this many
NOISE_COSTS = 2.0  # a keypoint's ray within this many usual costs of the person's joint is the person's


def own_rays(R: np.ndarray, O: np.ndarray, prior: np.ndarray, others: np.ndarray | None,
             near: float | np.ndarray = 0.0) -> np.ndarray:
    """Rays (V, J, 3) of one person's detections from origins O (V, 3), NaN where a keypoint's ray passes
    nearer the same joint of another tracked person (``others`` (U, J, 3), predicted) than this one's
    ``prior``: the other body's keypoints in a detection merging two people, a keypoint that jumped to
    the other person. They do not pull this person's skeleton towards the other. A ray within ``near``
    of this person's joint (its usual distance: the noise) is kept wherever the other is. Several people at
    once: a batch in front of every argument (R (..., V, J, 3), O (..., V, 3), prior (..., J, 3), others
    (..., U, J, 3), near (...)); an other person's row of NaN is none."""
    if others is None or not others.shape[-3]:
        return R
    mine = point_ray_distance(prior[..., None, :, :], O[..., :, None, :], R)  # (..., V, J)
    theirs = point_ray_distance(others[..., :, None, :, :], O[..., None, :, None, :], R[..., None, :, :, :])
    nearer = np.any(theirs < mine[..., None, :, :], axis=-3) & ~(mine <= np.asarray(near)[..., None, None])
    return np.where(nearer[..., None], np.nan, R)  # (theirs: (..., U, V, J))


def assign_merged(tr: Tracker, tracks: list[Track], f: int, free: np.ndarray, out: dict) -> set:
    """Views a person has no detection in after the tracker's per-view assignment, each person scored on the
    keypoints nearer to it than to every other person's prediction. A detection merging two people (one's body
    side in the other's detection, the one behind hidden) is half outliers for both, beyond either gate: left
    over, it goes to one of them; already the other's, it is shared (the person hidden behind keeps being
    seen); either only where its keypoints of this person fit as well as this person's usual detections. Each person's
    skeleton then uses only its own keypoints (:func:`own_rays`). Only people located in 3D within
    ``birth_frames`` take part: the keypoints are told apart by where each person is. Returns the shared
    (view, slot) pairs."""
    tracks = [t for t in tracks if t.last3d >= f - tr.cfg.birth_frames]
    shared: set = set()
    if len(tracks) < 2:
        return shared
    Xp = np.stack([t.predict(f) for t in tracks])  # (T, J, 3)
    d = point_ray_distance(Xp[:, None, None], tr.origins[None, :, None, None], tr.rays[f][None])
    d = np.where(np.isfinite(d), d, np.inf)  # (T, C, S, J)
    nearest = np.argmin(d, axis=0)[None] == np.arange(len(tracks))[:, None, None, None]  # (T, C, S, J)
    cap = np.array([tr._gate(t, f) for t in tracks])
    near = np.array([NOISE_COSTS * t.noise(RECENT) for t in tracks])
    d = np.where(nearest & np.isfinite(d), d, np.nan)
    cost = truncated_mean(d, cap[:, None, None, None], tr.cfg.min_joints)  # (T, C, S)
    ok = (cost <= cap[:, None, None] / 2) & (cost <= near[:, None, None])  # its keypoints fit as well as usual
    cost = np.where(ok & tr.usable[f][None], cost, np.inf)
    from scipy.optimize import linear_sum_assignment  # not at the top: see mocap.warm.EARLY

    for c in range(tr.C):
        rows = [r for r, t in enumerate(tracks) if c not in out.get(id(t), {})]
        cc = cost[rows, c]
        if not np.isfinite(cc).any():
            continue
        rr, cols = linear_sum_assignment(np.where(np.isfinite(cc), cc, BIG))
        for r, sl in zip(rr, cols, strict=True):
            if np.isfinite(cc[r, sl]):
                out.setdefault(id(tracks[rows[r]]), {})[c] = (int(sl), float(cc[r, sl]))
                if not free[c, sl]:
                    shared.add((c, int(sl)))
                free[c, sl] = False
    return shared


def check_unchecked(tr: Tracker, tracks: list[Track], slots: np.ndarray, masks: dict) -> int:
    """The views a person got without its keypoints being told from the other people's (a group of detections
    that started a track of its own, then joined this person: :func:`mocap.multi.identity.reanchor`,
    ``reacquire``, tracks joined after tracking): each checked now as :meth:`Tracker._solve` does, against
    the skeletons of that frame (this person's, solved from its views, and every other person's there). The
    keypoints of another body go into ``masks`` ((frame, view, person) → (J,) the person's keypoints).
    Returns how many views were checked."""
    todo = slots >= 0  # (F, C, P): the views not checked while tracking
    for p, t in enumerate(tracks):
        for f, c, sl in t.checked:
            if f < len(slots) and slots[f, c, p] == sl:
                todo[f, c, p] = False
    n = 0
    for f, p in zip(*np.nonzero(todo.any(axis=1)), strict=True):
        t = tracks[p]
        views = np.flatnonzero(todo[f, :, p])
        X = t.skel.get(f)
        others = [o.skel[f] for q, o in enumerate(tracks) if q != p and f in o.skel and (slots[f, :, q] >= 0).any()]
        if X is None or not others:
            continue
        R = tr.rays[f, views, slots[f, views, p]]
        near = NOISE_COSTS * t.noise(RECENT)
        mine = np.isfinite(own_rays(R, tr.origins[views], X, np.stack(others), near)[..., 0])
        n += len(views)
        for k, c in enumerate(views):
            if mine[k].sum() < np.isfinite(R[k, :, 0]).sum():
                key = (int(f), int(c), int(p))
                masks[key] = masks.get(key, np.ones(len(mine[k]), bool)) & mine[k]
    return n
