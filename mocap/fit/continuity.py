"""Orientation continuity: a joint rotation that flips between two frames whose points barely move is put back
on its neighbours' branch, where the data fit as well.

Each frame is solved on its own (:func:`.ik.initial_pose`, then the batched IK), and positions alone leave some
rotations ambiguous: a limb's twist about its bone while the hinge below it is nearly straight, the split of a
turn between a clavicle and its upper arm, or between the spine and the clavicles, where the total turn nears
half a turn. Two frames a few millimetres apart can then settle on different branches with the same residual: a
joint turns 90-180° in one frame (a skinned character pops) while the fit error does not see it (two-person
footage: a clavicle 161°, an upper arm 148° in one frame).

A boundary is a pair of consecutive fitted frames where some joint's local rotation changes by more than
:data:`JUMP_DEG`. From each boundary a walk goes each way: the frames after it are solved again from the frame
before it (and the frames before it from the frame after it), each frame starting from its own solution with the
joints that jumped turned, in their own frame, by the turn that took the last frame solved onto the branch it
follows (a twist of half a turn about a bone stays that twist), in chunks that grow (:data:`PROBE` frames first,
then four times as many), all walks in one batched solve per chunk. A walk stops where a frame comes back within
:data:`SAME_DEG` of its own solution or of the next old frame (the branches joined, or there was only one), where a
frame fits the data worse than its own solution by more than :data:`REL_TOL` of its cost plus :data:`ABS_TOL`
(never a worse position fit beyond that, judged as below), where a chunk's first frame does not follow (a jump the
data make comes back from any start; a joint back on its own solution there, turning as the data turn it, does not
count against the others that follow: :func:`_follows`), or after as many frames as the branch it copies holds on
its side of the boundary (a short run on another branch is put back; a long one is not overruled by a short one).
A walk is kept where it removes joints' jumps over :data:`JUMP_DEG` (one that ends at a jump has moved it, not
removed it; a turn the data make in another joint in the same frame stays and is not held against it); of walks
that touch the same frames, the one that removes more (then changes fewer frames) is kept. Rounds repeat while
boundaries go. A jump left (a joint winding away over a few frames and snapping back) is then eased: a window
around it solved again with the joints that turn there held near the interpolation between its edges
(:func:`_ease`; two jumps close together, into a run on another branch and out of it, over one window), kept on the
same terms but for what a nearly straight hinge's bend plane leaves free (:func:`_plane_allowance`). A jump the
points make (a knee's bend seen reversing through straight, a hand's keypoints turning 70° in a frame) stays:
following it is what fits them.

Which branch fits "as well" is judged on the points as measured: with ``judge`` weights (the fit's ``certainty``),
a point seen by one camera or none (refine's estimate, its depth from the motion prior) counts for little in the
costs compared, while every solve still fits all the points. A limb seen by one view or none for a while can bend
its estimated points nearly straight with their bend plane turning 45° a frame; following it turned the upper arm
and hand 135-171° in a frame, fitting the estimated points a few millimetres better. :data:`ABS_TOL` stays in the
judged cost's unit, so a frame whose points are all estimates may miss them by up to ~100 mm (one view) more on the
kept branch; scaling it by the frame's judged share of weight instead was tried: joint-frames over 45° 540 → 578
and one new 116° step over the takes below.

Measured (mocap fit on two-person footage, 60 fps): a clavicle's 151° and an upper arm's 153° jump in one frame
went to 35° and 30°, the fit's residual median unchanged; on CMU clips with 10-30 mm noise the joints over 45° a
frame went from 6-42 to 0-7 joint-frames, joint-angle error and MPJPE unchanged. Judged on the points as measured
(103 person-takes, 72 runs of the two real Pose2Sim demos and variations: one camera dark, blurred, compressed,
turned, bumped, occluded, dropped, ...): joint-frames over 45° 588 → 540, takes with a step over 90° 38 → 31, none
added; the two-person demo's woman RightHand 84° → 45°, her right arm at JPEG quality 3 (0-1 views for 30 frames)
173° → 54°; the fit's residual at points seen by two cameras unchanged.
"""

from __future__ import annotations

import logging

import numpy as np

