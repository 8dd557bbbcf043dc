"""Identities joined to the number of people the user asked for (``detect.persons = N``): a person away from
every view for longer than the tracker's stitching gap comes back as a new track; when the take holds more
identities than N yet never more than N at once, the tracks are joined into N (or as few as possible), each
later track continuing one that ended before it began.

Which continues which is solved for the whole take at once, not in time order: a minimum-cost path cover
(Hungarian on the links "track i ends, track j begins after it", exactly as many links as identities to lose).
A link's cost is how far the two bodies' bone lengths differ (:func:`~mocap.multi.tracklets.body_size`); bodies
of another size (:func:`~mocap.multi.tracklets.other_size`: a child where an adult was) are never joined, so a
take whose user asked for too few people keeps its extra identities (and says so). With ``persons = auto`` nothing
is joined: a new body after a long absence may be anyone."""

from __future__ import annotations

import logging

import numpy as np

from mocap.multi.tracklets import Track, body_size, join_tracks, other_size, size_difference

log = logging.getLogger(__name__)

BIG = 1e9  # an impossible pairing in the assignment
UNMEASURED = 0.05  # the cost of a link whose bodies could not be compared (log of a 5 % size difference)
GAP_COST_PER_S = 1e-3  # of two equally sized candidates, the one that ended later continues (the shorter gap)


def most_at_once(tracks: list[Track]) -> int:
    """The most tracks present (between their first and last frame) in one frame."""
    events = sorted([(t.frames[0], 1) for t in tracks] + [(t.frames[-1] + 1, -1) for t in tracks])
    n = best = 0
    for _, step in events:
        n += step
        best = max(best, n)
    return best


def links(tracks: list[Track], fps: float, segments: list[tuple[int, int]]) -> np.ndarray:
    """(T, T) the cost of track j continuing track i (BIG: j does not begin after i ends, or another body)."""
    T = len(tracks)
    size = [body_size(t, segments) for t in tracks]
    cost = np.full((T, T), BIG)
    for i, a in enumerate(tracks):
        for j, b in enumerate(tracks):
            if i != j and a.frames[-1] < b.frames[0] and not other_size(size[i], size[j]):
                d = size_difference(size[i], size[j])
                cost[i, j] = (UNMEASURED if np.isnan(d) else d) + GAP_COST_PER_S * (b.frames[0] - a.frames[-1]) / fps
    return cost


def join_to_persons(tracks: list[Track], persons: int | str, fps: float,
                    segments: list[tuple[int, int]]) -> tuple[list[Track], int]:
    """``tracks`` joined into ``persons`` identities where there are more of them, never more than ``persons``
    at once (see the module); returns the tracks and how many were joined into an earlier one."""
    from scipy.optimize import linear_sum_assignment  # not at the top: see mocap.warm.EARLY

    T = len(tracks)
    if persons == "auto" or int(persons) >= T or most_at_once(tracks) > int(persons):
        return tracks, 0
    k = T - int(persons)  # links to make: each joins one track into another
    cost = links(tracks, fps, segments)
    # exactly k links: T − k "no successor" columns and T − k "no predecessor" rows, which never meet
    n = 2 * T - k
    full = np.full((n, n), BIG)
    full[:T, :T] = cost
    full[:T, T:] = 0.0
    full[T:, :T] = 0.0
    rows, cols = linear_sum_assignment(full)
    nxt = {int(i): int(j) for i, j in zip(rows, cols, strict=True) if i < T and j < T and full[i, j] < BIG}
    heads = set(range(T)) - set(nxt.values())
    out = []
    for h in sorted(heads, key=lambda i: (tracks[i].frames[0], i)):
        head, i = tracks[h], h
        while i in nxt:
            i = nxt[i]
            join_tracks(head, tracks[i])
        out.append(head)
    joined = T - len(out)
    if joined:
        log.info("%d identities joined into earlier ones: %s people asked for (detect.persons), never more at once",
                 joined, persons)
    return out, joined
