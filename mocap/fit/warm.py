"""Frames that the batched IK left in a local minimum, solved again from their neighbours' solutions.

Every frame starts from its own pose guess (:func:`.ik.initial_pose`); where that guess is far from the
answer (a limb near the singular direction of its smallest turn, a twist on the wrong side), the solver can
stop in a local minimum: a foot 60 mm off on exact keypoints, its neighbours' residuals under 1 mm. Such a
frame's residual stands out from its neighbours'. It is solved again from the previous and the next frame's
solutions (the motion is continuous at mocap frame rates), and the solution with the lowest cost (data,
vectors and hinge limits) is kept; a frame that improves lets its neighbours try again from it.

A limb whose start put its hinge's axis on the wrong side of its plane (a nearly straight knee whose plane
was guessed from a far frame) ends with the hinge pinned at a limit in every such frame: nothing stands out,
so those frames are solved again from the other side (the limb turned half a turn about its bone, the hinge's
angle negated), and the lower cost is kept.
"""

from __future__ import annotations

import numpy as np

from mocap.fit.ik import IKProblem, solve_ik
from mocap.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle, rotation_between
from mocap.types import forward_kinematics

WINDOW = 5  # frames each side whose median residual is a frame's yardstick
STANDS_OUT = 1.5  # a residual above this many times its neighbours' median ...
MARGIN_M = 0.001  # ... and more than this above it, is a suspect
ROUNDS = 4


def data_cost(pb: IKProblem, y: np.ndarray, wy: np.ndarray, vecs: np.ndarray, wv: np.ndarray, local: np.ndarray,
              root: np.ndarray) -> np.ndarray:
    """(F,) the IK's cost without its weak rest prior: weighted target and vector residuals and hinge limits."""
    G, p = forward_kinematics(pb.skeleton, local, root)
    rp = np.sum(wy * np.sum((p - np.nan_to_num(y)) ** 2, axis=2), axis=1) / pb.pos_sigma**2
    v = np.einsum("fvij,vj->fvi", G[:, pb.vec_joint], pb.vec_rest) - np.nan_to_num(vecs)
    rv = np.sum(wv * np.sum(v**2, axis=2), axis=1) / pb.vec_sigma**2
    out = rp + rv
    for h, axis in pb.hinge_axes.items():
        lo, hi = pb.limits.get(h, (-np.inf, np.inf))
        th = matrix_to_axis_angle(local[:, h]) @ axis
        out += (np.maximum(lo - th, 0) ** 2 + np.maximum(th - hi, 0) ** 2) / pb.limit_sigma**2
    return out


def suspects(rms: np.ndarray, has_data: np.ndarray) -> np.ndarray:
    """(F,) bool: frames whose residual stands out from the median of their neighbours' (frames with data)."""
    F = len(rms)
    idx = np.flatnonzero(has_data & np.isfinite(rms))
    out = np.zeros(F, bool)
    if idx.size < 3:
        return out
    r = rms[idx]
    win = np.lib.stride_tricks.sliding_window_view(np.pad(r, WINDOW, mode="edge"), 2 * WINDOW + 1)
    med = np.median(win, axis=1)
    out[idx] = (r > STANDS_OUT * med) & (r > med + MARGIN_M)
    return out


