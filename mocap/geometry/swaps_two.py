"""Left/right swaps where a body side is seen by two views only: decided from continuity in 3D.

The per-view test (:func:`mocap.geometry.swaps.find_swaps`) scores a view against the point of the *other*
views: with two views of a body-side group (head, arms, legs) it has no evidence, and its time smoothing
carries a view's decision of the neighbouring frames into those frames, for every group alike. Two views
still say something: per frame there are four hypotheses (neither view exchanged, one, the other, both).
Exchanging one view pairs a left detection with a right one: the two rays miss each other (the
reprojection error of the two-view point, in the cameras' noise, tells). Exchanging both mirrors the
point: the left joint's point lands where the right joint is, a jump against the trajectory on either side
of the stretch. So per group, over each stretch of two-view frames (runs of ``MIN_STRETCH`` frames or more) and
the frames with three views or more within a link of it (their consensus points, of the views as repaired, with
two states of their own: as they are, or mirrored at a cost, since most of their views may be exchanged too), the
least-cost sequence of hypotheses is chosen by dynamic programming: reprojection error and bone lengths per frame,
the truncated squared step of the median joint between linked frames in units of the typical motion, a cost per
change of a view's decision within the stretch (``switch``), and a small prior per exchanged view (as given where
nothing decides: a stretch with no anchor cannot tell a mirror). A chain whose sequence does not beat its
two-view frames as they were by ``switch`` keeps them. Outliers (one view's detection of a joint far off) would
make a link's median joint jump, and a jump on either side of a run made the run's mirror cheap: a link measures
only the joints that are inliers in both its frames, and a frame with many outliers (``MIN_INLIER_SHARE``) is
left out of the chain and takes its neighbours' decision. Each group is decided on its own (a detector may exchange
the arms of a view and not its legs); a group whose two sides are too close for the motion (the head) follows
the other groups where they agree.

Shapes: F frames, C cameras, J joints, G groups, as in :mod:`mocap.geometry.swaps`.
"""

from __future__ import annotations

import logging

import numpy as np

from mocap.geometry.normal_terms import count_views, distance, finite, normal_terms, solve_terms
from mocap.geometry.swaps_time import (
    MAX_LINK_S,
    MIN_SCALE_M,
    PRIOR,
    RESOLVED,
    TRUNCATE,
    consensus_points,
    swap_permutations,
)
from mocap.types import Rig

log = logging.getLogger(__name__)
EXCHANGE_PRIOR = 0.25  # cost of each exchanged view per frame (squared noise scales): as given on a tie
MIRROR_PRIOR = PRIOR  # cost of an anchor frame's consensus found mirrored (it is right in most frames)
BONE_TOLERANCE = 0.15  # a bone's length is off by one unit at this share of its median length
MIN_STRETCH = 3  # two-view frames are decided here in runs of this many: a lone one keeps the decision of its
# neighbours one frame away, taken on the evidence of three views or more (and a lone frame's two detections
# are as often wrong either way: on real two-person footage, a leg occluded by the other person)
MIN_USABLE = 4  # a two-view frame is decided in 3D with this many joints seen, with their mirror joints, by both
MIN_JOINTS = 2  # a view sees a group with this many of its joints seen together with their mirror joints
# a two-view frame where fewer than this share of its joints are inliers (a joint whose cost in the two views under
# the frame's best hypothesis, or that hypothesis mirrored, is above one view's truncation: an outlier of one view, or
# another person's leg) is no node of the chain: the median joint of its links moved with those outliers, and such
# links on either side of a run of frames made the run's mirror the cheaper path (a walk's legs mirrored for 4
# frames, the hips then refined 126-195 mm off; 35-119 false exchanges in 100 two-view frames of a toy take with 5 %
# outliers). It takes its neighbours' decision unless its own evidence beats it by what its outliers may cost.
# The links of the others use the joints that are inliers in both frames. (0.6-0.99 give the same repairs.)
MIN_INLIER_SHARE = 0.75
HYPOTHESES = np.array([[False, False], [True, False], [False, True], [True, True]])  # (4, 2) per view


def seen_groups(w: np.ndarray, perm: np.ndarray, member: np.ndarray) -> np.ndarray:
    """(F, C, G) bool: the views that see each group (``MIN_JOINTS`` joints with their mirror joints)."""
    both = (w > 0) & (w[..., perm] > 0)
    return both.astype(np.int32) @ member.astype(np.int32) >= MIN_JOINTS


