"""Detections exchanged between people of one frame where another pairing meets as bodies far better.

Where two people line up along one camera's line of sight, or stand close, their detections in that view
lie near each other, and the tracker's per-view assignment (each detection to the nearest prediction)
can give a person one view of each body. Two such views' rays can still meet within ``match_max_m``
(a ghost between the two people, consistent in each of its views), so the person carries on as that
mixture while the people move apart, the other body's view given to the other person or left over (a
3-camera take: two people held as mixtures for 1.3 s while they walked 2 m apart). The geometry tells
them apart: two detections of one body meet at the noise (millimetres), two of different bodies at the
distance between their joints along the other view.

After the assignment, the detections of every person seen by two to four views (confirmed, or tentative: one
just started from the other half of a mixture is the partner it needs) are compared pair by pair (the median
ray distance over the joints both see; a person seen by more than ``MAX_VIEWS`` is left to the solve, where a
majority outvotes a wrong view; four can split two and two, with no majority); a person with a pair farther
apart than ``SUSPECT_SHARE`` of ``match_max_m`` in ``birth_frames`` consecutive frames (a lasting mixture; a
detection wrong for a frame is the solve's to drop), is a suspect. For each view of a suspect, its detection is
exchanged with another person's detection in that view, or with a detection nobody took, where that lowers the sum of
the two people's pair distances to ``GAIN`` of it or less, by ``SUSPECT_SHARE`` of ``match_max_m`` or
more, and where the detection moved meets each other one of its new set within ``SUSPECT_SHARE`` of
``match_max_m`` (median); between two people, two views are also exchanged at once (four views split two and
two: no one view's exchange halves the distances); the best exchange first, until none is left (the other
person of an exchange is a suspect from then on in this frame). Here a pair's distance is the mean over the
joints, each capped at ``2 * match_max_m``: a detection merging two people (one body side each) meets either
body on half its joints, which a median would take for one body. The geometry says which detections are one
body, the predictions say who is who: of the two people an exchange involves, each takes the set of
detections that costs less against its prediction (the tracker's cost). The number of views of each set
is unchanged; detections shared by two people (a merged detection, half another body for one of them) stay
where they are and are left out of the distances and of the meeting test (an exchange between two people
is made only where both hold the same shared ones: the who-is-who choice then moves none). A person whose
views changed starts its solve from their triangulation instead of its prediction (the prediction was
the mixture's), and its velocity is not measured across the change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mocap.multi.rays import ray_ray_distance, robust_median, triangulate_rays, truncated_mean

if TYPE_CHECKING:
    from mocap.multi.track import Tracker
    from mocap.multi.tracklets import Track

SUSPECT_SHARE = 0.2  # of match_max_m: views of one body meet far closer (the noise); the least gain accepted
GAIN = 0.5  # an exchange must at least halve the two people's summed pair distances
MAX_VIEWS = 4  # a suspect is seen by this many views at most (more: a majority outvotes a wrong view)


def _key(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a < b else (b, a)


class _Pairs:
    """Pair distances of detections (origins (N, 3), rays (N, J, 3)): the mean over the joints both see of their
    rays' distance, each capped at ``cap`` (inf: fewer than ``min_joints`` such joints); computed when asked."""

    def __init__(self, origins: np.ndarray, rays: np.ndarray, cap: float, min_joints: int):
        self.origins, self.rays, self.cap, self.min_joints = origins, rays, cap, min_joints
        self.mean: dict[tuple[int, int], float] = {}
        self.median: dict[tuple[int, int], float] = {}

    def fill(self, groups: list[list[int]]) -> None:
        """Compute, at once, every pair within the groups (lists of detection indices) not known yet."""
        todo = sorted({_key(a, b) for g in groups for n, a in enumerate(g) for b in g[n + 1:]} - self.mean.keys())
        if not todo:
            return
        I = np.array(todo)
        d = ray_ray_distance(self.origins[I[:, 0]][:, None], self.rays[I[:, 0]], self.origins[I[:, 1]][:, None],
                             self.rays[I[:, 1]])  # (pairs, J)
        self.mean.update(zip(todo, truncated_mean(d, self.cap, self.min_joints).tolist(), strict=True))
        self.median.update(zip(todo, robust_median(d, self.min_joints).tolist(), strict=True))

    def meets(self, a: int, members: list[int], limit: float, shared: set) -> bool:
        """Whether detection a meets every other one of ``members`` but the ``shared`` ones (a merged detection:
        half another body) within ``limit`` (median over the joints)."""
        return all(self.median[_key(a, b)] <= limit for b in members if b != a and b not in shared)

    def total(self, members: list[int], shared: set) -> float:
        """Sum over the pairs of ``members`` but the ``shared`` ones of their distances, each at most ``cap``."""
        members = [a for a in members if a not in shared]
        return sum(min(self.mean[_key(a, b)], self.cap) for n, a in enumerate(members) for b in members[n + 1:])


