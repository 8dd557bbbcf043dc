"""Fingers: a second IK pass per hand, conditioned on the fitted wrist (the hand model's wrist where it is seen,
:func:`at_hand_wrists`).

The body pass (:func:`mocap.fit.fit_motion`) solves the body with the finger bases (knuckles, thumb
CMC) as targets, so the hand's position and orientation come from the wrist and the palm together.
Each hand's fingers are then solved on their own, batched over frames: a small problem (the hand as a
root held at its fitted pose, 15 finger joints: 2-DoF bases, hinge PIP/DIP/IP with limits) whose
cost is a fraction of the body's. Frames where a finger is unseen are bridged from its neighbours
(:func:`mocap.fit.gaps.bridge`); a hand unseen for longer than ``max_gap_s`` eases (over 0.2 s) into the
rest pose (straight fingers) and those frames are flagged; a shorter gap at the take's start or end holds
the nearest seen pose. A finger gap is solved once with the interpolation
prior (no outward rounds as for the body: a finger chain is short and its first solution near).
"""

from __future__ import annotations

import logging

import numpy as np

from mocap.filters import runs
from mocap.fit.gaps import bridge, interpolate, joint_gaps, slerp
from mocap.fit.ik import IKProblem, initial_pose, solve_ik
from mocap.keypoint_sets import get_keypoint_set
from mocap.optim.banded import column_median
from mocap.skeletons import SkeletonSpec, flexion_spread_axes
from mocap.threads import thread_map
from mocap.types import Skeleton, forward_kinematics

log = logging.getLogger(__name__)
SIDES = ("Left", "Right")


def subset(sk: Skeleton, keep: list[int]) -> Skeleton:
    """The joints ``keep`` (parents first, the first one becomes the root) as a skeleton."""
    pos = {j: i for i, j in enumerate(keep)}
    parents = np.array([-1] + [pos[int(sk.parents[j])] for j in keep[1:]])
    offsets = sk.offsets[keep].copy()
    offsets[0] = 0.0
    return Skeleton(tuple(sk.joint_names[j] for j in keep), parents, offsets)


def joint_models(spec: SkeletonSpec, names: tuple[str, ...]) -> tuple[dict, dict, dict]:
    """Hinge axes, hinge limits (radians) and 2-DoF models of the joints ``names`` (indices into it)."""
    hinges, limits, dof2 = {}, {}, {}
    for i, n in enumerate(names):
        s = spec.joints.get(n)
        if s is None or s.axis is None:
            continue
        axis = np.asarray(s.axis, float) / np.linalg.norm(s.axis)
        if s.type == "hinge":
            hinges[i] = axis
            if s.limits_deg:
                limits[i] = tuple(np.radians(s.limits_deg))
        elif s.type == "2dof":
            flex, spread = flexion_spread_axes(spec, n)
            rows = np.stack([flex, spread, np.cross(flex, spread)])
            lo = tuple(np.radians(s.limits_deg)) if s.limits_deg else (-np.inf, np.inf)
            sp = tuple(np.radians(s.spread_deg)) if s.spread_deg else (-np.inf, np.inf)
            dof2[i] = (rows, lo, sp) + ((np.radians(s.twist_deg),) if s.twist_deg is not None else ())
    return hinges, limits, dof2


def models_of(models: tuple[dict, dict, dict], keep: list[int]) -> tuple[dict, dict, dict]:
    """The :func:`joint_models` of the skeleton's joints ``keep`` (re-indexed into it) from those of the whole
    skeleton, so that each joint's axes are worked out once per fit."""
    pos = {j: i for i, j in enumerate(keep)}
    return tuple({pos[j]: v for j, v in m.items() if j in pos} for m in models)  # type: ignore[return-value]


