"""The independent parts of a :func:`mocap.optim.refine.refine_person` problem, solved one after the other.

Refine's cost couples two joints only through a bone of the keypoint set (and the acceleration prior couples a
joint only to itself). The hands of ``blazepose33_hands`` are bones among themselves: a hand keypoint set's
``{side}_hand_wrist`` is the hand model's wrist, not joined to the body's by a bone, so the body and the hands
are separate least-squares problems that one solve only shared its damping, its stopping rule, its conjugate
gradient's tolerance (relative to the whole gradient) and one noise level scaled per group. Solved apart:

- the body is exactly the body-only problem (same joints, bones, noise estimate, iterations): a take with
  hands refines its body as the same take without them;
- the hands stop when their own cost stops decreasing, measure their own 2D noise (hands are small, their
  detector is not the body's), and their solves are as exact relative to their own gradient as the body's —
  in one solve the body's gradient dominated, the hands' steps were loose and a hand seen by one view (its
  depth held only by its bones and the time prior) kept the whole problem iterating; their final pass ends
  once a step did what the quadratic model predicted (``model_stop`` of :class:`mocap.optim.refine._Problem`).

:func:`independent_parts` splits the joints by group: the body (group 0, its face points without bones
included: one problem as before), then each other group (both hands together: one problem of 42 points
costs less than two of 21, each step's work being the same and its overhead halved, and in as many steps).
A bone between two groups keeps everything in one problem.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from mocap.filters import bridged
from mocap.optim.refine_reach import out_of_reach


def independent_parts(n_joints: int, bones, groups: np.ndarray | None) -> list[np.ndarray]:
    """Joint index sets (sorted) that share no bone, to be refined as separate problems: the body (group 0)
    first, then each other group; one part of every joint when there are no groups, no body, or a bone joins
    two groups."""
    everything = [np.arange(n_joints)]
    if groups is None:
        return everything
    groups = np.asarray(groups)
    if groups.shape != (n_joints,):
        raise ValueError(f"refine: groups {groups.shape} do not match the {n_joints} joints (expected ({n_joints},))")
    if not (groups == 0).any() or (groups == 0).all() or any(groups[a] != groups[b] for a, b in bones):
        return everything
    return [np.flatnonzero(groups == g) for g in np.unique(groups)]


def part_bones(bones, part: np.ndarray) -> list[tuple[int, int]]:
    """The bones with both ends in ``part``, in the part's own indices."""
    index = {int(j): i for i, j in enumerate(part)}
    return [(index[a], index[b]) for a, b in bones if a in index and b in index]


def noise_ratio(prob, X: np.ndarray, body, body_fit) -> float:
    """σ of the 2D residuals of the refine problem ``prob`` at its start X relative to the body's (``body``, its
    :class:`mocap.optim.lm.RobustResult` ``body_fit``) at its start (robust, Rayleigh), in [0.1, 10]; 1 when
    either has too few observations (as :meth:`mocap.optim.refine._Problem.set_group_noise`)."""
    from mocap.optim.lm import rayleigh_sigma

    cams = prob.cam_scale[None, :, None]  # in each camera's noise units, as the body's residual norms
    mine, theirs = prob.pixel_norms(X) / cams, body_fit.initial_norms * body.scale
    a = rayleigh_sigma(mine[prob.w > 0]) if (prob.w > 0).sum() >= 20 else float("nan")
    b = rayleigh_sigma(theirs[body.w > 0]) if (body.w > 0).sum() >= 20 else float("nan")
    return float(np.clip(a / b, 0.1, 10.0)) if np.isfinite(a / b) and b > 0 else 1.0


def parts_noise(solved) -> dict[int, float]:
    """{group: the mean σ of its parts / the body's} of the parts solved by :func:`mocap.optim.refine.refine_person`
    ([(problem, its RobustResult, its joints)], the body's first), rounded for the log."""
    sig: dict[int, list[float]] = {}
    for prob, fit, _ in solved:
        sig.setdefault(int(prob.groups[0]), []).append(fit.sigma)
    base = solved[0][1].sigma
    return {g: round(float(np.mean(v)) / base, 2) if base > 0 else 1.0 for g, v in sig.items()}


DEPTHLESS_REACH_M = 1.5  # a point measured by one view, this far from its body's two-view joints: no depth