from mocap.fit.gaps import bone_axes, slerp, swing_twist_slerp
from mocap.fit.ik import IKProblem, solve_ik
from mocap.fit.warm import data_cost
from mocap.geometry.rotations import geodesic_deg

log = logging.getLogger(__name__)

JUMP_DEG = 45.0  # a joint's local rotation changing more than this between consecutive fitted frames: a boundary
REL_TOL = 0.05  # a frame may take the other branch where its data cost grows by at most this fraction ...
ABS_TOL = 0.1  # ... plus this (the cost's unit: a 10 mm position residual, squared)
PROBE = 4  # a walk's first chunk, and its first after crossing a boundary; then 4× the last
SAME_DEG = JUMP_DEG / 2  # a frame whose joints all end within this of their own solution: the walk joined it
ROUNDS = 4
EASE = (2, 4, 8, 16)  # half-widths (frames) of the windows a remaining jump is eased over, the narrowest first
EASE_SIGMA = 0.1  # rad: how far an eased joint may leave the interpolation across the window
EASE_BATCH = 8  # jumps left at most this many: every window width in one solve (fewer calls; see _ease)
EASE_GROUP = 2 * EASE[-1]  # two jumps left closer than this (frames): eased together (a run on another branch)
STRAIGHT_DEG = 10.0  # a hinge whose points bend less than this leaves its bend plane to the detector's noise


def step_angles(local: np.ndarray) -> np.ndarray:
    """(n − 1, J) degrees: each joint's local rotation change between consecutive rows of ``local`` (n, J, 3, 3)."""
    return geodesic_deg(local[1:], local[:-1])


def _apart(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N,) the largest joint angle (degrees) between poses a and b (N, J, 3, 3)."""
    return geodesic_deg(a, b).max(axis=1)


def make_continuous(pb: IKProblem, y: np.ndarray, wy: np.ndarray, vecs: np.ndarray, wv: np.ndarray,
                    local: np.ndarray, root: np.ndarray, rms: np.ndarray, has_data: np.ndarray,
                    iterations: int = 20, judge: tuple[np.ndarray, np.ndarray] | None = None) -> int:
    """In place: frames on another branch than their neighbours (see the module) solved again on the neighbours'
    branch where the data fit as well: judged with ``judge`` = (wy, wv) weights when given (the points as measured),
    else with the solve's own. Returns the number of frames changed."""
    fit = np.flatnonzero(has_data)
    n = fit.size
    if n < 2:
        return 0
    args = (y[fit], wy[fit], vecs[fit], wv[fit])
    jw = (wy, wv) if judge is None else judge
    jargs = (y[fit], jw[0][fit], vecs[fit], jw[1][fit])
    L, R, E = local[fit], root[fit], rms[fit]  # copies, in fit order; written back at the end
    cost = data_cost(pb, *jargs, L, R)
    changed = np.zeros(n, bool)
    tried = np.zeros(n - 1, bool)
    for _ in range(ROUNDS):
        steps = step_angles(L)
        over = steps.max(axis=1) > JUMP_DEG
        todo = np.flatnonzero(over & ~tried)
        if todo.size == 0:
            break
        tried[todo] = True
        scored = []
        for seg, new in _walks(pb, args, jargs, L, R, cost, over, todo, iterations):
            lo, hi = max(int(seg[0]) - 1, 0), min(int(seg[-1]) + 1, n - 1)
            trial = L[lo:hi + 1].copy()
            trial[seg - lo] = new[0]
            after = step_angles(trial)
            # the joints' jumps it removes in its span (one that ends at a jump has moved it, not removed it; a turn
            # the data make in another joint there stays), and how much of the steps over SAME_DEG there goes
            gone = int((steps[lo:hi] > JUMP_DEG).sum() - (after > JUMP_DEG).sum())
            gain = float(np.maximum(steps[lo:hi] - SAME_DEG, 0).sum() - np.maximum(after - SAME_DEG, 0).sum())
            if gain > 0 and gone > 0:
                scored.append((-gone, seg.size, -gain, lo, hi, seg, new))
        used = np.zeros(n - 1, bool)  # the frame pairs a kept walk touched
        for *_, lo, hi, seg, new in sorted(scored, key=lambda t: t[:3]):
            if not used[lo:hi].any():
                used[lo:hi] = True
                L[seg], R[seg], E[seg], cost[seg] = new
                changed[seg] = True
        if not used.any():
            break
        tried[used] = False  # the boundaries a kept walk touched are looked at again
    changed |= _ease(pb, args, jargs, L, R, E, cost, iterations)
    if changed.any():
        local[fit], root[fit], rms[fit] = L, R, E
        log.info("%d frames put back on their neighbours' branch (a joint turning over %.0f° in one frame)",
                 int(changed.sum()), JUMP_DEG)
    return int(changed.sum())


