"""People seen before they were confirmed: each person followed backwards over the detections nobody took.

The tracker confirms a new person only after ``birth_frames`` consecutive frames in two views or more
(``TWO_VIEW_BIRTH`` times that when only two views see it), and a person entering through the image
borders is first seen by one view alone: those first frames belong to nobody, and the person starts
late (a third of a second at a two-view birth; as long as one view alone sees it at an entry). After
tracking, every start of a person's track (its first frame, and the first frame after each gap) is
walked backwards, frame by frame, from the skeleton it had there, as the tracker goes forwards (see
:func:`_walk`): in each view the free detection (one no person took) nearest the prediction within the
gate joins it, scored as the tracker scores detections (:func:`body_cost`), unless it is nearer another
person's skeleton; two views or more are triangulated as the tracker does (views that disagree dropped,
keypoints nearer another person left out), one view moves the prediction onto its rays. The walk stops
after ``coast_max_s`` without a frame seen by two views (as the tracker ends a person unseen that long),
at the track's earlier frames, or at the take's start. A frame seen by one view gives no 3D point (the
stages after take the person from its first frame seen by two views), but it bridges to the frames seen by
two before it and its detection is counted as the person's.
"""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING

import numpy as np

from mocap.multi.body import body_cost, torso_centre
from mocap.multi.merged import NOISE_COSTS, RECENT
from mocap.multi.rays import point_ray_distance, robust_median
from mocap.multi.tracklets import Track, apart, centre, one_view_fade

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


class _Others:
    """Where the other tracks are at a frame: their skeleton there, or the one nearest in time within
    ``coast_max_s`` while the frame is inside their span (seen by one view then: no skeleton of that frame)."""

    def __init__(self, tracks: list[Track], reach: float):
        self.tracks, self.reach = tracks, reach
        self.frames = {id(o): np.array(sorted(o.skel), int) for o in tracks}

    def at(self, f: int, t: Track) -> np.ndarray | None:
        out = []
        for o in self.tracks:
            fr = self.frames[id(o)]
            if o is t or not len(fr) or not o.frames[0] <= f <= o.frames[-1]:
                continue
            i = int(np.searchsorted(fr, f))
            near = min((fr[j] for j in (i - 1, i) if 0 <= j < len(fr)), key=lambda g: abs(g - f))
            if abs(near - f) <= self.reach:
                out.append(np.asarray(o.skel[int(near)]))
        return np.stack(out) if out else None


def _match(tr: Tracker, f: int, prior: np.ndarray, caps: np.ndarray, free: np.ndarray, others: np.ndarray | None,
           near: float) -> tuple[list[int], list[int], list[float], np.ndarray, list[int], dict] | None:
    """Frame f's free detections of the person predicted at ``prior``: per view the one nearest within that view's
    gate ``caps`` (C,), unless it is nearer another person's skeleton (``others``); triangulated as the tracker
    does. None: none."""
    d = point_ray_distance(prior[None, None], tr.origins[:, None, None], tr.rays[f])  # (C, S, J)
    cost = np.where(free, body_cost(d, caps[:, None, None], tr.torso, tr.cfg.min_joints), np.inf)
    cost = np.where(cost <= caps[:, None] / 2, cost, np.inf)
    views = [c for c in range(tr.C) if np.isfinite(cost[c]).any()]
    sls = [int(np.argmin(cost[c])) for c in views]
    if others is not None and views:
        theirs = tr.costs_to(f, views, sls, others, caps[views]).min(axis=0)  # (V,)
        keep = [k for k in range(len(views)) if not theirs[k] < cost[views[k], sls[k]]]
        views, sls = [views[k] for k in keep], [sls[k] for k in keep]
    if not views:
        return None
    costs = [float(cost[c, s]) for c, s in zip(views, sls, strict=True)]
    X, kept, own = tr._solve(views, sls, f, prior, costs, others, near)
    if len(kept) >= 2 and not apart(X, prior) <= caps.max():  # two views meeting far from the prediction
        best = min(kept, key=lambda c: costs[views.index(c)])
        X, kept, own = tr._solve([best], [sls[views.index(best)]], f, prior, [0.0], others, near)
    return (views, sls, costs, X, kept, own) if kept else None


