"""The tracker's per-view assignment (:mod:`mocap.multi.track`): each person's gate, and the detections another
person explains better left to that person.

A person's gate (a joint farther than this from its prediction is an outlier; a detection is a candidate within
half of it, on average) grows with the time since the person was last located in 3D (``coast_speed``): it may
have walked anywhere since (:meth:`~mocap.multi.track.Tracker._gate`). A person seen by one view since then is
known across that view's rays, only its depth is not: in the assignment its gate grows by ``ONE_VIEW_REACH_M``
at most (plus the motion since that view lost it, if it did); uncapped, it reached 2 m and took the detections of
people beside it and of people entering. Its other views come back where they meet its view's detection
(:meth:`~mocap.multi.track.Tracker._extend`), however far its depth drifted. A person not located in 3D the frame
before takes no detection that a person located there explains better (:func:`assign` ``rivals``: the same cap
for both), and a person just confirmed takes over from one seen by one view only where it lies on that view's
last detection (:func:`took_over`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mocap.multi.associate import pair_affinity
from mocap.multi.body import body_cost
from mocap.multi.identity import DUPLICATE_M
from mocap.multi.merged import BIG
from mocap.multi.rays import point_ray_distance, triangulate_rays
from mocap.multi.seen import seen_empty
from mocap.multi.tracklets import Track, apart

if TYPE_CHECKING:
    from mocap.multi.track import Tracker

ONE_VIEW_REACH_M = DUPLICATE_M  # a one-view person's gate grows by this at most: the least distance between two
# people's torsos (half the gate, a detection's mean distance, then stays under it)


def assign_gate(tr: Tracker, t: Track, f: int) -> float:
    """``t``'s gate in the assignment of frame f: :meth:`Tracker._gate` (the motion since it was last located in
    3D), capped at ``track_max_m + ONE_VIEW_REACH_M`` (plus the motion since it was last seen by any view) where
    one view saw it after that."""
    g = tr._gate(t, f)
    if t.last3d < 0 or t.last <= t.last3d:  # lost since it was located in 3D: anywhere its motion reaches
        return g
    lost = max(0, f - t.last - 1)
    return min(g, tr.cfg.track_max_m + ONE_VIEW_REACH_M + tr.cfg.coast_speed * lost / tr.fps)


def assign(tr: Tracker, tracks: list[Track], f: int, free: np.ndarray, out: dict,
           rivals: list[Track] | None = None) -> None:
    """Hungarian per view of ``tracks`` against the free detections of frame f (their gates: :func:`assign_gate`);
    fills out[id(track)] = {view: (slot, cost)}. A detection that one of ``rivals`` (people located in 3D)
    explains at a lower cost (the same cap) is not a candidate: that person's, its own gate missed it."""
    if not tracks or not free.any():
        return
    Xp = np.stack([t.predict(f) for t in tracks])  # (T, J, 3)
    d = point_ray_distance(Xp[:, None, None], tr.origins[None, :, None, None], tr.rays[f][None])
    cap = np.array([assign_gate(tr, t, f) for t in tracks])  # a joint farther than this: an outlier
    cost = body_cost(d, cap[:, None, None, None], tr.torso, tr.cfg.min_joints)  # (T, C, S)
    cost = np.where(free[None], cost, np.inf)
    cost = np.where(cost <= cap[:, None, None] / 2, cost, np.inf)  # outside a track's gate: not a candidate
    rivals = [u for u in rivals or [] if all(u is not t for t in tracks)]
    if rivals and np.isfinite(cost).any():
        Xr = np.stack([u.predict(f) for u in rivals])  # (U, J, 3)
        dr = point_ray_distance(Xr[:, None, None], tr.origins[None, :, None, None], tr.rays[f][None])
        theirs = body_cost(dr[None], cap[:, None, None, None, None], tr.torso, tr.cfg.min_joints).min(axis=1)
        cost = np.where(theirs < cost, np.inf, cost)  # (T, C, S)
    from scipy.optimize import linear_sum_assignment  # not at the top: see mocap.warm.EARLY

    for c in range(tr.C):
        cc = cost[:, c]
        if not np.isfinite(cc).any():
            continue
        rows, cols = linear_sum_assignment(np.where(np.isfinite(cc), cc, BIG))
        for r, s in zip(rows, cols, strict=True):
            if np.isfinite(cc[r, s]):
                out.setdefault(id(tracks[r]), {})[c] = (int(s), float(cc[r, s]))
                free[c, s] = False