def left_turns(names: list[str], local: np.ndarray, has_data: np.ndarray, most: int = 20) -> dict[str, list]:
    """The jumps the continuity pass left: joint → [[frame, degrees], ...] where its local rotation (``local``
    (F, J, 3, 3)) turns over :data:`JUMP_DEG` from the frame before (both fitted, ``has_data``), the largest
    ``most`` of the take. What stays is what the points make (a fast turn, a knee's bend seen reversing), or a
    twist they leave free over a nearly straight knee or elbow that neither branch fits clearly better where even
    the easing's allowance does not cover it: said, for an animator to check those frames."""
    f = np.flatnonzero(has_data[1:] & has_data[:-1])
    if f.size == 0:
        return {}
    steps = geodesic_deg(local[f + 1], local[f])  # (n, J)
    k, j = np.nonzero(steps > JUMP_DEG)
    order = np.argsort(-steps[k, j])[:most]
    out: dict[str, list] = {}
    for i in sorted(order, key=lambda i: (j[i], k[i])):
        out.setdefault(names[j[i]], []).append([int(f[k[i]] + 1), round(float(steps[k[i], j[i]]), 1)])
    return out


def _turned(old: np.ndarray, anchor: np.ndarray) -> np.ndarray:
    """Start poses for frames ``old`` (m, J, 3, 3), the first of which should follow ``anchor`` (J, 3, 3): each
    joint that differs there by more than half :data:`JUMP_DEG` turned, in its own frame, by the turn that takes
    the first frame's rotation onto the anchor's; the others keep their own (a rotation the data leave nearly free
    is not carried along the walk)."""
    C = np.swapaxes(old[0], -1, -2) @ anchor
    keep = geodesic_deg(old[0], anchor) <= JUMP_DEG / 2
    C[keep] = np.eye(3)
    out = old @ C
    out[0] = anchor
    return out


def _follows(anchor: np.ndarray, new: np.ndarray, old: np.ndarray) -> bool:
    """Whether a walk's frame solved again, ``new`` (J, 3, 3), follows the pose it was started from, ``anchor``,
    rather than coming back to its own solution ``old``: every joint within half the old step of the anchor (at
    least :data:`JUMP_DEG`); or some joint that jumped there (over :data:`JUMP_DEG` from the anchor) left its own
    solution by :data:`SAME_DEG` and each of the others is back within that of its own (a turn the data make
    there, which the old solution made as well: a hand's keypoints turning 88° in a frame does not stop the trunk's
    walk across it)."""
    to_anchor, to_old, step = geodesic_deg(anchor, new), geodesic_deg(new, old), geodesic_deg(anchor, old)
    limit = max(JUMP_DEG, float(step.max()) / 2)
    near = to_anchor <= limit
    moved = (to_old >= SAME_DEG) & (step > JUMP_DEG)
    return bool(near.all() or (np.all(near | (to_old <= SAME_DEG)) and moved.any()))