def _prediction_cost(tr: Tracker, f: int, det: list, t: Track, members: list[int]) -> float:
    """The tracker's summed cost of the detections ``members`` (indices into det) against t's prediction."""
    views, slots = [det[i][0] for i in members], [det[i][1] for i in members]
    return float(tr.costs_to(f, views, slots, t.predict(f)[None], tr._gate(t, f)).sum())


def _suspects(tr: Tracker, people: list[Track], own: list[list[int]], pairs: _Pairs, limit: float,
              shared: set) -> list[int]:
    """Indices of the people seen by two to ``MAX_VIEWS`` views with two detections (``own``: indices into
    ``pairs``; the ``shared`` ones left out) farther apart than ``limit`` (median over the joints both see), in
    this frame and the ``birth_frames - 1`` before (``tr.suspect`` counts them: id(track) → (track, frames)). A
    person seen by more views is left to the solve: a majority outvotes a wrong view (and the pairs to compare grow
    with the square of the views)."""
    mine = [[a for a in m if a not in shared] for m in own]
    few = [k for k, m in enumerate(own) if len(m) <= MAX_VIEWS]
    pairs.fill([mine[k] for k in few])
    far = [k for k in few if any(limit < pairs.median[_key(a, b)] < np.inf
                                 for n, a in enumerate(mine[k]) for b in mine[k][n + 1:])]
    counts = {}
    for k in far:  # (the entry holds the track: its id is not another's while the count lives)
        seen = tr.suspect.get(id(people[k]))
        counts[id(people[k])] = (people[k], (seen[1] if seen and seen[0] is people[k] else 0) + 1)
    tr.suspect = counts
    return [k for k in far if tr.suspect[id(people[k])][1] >= tr.cfg.birth_frames]


def _best(pairs: _Pairs, own: list[list[int]], suspects: list[int], owner: dict, det: list, cams: np.ndarray,
          fixed: set, limit: float) -> tuple | None:
    """The exchange (gain, person, the other person or -1, {its detection: the other detection}) that lowers the
    pair distances most, within ``GAIN`` and ``limit`` (see the module); None: no such exchange. Between two
    people, two views at once are tried too (four views split two and two: no one view's exchange halves it)."""
    held = [{det[x] for x in m if x in fixed} for m in own]  # the shared detections each person holds
    tries = []
    for k in suspects:
        singles: dict[int, list] = {}
        for i in own[k]:
            if i in fixed:
                continue
            for j in map(int, np.flatnonzero(cams == cams[i])):
                k2 = owner.get(j, -1)
                if j == i or j in fixed or k2 == k or (k2 >= 0 and held[k] != held[k2]):
                    continue  # (the who-is-who swap below would move a shared detection: one not held by both)
                tries.append((k, k2, {i: j}))
                singles.setdefault(k2, []).append((i, j))
        for k2, moves in singles.items():  # two views at once, between two people
            if k2 >= 0:
                tries += [(k, k2, dict([m, x])) for n, m in enumerate(moves) for x in moves[n + 1:]]  # two views
    rows = []
    for k, k2, moves in tries:
        back = {j: i for i, j in moves.items()}
        before = [own[k]] + ([own[k2]] if k2 >= 0 else [])
        after = [[moves.get(x, x) for x in own[k]]] + ([[back.get(x, x) for x in own[k2]]] if k2 >= 0 else [])
        rows.append((k, k2, moves, before, after))
    pairs.fill([[x for x in m if x not in fixed] for *_, before, after in rows for m in before + after])
    best = None
    for k, k2, moves, before, after in rows:
        b, a = sum(pairs.total(m, fixed) for m in before), sum(pairs.total(m, fixed) for m in after)
        if a <= GAIN * b and b - a >= limit and (best is None or b - a > best[0]) and \
                all(pairs.meets(j, after[0], limit, fixed) for j in moves.values()) and \
                (k2 < 0 or all(pairs.meets(i, after[1], limit, fixed) for i in moves)):
            best = (b - a, k, k2, moves)
    return best