def subject_bones(spec: SkeletonSpec, y: np.ndarray, mapped: np.ndarray, symmetric: bool) -> tuple[Skeleton, list]:
    """:func:`mocap.fit.bones.estimate_bone_lengths` for a skeleton with fingers, cheaper: the body and the
    finger bases as usual, then each further finger bone from its own two joint centres (the median of
    their distance over the frames; scaled like the bone above it where unseen; ``symmetric`` applies to the
    body and the finger bases)."""
    from mocap.fit.bones import estimate_bone_lengths

    sk = spec.skeleton
    fingers = set(spec.finger_joints)
    keep = [j for j in range(len(sk.joint_names)) if sk.joint_names[j] not in fingers
            or sk.joint_names[sk.parents[j]] not in fingers]
    body, unseen = estimate_bone_lengths(subset(sk, keep), y[:, keep], mapped[keep], symmetric)
    offsets = sk.offsets.copy()
    offsets[keep[1:]] = body.offsets[1:]
    seen = np.isfinite(y).all(axis=2)
    rest = np.setdiff1d(np.arange(len(sk.joint_names)), keep)  # in joint order: parents first
    par = sk.parents[rest]
    both = seen[:, rest] & seen[:, par]
    d = np.where(both, np.linalg.norm(y[:, rest] - y[:, par], axis=2), np.nan)
    med = column_median(d)  # NaN where the two joints are never seen together
    for j, p, m in zip(rest, par, med, strict=True):
        if np.isfinite(m):
            offsets[j] = sk.offsets[j] * (m / np.linalg.norm(sk.offsets[j]))
        else:  # scaled like the bone above it
            offsets[j] = sk.offsets[j] * np.linalg.norm(offsets[p]) / np.linalg.norm(sk.offsets[p])
            if mapped[j]:
                unseen.append(sk.joint_names[j])
    return Skeleton(sk.joint_names, sk.parents, offsets), unseen


MAX_WRIST_GAP_M = 0.1  # the hand model's wrist is this arm's within this of the body model's (real demo: 19-28 mm)


def at_hand_wrists(names: tuple[str, ...], keypoint_set: str, pts: np.ndarray, y: np.ndarray, fps: float,
                   max_gap_s: float) -> np.ndarray:
    """The hand joints' targets ``y`` (F, J, 3) (the body model's wrist) moved, in place, onto the hand model's wrist
    (``left_hand_wrist`` / ``right_hand_wrist`` of ``pts`` (F, K, 3)) where it is seen: the finger bases and fingers
    are the hand model's points, placed from its wrist. On the real demo the two wrists are 19 / 28 mm apart, not by
    a constant offset; fitted from the body's wrist, the finger joints (relative to the wrist) lay 11 / 21 mm from
    the hand model's, from the hand model's wrist 5 / 7 mm. Where the hand is unseen: the body's wrist moved by the
    two wrists' offset at the nearest seen frames (interpolated across a gap of at most ``max_gap_s``, held at the
    take's ends, eased to nothing over 0.2 s in a longer gap), so the hand does not jump when it comes into view;
    so too where the hand model's wrist is over ``MAX_WRIST_GAP_M`` from the body's (another hand's). Returns ``y``."""
    joints = get_keypoint_set(keypoint_set).joints
    blend = max(int(round(0.2 * fps)), 1)
    for side, hand in (("left", "LeftHand"), ("right", "RightHand")):
        if hand not in names or f"{side}_hand_wrist" not in joints:
            continue
        j = names.index(hand)
        hw, bw = pts[:, joints.index(f"{side}_hand_wrist")], y[:, j]
        with np.errstate(invalid="ignore"):  # a hand model's wrist far from the body's: another hand (a crossed or
            far = np.linalg.norm(hw - bw, axis=1) > MAX_WRIST_GAP_M  # the other hand's crop), not this arm's
        hw = np.where(far[:, None], np.nan, hw)
        seen = np.isfinite(hw).all(axis=1)
        both = seen & np.isfinite(bw).all(axis=1)
        if not both.any():
            y[seen, j] = hw[seen]
            continue
        gap = hw - bw
        known = np.flatnonzero(both)
        offset = np.zeros_like(bw)
        for a, b in runs(~both):  # the hand (or the body's wrist) unseen: the offset at the seen frames either side
            t = np.arange(a, b)
            if (a > 0 or b < len(y)) and b - a <= max_gap_s * fps:  # held at the take's ends
                offset[a:b] = np.stack([np.interp(t, known, gap[known, c]) for c in range(3)], axis=1)
                continue
            wl = np.clip(1 - (t - a + 1) / (blend + 1), 0, 1) if a > 0 else np.zeros(len(t))
            wr = np.clip(1 - (b - t) / (blend + 1), 0, 1) if b < len(y) else np.zeros(len(t))
            edge = np.where(wl >= wr, a - 1, min(b, len(y) - 1))
            offset[a:b] = np.maximum(wl, wr)[:, None] * np.nan_to_num(gap[edge])
        y[:, j] = np.where(seen[:, None], hw, bw + offset)
    return y