def _walks(pb, args, jargs, L, R, cost, over, todo, iterations):
    """From each boundary in ``todo`` both ways, the frames solved again on the branch of the frame across it
    (see the module): a list of (frames sorted, (local, root, rms, cost)) of the walks that changed something."""
    n = len(L)
    b = np.flatnonzero(over)
    # a walk changes at most as many frames as the branch it copies holds on its side of the boundary (the frames
    # back to the boundary before): a short run on another branch is put back, a long one is not overruled
    k = np.searchsorted(b, todo)
    after = np.append(b, n - 1)[k + 1] - todo  # frames from the boundary to the next one (or the end)
    before = todo - np.insert(b, 0, -1)[k]  # frames from the boundary to the previous one (or the start)
    # walk: [direction, next frame, pose it follows, chunk size, its solved parts, most frames]
    walks = [[d, i + 1 if d > 0 else i, L[i if d > 0 else i + 1], PROBE, [], int(cap)]
             for i, a, z in zip(todo.tolist(), after.tolist(), before.tolist(), strict=True)
             for d, cap in ((1, z), (-1, a))]
    going = list(range(len(walks)))
    while going:
        parts = []
        for w in going:
            d, first, anchor, size, done, cap = walks[w]
            size = min(size, cap - sum(p[0].size for p in done))
            last = first  # up to ``size`` frames, not across a boundary
            while abs(last - first) + 1 < size and 0 <= last + d < n and not over[min(last, last + d)]:
                last += d
            seg = np.arange(first, last + d, d)
            parts.append((seg, _turned(L[seg], anchor)))
        f = np.concatenate([p[0] for p in parts])
        l2, r2, e2 = solve_ik(pb, *(a[f] for a in args), np.concatenate([p[1] for p in parts]), R[f], iterations)
        c2 = data_cost(pb, *(a[f] for a in jargs), l2, r2)
        fits = c2 <= cost[f] * (1 + REL_TOL) + ABS_TOL
        same = _apart(l2, L[f]) < SAME_DEG
        nxt, s = [], 0
        for w, (seg, _) in zip(going, parts, strict=True):
            m = seg.size
            sl = slice(s, s + m)
            s += m
            d, first, anchor, size, done, cap = walks[w]
            if not _follows(anchor, l2[s - m], L[first]):
                continue
            bad = np.flatnonzero(~fits[sl])
            # joined: a frame back on its own solution, or one whose next old frame follows it
            nxt_old = np.clip(seg + d, 0, n - 1)
            joined = np.flatnonzero(same[sl] | ((_apart(l2[sl], L[nxt_old]) <= SAME_DEG) & (seg + d == nxt_old)))
            end = min(bad[0] if bad.size else m, joined[0] + 1 if joined.size else m)
            if end > 0:
                done.append((seg[:end], l2[sl][:end], r2[sl][:end], e2[sl][:end], c2[sl][:end]))
            step = seg[-1] + d
            if end < m or not 0 <= step < n or sum(p[0].size for p in done) >= cap:
                continue
            walks[w][1:4] = step, l2[s - 1], PROBE if over[min(seg[-1], step)] else 4 * size
            nxt.append(w)
        going = nxt
    out = []
    for *_, done, _ in walks:
        if done:
            seg = np.concatenate([p[0] for p in done])
            order = np.argsort(seg)
            out.append((seg[order], tuple(np.concatenate([p[k] for p in done])[order] for k in range(1, 5))))
    return out


def _ease(pb, args, jargs, L, R, E, cost, iterations) -> np.ndarray:
    """In place: each jump over :data:`JUMP_DEG` that no walk removed (a joint that winds away from its neighbours
    over a few frames and snaps back, with the same residual) solved again over a window around it with the joints
    that turn over :data:`SAME_DEG` there held near the interpolation between the window's edges (σ
    :data:`EASE_SIGMA`); kept where every frame fits as well (as for a walk) and the window's largest step is under
    :data:`JUMP_DEG`, the narrowest window first. Before that, two consecutive jumps that share a joint, less than
    :data:`EASE_GROUP` frames apart (into a run of frames on another branch and out of it), are eased over one window
    from before the first to after the second, whose edges are both on the neighbours' branch (the run put back, not
    ramped into), where a nearly straight hinge below a joint the window turns leaves its bend plane free between
    them: its frames may cost more by what turning that plane costs (:func:`_plane_allowance`; a hand's real turn
    10 frames before such a run was smoothed away with it while any two jumps were paired). A run eased so can keep a
    jump next to it from its own easing (an arm winding through a straight elbow, two runs beside two jumps: 4 frames
    left where jump by jump left 2): both orders are tried and the one that leaves fewer joint-frames over
    :data:`JUMP_DEG` kept (runs first on a tie). A jump the data make (a limb's bend seen reversing, a hand turning)
    stays. Returns the frames changed (n,).

    A window is solved only while none of its frames has changed and its jumps are left, so its solve depends on
    the frames as they were: with few jumps left (:data:`EASE_BATCH`) every width is solved in one batched call and
    the results are taken in the width-by-width order (the same windows, the same answers); with more, width by
    width (the wider windows of a jump a narrow one eased are not solved)."""
    best = None
    for order in ((True, False), (False,)):  # runs first, then jump by jump; and jump by jump alone
        trial = L.copy(), R.copy(), E.copy(), cost.copy()
        changed, used_runs = _ease_pass(pb, args, jargs, *trial, iterations, order)
        left = int((step_angles(trial[0]) > JUMP_DEG).sum())  # joint-frames left, as the turns are listed
        if best is None or left < best[0]:
            best = (left, changed, trial)
        if not used_runs:  # nothing eased as a run: the second order would do the same
            break
    _, changed, (L[:], R[:], E[:], cost[:]) = best
    return changed


