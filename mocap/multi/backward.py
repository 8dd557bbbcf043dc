"""People seen before they were confirmed: each person followed backwards over the detections nobody took.

The tracker confirms a new person only after ``birth_frames`` consecutive frames in two views or more
(``TWO_VIEW_BIRTH`` times that when only two views see it), and a person entering through the image
borders is first seen by one view alone: those first frames belong to nobody, and the person starts
late (a third of a second at a two-view birth; as long as one view alone sees it at an entry). After
tracking, every start of a person's track (its first frame, and the first frame after each gap) is
walked backwards, frame by frame, from the skeleton it had there: the prediction moves back at the
track's velocity of its first frames, the gate grows with the time since the last frame seen by two
views (``coast_speed``), and in each view the free detection (one no person took) nearest the
prediction within the gate joins it, scored as the tracker scores detections (:func:`body_cost`). Two
views or more are triangulated as the tracker does (views that disagree dropped, keypoints nearer
another person left out); one view is kept with the prediction's depth. The walk stops after ``coast_max_s``
without a frame seen by two views (as the tracker ends a person unseen that long), at the track's
earlier frames, or at the take's start.
"""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING

import numpy as np

from mocap.multi.body import body_cost, torso_centre
from mocap.multi.merged import NOISE_COSTS, RECENT
from mocap.multi.rays import point_ray_distance, robust_median
from mocap.multi.tracklets import Track, apart, centre

if TYPE_CHECKING:
    from mocap.multi.track import Tracker


def _starts(t: Track) -> list[int]:
    """Indices into t.frames where the track begins: its first frame and each frame after a gap."""
    fr = t.frames
    return [k for k in range(len(fr)) if k == 0 or fr[k] - fr[k - 1] > 1]


def _start_state(tr: Tracker, t: Track, k: int) -> tuple[int, np.ndarray, np.ndarray] | None:
    """(frame, skeleton (J, 3), velocity (3,)) at the first frame from index k seen by two views, the velocity
    from its torso's move over the next ``birth_frames`` such frames; None: no such frame before a gap."""
    fr = t.frames
    seen = []
    for i in range(k, len(fr)):
        if i > k and fr[i] - fr[i - 1] > 1:
            break
        if fr[i] in t.skel:
            seen.append(fr[i])
            if len(seen) > tr.cfg.birth_frames:
                break
    if not seen:
        return None
    X0 = np.array(t.skel[seen[0]])
    vel = np.zeros(3)
    if len(seen) > 1:
        a, b = torso_centre(X0, tr.torso), torso_centre(np.asarray(t.skel[seen[-1]]), tr.torso)
        if np.isfinite(a).all() and np.isfinite(b).all():
            vel = (b - a) / (seen[-1] - seen[0])
    return seen[0], X0, vel


def _walk(tr: Tracker, t: Track, tracks: list[Track], k: int, taken: np.ndarray, mine: set) -> list[tuple]:
    """The frames before t.frames[k] this track takes, latest first: (frame, slots (C,), cost, X or None,
    own {view: (J,) keypoints of this person})."""
    state = _start_state(tr, t, k)
    if state is None:
        return []
    f_ref, X_ref, vel = state
    start = t.frames[k]
    near = NOISE_COSTS * (statistics.median(t.costs[k:k + RECENT]) if t.costs[k:k + RECENT] else 0.0)
    cfg, got = tr.cfg, []
    for f in range(start - 1, -1, -1):
        if f in mine or f_ref - f > cfg.coast_max_s * tr.fps:
            break
        prior = X_ref + vel * (f - f_ref)
        cap = cfg.track_max_m + cfg.coast_speed * max(0, f_ref - f - 1) / tr.fps
        free = tr.usable[f] & ~taken[f]
        if not free.any():
            continue
        d = point_ray_distance(prior[None, None], tr.origins[:, None, None], tr.rays[f])  # (C, S, J)
        cost = np.where(free, body_cost(d, cap, tr.torso, cfg.min_joints), np.inf)
        cost = np.where(cost <= cap / 2, cost, np.inf)
        views = [c for c in range(tr.C) if np.isfinite(cost[c]).any()]
        if not views:
            continue
        sls = [int(np.argmin(cost[c])) for c in views]
        costs = [float(cost[c, s]) for c, s in zip(views, sls, strict=True)]
        others = [np.asarray(o.skel[f]) for o in tracks if o is not t and f in o.skel]
        others = np.stack(others) if others else None
        X, kept, own = tr._solve(views, sls, f, prior, costs, others, near)
        if len(kept) >= 2 and not apart(X, prior) <= cap:  # two views meeting far from the prediction
            best = min(kept, key=lambda c: costs[views.index(c)])
            X, kept, own = tr._solve([best], [sls[views.index(best)]], f, prior, [0.0], others, near)
        if not kept:
            continue
        slots = np.full(tr.C, -1, np.int16)
        for c in kept:
            slots[c] = sls[views.index(c)]
        if len(kept) >= 2:
            common = np.isfinite(X[:, 0]) & np.isfinite(X_ref[:, 0])
            if common.any():
                step = robust_median((X_ref[common] - X[common]).T, 1) / (f_ref - f)
                vel = 0.5 * vel + 0.5 * step
            f_ref, X_ref = f, X
        got.append((f, slots, statistics.median([costs[views.index(c)] for c in kept]),
                    X if len(kept) >= 2 else None, {c: own[c] for c in kept}, others is not None))
    return got


def extend_back(tr: Tracker, tracks: list[Track]) -> int:
    """Each track's starts walked backwards over the free detections (see the module); the tracks gain those
    frames (in order). Returns the number of detections added."""
    taken = np.zeros((tr.F, tr.C, tr.S), bool)
    for t in tracks:
        for f, sl in zip(t.frames, t.slots, strict=True):
            c = np.flatnonzero(sl >= 0)
            taken[f, c, sl[c]] = True
    added = 0
    for t in sorted(tracks, key=lambda t: t.frames[0] if t.frames else 0):
        if not t.frames:
            continue
        mine = set(t.frames)
        new = []
        for k in _starts(t):
            for f, slots, cost, X, own, checked in _walk(tr, t, tracks, k, taken, mine):
                c = np.flatnonzero(slots >= 0)
                taken[f, c, slots[c]] = True
                mine.add(f)
                new.append((f, slots, cost))
                added += len(c)
                if X is not None:
                    t.skel[f], t.path[f] = X, centre(X)
                for v in c:
                    n_usable = int(np.isfinite(tr.rays[f, v, slots[v]][:, 0]).sum())
                    if own[v].sum() < n_usable:
                        t.own[(f, int(v))] = (int(slots[v]), own[v])
                    if checked:
                        t.checked.add((f, int(v), int(slots[v])))
        if new:
            rows = sorted([*zip(t.frames, t.slots, t.costs, strict=True), *new], key=lambda r: r[0])
            t.frames, t.slots, t.costs = [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]
    return added
