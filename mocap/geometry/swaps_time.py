"""Left/right swaps in most views of a frame at once: found from the 3D over time.

:func:`mocap.geometry.swaps.find_swaps` tests each view against the others. When two of four views (or
three) exchange the same side at the same time, the others no longer outvote them: the views' consensus
itself is mirrored, and the test repairs nothing, or the wrong views. Such frames show in 3D: the
consensus point of a left joint jumps to where its right joint was the frame before, and back a few
frames later. Here, per body-side group, a two-state sequence over frames (consensus as it is /
mirrored) is chosen by dynamic programming: the cost of linking two frames is the truncated squared
distance, in units of the take's typical motion between frames, of each joint to the same joint before
(same state) or to its mirror joint (state changed), and every mirrored frame pays a small prior (the
views' consensus is right in most frames). A group whose two sides are too close for the 3D noise (the
head) follows the others, and where every other group is found mirrored a group's mirror is favoured (a
second pass: a detector exchanges a whole body more often than a part). In the frames found mirrored every view
is decided again, directly against the mirrored consensus.

The per-view test's two-state sequences over frames (:func:`viterbi`, as given / exchanged, per camera and
group) are here too.

Shapes: F frames, C cameras, J joints, G groups, as in :mod:`mocap.geometry.swaps`.
"""

from __future__ import annotations

import numpy as np

from mocap.geometry.normal_terms import count_views, distance, finite, normal_terms, solve_terms, sum_views
from mocap.types import Rig

TRUNCATE = 8.0  # a joint's motion cost is clipped at this many motion scales
PRIOR = 16.0  # cost of each mirrored frame (a joint at 4 motion scales)
MIN_SCALE_M = 0.005  # floor of the motion scale between frames (triangulation noise)
MAX_LINK_S = 0.25  # frames further apart than this (a gap in the 3D) are not linked
NEAR = 3  # the 3D is made in the frames where some view looks exchanged and this many frames around
RESOLVED = 3.0  # a group whose left and right joints are closer than this many motion scales (the head,
# ~10 cm) is not tested: it takes the other groups' answer where they all find a mirror


def consensus_points(rig: Rig, xy: np.ndarray, xn: np.ndarray, w: np.ndarray, max_reproj_px: float,
                     first: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
                     rows: np.ndarray | None = None, points: np.ndarray | None = None) -> np.ndarray:
    """(F, J, 3) the point of the views that agree (within ``max_reproj_px``) from the (repaired) pixels xy
    and normalised xn (F, C, J, 2): the point of all views when two or more agree with it, else the
    leave-one-out point most views agree with (one outlier, or views split two against one); NaN where
    no two views agree. ``first``: the normal terms (F·J, C, 9), the views used and those agreeing with the
    point of all views (F·J, C), rows frame-major, when already known (the swap test's first pass);
    with ``rows`` (F·J,), the normal terms are those of a longer take, these frames' at ``rows`` (read
    where needed: a copy of all of them cost more than the solve). ``points``: with ``first``, the point of all
    the used views (F·J, 3) (at ``rows`` likewise) when known: kept where every used view agrees with it (the
    same sum and solve; most rows), solved only elsewhere."""
    F, C, J, _ = xy.shape
    uv = np.moveaxis(xy, 1, 2).reshape(F * J, C, 2)
    if first is None:
        ww = np.moveaxis(w, 1, 2).reshape(F * J, C)
        used = (ww > 0) & finite(uv)
        T = normal_terms(rig, np.moveaxis(xn, 1, 2).reshape(F * J, C, 2), np.where(used, ww, 0.0))
    else:
        T, used, agree = first
    at = (lambda sel: T[sel]) if rows is None or first is None else (lambda sel: T[rows[sel]])

    def agreeing(X: np.ndarray, rows: np.ndarray | slice) -> np.ndarray:
        proj = np.stack([cam.project(X) for cam in rig.cameras], axis=1)
        return used[rows] & (distance(*np.moveaxis(proj - uv[rows], -1, 0)) < max_reproj_px)

    if first is None:
        agree = agreeing(solve_terms(sum_views(used, T), count_views(used)[:, 0]), slice(None))
    weak = np.flatnonzero((count_views(agree)[:, 0] < 2) & (count_views(used)[:, 0] >= 3))
    if weak.size and C >= 3:
        best = agree[weak].copy()
        Tw = at(weak)
        total, n_used = sum_views(used[weak], Tw), count_views(used[weak])[:, 0]

        def left_out(c: np.ndarray, rows: np.ndarray) -> np.ndarray:
            """The views (n, C) agreeing with the point of the used views of weak rows ``rows`` but view c (n,)
            (the sum of all less that view's own term: one sum, not one per view)."""
            own = used[weak[rows], c]
            S = total[rows] - Tw[rows, c] * own[:, None]
            return agreeing(solve_terms(S, n_used[rows] - own), weak[rows])

        # one wrong view is the common case: without the view farthest from the point of all views first;
        # where every other view agrees with that point no other view left out can do better
        X = solve_terms(total, n_used)
        proj = np.stack([cam.project(X) for cam in rig.cameras], axis=1)
        far = np.argmax(np.where(used[weak], np.nan_to_num(distance(*np.moveaxis(proj - uv[weak], -1, 0)),
                                                          nan=np.inf), -1.0), axis=1)
        everything = np.arange(weak.size)
        a = left_out(far, everything)
        better = count_views(a)[:, 0] > count_views(best)[:, 0]
        best[better] = a[better]
        rest = np.flatnonzero(count_views(best)[:, 0] < n_used - 1)
        for c in range(C):  # elsewhere each view left out in turn: the point most others agree with
            if rest.size == 0:
                break
            a = left_out(np.full(rest.size, c), rest)
            better = count_views(a)[:, 0] > count_views(best[rest])[:, 0]
            best[rest[better]] = a[better]
        agree[weak] = best
    X = np.full((F * J, 3), np.nan)
    n_agree = count_views(agree)[:, 0]
    ok = n_agree >= 2
    if points is not None and first is not None:  # agree ⊆ used: as many views, the same views
        same = np.flatnonzero(ok & (n_agree == count_views(used)[:, 0]))
        X[same] = points[same] if rows is None else points[rows[same]]
        ok[same] = False
    X[ok] = solve_terms(sum_views(agree[ok], at(ok)), n_agree[ok])
    return X.reshape(F, J, 3)