def _ease_pass(pb, args, jargs, L, R, E, cost, iterations, order) -> tuple[np.ndarray, bool]:
    """One pass of :func:`_ease` over the windows of ``order`` (True: runs, False: single jumps), in place: the frames
    changed, and whether a run was eased."""
    changed = np.zeros(len(L), bool)
    bones = bone_axes(pb.skeleton)
    over = step_angles(L) > JUMP_DEG  # (n - 1, J): which joints jump where
    pending = np.flatnonzero(over.any(axis=1)).tolist()
    used_runs = False
    for runs in order:
        groups = [(i, j) for i, j in zip(pending, pending[1:], strict=False)  # the same for both orders of widths
                  if j - i < EASE_GROUP and (over[i] & over[j]).any()] if runs else [(i,) for i in pending]
        rounds = [EASE] if 0 < len(pending) <= EASE_BATCH else [(W,) for W in EASE]
        for widths in rounds:
            parts = [p for W in widths for p in _windows(L, groups, pending, changed, W)]
            allow = [_plane_allowance(pb, jargs[0], jargs[1], p[1], p[2]) if runs else (0.0, None) for p in parts]
            if runs:  # a run no straight hinge explains (over the frames between its jumps) is eased jump by jump
                keep = [bool(st[(p[1] > p[0][0]) & (p[1] <= p[0][1])].any()) for p, (_, st) in zip(parts, allow,
                                                                                                   strict=True)]
                parts = [p for p, k in zip(parts, keep, strict=True) if k]
                allow = [a for a, k in zip(allow, keep, strict=True) if k]
            allow = [a for a, _ in allow]
            if not parts:
                continue
            solved = _solve_windows(pb, args, jargs, L, R, parts, bones, iterations)
            done = set()
            for (jumps, win, _, worst), (l2, r2, e2, c2), allowance in zip(parts, solved, allow, strict=True):
                a, b = win[0] - 1, win[-1] + 1
                if done.intersection(jumps) or changed[a:b + 1].any():
                    continue
                trial = np.concatenate([L[a:a + 1], l2, L[b:b + 1]])
                if np.all(c2 <= (cost[win] + allowance) * (1 + REL_TOL) + ABS_TOL) and \
                        step_angles(trial).max() < min(JUMP_DEG, worst):
                    L[win], R[win], E[win], cost[win] = l2, r2, e2, c2
                    changed[win] = True
                    done.update(jumps)
                    used_runs |= runs
            pending = [i for i in pending if i not in done]
            if not pending:
                return changed, used_runs
    return changed, used_runs


def _windows(L, groups, pending, changed, W):
    """The windows of half-width ``W`` around each of ``groups`` (one jump, or two: after frames i and j) whose jumps
    are all still ``pending``, from W before its first jump to W after its last, that fit in the take and touch no
    changed frame: (the jumps, the frames inside the kept edges, the joints turning over SAME_DEG there (J,), the
    largest step there)."""
    out, left = [], set(pending)
    for jumps in groups:
        a, b = jumps[0] - W, jumps[-1] + W + 1  # the edges, kept
        if any(i not in left for i in jumps) or a < 0 or b >= len(L) or changed[a:b + 1].any():
            continue
        if len(jumps) > 1 and any(a <= i < b and i not in jumps for i in left):  # another jump in a run's window:
            continue  # held with it, a turn the points make there would be smoothed away (a hand's, 2 frames before)
        steps = step_angles(L[a:b + 1])
        out.append((tuple(jumps), np.arange(a + 1, b), (steps > SAME_DEG).any(axis=0), steps.max()))
    return out