def decide_two_views(rig: Rig, xy: np.ndarray, xn: np.ndarray, w: np.ndarray, swapped: np.ndarray,
                     perm: np.ndarray, member: np.ndarray, scale: np.ndarray, truncate: float, switch: float,
                     max_reproj_px: float, fps: float | None, bones: np.ndarray | None = None) -> np.ndarray:
    """``swapped`` (F, C, G) with the two views of every frame where a group is seen by exactly two views decided
    again from continuity in 3D (see the module). xy, xn (F, C, J, 2) pixels and undistorted normalised
    coordinates, w (F, C, J) weights (0: unused), perm (J,), member (J, G), scale (C,) the cameras' noise px;
    ``truncate`` caps a joint's reprojection error in noise scales, ``switch`` is the cost of a view's change of
    decision between linked frames; ``fps`` None: only consecutive frames are linked; ``bones`` (B, 2) joint
    index pairs: their lengths count too."""
    bones = np.zeros((0, 2), int) if bones is None else np.asarray(bones, int).reshape(-1, 2)
    out = swapped.copy()
    seen = seen_groups(w, perm, member)
    n_views = seen.sum(axis=1)  # (F, G)
    max_link = max(1, int(round(MAX_LINK_S * fps))) if fps else 1
    results: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    weak: list[int] = []
    for g in range(member.shape[1]):
        two = _stretches(n_views[:, g] == 2, MIN_STRETCH)
        if two.size == 0:
            continue
        found = _decide_group(rig, xy, xn, w, swapped, seen[:, :, g], n_views[:, g], two, perm, member, g, scale,
                              truncate, switch, max_reproj_px, max_link, bones)
        if found is None:
            continue
        frames, views, states, resolved = found
        results[g] = (frames, views, states)
        if not resolved:
            weak.append(g)
    strong = [g for g in results if g not in weak]
    for g, (frames, views, states) in results.items():
        if g in weak and strong:  # too close to tell in 3D: the other groups' decision where they all agree
            others = swapped[frames[:, None], views][..., strong]  # (n, 2, S) as decided before
            for s in strong:
                f2, v2, st2 = results[s]
                at = {int(f): i for i, f in enumerate(f2)}
                for i, f in enumerate(frames):
                    k = at.get(int(f))
                    if k is None:
                        continue
                    for a in range(2):
                        hit = np.flatnonzero(v2[k] == views[i, a])
                        if hit.size:
                            others[i, a, strong.index(s)] = st2[k, hit[0]]
            agree = others.all(axis=-1) | ~others.any(axis=-1)
            states = np.where(agree, others[..., 0], states)
        out[frames[:, None], views, g] = states
        # a view with no detection of the group there has nothing to exchange (a decision carried in before)
        none = ~((w[frames] > 0) & member[:, g]).any(axis=2)  # (n, C)
        out[frames, :, g] &= ~none
    return out