def mirrored_frames(X: np.ndarray, perm: np.ndarray, member: np.ndarray, fps: float | None,
                    candidates: np.ndarray, even: np.ndarray | None = None) -> np.ndarray:
    """(F, G) bool: the frames where each group's consensus is mirrored, among the ``candidates`` (F, G)
    (frames where some view looks exchanged: only there can most views be). X (F, J, 3) points (NaN:
    missing), perm (J,) the mirror permutation, member (J, G); ``fps`` None: only consecutive frames
    are linked. ``even`` (F, G): the candidates whose point is as likely mirrored as not (the half of four views
    split two against two, :mod:`mocap.geometry.swaps_split`): the mirror costs nothing there. A second pass gives
    a group the opposite prior (favouring its mirror) where every other strong group was found mirrored."""
    F, G = X.shape[0], member.shape[1]
    out = np.zeros((F, G), bool)
    max_link = max(1, int(round(MAX_LINK_S * fps))) if fps else 1
    weak: list[int] = []
    paths: dict[int, tuple] = {}  # per strong group tested: its frames, links, link costs and priors
    for g in range(G):
        joints = np.flatnonzero(member[:, g])
        P = X[:, joints]  # (F, n, 3)
        M = X[:, perm[joints]]  # the mirror joints
        frames = np.flatnonzero(finite(P).any(axis=1))
        if frames.size < 3 or not candidates[frames, g].any():
            continue
        a, b = frames[:-1], frames[1:]
        link = (b - a) <= max_link
        a, b = a[link], b[link]
        step = np.linalg.norm(P[b] - P[a], axis=-1)  # (L, n) same state
        cross = np.linalg.norm(P[b] - M[a], axis=-1)  # state changed
        gap = (b - a)[:, None]
        known = np.isfinite(step) & np.isfinite(cross)
        if not known.any():
            continue
        unit = max(3.0 * float(np.median((step / gap)[known])), MIN_SCALE_M) * gap
        separation = np.nanmedian(np.linalg.norm(P - M, axis=-1))  # left to right
        if not separation >= RESOLVED * unit.min():
            weak.append(g)  # a mirror moves its joints too little against the noise: follows the others
            continue
        same_cost, change_cost = (np.where(known, np.minimum(np.nan_to_num(d) / unit, TRUNCATE) ** 2, 0.0).sum(axis=1)
                                  for d in (step, cross))
        if not np.any(change_cost < same_cost - PRIOR) and (even is None or not even[frames, g].any()):
            continue  # no link is better explained by a mirror: nothing to do
        prior = np.where(candidates[frames, g], PRIOR, np.inf)
        if even is not None:  # a point of either state as likely: no cost for the mirror
            prior[even[frames, g] & candidates[frames, g]] = 0.0
        paths[g] = (frames, a, b, same_cost, change_cost, prior)
        out[frames[_two_state_path(*paths[g])], g] = True
    # a detector exchanges a whole body more often than a part: where every other group is found mirrored, a group's
    # mirror is as likely as theirs (its prior the opposite: where its own links cannot tell, the legs crossing say,
    # it would else leave a long run at one crossing and come back at the next); once, from the first answers
    first = out.copy()
    for g, (frames, a, b, same_cost, change_cost, prior) in paths.items():
        others = [k for k in range(G) if k != g and k not in weak]  # a strong group not tested: not mirrored
        if not others:
            break
        with_others = first[np.ix_(frames, others)].all(axis=1) & np.isfinite(prior)
        if with_others.any() and not np.array_equal(first[frames, g], with_others | first[frames, g]):
            out[:, g] = False
            out[frames[_two_state_path(frames, a, b, same_cost, change_cost,
                                       np.where(with_others, -PRIOR, prior))], g] = True
    strong = [g for g in range(G) if g not in weak]
    if weak and strong:
        out[:, weak] = out[:, strong].all(axis=1, keepdims=True)
    return out