def unmeasured(X: np.ndarray, seen: np.ndarray, views: np.ndarray, max_gap: int, links=()) -> np.ndarray:
    """(T, J) the refined points X (T, J, 3) refine leaves out: outside every run of frames ``seen`` (T, J) by a
    view, bridged over ``max_gap`` frames (``max_gap // 2`` at the ends of a joint's runs, but never before the
    first or after the last frame where two views saw a joint of the person: the motion extrapolated there put
    a person arriving or leaving unseen, or seen by one view, 60-280 mm off within 0.2 s); and those whose
    depth nothing measured: outside every run seen by two views or more (``views`` (T, J, C) kept), bridged
    the same, and farther than ``DEPTHLESS_REACH_M`` from the median of that frame's two-view joints (in a frame
    with none, between two frames with some: from those medians interpolated, the body moving straight between
    them). A single view fixes a ray, not a point on it: over a long run the motion model alone places it, and on
    crowds it placed a joint 1-3 m off, or a whole person 2.3 m up from one camera's detections of something else.
    A whole body one view sees is another matter: its bones fix its size, so its depth (the size it is seen at),
    and the motion model joins it to the two-view frames either side; left out, the fit's slerp between them
    was 2-3× as far off (a walker seen by one of four cameras for 0.7-3 s: 138-259 mm mean against 51-132 mm).
    Then the points :func:`mocap.optim.refine_reach.out_of_reach` of the joints near them (``links``: the bones,
    loose ones too, as (a, b) joint indices)."""
    out = np.ones(seen.shape, bool)
    present = np.flatnonzero((views.sum(axis=-1) >= 2).any(axis=1))  # frames where two views saw a joint of it
    if not present.size:
        return out
    a, b = present[0], present[-1] + 1  # a joint's end gaps count from the person's arrival and departure
    X, seen, views = X[a:b], seen[a:b], views[a:b]
    two = views.sum(axis=-1) >= 2
    with np.errstate(invalid="ignore"):
        anchor = np.where(two[..., None], X, np.nan)
        ok = two.any(axis=1)
        body = np.empty((len(X), 3))
        body[ok] = np.nanmedian(anchor[ok], axis=1)  # ok[0] and ok[-1]: the frames between have some on each side
        t = np.arange(len(X))
        for k in range(3):
            body[~ok, k] = np.interp(t[~ok], t[ok], body[ok, k])
        far = ~(np.linalg.norm(X - body[:, None], axis=-1) <= DEPTHLESS_REACH_M)
    depthless = np.isfinite(X[..., 0]) & ~bridged(two, max_gap, max_gap // 2) & far
    out[a:b] = ~bridged(seen, max_gap, max_gap // 2) | depthless
    if len(links):
        out[a:b] |= out_of_reach(np.where(out[a:b, ..., None], np.nan, X), views, links)
    return out


def observed_span(uv: np.ndarray, w: np.ndarray, X0: np.ndarray) -> tuple[int, int]:
    """Frames [a, b) from a person's first observation or start point (uv (T, C, J, 2) with weight w (T, C, J) > 0,
    X0 (T, J, 3) finite) to the last; (0, 0) with none."""
    seen = ((w > 0) & np.isfinite(uv).all(axis=-1)).any(axis=(1, 2)) | np.isfinite(X0).all(axis=-1).any(axis=1)
    frames = np.flatnonzero(seen)
    return (int(frames[0]), int(frames[-1]) + 1) if frames.size else (0, 0)


def on_span(solve, rig, uv: np.ndarray, w: np.ndarray, X0: np.ndarray, *rest):
    """``solve`` (:func:`mocap.optim.refine.refine_person`) over the person's :func:`observed_span` only, its
    points, errors and views put back in the whole take's frames (NaN, none outside); None when the span is the
    whole take (or empty: the solver's own error). The frames outside hold nothing to measure, only the motion prior
    and the bone terms, and refine leaves them out (past the last frame two views saw); solved with the rest they
    cost the whole take's time and leave directions the solver wanders along: a person seen for 2 s of a 100 s take
    took 25-44 s a solve (24 iterations, 211-486 CG) instead of well under one. Their bone terms pulled on the span's
    edges a little: points within millimetres (toy takes of 400 frames cut at either end: MPJPE and P95 within
    0.04 mm; the 100 s take: each person's MPJPE, P95 and maximum the same)."""
    t0 = time.perf_counter()
    T, C, J = w.shape
    a, b = observed_span(uv, w, X0)
    if b <= a or (a == 0 and b == T):
        return None
    X, e, v, s = solve(rig, uv[a:b], w[a:b], X0[a:b], *rest)
    out, err, views = np.full((T, J, 3), np.nan), np.full((T, J), np.nan), np.zeros((T, J, C), bool)
    out[a:b], err[a:b], views[a:b] = X, e, v
    return out, err, views, replace(s, seconds=time.perf_counter() - t0)
