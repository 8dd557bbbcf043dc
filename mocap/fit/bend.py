"""The start pose's twist of a ball joint aimed at its hinge child alone (shoulder → elbow, hip → knee), taken
from the plane the observed limb bends in (:func:`twist_to_bend`, called by :func:`.ik.initial_pose`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mocap.geometry.rotations import axis_angle_to_matrix

if TYPE_CHECKING:
    from mocap.fit.ik import IKProblem

MIN_BEND_DEG = 30.0  # an observed limb bent less than this does not tell its plane (detector noise would)
MAX_BEND_DEG = 170.0  # nor one folded back further than this (past every hinge's limit: the ends nearly meet)


def twist_to_bend(pb: IKProblem, h: int, below: list[int], Gj: np.ndarray, pj: np.ndarray, y: np.ndarray,
                   sel: np.ndarray, Gp: np.ndarray | None = None) -> np.ndarray:
    """A ball joint (not 2-DoF) aimed at its hinge child ``h`` alone (shoulder → elbow, hip → knee) leaves its
    twist about the bone free; the smallest turn can leave the hinge's axis across the limb's plane, where the hinge
    cannot bend toward the observed end and the solver holds the limb straight. At frames ``sel`` where the
    observed limb (joint ``pj`` (F, 3) → y[h] → y[below[0]]) bends by at least :data:`MIN_BEND_DEG` (and at
    most :data:`MAX_BEND_DEG`), the joint's world rotation ``Gj`` (F, 3, 3) is turned about the bone so the hinge
    axis is the normal of that plane, on the side that makes the bend inside the hinge's limits; the other frames of
    ``sel`` (a limb nearly straight: its plane is noise) take the plane of the nearest frame (in time order) that
    tells it, as seen from the joint's parent (``Gp`` (F, 3, 3), its world rotation; the world when None): a knee
    keeps pointing forward of the pelvis while the body turns (carried in world axes, the plane of a frame where the
    performer faced the other way bent a straight-ish knee backwards, pinned at its limit for 46 frames)."""
    if not below:
        return Gj
    u, v = y[:, h] - pj, y[:, below[0]] - y[:, h]
    nrm = np.cross(u, v)
    with np.errstate(invalid="ignore"):  # the bend: 0 straight, 180° folded back (not the sine of it: an elbow
        # folded past 150°, a hand at the shoulder, tells its plane as well; taken as straight, a take that holds it
        # kept the smallest turn and its hands ~300 mm off)
        bend = np.degrees(np.arctan2(np.linalg.norm(nrm, axis=1), np.sum(u * v, axis=1)))
        sure = sel & (bend >= MIN_BEND_DEG) & (bend <= MAX_BEND_DEG)
    if not sure.any():
        return Gj
    lo, hi = pb.limits.get(h, (0.0, np.pi))
    target = np.zeros_like(u)  # a positive angle about u × v turns u toward v
    target[sure] = nrm[sure] / np.linalg.norm(nrm[sure], axis=1, keepdims=True) * (1.0 if lo + hi >= 0 else -1.0)
    if Gp is not None:  # into the parent's frame
        target = np.einsum("fji,fj->fi", Gp, target)
    known, i = np.flatnonzero(sure), np.arange(len(u))
    k = np.searchsorted(known, i)
    after, before = known[np.minimum(k, known.size - 1)], known[np.maximum(k - 1, 0)]
    target = target[np.where(np.abs(i - before) < np.abs(after - i), before, after)]  # the nearest that tells
    if Gp is not None:  # back to the world, from each frame's parent
        target = np.einsum("fij,fj->fi", Gp, target)
    d = u[sel] / np.linalg.norm(u[sel], axis=1, keepdims=True)

    def across(x):  # the part of x (M, 3) square to the bone
        return x - np.sum(x * d, axis=1, keepdims=True) * d

    a, t = across(Gj[sel] @ pb.hinge_axes[h]), across(target[sel])
    phi = np.arctan2(np.sum(np.cross(a, t) * d, axis=1), np.sum(a * t, axis=1))
    out = Gj.copy()
    out[sel] = axis_angle_to_matrix(phi[:, None] * d) @ Gj[sel]
    return out
