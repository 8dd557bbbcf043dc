"""Fitting across gaps: joints unseen for a while (even the hips, the root) are bridged, not guessed.

When a joint's target (or an orientation vector) is missing in a frame, the rotations that it would
have decided (its parent's and its own) are free or nearly free: the weak rest-pose prior of the IK
then lets them drift, and a batch solved frame by frame can land in far local minima (limb jumps).
Such frames are solved again here:

- the joints they affect get a prior towards the interpolation (slerp of local rotations) between
  the nearest frames on either side where the joint is determined, so an unseen joint moves
  smoothly across the gap and the seen ones still decide what they can (the kinematic chain gives
  the pelvis from the spine, shoulders and knees);
- the gap frames are solved outwards from the well-observed frames, a few frames at a time, each
  initialised from its nearest solved neighbour (root moved to fit the seen targets), so no frame
  starts far from its neighbours;
- the root's position, when a gap leaves its rotation free (the hips unseen), is only weakly placed by
  the seen joints (a flexible spine, two knees): the two sides of the gap settle in different minima
  with nearly equal residuals (a jump of the pelvis where they meet). The root's path across the gap
  is then smoothed (a jump becomes a ramp over the gap; the edges stay) and the final solve holds the
  root near it (``root_sigma``);
- one joint's gap edges may lie in another joint's gap (overlapping gaps): the interpolation is then
  taken again from the bridged frames and the gap frames solved once more from where they are;
- far from any frame where the hips were seen, with nothing of the legs seen either (a tight framing, a desk, a
  crowd hiding the lower bodies), no data places the pelvis and the interpolation held the rotation of a frame
  seconds away: the trunk pivoted about the shoulders, legs at rest thrown 0.5-1.8 m (a synthetic take framed
  above the knees: a person's fitted MPJPE 314 mm, max 1.79 m). Beyond ``hold`` frames from where the root was
  seen, the spine eases to its rest (straight) over ``hold`` more, and the root to upright (its heading kept)
  while the neck → head direction is within 60° of up; its path is released there (:func:`_to_rest`). Hips
  never seen in the take are such a gap in every frame where the legs are unseen too and the head is upright.
  One hip seen alone counts as the legs unseen: it places the pelvis but does not turn it (the same take with a
  hip refined in most frames: the other hip swung 0.32 m about it, the person's fitted MPJPE 193 → 123 mm).

The frames where each joint was unseen are returned as ranges, for the summary and the report.
"""

from __future__ import annotations

import numpy as np

from mocap.filters import gap_brackets, runs
from mocap.fit.ik import IKProblem, solve_ik
from mocap.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle, rotation_between
from mocap.optim.banded import second_difference_gram
from mocap.types import forward_kinematics

UPRIGHT_COS = 0.5  # an unseen root is turned upright where the neck → head direction is within 60° of up


def joint_gaps(names: list[str], wy: np.ndarray, has_data: np.ndarray) -> dict[str, list[tuple[int, int]]]:
    """Per joint seen somewhere in the take: the frame ranges (with data for other joints) where it
    has no target."""
    seen = (wy > 0).any(axis=0)
    out = {}
    for j in np.flatnonzero(seen):
        r = runs(has_data & (wy[:, j] <= 0))
        if r:
            out[names[j]] = r
    return out


def unseen_keypoints(names, xyz: np.ndarray, views: np.ndarray, fps: float, shortest_s: float = 0.1,
                     elsewhere: dict[str, list[tuple[int, int]]] | None = None) -> dict[str, list[tuple[int, int]]]:
    """Keypoint → frame ranges [start, stop) of at least ``shortest_s`` where the points hold it (``xyz`` (F, K,
    3)) while no camera saw it (``views`` (F, K, C)): placed by refine from the motion and the bones alone, and
    fitted as if measured (an ear unseen for 14 frames drifted 229 mm and turned a fitted head 100°: said).
    ``elsewhere``: keypoint → ranges the fit placed otherwise (the head fit, ``FitSummary.head_placed_ranges``),
    not refine's there."""
    placed = np.isfinite(xyz).all(axis=-1) & ~np.asarray(views, bool).any(axis=-1)  # (F, K)
    index = {str(n): k for k, n in enumerate(names)}
    for name, ranges in (elsewhere or {}).items():
        for a, b in ranges:
            placed[a:b, index[name]] = False
    least = max(1, int(round(shortest_s * fps)))
    out = {}
    for k in np.flatnonzero(placed.any(axis=0)):
        r = [(a, b) for a, b in runs(placed[:, k]) if b - a >= least]
        if r:
            out[str(names[k])] = r
    return out