def exchange_views(tr: Tracker, f: int, tracks: list[Track], out: dict, free: np.ndarray,
                   shared: set) -> dict[int, np.ndarray]:
    """Exchange detections of frame f between the ``tracks`` (and the free ones) where the pairing
    that results meets far better (see the module). ``out`` (id(track) → {view: (slot, cost)}) and ``free``
    (C, S) are updated in place; an exchanged person's costs are against its new detections' triangulation.
    Returns {id(track): (J, 3) that triangulation (NaN: a joint fewer than two of them see)} for the people
    whose views changed (their solve starts there)."""
    cfg = tr.cfg
    people = [t for t in tracks if len(out.get(id(t), {})) >= 2]
    if not people:
        tr.suspect = {}
        return {}
    det = [(c, s) for t in people for c, (s, _) in sorted(out[id(t)].items())]  # the people's, then the free ones
    own, n = [], 0
    for t in people:
        own.append(list(range(n, n + len(out[id(t)]))))
        n += len(own[-1])
    det += [(c, int(s)) for c in sorted({c for c, _ in det}) for s in np.flatnonzero(free[c])]
    cams = np.array([c for c, _ in det], np.intp)
    rays = tr.rays[f][cams, np.array([s for _, s in det], np.intp)]  # (N, J, 3)
    pairs = _Pairs(tr.origins[cams], rays, 2 * cfg.match_max_m, cfg.min_joints)
    limit = SUSPECT_SHARE * cfg.match_max_m
    fixed = {i for i, cs in enumerate(det) if cs in shared}
    suspects = _suspects(tr, people, own, pairs, limit, fixed)  # most frames have none and stop here
    if not suspects:
        return {}
    owner = {i: k for k, m in enumerate(own) for i in m}
    changed: set[int] = set()
    while (best := _best(pairs, own, suspects, owner, det, cams, fixed, limit)) is not None:
        _, k, k2, moves = best
        own[k] = [moves.get(x, x) for x in own[k]]
        for i in moves:
            owner.pop(i, None)
        if k2 >= 0:
            back = {j: i for i, j in moves.items()}
            own[k2] = [back.get(x, x) for x in own[k2]]
            pc = [[_prediction_cost(tr, f, det, people[p], own[q]) for q in (k, k2)] for p in (k, k2)]
            if pc[0][1] + pc[1][0] < pc[0][0] + pc[1][1]:
                own[k], own[k2] = own[k2], own[k]  # who is who: as the predictions say
            owner.update((x, k2) for x in own[k2])
            changed.add(k2)
            suspects = suspects if k2 in suspects else suspects + [k2]
        owner.update((x, k) for x in own[k])
        changed.add(k)
    for k in changed:
        for c, (s, _) in out[id(people[k])].items():
            free[c, s] = True
    new: dict[int, np.ndarray] = {}
    for k in changed:
        t, m = people[k], own[k]
        v = [i for i in m if i not in fixed]  # a shared detection is half another body: not where it starts
        v = v if len(v) >= 2 else m
        X = triangulate_rays(tr.origins[cams[v]][None], np.moveaxis(rays[v], 0, 1), np.ones((tr.J, len(v))))
        cost = tr.costs_to(f, [det[i][0] for i in m], [det[i][1] for i in m],
                           np.where(np.isfinite(X), X, t.predict(f))[None], tr._gate(t, f))[0]
        out[id(t)] = {det[i][0]: (det[i][1], float(c)) for i, c in zip(m, cost, strict=True)}
        for i in m:
            free[det[i]] = False
        new[id(t)] = X
    return new
