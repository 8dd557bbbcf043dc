"""One person's skeleton from the detections the tracker gave it (:mod:`mocap.multi.track`): rays triangulated,
views that disagree dropped, keypoints nearer another person left out.

:func:`solve_person` solves one person; :func:`solve_people` solves every person of a frame at once where the
first solution holds (at least two views left, all agreeing: nearly every person in nearly every frame), as
batched arrays (one set of numpy calls per frame, not per person: the per-call overhead was half the
association's time), and falls back to :func:`solve_person` for the others. Both give the same values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from mocap.multi.merged import own_rays
from mocap.multi.rays import point_ray_distance, robust_median, triangulate_rays
from mocap.multi.tracklets import centre

if TYPE_CHECKING:
    from mocap.multi.track import Tracker

BODY_REACH_M = 1.3  # no joint of a person is farther than this from the middle of its body (its median joint)


class Job(NamedTuple):
    """One person's detections in a frame (one per view: ``views``, ``slots``) and what :func:`solve_person`
    takes with them; ``me``: the person's row in the frame's predictions (-1: none)."""

    views: list[int]
    slots: list[int]
    prior: np.ndarray  # (J, 3) the person's prediction
    costs: list[float]
    me: int
    near: float
    stale: np.ndarray  # (J,) bool


def solve_person(tr: Tracker, views: list[int], slots: list[int], f: int, prior: np.ndarray | None,
                 costs: list[float] | None = None, others: np.ndarray | None = None,
                 near: float = 0.0, stale: np.ndarray | None = None) -> tuple[np.ndarray, list[int], dict]:
    """Triangulate one person from its detections (rays); the view that disagrees most with the rest
    is dropped until all agree (of two that disagree, the one farther from the prediction ``prior``;
    without one, neither). Joints seen by fewer than two views: the prediction, moved onto the ray of
    a single view. With ``others`` (the other people's predicted skeletons), keypoints nearer one of
    them are left out (:func:`~mocap.multi.merged.own_rays`); a detection left with fewer than
    ``min_joints`` keypoints is mostly the other body's (a weak view). Returns (J, 3), the views kept and
    per view (J,) which of its usable keypoints are this person's (all of them without ``others``)."""
    cfg = tr.cfg
    R = tr.rays[f, views, slots]  # (V, J, 3)
    O = tr.origins[views]
    weak: list[int] = []
    if prior is not None and others is not None:
        # a joint carried over for long (``stale`` (J,)) is no reference (a wrong one lost every later ray)
        R = own_rays(R, O, prior if stale is None else np.where(stale[:, None], np.nan, prior), others, near)
    mine = np.isfinite(R[..., 0])  # (V, J)
    n_own = mine.sum(axis=1)
    if prior is not None and others is not None:
        weak = [k for k in range(len(views)) if n_own[k] < cfg.min_joints]
    costs = costs if costs is not None else [0.0] * len(views)
    keep = [k for k in range(len(views)) if k not in weak]
    X = np.full((tr.J, 3), np.nan)
    while len(keep) >= 2:
        X = triangulate_rays(O[keep][None], np.moveaxis(R[keep], 0, 1), np.ones((tr.J, len(keep))))
        dist = point_ray_distance(X[None], O[keep][:, None], R[keep])  # (V', J)
        med = robust_median(dist, cfg.min_joints)
        if np.all(med <= cfg.match_max_m):
            X = robust_joints(O[keep], R[keep], dist, X, cfg.match_max_m)
            break
        if len(keep) == 2:
            keep = [min(keep, key=lambda k: costs[k])] if prior is not None else []
            X = np.full((tr.J, 3), np.nan)
            break
        keep.pop(int(np.argmax(np.where(np.isfinite(med), med, np.inf))))
    body = centre(prior if prior is not None and np.isfinite(prior).any() else X)
    X[np.linalg.norm(X - body, axis=-1) > BODY_REACH_M] = np.nan  # two rays met far off: an outlying keypoint
    if prior is not None:
        if len(keep) == 1:
            r, o = R[keep[0]], O[keep[0]]
            t = np.sum((prior - o) * r, axis=-1, keepdims=True)
            X = np.where(np.isfinite(X), X, o + t * r)
            # an outlying keypoint's ray, metres from the body: not this joint's prediction from now on
            X[np.linalg.norm(X - body, axis=-1) > BODY_REACH_M] = np.nan
        X = np.where(np.isfinite(X), X, prior)
    return X, [views[k] for k in keep], dict(zip(views, mine, strict=True))


def robust_joints(O: np.ndarray, R: np.ndarray, dist: np.ndarray, X0: np.ndarray, thr: float) -> np.ndarray:
    """Per joint: rays farther than ``thr`` from the first solution ``X0`` (J, 3) are left out (an outlying
    keypoint); a joint whose remaining rays still disagree is unknown (NaN). O (..., V, 3), R and dist
    (..., V, J, [3]) (the batch in front: several people at once; dist NaN for a view not used)."""
    if not np.any(dist > thr):
        return X0  # no ray to leave out: the same solution
    w = np.swapaxes(np.where(dist <= thr, 1.0, 0.0), -1, -2)  # (..., J, V)
    X = triangulate_rays(O[..., None, :, :], np.swapaxes(R, -2, -3), w)
    d = point_ray_distance(X[..., None, :, :], O[..., :, None, :], R)  # (..., V, J)
    X[np.any((np.swapaxes(w, -1, -2) > 0) & ~(d <= thr), axis=-2)] = np.nan
    return X


def solve_people(tr: Tracker, f: int, jobs: list[Job], preds: np.ndarray | None) -> list[tuple | None]:
    """:func:`solve_person` of every job of frame f where its first solution holds, computed together; None
    for the others (the caller solves them one by one). ``preds`` (U, J, 3): the people's predictions with
    stale joints unknown; a job's ``others`` are every row but its ``me``."""
    out: list[tuple | None] = [None] * len(jobs)
    idx = [k for k, j in enumerate(jobs) if len(j.views) >= 2]
    if not idx:
        return out
    cfg, J = tr.cfg, tr.J
    T, V = len(idx), max(len(jobs[k].views) for k in idx)
    vi, si = np.zeros((T, V), np.intp), np.zeros((T, V), np.intp)
    real = np.zeros((T, V), bool)
    for i, k in enumerate(idx):
        n = len(jobs[k].views)
        vi[i, :n], si[i, :n], real[i, :n] = jobs[k].views, jobs[k].slots, True
    R = np.where(real[..., None, None], tr.rays[f][vi, si], np.nan)  # (T, V, J, 3); padding: no ray
    O = np.where(real[..., None], tr.origins[vi], 0.0)  # (T, V, 3)
    prior = np.stack([jobs[k].prior for k in idx])  # (T, J, 3)
    U = 0 if preds is None else len(preds)
    me = np.array([jobs[k].me for k in idx])
    has_others = (U - (me >= 0)) > 0  # (T,)
    if has_others.any():  # each one's others: every prediction but its own (a row of NaN)
        ref = np.where(np.stack([jobs[k].stale for k in idx])[..., None], np.nan, prior)
        others = np.where((np.arange(U) == me[:, None])[..., None, None], np.nan, preds[None])  # (T, U, J, 3)
        R = own_rays(R, O, ref, others, np.array([jobs[k].near for k in idx]))
    mine = np.isfinite(R[..., 0])  # (T, V, J)
    keep = real & ~(has_others[:, None] & (mine.sum(axis=-1) < cfg.min_joints))
    w = np.broadcast_to(keep[:, None, :], (T, J, V)).astype(float)
    X = triangulate_rays(O[:, None], np.swapaxes(R, 1, 2), w)  # (T, J, 3)
    dist = np.where(keep[..., None], point_ray_distance(X[:, None], O[:, :, None], R), np.nan)  # (T, V, J)
    med = robust_median(dist, cfg.min_joints)  # (T, V)
    good = (keep.sum(axis=1) >= 2) & np.all(~keep | (med <= cfg.match_max_m), axis=1)
    if not good.any():
        return out
    X = np.where(np.any(dist > cfg.match_max_m, axis=(1, 2))[:, None, None],
                 robust_joints(O, R, dist, X.copy(), cfg.match_max_m), X)
    ok = np.isfinite(prior[..., 0])
    n = ok.sum(axis=1)
    body = np.add.reduce(np.where(ok[..., None], prior, 0.0), 1) / np.maximum(n, 1)[:, None]  # (T, 3) centre()
    for i, k in enumerate(idx):
        if not good[i]:
            continue
        Xi = X[i]
        b = body[i] if n[i] else centre(Xi)
        Xi[np.linalg.norm(Xi - b, axis=-1) > BODY_REACH_M] = np.nan
        views = jobs[k].views
        kept = [v for v, kp in zip(views, keep[i], strict=False) if kp]
        own = dict(zip(views, mine[i, :len(views)], strict=True))
        out[k] = (np.where(np.isfinite(Xi), Xi, jobs[k].prior), kept, own)
    return out