def retry_from_neighbours(pb: IKProblem, y: np.ndarray, wy: np.ndarray, vecs: np.ndarray, wv: np.ndarray,
                          local: np.ndarray, root: np.ndarray, rms: np.ndarray, has_data: np.ndarray,
                          iterations: int = 20) -> int:
    """In place: suspect frames (see the module) solved again from each neighbour with data; the lowest cost is
    kept. Returns the number of frames that took a neighbour's solution."""
    F = len(rms)
    fit = np.flatnonzero(has_data)
    if fit.size < 3:
        return 0
    pos = np.full(F, -1)
    pos[fit] = np.arange(fit.size)
    tried = np.zeros(F, bool)
    changed_total = np.zeros(F, bool)
    for _ in range(ROUNDS):
        todo = np.flatnonzero(suspects(rms, has_data) & ~tried)
        if todo.size == 0:
            break
        tried[todo] = True
        k = pos[todo]
        srcs = [fit[np.maximum(k - 1, 0)], fit[np.minimum(k + 1, fit.size - 1)]]
        f = np.concatenate([todo, todo])
        src = np.concatenate(srcs)
        use = src != f
        f, src = f[use], src[use]
        if f.size == 0:
            break
        l2, r2, rms2 = solve_ik(pb, y[f], wy[f], vecs[f], wv[f], local[src], root[src], iterations)
        c2 = data_cost(pb, y[f], wy[f], vecs[f], wv[f], l2, r2)
        best = data_cost(pb, y[todo], wy[todo], vecs[todo], wv[todo], local[todo], root[todo])
        best = dict(zip(todo.tolist(), best.tolist(), strict=True))
        changed = np.zeros(F, bool)
        for i, g in enumerate(f.tolist()):
            if c2[i] < 0.9 * best[g]:
                best[g] = c2[i]
                local[g], root[g], rms[g] = l2[i], r2[i], rms2[i]
                changed[g] = True
        if not changed.any():
            break
        changed_total |= changed
        # the neighbours of a frame that changed may now start better from it
        ch = pos[np.flatnonzero(changed)]
        near = np.concatenate([fit[np.maximum(ch - 1, 0)], fit[np.minimum(ch + 1, fit.size - 1)]])
        tried[near] = False
        tried[changed] = True
    return int(changed_total.sum())


PINNED_RAD = np.radians(1.0)  # a hinge within this of a limit (or beyond it) is pinned


def flip_pinned(pb: IKProblem, y: np.ndarray, wy: np.ndarray, vecs: np.ndarray, wv: np.ndarray, local: np.ndarray,
                root: np.ndarray, rms: np.ndarray, has_data: np.ndarray, iterations: int = 20) -> int:
    """In place: frames where a hinge whose parent is a ball (knee under hip, elbow under shoulder) is pinned at
    a limit while its child is seen, solved again with the limb turned half a turn about its bone; kept where the
    cost is lower and the limb's twist nearer its rest (a knee pinned straight because noisy points bend it
    backwards is right there: turned, the thigh would fit the noise with the knee pointing backwards). Returns
    the number of frames changed."""
    sk = pb.skeleton
    changed = np.zeros(len(rms), bool)
    for h, axis in pb.hinge_axes.items():
        b, kids = int(sk.parents[h]), np.flatnonzero(sk.parents == h)
        lo, hi = pb.limits.get(h, (-np.inf, np.inf))
        if b <= 0 or b in pb.hinge_axes or b in pb.dof2 or kids.size != 1 or not np.isfinite([lo, hi]).all():
            continue
        th = matrix_to_axis_angle(local[:, h]) @ axis
        f = np.flatnonzero(has_data & (wy[:, kids[0]] > 0) & (wy[:, h] > 0)
                           & ((th < lo + PINNED_RAD) | (th > hi - PINNED_RAD)))
        if f.size == 0:
            continue
        bone = sk.offsets[h] / max(np.linalg.norm(sk.offsets[h]), 1e-12)
        l0 = local[f].copy()
        l0[:, b] = l0[:, b] @ axis_angle_to_matrix(np.pi * bone)
        l0[:, h] = axis_angle_to_matrix(np.outer(-th[f], axis))
        l2, r2, rms2 = solve_ik(pb, y[f], wy[f], vecs[f], wv[f], l0, root[f], iterations)
        better = ((data_cost(pb, y[f], wy[f], vecs[f], wv[f], l2, r2)
                   < 0.9 * data_cost(pb, y[f], wy[f], vecs[f], wv[f], local[f], root[f]))
                  & (np.abs(_twist(l2[:, b], bone)) < np.abs(_twist(local[f, b], bone))))
        g = f[better]
        local[g], root[g], rms[g] = l2[better], r2[better], rms2[better]
        changed[g] = True
    return int(changed.sum())


def _twist(R: np.ndarray, bone: np.ndarray) -> np.ndarray:
    """(F,) the angle of rotations R (F, 3, 3) about the unit ``bone`` (3,) once their swing is taken out."""
    swing = rotation_between(np.broadcast_to(bone, (len(R), 3)), R @ bone)
    return matrix_to_axis_angle(np.swapaxes(swing, -1, -2) @ R) @ bone