def _decide_group(rig: Rig, xy: np.ndarray, xn: np.ndarray, w: np.ndarray, swapped: np.ndarray, seen: np.ndarray,
                  n_views: np.ndarray, two: np.ndarray, perm: np.ndarray, member: np.ndarray, g: int,
                  scale: np.ndarray, truncate: float, switch: float, max_reproj_px: float, max_link: int,
                  bones: np.ndarray):
    """Group g's two-view frames ``two`` decided: (frames (n,), their views (n, 2), states (n, 2) bool, whether
    the group's sides are resolved in 3D), or None where no frame has two usable joints."""
    F, C, J = w.shape
    joints = np.flatnonzero(member[:, g])
    local = np.full(J, -1)
    local[joints] = np.arange(joints.size)
    mirror = local[perm[joints]]  # (nj,) the mirror joint's position among the group's joints
    many = np.flatnonzero(n_views >= 3)  # the anchors: frames of three views or more within a link of the stretch
    near = np.zeros(F + 2 * max_link + 1, int)
    np.add.at(near, two, 1)
    near = np.convolve(near, np.ones(2 * max_link + 1, int))[max_link: max_link + F] > 0
    anchors = many[near[many]]
    # the anchors' points: the views as repaired, the views' consensus
    A = np.full((anchors.size, joints.size, 3), np.nan)
    if anchors.size:
        idx = swap_permutations(perm, member, swapped[anchors])
        P = consensus_points(rig, np.take_along_axis(xy[anchors], idx[..., None], axis=2),
                             np.take_along_axis(xn[anchors], idx[..., None], axis=2),
                             np.take_along_axis(w[anchors], idx, axis=2), max_reproj_px)
        A = P[:, joints]
    # the two views' points under each hypothesis (n, 4, nj, 3) and their reprojection cost (n, 4)
    views = np.array([np.flatnonzero(seen[f])[:2] for f in two])  # (n, 2)
    n = two.size
    ok = np.ones((n, joints.size), bool)
    for a in range(2):
        wv = w[two, views[:, a]][:, joints]
        ok &= (wv > 0) & (wv[:, mirror] > 0) & finite(xy[two, views[:, a]][:, joints]) & \
            finite(xy[two, views[:, a]][:, joints[mirror]])
    usable = ok.sum(axis=1) >= MIN_USABLE  # frames with too few joints of both views follow their neighbours
    if not usable.any():
        return None
    all_two, all_views = two, views
    two, views, ok = two[usable], views[usable], ok[usable]
    n = two.size
    src = np.where(HYPOTHESES[None, :, :, None], joints[mirror][None, None, None, :],
                   joints[None, None, None, :])  # (1, 4, 2, nj) the joint each view gives
    src = np.broadcast_to(src, (n, 4, 2, joints.size))
    fr = two[:, None, None, None]
    cam = views[:, None, :, None]
    obs_n = xn[fr, cam, src]  # (n, 4, 2, nj, 2)
    obs_px = xy[fr, cam, src]
    okb = np.broadcast_to(ok[:, None, None, :], src.shape)
    xnc = np.full((n, 4, joints.size, C, 2), np.nan)
    wc = np.zeros((n, 4, joints.size, C))
    for a in range(2):
        c = views[:, a]
        for k in range(C):
            sel = c == k
            if sel.any():
                xnc[sel, :, :, k] = obs_n[sel, :, a]
                wc[sel, :, :, k] = okb[sel, :, a]
    T = normal_terms(rig, xnc.reshape(-1, C, 2), wc.reshape(-1, C))
    X = solve_terms(T.sum(axis=1), count_views(wc.reshape(-1, C) > 0)[:, 0]).reshape(n, 4, joints.size, 3)
    jdata = np.zeros((n, 4, joints.size))  # per joint, both views
    for a in range(2):
        for k in range(C):
            sel = views[:, a] == k
            if not sel.any():
                continue
            p = rig.cameras[k].project(X[sel].reshape(-1, 3)).reshape(-1, 4, joints.size, 2)
            d = obs_px[sel, :, a]
            e = distance(p[..., 0] - d[..., 0], p[..., 1] - d[..., 1]) / scale[k]
            r = np.minimum(e, truncate) ** 2
            jdata[sel] += np.where(okb[sel, :, a] & np.isfinite(r), r, 0.0)
    data = jdata.sum(axis=-1)
    data += _bone_costs(X, A, bones, local, truncate, mirror)
    data += EXCHANGE_PRIOR * HYPOTHESES.sum(axis=1)[None, :]
    # the joints whose points are outliers (above one view's truncation in both views' sum) under the best
    # hypothesis or its mirror (the same detections, the points' labels exchanged) take no part in the links
    pair = np.where(np.argmin(data, axis=1) % 3 == 0, 0, 1)  # (n,) hypotheses 0/3 or 1/2
    jd = jdata[np.arange(n)[:, None], np.stack([pair, 3 - pair], axis=1)]  # (n, 2, nj)
    inlier = ~(jd > truncate**2).any(axis=1) & ok
    fits = inlier.sum(axis=1) >= MIN_INLIER_SHARE * ok.sum(axis=1)
    if not fits.any():
        return None
    own = {}  # the frames with more outliers: out of the chain, decided on their own data and their neighbours'
    if not fits.all():
        idx = np.flatnonzero(usable)
        # a hypothesis other than the neighbours' must win by what its outliers may cost (both views truncated)
        doubt = 2 * truncate**2 * (ok & ~inlier).sum(axis=1)
        own = {int(i): (d, m) for i, d, m in zip(idx[~fits], data[~fits], doubt[~fits], strict=True)}
        usable[idx[~fits]] = False
        two, views, ok, X, data, inlier = two[fits], views[fits], ok[fits], X[fits], data[fits], inlier[fits]
        n = two.size
    # the chain: anchors (one state, their views as repaired) and two-view frames (four), in time order
    frames = np.concatenate([two, anchors])
    order = np.argsort(frames, kind="stable")
    frames = frames[order]
    is_two = order < n
    # an anchor's consensus may itself be mirrored (most of its views exchanged): two states, the mirror at a cost
    nodes = [(X[i], data[i], views[i]) if i < n else
             (np.stack([A[i - n], A[i - n][mirror]]), np.array([0.0, MIRROR_PRIOR]), None) for i in order]
    inliers = [inlier[i] if i < n else np.ones(joints.size, bool) for i in order]
    steps = []  # the typical motion: per link, the smallest median step over its state pairs
    for i in range(1, len(nodes)):
        gap = frames[i] - frames[i - 1]
        if gap > max_link:
            continue
        d = np.linalg.norm(nodes[i][0][None] - nodes[i - 1][0][:, None], axis=-1)  # (Sa, Sb, nj)
        known = np.isfinite(d).all(axis=(0, 1))  # the same joints in every state
        if known.any():
            steps.append(np.median(d[..., known], axis=-1).min() / gap)
    step = float(np.median(steps)) if steps else MIN_SCALE_M
    unit = max(3.0 * step, MIN_SCALE_M)
    ref = A if anchors.size and finite(A).any() else X[:, 0]
    apart = np.linalg.norm(ref - ref[:, mirror], axis=-1)
    separation = float(np.median(apart[np.isfinite(apart)])) if np.isfinite(apart).any() else 0.0
    resolved = bool(separation >= RESOLVED * max(step, MIN_SCALE_M))  # a mirror moves the joints by more than
    # RESOLVED typical steps between frames (the head's sides, ~10 cm apart, may not)
    # the links between consecutive nodes (None: not linked, a new chain starts)
    links: list[np.ndarray | None] = [None]
    for i in range(1, len(nodes)):
        gap = frames[i] - frames[i - 1]
        if gap > max_link:
            links.append(None)
            continue
        d = np.linalg.norm(nodes[i][0][None] - nodes[i - 1][0][:, None], axis=-1) / (unit * gap)
        known = np.isfinite(d).all(axis=(0, 1))  # robust to a joint or two off (an outlier of one of two views):
        # the median joint's truncated square, times the number of joints; of the joints inliers in both frames
        # where two are (a different joint off in each of two frames was half of a head's four in a link, whose
        # mirror then cost less: runs of mirrored frames bracketed by such links)
        both = known & inliers[i - 1] & inliers[i]
        known = both if both.sum() >= 2 else known
        link = known.sum() * np.median(np.minimum(d[..., known], TRUNCATE) ** 2, axis=-1) if known.any() else \
            np.zeros(d.shape[:2])
        if nodes[i - 1][2] is not None and nodes[i][2] is not None:  # a view's change within the stretch
            link = link + switch * _changes(nodes[i - 1][2], nodes[i][2])
        links.append(link)
    state, total = _best_path([nd[1] for nd in nodes], links)
    # a chain whose decision is not clearly better (by ``switch``) than its two-view frames as they were keeps them
    prev = swapped[two[:, None], views, g].astype(int) @ np.array([1, 2])  # (n,) the hypothesis as they were
    held = [nd[1] if nd[2] is None else np.where(np.arange(4) == prev[order[i]], nd[1], np.inf)
            for i, nd in enumerate(nodes)]
    state_held, total_held = _best_path(held, links)
    chain = np.cumsum([lk is None for lk in links]) - 1
    keep_old = (total_held - total < switch)[chain]
    state = np.where(keep_old, state_held, state)
    keep = is_two
    if log.isEnabledFor(logging.DEBUG):
        log.debug("group %d: unit %.3f m, separation %.3f m, anchors %s", g, unit, separation, anchors.tolist())
        for i in range(len(nodes)):
            log.debug("  frame %d views %s data %s state %d kept %s", frames[i], nodes[i][2],
                      np.round(nodes[i][1], 1), state[i], keep_old[i])
    states = HYPOTHESES[state[keep]]  # (n, 2), of the usable frames (in time order, as ``two``)
    # the others: the state of the nearest usable frame of the same two views in their stretch, within a link (not
    # another stretch's decision, however far), or as they were
    out = swapped[all_two[:, None], all_views, g].copy()
    out[usable] = states
    stretch = np.cumsum(np.r_[1, np.diff(all_two) > 1])  # (n_all,) the run of consecutive frames of each
    for i in np.flatnonzero(~usable):
        same = np.flatnonzero((views == all_views[i]).all(axis=1) & (stretch[usable] == stretch[i])
                              & (np.abs(two - all_two[i]) <= max_link))
        if same.size:
            k = same[np.argmin(np.abs(two[same] - all_two[i]))]
            out[i] = states[k]
            if i in own:  # its own evidence against a change from its neighbour's decision
                cost, doubt = own[i]
                change = (states[k][None] != HYPOTHESES).sum(axis=1)
                out[i] = HYPOTHESES[np.argmin(cost + np.where(change > 0, doubt + switch * change, 0.0))]
    return all_two, all_views, out, resolved