def _two_state_path(frames: np.ndarray, a: np.ndarray, b: np.ndarray, same: np.ndarray, change: np.ndarray,
                    prior: np.ndarray) -> np.ndarray:
    """The least-cost states (bool, True: mirrored) of ``frames``: a mirrored frame costs ``prior`` (per
    frame), each link (a[i] → b[i], frames both) costs ``same[i]`` between equal states and ``change[i]``
    otherwise; frames not linked to the one before start afresh."""
    n = frames.size
    pos = np.searchsorted(frames, b)
    link_same = np.full(n, np.nan)
    link_change = np.full(n, np.nan)
    link_same[pos], link_change[pos] = same, change
    back0, back1 = np.zeros(n, bool), np.zeros(n, bool)  # the best predecessor's state
    c0, c1 = 0.0, float(prior[0])
    for i in range(1, n):
        s, x = link_same[i], link_change[i]
        if np.isnan(s):  # not linked: the best of either state before
            best = min(c0, c1)
            p0 = p1 = c1 < c0
            n0, n1 = best, best + prior[i]
        else:
            from0, from1 = c0 + s, c1 + x  # to state 0
            n0, p0 = (from1, True) if from1 < from0 else (from0, False)
            from0, from1 = c0 + x, c1 + s  # to state 1
            n1, p1 = (from1, True) if from1 < from0 else (from0, False)
            n1 += prior[i]
        c0, c1 = n0, n1
        back0[i], back1[i] = p0, p1
    state = np.zeros(n, bool)
    s = bool(c1 < c0)
    for i in range(n - 1, -1, -1):
        state[i] = s
        s = bool(back1[i]) if s else bool(back0[i])
    return state


def redecide(rig: Rig, xy: np.ndarray, w: np.ndarray, R: np.ndarray, where: np.ndarray, swapped: np.ndarray,
             perm: np.ndarray, member: np.ndarray, scale: np.ndarray, truncate: float, margin: float,
             mirrored: np.ndarray) -> np.ndarray:
    """``swapped`` (F, C, G) with every view of the frames ``where`` (F, G) decided again against the
    reference points R (F, J, 3): a group is exchanged where its detections xy (F, C, J, 2), as given,
    are farther (truncated squares in the cameras' noise ``scale`` (C,), summed) than exchanged, by more
    than ``margin``; a view without such evidence keeps its decision. In the ``mirrored`` (F, G) frames (the
    views' consensus was found mirrored, R is its correction) any difference decides, and a view without
    one turns its decision over."""
    out = swapped.copy()
    frames = np.flatnonzero(where.any(axis=1))
    if frames.size == 0:
        return out
    for c, cam in enumerate(rig.cameras):
        p = cam.project(R[frames])  # (n, J, 2)
        d = xy[frames, c]
        ok = (w[frames, c] > 0) & (w[frames, c][:, perm] > 0) & finite(p)
        s = scale[c]
        dp, xp = d - p, d[:, perm] - p
        given = np.where(ok, np.minimum(distance(dp[..., 0], dp[..., 1]) / s, truncate) ** 2, 0.0)
        exchanged = np.where(ok, np.minimum(distance(xp[..., 0], xp[..., 1]) / s, truncate) ** 2, 0.0)
        cg, cx = given @ member, exchanged @ member  # (n, G)
        m = mirrored[frames]
        evidence = (ok[:, :, None] & member).any(axis=1) & (np.abs(cg - cx) > np.where(m, 0.0, margin)) & (cg != cx)
        decided = np.where(evidence, cx < cg, swapped[frames, c] ^ m)
        out[frames, c] = np.where(where[frames], decided, swapped[frames, c])
    return out