def _to_rest(local: np.ndarray, seen: np.ndarray, has_data: np.ndarray, max_gap: int, blend: int) -> list:
    """In place: frames of ``local`` (F, n, 3, 3) where the hand is unseen (``has_data & ~seen``) follow
    the interpolation between their edges when the gap is at most ``max_gap`` frames, a gap at the take's
    start or end holding its one seen edge (as the body's unseen joints are held at the ends); longer gaps
    ease into the rest pose over ``blend`` frames. Returns the ranges held at rest (the longer gaps only)."""
    F, n = local.shape[:2]
    rest = []
    frames = np.flatnonzero(has_data)  # a frame with no data at all (a dropped frame) neither ends nor splits a gap
    for i, k in runs(~seen[frames]):
        a, b = int(frames[i]), int(frames[k - 1]) + 1
        left, right = i > 0, k < len(frames)  # the frames with data either side are seen
        todo = np.arange(a, b)[has_data[a:b]]
        if (left or right) and b - a <= max_gap:  # interpolated, or held beyond the first / last seen frame
            for j in range(n):
                local[todo, j] = interpolate(local[:, j], seen, todo)
            continue
        rest.append((a, b))
        lo, hi = (int(frames[i - 1]) if left else a - 1), (int(frames[k]) if right else b)  # the seen frames
        wl = np.clip(1 - (todo - lo) / (blend + 1), 0, 1) if left else np.zeros(len(todo))
        wr = np.clip(1 - (hi - todo) / (blend + 1), 0, 1) if right else np.zeros(len(todo))
        edge = np.clip(np.where(wl >= wr, lo, hi), 0, F - 1)
        for j in range(n):
            local[todo, j] = slerp(np.tile(np.eye(3), (len(todo), 1, 1)), local[edge, j], np.maximum(wl, wr))
    return rest