def took_over(tr: Tracker, old: Track, young: Track, f: int) -> bool:
    """For a takeover of ``old`` seen by one view after it was last located in 3D: ``young``'s skeleton lies on
    that view's last detection (the tracker's own acceptance, a mean capped distance within half of
    ``track_max_m``, plus the motion since that frame), or ``young`` began where ``old`` was last seen in 3D
    (within its gate of the time between, capped as :func:`assign_gate` caps it: the view then followed another
    body). Else the two are two people: the gate of one followed by one view grows with the time since it was last
    seen in 3D, and took in a person entering 2 m away (uncapped, this test too: 1.4 s after the last fix, anyone
    entering within 2.4 m; and, a frame that view missed, anyone)."""
    if not old.frames or (old.frames[-1] != f and old.last <= old.last3d):
        return True  # lost since it was located in 3D: anywhere its motion reaches
    g = old.frames[-1]
    views = [int(c) for c in np.flatnonzero(old.slots[-1] >= 0)]
    cap = tr.cfg.track_max_m + tr.cfg.coast_speed * max(0, f - g - 1) / tr.fps
    cost = tr.costs_to(g, views, [int(old.slots[-1][c]) for c in views], young.X[None], cap)
    if np.all(cost <= cap / 2):
        return True
    if old.X3d is None or not len(young.skel):
        return False
    first = next(iter(young.skel))  # young's first skeleton seen in 3D
    reach = tr.cfg.coast_speed * max(0, first - old.last3d) / tr.fps
    return apart(old.X3d, young.skel[first]) <= tr.cfg.track_max_m + min(reach, ONE_VIEW_REACH_M)


def met_better(tr: Tracker, f: int, held: tuple[int, int], pick: dict, out: dict, me: int) -> dict:
    """The picks (view → (slot, affinity)) of the extension of a person seen by one view (its detection ``held``:
    view, slot) but those the detection of another person seen by one view this frame (a single view in ``out``,
    ``me`` the person's key there) meets better (a lower :func:`pair_affinity`, both on all their keypoints'
    rays): that person's other view, whichever of the two is extended first. Two people side by side seen by one
    view each: the second view of one often meets the first person's detection too (within ``match_max_m``)."""
    rivals = [(c, got[c][0]) for k, got in out.items() if k != me and len(got) == 1 for c in got]
    if not pick or not rivals:
        return pick
    cs = sorted(pick)
    dets = np.array([held] + rivals + [(c, pick[c][0]) for c in cs])  # (1 + R + V, 2)
    aff = pair_affinity(tr.origins[dets[:, 0]], tr.rays[f, dets[:, 0], dets[:, 1]], dets[:, 0], tr.cfg.min_joints,
                        cover=True)[: 1 + len(rivals), 1 + len(rivals):]  # (1 + R, V)
    return {c: pick[c] for k, c in enumerate(cs) if not np.any(aff[1:, k] < aff[0, k])}


def met_depth(origins: np.ndarray, rays: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Where the first of N + 1 detections (origins (N + 1, 3), rays (N + 1, J, 3)), a person's only view, meets
    each of the others: (N, J, 3) each joint triangulated from the two rays, the prediction ``prior`` (J, 3)
    where one of them misses it. A person seen by one view has the prediction's depth, not its own: a second
    view's rays pass far from it (nearer another person's joint, often), not from where they meet the first's."""
    n = len(rays) - 1
    O = np.broadcast_to(np.stack([np.broadcast_to(origins[0], (n, 3)), origins[1:]], axis=1)[:, None],
                        (n, rays.shape[1], 2, 3))  # (N, J, 2, 3)
    D = np.stack([np.broadcast_to(rays[0], rays[1:].shape), rays[1:]], axis=2)  # (N, J, 2, 3)
    X = triangulate_rays(O, D, np.ones(D.shape[:-1]))
    return np.where(np.isfinite(X), X, prior)


def drop_lone_tails(tr: Tracker, tracks: list[Track]) -> int:
    """Each track's frames after its last one seen by two views or more (seen by one view: no 3D point) left out
    from where to its end :func:`seen_empty` holds in most of them (the longest such end), at the spot of that
    view's detection at the distances of its last skeleton in 3D: that view's detections are something else's,
    after the person left (a 16-camera take kept a person 1.8 s after it left on one camera's detections of
    something else, and the report failed it at 89 % of its points reconstructed). Kept where someone in the
    other views may hide that spot, or they do not see it; a person walking out of every view but one, past a spot
    the others still see, loses those frames too (they have no 3D point either way). A run seen by one view
    between two seen by two is kept whatever the others see (a person behind a prop). Returns how many frames (one
    detection each) were left out."""
    dropped = 0
    for t in tracks:
        many = [k for k, s in enumerate(t.slots) if (s >= 0).sum() >= 2]
        if not many or many[-1] == len(t.frames) - 1:
            continue
        last = many[-1]
        fixed = [f for f in t.skel if f <= t.frames[last]]  # its last skeleton (a frame that views joined after
        if not fixed:  # tracking, two views, may have none)
            continue
        X3d = np.asarray(t.skel[max(fixed)])
        score = []  # +1 where the others see the spot empty, -1 where not
        for k in range(last + 1, len(t.frames)):
            c0 = int(np.flatnonzero(t.slots[k] >= 0)[0])
            o = tr.origins[c0]
            X = o + tr.rays[t.frames[k], c0, int(t.slots[k][c0])] * np.linalg.norm(X3d - o, axis=-1)[:, None]
            score.append(1 if seen_empty(tr, t.frames[k], X, c0) else -1)
        suffix = np.cumsum(score[::-1])[::-1]  # from each frame of the tail to its end: mostly empty where > 0
        if suffix.max() > 0:
            cut = last + 1 + int(np.argmax(suffix))  # the longest such end (the first maximum)
            dropped += len(t.frames) - cut
            t.frames, t.slots, t.costs = t.frames[:cut], t.slots[:cut], t.costs[:cut]
    return dropped