def decide(cost_given: np.ndarray, cost_swapped: np.ndarray, cfg) -> np.ndarray:
    """(F, C, G) costs → (F, C, G) bool, the groups to exchange: dead zone, then Viterbi over frames; then once more
    with a pull of ``cfg.follow`` towards the other groups' choice where they agree (a detector flips a whole body
    more often than a part, and a group with little evidence follows). ``cfg``: a
    :class:`~mocap.geometry.swaps.SwapConfig` (its dead_zone, switch, follow; not imported: swaps imports this)."""
    F, C, G = cost_given.shape
    delta = cost_given - cost_swapped  # > 0: the exchange explains the view better
    c0 = np.maximum(delta - cfg.dead_zone, 0.0)
    c1 = np.maximum(-delta - cfg.dead_zone, 0.0)
    state = viterbi(c0.reshape(F, -1), c1.reshape(F, -1), cfg.switch).reshape(F, C, G)
    if G < 2 or cfg.follow <= 0:
        return state
    n = state.sum(axis=2, keepdims=True) - state  # how many other groups are exchanged
    c0 = c0 + cfg.follow * (n == G - 1)
    c1 = c1 + cfg.follow * (n == 0)
    return viterbi(c0.reshape(F, -1), c1.reshape(F, -1), cfg.switch).reshape(F, C, G)


def viterbi(cost0: np.ndarray, cost1: np.ndarray, switch: float) -> np.ndarray:
    """Two-state sequences of least cost: cost0, cost1 (F, N) per frame, ``switch`` per change →
    (F, N) bool, True where state 1 is chosen. Starts and ends free.

    Runs on D = acc1 − acc0 alone: D_f = clip(D_{f−1}, −switch, switch) + cost1_f − cost0_f; the best
    predecessor of state 0 is 1 where D_{f−1} < −switch, of state 1 is 1 where D_{f−1} ≤ switch. Both
    recurrences are scans of maps that compose in closed form (a clamp then a shift; a map of {0, 1}),
    evaluated in log2(F) vectorised passes instead of a loop over frames.
    """
    F = cost0.shape[0]
    D = _clamped_sums(cost1 - cost0, switch)
    state = np.empty(D.shape, bool)
    last = D[-1] < 0
    state[-1] = last
    if F > 1:
        # state f given state f+1 = 0 (z) or 1 (o); composed backwards: state f given the last state
        z, o = D[:-1] < -switch, D[:-1] <= switch
        j = 1
        while j < F - 1:
            z[:-j], o[:-j] = np.where(z[j:], o[:-j], z[:-j]), np.where(o[j:], o[:-j], z[:-j])
            j *= 2
        state[:-1] = np.where(last, o, z)
    return state


def _clamped_sums(step: np.ndarray, switch: float) -> np.ndarray:
    """D_0 = step_0, D_f = clip(D_{f−1}, −switch, switch) + step_f, per column of step (F, N). Each frame's
    map x ↦ min(max(x + p, lo), hi) composes with another into one of the same form, so a prefix scan
    (Hillis–Steele) gives every D_f."""
    p = step.astype(float)
    lo, hi = p - switch, p + switch
    lo[0], hi[0] = -np.inf, np.inf
    k = 1
    while k < len(p):  # the map of frame f after the one ending k frames earlier
        p2, lo2, hi2 = p[k:], lo[k:], hi[k:]
        new_lo = np.maximum(lo[:-k] + p2, lo2)
        new_hi = np.minimum(np.maximum(hi[:-k] + p2, lo2), hi2)
        p[k:], lo[k:], hi[k:] = p[:-k] + p2, new_lo, new_hi
        k *= 2
    return np.minimum(np.maximum(p, lo), hi)


def swap_permutations(perm: np.ndarray, member: np.ndarray, swapped: np.ndarray) -> np.ndarray:
    """Joint order per view: perm (J,) the full mirror permutation, member (J, G), swapped (..., G) →
    (..., J) indices such that ``data[..., idx, :]`` is the repaired view."""
    J = perm.shape[0]
    flip = np.zeros(swapped.shape[:-1] + (J,), bool)  # (..., J); the groups written out (any over an axis of
    for g in range(member.shape[1]):  # two or three costs several times as much)
        flip |= swapped[..., g, None] & member[:, g]
    return np.where(flip, perm, np.arange(J))