def fit_fingers(spec: SkeletonSpec, sk: Skeleton, y: np.ndarray, wy: np.ndarray, vecs: np.ndarray,
                wv: np.ndarray, vj: np.ndarray, vrest: np.ndarray, local: np.ndarray, root: np.ndarray,
                has_data: np.ndarray, fps: float, cfg, models: tuple[dict, dict, dict] | None = None,
                ) -> tuple[np.ndarray, dict, dict, int]:
    """Solve every hand's fingers in ``local`` (F, J, 3, 3) (in place) given the body pass's ``local`` and
    ``root``. ``models``: :func:`joint_models` of the whole skeleton ``sk`` (worked out here if None).
    Returns the fingers' RMS residual per frame (m, NaN without finger data), their gap ranges per joint,
    the frame ranges each hand was held at rest, and the number of frames bridged."""
    models = joint_models(spec, sk.joint_names) if models is None else models
    F = len(y)
    names = sk.joint_names
    fingers = set(spec.finger_joints)
    G, p = forward_kinematics(sk, np.where(has_data[:, None, None, None], local, np.eye(3)),
                              np.nan_to_num(root))
    # every hand with finger data in one problem: each hand's fingers in that hand's own frame (its fitted
    # rotation and position taken out), all below one root held at the identity; the hands share no joint,
    # so each finger is its own block of the IK step
    hands, sides = [], []
    for side in SIDES:
        if f"{side}Hand" not in names:
            continue
        hand = names.index(f"{side}Hand")
        below = [j for j in range(len(names)) if names[j] in fingers and sk.is_below(j, hand)]
        if below and (wy[:, below] > 0).any():
            hands.append((hand, below))
            sides.append(side)
    if not hands:
        return np.full(F, np.nan), {}, {}, 0
    keep = [j for _, below in hands for j in below]
    pos = {j: i + 1 for i, j in enumerate(keep)}
    hand_of = {j: hand for hand, below in hands for j in below}
    parents = np.array([-1] + [pos.get(int(sk.parents[j]), 0) for j in keep])
    sub = Skeleton(("Hands",) + tuple(names[j] for j in keep), parents,
                   np.concatenate([np.zeros((1, 3)), sk.offsets[keep]]))
    hinges, limits, dof2 = (dict(m) for m in models_of(models, [-1] + keep))
    vsel = [v for v in range(len(vj)) if int(vj[v]) in pos]
    pb = IKProblem(sub, hinges, limits, np.array([pos[int(vj[v])] for v in vsel], int),
                   vrest[vsel].reshape(-1, 3), dof2=dof2, fixed_root=True)
    Gt = np.swapaxes(G, -1, -2)  # world → each joint's frame
    ys = np.zeros((F, len(keep) + 1, 3))  # the root (the hand frame's origin) is held, unweighted
    ys[:, 1:] = np.einsum("fkij,fkj->fki", Gt[:, [hand_of[j] for j in keep]],
                          y[:, keep] - p[:, [hand_of[j] for j in keep]])
    ws = np.concatenate([np.zeros((F, 1)), wy[:, keep]], axis=1)
    vs = np.einsum("fvij,fvj->fvi", Gt[:, [hand_of[int(vj[v])] for v in vsel]], vecs[:, vsel]).reshape(F, -1, 3)
    wvs = wv[:, vsel].reshape(F, -1)
    cols = {}  # each hand's columns in the problem, its frames with finger data
    for hand, below in hands:
        cols[hand] = slice(pos[below[0]], pos[below[-1]] + 1)
    seen = {hand: has_data & (wy[:, below] > 0).any(axis=1) for hand, below in hands}
    any_seen = np.logical_or.reduce(list(seen.values()))
    ls = np.tile(np.eye(3), (F, len(keep) + 1, 1, 1))
    rs = np.zeros((F, 3))
    rms = np.full(F, np.nan)
    idx = np.flatnonzero(any_seen)
    iters = min(cfg.iterations, 10)  # a finger chain starts near its solution (Kabsch per joint)
    chunks = [idx[s:s + cfg.chunk_frames] for s in range(0, idx.size, cfg.chunk_frames)]

    def first(f):  # as the body's first solve: each frame its own, chunks on threads
        l0, _ = initial_pose(pb, ys[f], vs[f], root_rotation=np.tile(np.eye(3), (len(f), 1, 1)))
        return solve_ik(pb, ys[f], ws[f], vs[f], wvs[f], l0, rs[f], iters, model_stop=True)
    for f, (lf, rf, ef) in zip(chunks, thread_map(first, chunks, cfg.workers), strict=True):
        ls[f], rs[f], rms[f] = lf, rf, ef
    # a hand with no finger data in a frame is no gap there (it is held or eased to rest below)
    wy_gap, wv_gap = ws.copy(), wvs.copy()
    for hand, _ in hands:
        off = ~seen[hand]
        wy_gap[np.ix_(off, np.arange(cols[hand].start, cols[hand].stop))] = 1.0
        wv_gap[np.ix_(off, np.array([i for i, v in enumerate(vsel) if hand_of[int(vj[v])] == hand], int))] = 1.0
    # a gap of a hand's finger is interpolated from that hand's frames with finger data only (not from those
    # where only the other hand is seen, its fingers there solved from the prior alone)
    known = np.stack([any_seen] + [seen[hand_of[j]] for j in keep], axis=1)
    bridged = bridge(pb, ys, ws, vs, wvs, ls, rs, rms, any_seen, np.radians(cfg.gap_sigma_deg), iters, rounds=0,
                     wy_gap=wy_gap, wv_gap=wv_gap, known=known)
    gaps, rest = {}, {}
    max_gap, blend = int(round(cfg.max_gap_s * fps)), max(int(round(0.2 * fps)), 1)
    for (hand, below), side in zip(hands, sides, strict=True):
        c = cols[hand]
        gaps.update(joint_gaps([names[j] for j in below], ws[:, c], has_data))
        held = _to_rest(ls[:, c], seen[hand], has_data, max_gap, blend)
        if held:
            rest[f"{side}Hand"] = held
        local[:, below] = np.where(has_data[:, None, None, None], ls[:, c], local[:, below])
    _, pf = forward_kinematics(sub, ls, rs)
    w = ws[:, 1:]
    sq = np.sum(w * np.sum((pf[:, 1:] - np.nan_to_num(ys[:, 1:])) ** 2, axis=2), axis=1)
    cnt = w.sum(axis=1)
    frms = np.where(cnt > 0, np.sqrt(sq / np.maximum(cnt, 1e-12)), np.nan)
    return frms, gaps, rest, bridged