def _stretches(mask: np.ndarray, min_length: int) -> np.ndarray:
    """The frames of ``mask`` (F,) in runs of at least ``min_length`` consecutive frames."""
    edges = np.diff(np.r_[0, mask.astype(np.int8), 0])
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    keep = ends - starts >= min_length
    return np.concatenate([np.arange(a, b) for a, b in zip(starts[keep], ends[keep], strict=True)] or
                          [np.zeros(0, int)])


def _best_path(data: list[np.ndarray], links: list[np.ndarray | None]) -> tuple[np.ndarray, np.ndarray]:
    """Least-cost states of a sequence of nodes: ``data`` (S_i,) per node, ``links`` (S_{i-1}, S_i) to the node
    before (None: a new chain starts) → the states (nodes,) and each chain's cost (chains,)."""
    cost = [data[0].copy()]
    back: list[np.ndarray | None] = [None]
    totals = []
    for i in range(1, len(data)):
        if links[i] is None:
            totals.append(cost[-1].min())
            cost.append(data[i].copy())
            back.append(None)
            continue
        total = cost[-1][:, None] + links[i]
        back.append(np.argmin(total, axis=0))
        cost.append(total.min(axis=0) + data[i])
    totals.append(cost[-1].min())
    state = np.zeros(len(data), int)
    s = int(np.argmin(cost[-1]))
    for i in range(len(data) - 1, -1, -1):
        state[i] = s
        if i:
            s = int(back[i][s]) if back[i] is not None else int(np.argmin(cost[i - 1]))
    return state, np.array(totals)


