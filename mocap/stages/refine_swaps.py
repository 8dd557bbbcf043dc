"""Left/right swaps the triangulate stage's repair could not decide, found against the refined trajectory.

The swap repair (:mod:`mocap.geometry.swaps`) tests each view against the other views: it needs three views
of a joint. Where a person is seen by two views only (the others lost them), a view whose detector exchanged
left and right stays exchanged, and when both views are exchanged their consensus is itself mirrored. The
refined trajectory knows more than those two views: time (the body cannot jump to its mirror image between
two frames) and the bones. So after a first refine, each view's body-side group (head, arms, legs) in each
frame is compared as given and exchanged with the refined points' projection: where it is far (beyond
``outlier_sigma`` σ of refine's noise) as given and less than half as far exchanged (the group's median, and
half of its joints each: two outliers among four joints are no swap), the view's group is
exchanged and the person refined again from those keypoints; again while new ones show (a leg bridged across
the frames its observations were exchanged in moves to them only once the arms are right), at most
:data:`ROUNDS` times, each group once.

Real two-person footage (Pose2Sim's multi-person demo): the man was seen by two views only in frames 54–65
(the detector lost him in the other two), both with exchanged sides the repair left; those frames made one
camera's P95 reprojection error 187 px (41 px without them). The swap repair now decides such two-view stretches
itself from continuity in 3D (:mod:`mocap.geometry.swaps_two`); this check catches what is left (on that take 12
view-frames instead of 21: the stretch's edges, frames 54–55 and 64–65, and 45, 48, 70–71).
"""

from __future__ import annotations

import numpy as np

from mocap.geometry.swaps import swap_groups, swap_permutations
from mocap.keypoint_sets import get_keypoint_set
from mocap.types import Rig

MIN_JOINTS = 2  # a group's decision needs this many joints seen both as given and exchanged
BETTER = 0.5  # exchanged must be at most this share of the distance as given
ROUNDS = 3  # refines after the first one, at most
MOST = 0.5  # share of the group's joints that must each be far as given and less than half as far exchanged


def find_swaps(rig: Rig, xy: np.ndarray, w: np.ndarray, X: np.ndarray, keypoint_set: str,
               sigma_px: float | np.ndarray, limit_sigma: float) -> np.ndarray:
    """(F, C, G) bool: the view groups far from the refined points X (F, J, 3) as given and less than half as far
    exchanged. xy
    (F, C, J, 2) the person's keypoints, w (F, C, J) their weights (0: unused); a group is judged on the median
    distance of its observed joints, in pixels, against ``limit_sigma`` × ``sigma_px`` (one σ, or (C,) one per
    camera when refine weighed the cameras by their own noise)."""
    ks = get_keypoint_set(keypoint_set)
    perm = np.asarray(ks.flip_permutation)
    member = swap_groups(ks)[1][: xy.shape[2]]
    F, C, J = w.shape
    out = np.zeros((F, C, member.shape[1]), bool)
    if len(perm) != J or not np.any(perm != np.arange(J)):
        return out
    limit = limit_sigma * np.broadcast_to(np.asarray(sigma_px, float), (C,))[None, :]  # (1, C)
    uv = np.moveaxis(rig.project(X.reshape(-1, 3)).reshape(C, F, J, 2), 0, 1)  # (F, C, J, 2)
    seen = (w > 0) & np.isfinite(xy).all(axis=-1)
    with np.errstate(invalid="ignore"):
        given = np.where(seen, np.linalg.norm(uv - xy, axis=-1), np.nan)
        mirror = np.where(seen[..., perm], np.linalg.norm(uv - xy[..., perm, :], axis=-1), np.nan)
    for g in range(member.shape[1]):
        j = np.flatnonzero(member[:, g])
        both = np.isfinite(given[..., j]) & np.isfinite(mirror[..., j])
        ok = both.sum(axis=-1) >= MIN_JOINTS
        if not ok.any():
            continue
        a = _median(np.where(both, given[..., j], np.nan), ok)
        b = _median(np.where(both, mirror[..., j], np.nan), ok)
        with np.errstate(invalid="ignore"):  # and most of its joints on their own (not two outliers of four)
            better = both & (given[..., j] > limit[..., None]) & (mirror[..., j] < BETTER * given[..., j])
        most = better.sum(axis=-1) >= MOST * both.sum(axis=-1)
        out[..., g] = ok & most & (a > limit) & (b < BETTER * a)
    return out


def _median(v: np.ndarray, ok: np.ndarray) -> np.ndarray:
    out = np.full(ok.shape, np.nan)
    out[ok] = np.nanmedian(v[ok], axis=-1)
    return out


def apply(data: np.ndarray, swapped: np.ndarray, keypoint_set: str) -> np.ndarray:
    """The person's keypoints ``data`` (F, C, J, ...) (or their weights (F, C, J)) with the groups ``swapped``
    (F, C, G) exchanged."""
    ks = get_keypoint_set(keypoint_set)
    perm = np.asarray(ks.flip_permutation)
    member = swap_groups(ks)[1][: data.shape[2]]
    idx = swap_permutations(perm, member, swapped)  # (F, C, J)
    return np.take_along_axis(data, idx.reshape(idx.shape + (1,) * (data.ndim - 3)), axis=2)


def encode(swapped: np.ndarray, person: int) -> list[list[int]]:
    """[[frame, view, person, group bits], ...] (as the swap repair records its ``views``)."""
    f, c = np.nonzero(swapped.any(axis=-1))
    bits = (swapped[f, c] * (1 << np.arange(swapped.shape[-1]))).sum(axis=-1)
    return [[int(a), int(b), int(person), int(k)] for a, b, k in zip(f, c, bits, strict=True)]


def apply_recorded(data: np.ndarray, rows: list, keypoint_set: str) -> np.ndarray:
    """Keypoints (F, C, P, J, 3) with the recorded exchanges (:func:`encode`'s rows) applied."""
    if not rows:
        return data
    ks = get_keypoint_set(keypoint_set)
    G = swap_groups(ks)[1].shape[1]
    F, C, P = data.shape[:3]
    out = data.copy()
    for p in {int(r[2]) for r in rows}:
        sw = np.zeros((F, C, G), bool)
        for f, c, q, bits in rows:
            if q == p and f < F and c < C:
                sw[f, c] = [(int(bits) >> g) & 1 for g in range(G)]
        out[:, :, p] = apply(data[:, :, p], sw, keypoint_set)
    return out