def _walk(tr: Tracker, t: Track, others_at: _Others, k: int, taken: np.ndarray, mine: set) -> list[tuple]:
    """The frames before t.frames[k] this track takes, latest first: (frame, slots (C,), cost, X (J, 3) or None
    when seen by one view, own {view: (J,) keypoints of this person}, whether others were there). As the tracker
    goes forwards: a frame seen by one view moves the prediction onto that view's rays (its depth kept, the
    velocity fading: :func:`~mocap.multi.tracklets.one_view_fade`), and a view that saw the person in the frame
    after keeps the tight gate (its rays do not depend on the depth), the others the one widened since the last frame
    seen by two views. Two views after a frame not seen by two count only ``birth_frames`` frames in a row, as a new
    person is confirmed; fewer are kept in their best view alone."""
    state = _start_state(tr, t, k)
    if state is None:
        return []
    f_ref, X, vel = state
    f_cur, seen_by = f_ref, np.ones(tr.C, bool)
    near = NOISE_COSTS * (statistics.median(t.costs[k:k + RECENT]) if t.costs[k:k + RECENT] else 0.0)
    cfg, got, pending = tr.cfg, [], []

    def row(f, m, views_kept, X3):
        views, sls, costs, _, _, own = m
        slots = np.full(tr.C, -1, np.int16)
        for c in views_kept:
            slots[c] = sls[views.index(c)]
        return f, slots, statistics.median([costs[views.index(c)] for c in views_kept]), X3, \
            {c: own[c] for c in views_kept}

    def settle(confirmed: bool):
        for f, m, others in pending:
            views, _, costs, X3, kept, _ = m
            one = [min(kept, key=lambda c: costs[views.index(c)])]
            got.append((*row(f, m, kept if confirmed else one, X3 if confirmed else None), others is not None))
        pending.clear()

    for f in range(t.frames[k] - 1, -1, -1):
        if f in mine or f_ref - f > cfg.coast_max_s * tr.fps:
            break
        prior = X + vel * (f - f_cur)
        unseen = cfg.coast_speed * (f_cur - f - 1) / tr.fps  # frames with no detection between
        caps = np.where(seen_by, cfg.track_max_m + unseen, cfg.track_max_m + cfg.coast_speed * (f_ref - f - 1) / tr.fps)
        others = others_at.at(f, t)
        free = tr.usable[f] & ~taken[f]
        m = _match(tr, f, prior, caps, free, others, near) if free.any() else None
        if m is None or len(m[4]) < 2:
            settle(False)
            if m is not None:
                got.append((*row(f, m, m[4], None), others is not None))
                vel = vel * one_view_fade(f_cur - f, tr.fps)
                X, f_cur, seen_by = m[3], f, np.isin(np.arange(tr.C), m[4])
            continue
        if pending or f_ref - f > 1:  # two views again after a gap: confirmed as a birth is
            pending.append((f, m, others))
            if len(pending) < cfg.birth_frames:
                continue
            settle(True)
        else:
            got.append((*row(f, m, m[4], m[3]), others is not None))
        common = np.isfinite(m[3][:, 0]) & np.isfinite(X[:, 0])
        if common.any():
            step = robust_median((X[common] - m[3][common]).T, 1) / (f_cur - f)
            vel = 0.5 * vel + 0.5 * step
        X, f_ref, f_cur, seen_by = m[3], f, f, np.isin(np.arange(tr.C), m[4])
    settle(False)
    return got


def extend_back(tr: Tracker, tracks: list[Track]) -> int:
    """Each track's starts walked backwards over the free detections (see the module); the tracks gain those
    frames (in order). Returns the number of detections added."""
    taken = np.zeros((tr.F, tr.C, tr.S), bool)
    for t in tracks:
        for f, sl in zip(t.frames, t.slots, strict=True):
            c = np.flatnonzero(sl >= 0)
            taken[f, c, sl[c]] = True
    added, others_at = 0, _Others(tracks, tr.cfg.coast_max_s * tr.fps)
    for t in sorted(tracks, key=lambda t: t.frames[0] if t.frames else 0):
        if not t.frames:
            continue
        mine = set(t.frames)
        new = []
        for k in _starts(t):
            for f, slots, cost, X, own, checked in _walk(tr, t, others_at, k, taken, mine):
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