def _bone_costs(X: np.ndarray, A: np.ndarray, bones: np.ndarray, local: np.ndarray, truncate: float,
                mirror: np.ndarray | None = None) -> np.ndarray:
    """(n, 4) the group's bones (B, 2) joint indices, of the hypotheses' points X (n, 4, nj, 3) against their
    median length in the anchors' points A (k, nj, 3) (else in the hypotheses as given and both exchanged, which
    keep the lengths): truncated squares in units of ``BONE_TOLERANCE`` of that length. A view exchanged alone
    pairs a left detection with a right one: its bones stretch and shrink. With ``mirror`` (nj,) (each joint's
    mirror joint among the group's), a bone's reference pools its mirror bone's lengths: a mirror (both views
    exchanged) keeps the lengths, and a left/right difference of a few mm, seen through a two-view point's noise,
    chose the mirror of an entering person's arms for 23 frames (0.4-0.6 m off)."""
    inner = bones[(local[bones] >= 0).all(axis=1)]
    if inner.size == 0:
        return np.zeros(X.shape[:2])
    a, b = local[inner[:, 0]], local[inner[:, 1]]
    length = np.linalg.norm(X[..., a, :] - X[..., b, :], axis=-1)  # (n, 4, B)
    ref_pts = A if A.size and finite(A).any() else X[:, [0, 3]].reshape(-1, *X.shape[2:])
    ref_len = np.linalg.norm(ref_pts[:, a] - ref_pts[:, b], axis=-1)  # (k, B)
    if mirror is not None:  # each bone's lengths with its mirror bone's (a bone of the middle: its own twice)
        pair = {frozenset(p): i for i, p in enumerate(zip(a.tolist(), b.tolist(), strict=True))}
        twin = [pair.get(frozenset((mirror[i], mirror[j])), k) for k, (i, j) in enumerate(zip(a, b, strict=True))]
        ref_len = np.concatenate([ref_len, ref_len[:, twin]])  # (2k, B)
    known = np.isfinite(ref_len).any(axis=0)
    ref = np.full(inner.shape[0], np.nan)
    ref[known] = np.nanmedian(ref_len[:, known], axis=0)
    e = np.abs(length - ref) / (BONE_TOLERANCE * ref)
    return np.where(np.isfinite(e), np.minimum(e, truncate) ** 2, 0.0).sum(axis=-1)


def _changes(va: np.ndarray, vb: np.ndarray) -> np.ndarray:
    """(4, 4) how many views change their decision between two linked two-view frames of views va, vb (2,). Not
    to or from an anchor: its views' decisions are those of other evidence, which a detector may change with."""
    out = np.zeros((4, 4))
    for i, c in enumerate(va):
        j = np.flatnonzero(vb == c)
        if j.size:
            out += HYPOTHESES[:, i][:, None] != HYPOTHESES[:, j[0]][None, :]
    return out