def slerp(Ra: np.ndarray, Rb: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(N, 3, 3) rotations from Ra (t = 0) to Rb (t = 1) along the shortest arc."""
    w = matrix_to_axis_angle(np.swapaxes(Ra, -1, -2) @ Rb)
    return Ra @ axis_angle_to_matrix(w * np.asarray(t, float)[:, None])


def swing_twist_slerp(Ra: np.ndarray, Rb: np.ndarray, t: np.ndarray, bone: np.ndarray) -> np.ndarray:
    """Like :func:`slerp` for a joint whose segment points along ``bone`` (3,) at rest: the segment's
    direction moves along the great circle between its two directions and the twist about it turns
    evenly, so a change of twist does not swing the segment out of the way (as one slerp would)."""
    d = bone / np.linalg.norm(bone)
    ua, ub = Ra @ d, Rb @ d
    turn = slerp(rotation_between(np.broadcast_to(d, ua.shape), ua), rotation_between(ua, ub) @
                 rotation_between(np.broadcast_to(d, ua.shape), ua), t)  # swing: d → ua → ub
    u = turn @ d
    twist_a = matrix_to_axis_angle(np.swapaxes(rotation_between(np.broadcast_to(d, ua.shape), ua), -1, -2) @ Ra) @ d
    twist_b = matrix_to_axis_angle(np.swapaxes(rotation_between(np.broadcast_to(d, ub.shape), ub), -1, -2) @ Rb) @ d
    dt = np.angle(np.exp(1j * (twist_b - twist_a)))  # the shorter way round
    swing = rotation_between(np.broadcast_to(d, u.shape), u)
    return swing @ axis_angle_to_matrix(np.outer(twist_a + t * dt, d))


def interpolate(R: np.ndarray, known: np.ndarray, todo: np.ndarray, bone: np.ndarray | None = None) -> np.ndarray:
    """Rotations (F, 3, 3) known where ``known`` (F,) → values at frames ``todo`` (indices): slerp (swing
    and twist about ``bone`` when given) between the nearest known frames on each side, held beyond the
    first and last known frames."""
    good = np.flatnonzero(known)
    if good.size == 0:
        return np.tile(np.eye(3), (len(todo), 1, 1))
    k = np.searchsorted(good, todo)
    before, after = good[np.clip(k - 1, 0, good.size - 1)], good[np.clip(k, 0, good.size - 1)]
    span = after - before
    t = np.where(span > 0, (todo - before) / np.maximum(span, 1), 0.0)
    t = np.clip(np.where(todo < before, 0.0, np.where(todo > after, 1.0, t)), 0.0, 1.0)
    if bone is None:
        return slerp(R[before], R[after], t)
    return swing_twist_slerp(R[before], R[after], t, bone)


def bone_axes(sk) -> list[np.ndarray | None]:
    """Per joint, the rest direction of its segment when it has one child segment (limbs), else None."""
    out = []
    for j in range(len(sk.joint_names)):
        kids = [c for c in np.flatnonzero(sk.parents == j) if np.linalg.norm(sk.offsets[c]) > 1e-9]
        out.append(np.asarray(sk.offsets[kids[0]], float) if len(kids) == 1 else None)
    return out


def affected(pb: IKProblem, wy: np.ndarray, wv: np.ndarray, has_data: np.ndarray) -> np.ndarray:
    """(F, J): joints whose rotation a missing target or vector leaves (nearly) free in a frame: every
    rotation on the chains from a missing target to its mapped neighbours (up to and including the
    second mapped ancestor, whose rotation twists the segment above: the upper arm for an unseen wrist;
    down through unmapped descendants: the spine when the hips are unseen), and the joint of a missing
    vector. Only targets and vectors seen somewhere in the take count (a part
    never seen stays at rest)."""
    parents = pb.skeleton.parents
    mapped = (wy > 0).any(axis=0)
    miss = has_data[:, None] & (wy <= 0) & mapped
    vmiss = has_data[:, None] & (wv <= 0) & (wv > 0).any(axis=0)
    children = [np.flatnonzero(parents == j) for j in range(len(parents))]
    out = np.zeros_like(miss)
    for j in np.flatnonzero(miss.any(axis=0)):
        chain, k, above = [j], parents[j], 0
        while k >= 0 and above < 2:
            chain.append(k)
            above += bool(mapped[k])
            k = parents[k]
        todo = list(children[j])
        while todo:
            c = todo.pop()
            if not mapped[c]:
                chain.append(c)
                todo += list(children[c])
        out[:, chain] |= miss[:, j, None]
    for v, j in enumerate(pb.vec_joint):
        out[:, j] |= vmiss[:, v]
    return out


def smooth_path(x: np.ndarray, free: np.ndarray, known: np.ndarray) -> np.ndarray:
    """(F, 3) path ``x`` with each run of ``free`` frames replaced by a smooth curve through it: the least
    squares fit to the path there under a second-difference penalty whose cut-off scales with the run's
    length (a jump inside the run becomes a ramp across it), pinned to the ``known`` frames next to it."""
    from scipy.linalg import solveh_banded  # not at the top: see mocap.warm.EARLY

    out = x.copy()
    for a, b in runs(free):
        lo, hi = a - 1 if a > 0 and known[a - 1] else a, b + 1 if b < len(x) and known[b] else b
        n = hi - lo
        if n < 3:
            continue
        lam = (max(b - a, 1) / 4.0) ** 4  # a smoothing spline whose cut-off is about a quarter of the run
        ab = lam * second_difference_gram(n)
        w = np.ones(n)
        w[: a - lo], w[n - (hi - b):] = 1e6, 1e6  # the known edges stay
        ab[0] += w
        seg = np.nan_to_num(x[lo:hi])
        out[lo:hi] = solveh_banded(ab, w[:, None] * seg, lower=True, check_finite=False)
        out[lo:a], out[b:hi] = x[lo:a], x[b:hi]
    return out


def bridge(pb: IKProblem, y: np.ndarray, wy: np.ndarray, vecs: np.ndarray, wv: np.ndarray, local: np.ndarray,
           root: np.ndarray, rms: np.ndarray, has_data: np.ndarray, sigma: float, iterations: int = 20,
           rounds: int = 16, wy_gap: np.ndarray | None = None, wv_gap: np.ndarray | None = None,
           known: np.ndarray | None = None, root_sigma: float | None = None, hold: int | None = None) -> int:
    """Solve again, in place, the frames where some joint is unseen (see the module). ``local``,
    ``root``, ``rms``: the first solution of every frame with data. ``sigma`` (rad): how far a free
    rotation may leave the interpolation. ``rounds`` = 0: no outward solving, the gap frames are solved
    once from their first solution with the interpolation prior (enough for short chains: fingers).
    ``wy_gap`` (F, J), ``wv_gap`` (F, V): the weights that decide gaps, when they differ from ``wy``, ``wv``
    (a hand placed by several knuckles is not in a gap for missing one, nor for its fallback vectors,
    unused while its fingers are seen). ``known`` (F, J): the frames whose first solution of a joint comes
    from data, the only ones a gap is interpolated from (default: ``has_data`` for every joint; both hands'
    fingers in one problem: a hand's frames without finger data are solved from the prior alone). Returns the
    number of frames solved again. ``root_sigma`` (m): how far the root's position may leave its smoothed path
    (:func:`smooth_path`) in the final solve where a gap leaves the root's rotation free; None: no such term.
    ``hold`` (frames): beyond it from where the root was seen, a trunk with one point below it at most is eased
    straight and upright (:func:`_to_rest`); None: the interpolation everywhere."""
    aff = affected(pb, wy if wy_gap is None else wy_gap, wv if wv_gap is None else wv_gap, has_data)
    trunk = _trunk(pb, y, wy) if hold is not None else None
    if trunk is not None and not pb.fixed_root and not (wy[:, 0] > 0).any():  # the root never seen: with nothing
        chain, _, loose, up = trunk  # below it seen either, its rotation is free in every such frame
        aff[:, [j for j in chain if not (wy[:, j] > 0).any()]] |= (has_data & loose & up)[:, None]
    known = np.broadcast_to(has_data[:, None], aff.shape) if known is None else known
    gap = has_data & aff.any(axis=1)
    G = np.flatnonzero(gap)
    if G.size == 0:
        return 0
    ref = local.copy()
    bones = bone_axes(pb.skeleton)
    for a in np.flatnonzero(aff.any(axis=0)):
        todo = np.flatnonzero(aff[:, a])
        ref[todo, a] = interpolate(local[:, a], known[:, a] & ~aff[:, a], todo, bones[a])
    ref_w = aff / sigma
    ease = None
    if hold is not None:
        ease = _ease(known & ~aff, aff, hold)  # (F, J) 0 near a joint's known frames → 1 far from them
        _to_rest(trunk, ref, ease, local, wy, hold)
    pull = root_sigma is not None and not pb.fixed_root and aff[:, 0].any()
    rw = aff[:, 0] / root_sigma if pull else None
    good = np.flatnonzero(has_data & ~gap)
    if rounds == 0:
        local[G], root[G], rms[G] = solve_ik(pb, y[G], wy[G], vecs[G], wv[G], local[G], root[G], iterations, ref[G],
                                             ref_w[G])
        return int(G.size)
    if good.size == 0:  # nowhere to start from: the first solution, free joints set to the interpolation
        _solve(pb, G, G, y, wy, vecs, wv, local, root, rms, ref, ref_w, aff, iterations)
        return int(G.size)
    k = np.searchsorted(good, G)
    lo, hi = good[np.clip(k - 1, 0, good.size - 1)], good[np.clip(k, 0, good.size - 1)]
    dist = np.minimum(np.abs(G - lo), np.abs(hi - G))
    step = max(4, int(np.ceil(dist.max() / rounds)))
    solved = np.zeros(len(has_data), bool)
    solved[good] = True
    for r in range(int(np.ceil(dist.max() / step))):
        batch = G[(dist > r * step) & (dist <= (r + 1) * step)]
        if batch.size == 0:
            continue
        done = np.flatnonzero(solved)
        k = np.searchsorted(done, batch)
        before, after = done[np.clip(k - 1, 0, done.size - 1)], done[np.clip(k, 0, done.size - 1)]
        src = np.where(np.abs(batch - before) <= np.abs(after - batch), before, after)
        _solve(pb, batch, src, y, wy, vecs, wv, local, root, rms, ref, ref_w, aff, iterations)
        solved[batch] = True
    # the gap edges of one joint may lie in another joint's gap: interpolate again from the bridged frames
    for a in np.flatnonzero(aff.any(axis=0)):
        todo = np.flatnonzero(aff[:, a])
        ref[todo, a] = interpolate(local[:, a], known[:, a] & ~aff[:, a], todo, bones[a])
    if ease is not None:
        _to_rest(trunk, ref, ease, local, wy, hold)
    rref = smooth_path(root, aff[:, 0], known[:, 0] & ~aff[:, 0]) if pull else None
    if pull and ease is not None:  # far from the frames where the root was seen, its path was never measured
        rw = rw * (1.0 - ease[:, 0])
    local[G], root[G], rms[G] = solve_ik(pb, y[G], wy[G], vecs[G], wv[G], local[G], root[G], iterations, ref[G],
                                         ref_w[G], root_ref=None if rref is None else rref[G],
                                         root_w=None if rw is None else rw[G])
    return int(G.size)


def _ease(known: np.ndarray, aff: np.ndarray, hold: int) -> np.ndarray:
    """(F, J) per affected frame and joint: 0 within ``hold`` frames of the joint's nearest known frame, rising
    to 1 over the next ``hold`` frames (1 where the joint is never known)."""
    t = np.arange(len(aff))[:, None]
    a, b, _ = gap_brackets(known)
    out = np.clip((np.minimum(np.abs(t - a), np.abs(b - t)) - hold) / max(hold, 1), 0.0, 1.0)
    out[:, ~known.any(axis=0)] = 1.0
    return np.where(aff, out, 0.0)


def up_chain(sk) -> list[int]:
    """The trunk: the joints from the root up, each the child whose rest offset is nearest upright, while within
    60° of it (the rest pose is Z up; body22: hips, spine ×3, neck, head)."""
    chain = [0]
    while True:
        kids = np.flatnonzero(sk.parents == chain[-1])
        rise = [sk.offsets[k][2] / max(np.linalg.norm(sk.offsets[k]), 1e-12) for k in kids]  # most upright
        if not len(kids) or max(rise) <= 0.5:
            return chain
        chain.append(int(kids[int(np.argmax(rise))]))


def _trunk(pb: IKProblem, y: np.ndarray, wy: np.ndarray) -> tuple[list[int], np.ndarray, np.ndarray, np.ndarray]:
    """The trunk's chain (:func:`up_chain`); (J,) the joints below it (the root's other subtrees: the legs); (F,) the
    frames where one of those at most is seen (``loose``: else the hips or knees and the trunk turn the pelvis; one
    hip places it), and those where
    the trunk's two highest seen joints (neck, head) are within 60° of upright (``up``; the world is Z up)."""
    sk = pb.skeleton
    chain = up_chain(sk)
    below = np.zeros(len(sk.parents), bool)
    for j in range(1, len(sk.parents)):
        below[j] = (sk.parents[j] == 0 and j not in chain) or below[sk.parents[j]]
    loose = (wy[:, below] > 0).sum(axis=1) <= 1  # one point (a hip) places the pelvis, it does not turn it
    mapped = [j for j in chain if (wy[:, j] > 0).any()]
    up = np.zeros(len(loose), bool)
    if len(mapped) >= 2 and mapped[-2] != 0:
        top, low = mapped[-1], mapped[-2]
        d = y[:, top] - y[:, low]
        with np.errstate(invalid="ignore"):
            up = (wy[:, top] > 0) & (wy[:, low] > 0) & (d[:, 2] >= UPRIGHT_COS * np.linalg.norm(d, axis=1))
    return chain, below, loose, up


def _to_rest(trunk: tuple, ref: np.ndarray, ease: np.ndarray, local: np.ndarray, wy: np.ndarray, hold: int) -> None:
    """In place, in the frames where one point below the trunk at most is seen (``trunk``: :func:`_trunk`'s) and far
    from where the root was seen (``ease`` (F, J): 0 → 1): the trunk's unmapped joints (the spine) eased towards their
    rest rotation (straight), and the root towards upright (the world is Z up) with the heading of its rotation in
    ``local`` (averaged over 2 ``hold`` + 1 frames: one frame's solve is noisy) where the neck → head direction
    is near upright (a body lying down keeps the interpolation). ``ease``'s root column is left at what was
    applied (the root's path is released there)."""
    chain, _, loose, up = trunk
    for a in (j for j in chain[1:] if not (wy[:, j] > 0).any()):
        m = np.flatnonzero((ease[:, a] > 0) & loose)
        ref[m, a] = slerp(ref[m, a], np.tile(np.eye(3), (m.size, 1, 1)), ease[m, a])
    ease[:, 0] = np.where(up & loose, ease[:, 0], 0.0)
    m = np.flatnonzero(ease[:, 0] > 0)
    if m.size:
        x = local[m, 0][:, :, 0]  # the root's rest left-right axis in the world: its heading, from the seen trunk
        yaw = _smoothed(np.unwrap(np.arctan2(x[:, 1], x[:, 0])), 2 * hold + 1)
        upright = axis_angle_to_matrix(yaw[:, None] * np.array([0.0, 0.0, 1.0]))  # one frame's noise left out
        ref[m, 0] = slerp(ref[m, 0], upright, ease[m, 0])


def _smoothed(v: np.ndarray, width: int) -> np.ndarray:
    """(N,) moving average of v over ``width`` samples (fewer at the ends)."""
    k = np.ones(min(width, len(v)))
    return np.convolve(v, k, "same") / np.convolve(np.ones(len(v)), k, "same")


def _solve(pb: IKProblem, f: np.ndarray, src: np.ndarray, y, wy, vecs, wv, local, root, rms, ref, ref_w, aff,
           iterations: int) -> None:
    """Frames ``f`` from the solution at frames ``src``: free joints at their reference, the root moved so
    that the seen targets match on average; then the IK with the reference prior."""
    l0 = np.where(aff[f][..., None, None], ref[f], local[src])
    r0 = root[src].copy()
    _, p = forward_kinematics(pb.skeleton, l0, r0)
    w = wy[f]
    shift = np.einsum("fj,fjc->fc", w, np.nan_to_num(y[f]) - p) / np.maximum(w.sum(axis=1), 1e-12)[:, None]
    r0 = r0 + np.where(w.sum(axis=1)[:, None] > 0, shift, 0.0)
    if pb.fixed_root:  # the root stays where it is in these frames
        l0[:, 0], r0 = local[f, 0], root[f]
    local[f], root[f], rms[f] = solve_ik(pb, y[f], wy[f], vecs[f], wv[f], l0, r0, iterations, ref[f], ref_w[f])