def _plane_allowance(pb: IKProblem, y: np.ndarray, wy: np.ndarray, frames: np.ndarray,
                     free: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(len(frames),) how much more a frame of a window that puts a run back may cost, and (len(frames),) bool where
    such a hinge is there at all (its points on a line, exactly straight, cost nothing): per hinge (knee, elbow) whose
    parent turns in the window (``free`` (J,)) and whose target points bend less than :data:`STRAIGHT_DEG` there, the
    cost of its joint's target (``wy``-weighted, in the cost's unit) moved by twice its distance from the line through
    its parent's and its child's targets, which is what turning the bend plane half a turn moves it. A limb 5° from
    straight bends its points 17 mm off that line; a few millimetres of the detector's bias turn their plane 90°, and
    a thigh followed it 88° in one frame and back six frames later (the real Pose2Sim demo, the ankle at its twist
    limit all along), which no easing within the walk's tolerance undid; with this the twist stays with the
    neighbours' (its steps under 12° there) while the knee misses its points by up to 19 mm where it missed them by
    up to 13 mm on the twisted branch."""
    sk = pb.skeleton
    out, some = np.zeros(len(frames)), np.zeros(len(frames), bool)
    for h in pb.hinge_axes:
        kids = np.flatnonzero(sk.parents == h)
        if kids.size != 1 or sk.parents[h] < 0 or not free[sk.parents[h]]:
            continue
        a, b, c = y[frames, sk.parents[h]], y[frames, h], y[frames, kids[0]]
        u, v, line = b - a, c - b, c - a
        with np.errstate(invalid="ignore", divide="ignore"):
            cos = np.sum(u * v, axis=-1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1))
            d = np.linalg.norm(np.cross(u, line), axis=-1) / np.linalg.norm(line, axis=-1)
        straight = np.isfinite(d) & (cos > np.cos(np.radians(STRAIGHT_DEG))) & (wy[frames, h] > 0)
        out += np.where(straight, wy[frames, h] * (2 * np.nan_to_num(d) / pb.pos_sigma) ** 2, 0.0)
        some |= straight
    return out, some


def _solve_windows(pb, args, jargs, L, R, parts, bones, iterations):
    """Every window of ``parts`` (see :func:`_windows`) solved in one batched call, its turning joints held near the
    interpolation between its edges: per window (local, root, rms, judged cost)."""
    J = L.shape[1]
    f = np.concatenate([p[1] for p in parts])
    free = np.concatenate([np.broadcast_to(p[2], (p[1].size, J)) for p in parts])
    t = np.concatenate([np.arange(1, p[1].size + 1) / (p[1].size + 1) for p in parts])
    edge = np.concatenate([np.full(p[1].size, p[1][0] - 1) for p in parts])
    far = np.concatenate([np.full(p[1].size, p[1][-1] + 1) for p in parts])
    ref = L[f].copy()  # the free joints start from (and are held near) the interpolation; the others their own
    for j in np.flatnonzero(free.any(axis=0)):
        rows = np.flatnonzero(free[:, j])
        ra, rb = L[edge[rows], j], L[far[rows], j]
        ref[rows, j] = slerp(ra, rb, t[rows]) if bones[j] is None else swing_twist_slerp(ra, rb, t[rows], bones[j])
    l2, r2, e2 = solve_ik(pb, *(x[f] for x in args), ref, R[f], iterations, ref=ref,
                          ref_w=np.where(free, 1 / EASE_SIGMA, 0.0))
    c2 = data_cost(pb, *(x[f] for x in jargs), l2, r2)
    cuts = np.cumsum([p[1].size for p in parts])[:-1]
    return list(zip(*(np.split(x, cuts) for x in (l2, r2, e2, c2)), strict=True))
