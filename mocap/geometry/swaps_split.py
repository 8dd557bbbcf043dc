"""Frames where four views split two against two between a body side and its mirror: the 3D of one half, for time
to judge.

When two of four views exchange the same side at once, no view is outvoted: the point of all views is a
blend neither half agrees with, and leaving one view out still mixes both (two against one, pulled off by
the one). :func:`~mocap.geometry.swaps_time.consensus_points` then has no point there, or a wrong one, and
the test over time (:func:`~mocap.geometry.swaps_time.mirrored_frames`) cannot see the run. Agreement does
not tell the halves apart: two views alone always meet somewhere (their rays' closest points reproject
within a pixel when a side's two joints lie along an epipolar line). The mirror does: the right partition's
halves see the same body, one of them mirrored, so one half's point of a joint is the other half's point of
its mirror joint, while a pair that mixes both sides meets near the middle of the body, as does the other
such pair. Per frame and body-side group, the partition of its four views into two pairs whose halves are
each other's mirrors (a joint's point nearer its mirror joint's across the halves than its own, by
``MIRROR_RATIO``, median over the group's joints seen by the four views) gives those joints of every group
of the frame the point of the half holding the first camera (a detector exchanges a whole body more often
than a part, and the head's sides are too near each other to tell). That half may be the mirrored one: the
frames are returned as candidates for the test over time, which decides against the neighbouring frames
whether it is. A group is tested in a frame where most of its joints seen by four views have no consensus
point that three of them agree with (:func:`may_split` finds, cheaply, the frames where that may be so).

Shapes: F frames, C cameras, J joints, G groups, as in :mod:`mocap.geometry.swaps`.
"""

from __future__ import annotations

import numpy as np

from mocap.geometry.normal_terms import distance, finite, normal_terms, solve_terms
from mocap.types import Rig

VIEWS = 4  # with three views, two against one: leaving the one out settles it; with more, not done here
PARTITIONS = (((0, 1), (2, 3)), ((0, 2), (1, 3)), ((0, 3), (1, 2)))  # four views into two pairs
SPLIT_SHARE = 0.5  # a group is tested in a frame when at least this share of its joints seen by four views have
# no consensus point that three of them agree with (:func:`may_split`: the same with the point of all views)
MIRROR_RATIO = 0.25  # a partition's halves are each other's mirrors when a joint's point in one is this much
# nearer its mirror joint's in the other than its own (median)


def may_split(xy: np.ndarray, w: np.ndarray, agree: np.ndarray, member: np.ndarray) -> np.ndarray:
    """(F,) the frames worth testing: some group's joints seen by four views are, ``SPLIT_SHARE`` of them or more,
    agreed by fewer than three of those views with the point of all views, ``agree`` (F·J, C) frame-major."""
    F, C, J, _ = xy.shape
    if C < VIEWS:
        return np.zeros(F, bool)
    four = ((w > 0) & finite(xy)).sum(axis=1) == VIEWS  # (F, J)
    few = four & (agree.sum(axis=1).reshape(F, J) < VIEWS - 1)
    m = member.astype(float)
    return ((four @ m > 0) & (few @ m >= SPLIT_SHARE * (four @ m))).any(axis=1)


def _halves(rig: Rig, xy: np.ndarray, T: np.ndarray, views: np.ndarray, max_reproj_px: float) -> np.ndarray:
    """(partitions, 2, n, 3) the point of each half of each partition of the four ``views`` (n, 4) of n joints:
    the first camera's half, then the other; NaN where a view of the half does not see it (an outlier).
    xy (n, C, 2) pixels, T (n, C, 9) normal terms."""
    n = views.shape[0]
    rows = np.arange(n)
    out = np.full((len(PARTITIONS), 2, n, 3), np.nan)
    for k, parts in enumerate(PARTITIONS):
        for h, (a, b) in enumerate(parts):
            ca, cb = views[:, a], views[:, b]
            P = solve_terms(T[rows, ca] + T[rows, cb], np.full(n, 2))
            proj = np.stack([cam.project(P) for cam in rig.cameras], axis=1)  # (n, C, 2)
            for c in (ca, cb):
                e = proj[rows, c] - xy[rows, c]
                P[~(distance(e[:, 0], e[:, 1]) < max_reproj_px)] = np.nan
            out[k, h] = P
    return out


def _group_medians(values: np.ndarray, key: np.ndarray, n_keys: int) -> np.ndarray:
    """values (K, n) with NaN, key (n,) in [0, n_keys) → (K, n_keys) the medians per key, ignoring NaN (NaN for
    none): one padded array, not a loop over keys."""
    order = np.argsort(key, kind="stable")
    k = key[order]
    pos = np.arange(k.size) - np.searchsorted(k, k)  # the place of each value within its key
    pad = np.full((values.shape[0], n_keys, int(pos.max()) + 1 if k.size else 1), np.nan)
    pad[:, k, pos] = values[:, order]
    return nan_median_last(pad)


def nan_median_last(x: np.ndarray) -> np.ndarray:
    """``np.nanmedian(x, axis=-1)`` without its warning per all-NaN row (NaN there): numpy's small-array path warns
    once per such row, 11,000 times in a 2,000-frame take's swap repair, a tenth of its time."""
    s = np.sort(x, axis=-1)  # NaN last
    n = np.isfinite(x).sum(axis=-1)
    lo, hi = np.maximum((n - 1) // 2, 0), np.maximum(n // 2, 0)
    a = np.take_along_axis(s, lo[..., None], axis=-1)[..., 0]
    b = np.take_along_axis(s, np.minimum(hi, x.shape[-1] - 1)[..., None], axis=-1)[..., 0]
    return np.where(n > 0, (a + b) / 2, np.nan)


def fill_split(rig: Rig, xy: np.ndarray, xn: np.ndarray, w: np.ndarray, X: np.ndarray, member: np.ndarray,
               perm: np.ndarray, max_reproj_px: float) -> tuple[np.ndarray, np.ndarray]:
    """X (F, J, 3) consensus points of the pixels xy and normalised xn (F, C, J, 2) with weights w (F, C, J),
    member (J, G), perm (J,) the mirror joints → X with the joints seen by four views of the frames split two
    against two from the first camera's half, and those frames' groups (F, G) (see the module)."""
    F, C, J, _ = xy.shape
    G = member.shape[1]
    done = np.zeros((F, G), bool)
    if C < VIEWS or F == 0:
        return X, done
    used = (w > 0) & finite(xy)  # (F, C, J)
    four = used.sum(axis=1) == VIEWS  # (F, J)
    f4, j4 = np.nonzero(four)
    proj = np.stack([cam.project(X[f4, j4]) for cam in rig.cameras], axis=1)  # (n, C, 2); NaN: no point
    near = distance(*np.moveaxis(proj - xy[f4, :, j4], -1, 0)) < max_reproj_px
    unsure = np.zeros((F, J), bool)  # the consensus point, if any, is not one that three views agree with
    unsure[f4, j4] = (near & used[f4, :, j4]).sum(axis=1) < VIEWS - 1
    m = member.astype(float)
    split = (four @ m > 0) & ((unsure & four) @ m >= SPLIT_SHARE * (four @ m))  # (F, G) the groups to test
    # the joints: of every group in the frames where some group is tested (the head's sides are too near each
    # other to tell, and a detector exchanges a whole body more often than a part)
    rows_f, rows_j = np.nonzero(four & split.any(axis=1, keepdims=True) & member.any(axis=1))  # (n,)
    n = rows_f.size
    if n == 0:
        return X, done
    u = used[rows_f, :, rows_j]  # (n, C)
    views = np.argsort(~u, axis=1, kind="stable")[:, :VIEWS]  # (n, 4) the four views, in camera order
    T = normal_terms(rig, xn[rows_f, :, rows_j], np.where(u, w[rows_f, :, rows_j], 0.0))  # (n, C, 9)
    halves = _halves(rig, xy[rows_f, :, rows_j], T, views, max_reproj_px)
    at = np.full((F, J), -1)
    at[rows_f, rows_j] = np.arange(n)
    mate = at[rows_f, perm[rows_j]]  # the row of each joint's mirror joint (-1: not seen by four views)
    same = (mate >= 0) & np.all(views == views[np.maximum(mate, 0)], axis=1)  # by the same four views
    # a joint's point in one half to its mirror joint's in the other, either way round (a half may have none where
    # one of its views is an outlier), and to its own
    mirror = np.full((len(PARTITIONS), n, 2), np.nan)
    mirror[:, same, 0] = np.linalg.norm(halves[:, 0, same] - halves[:, 1, mate[same]], axis=-1)
    mirror[:, same, 1] = np.linalg.norm(halves[:, 1, same] - halves[:, 0, mate[same]], axis=-1)
    with np.errstate(invalid="ignore"):
        mirror = np.fmin(mirror[..., 0], mirror[..., 1])  # (partitions, n)
    direct = np.linalg.norm(halves[:, 0] - halves[:, 1], axis=-1)
    known = np.isfinite(mirror) & np.isfinite(direct)
    group = np.argmax(member[rows_j], axis=1)  # a joint is in one group
    key = rows_f * G + group
    med_mirror = _group_medians(np.where(known, mirror, np.nan), key, F * G)  # (partitions, F·G)
    med_direct = _group_medians(np.where(known, direct, np.nan), key, F * G)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.nan_to_num(med_mirror / med_direct, nan=np.inf).reshape(len(PARTITIONS), F, G)
    found = split & (ratio.min(axis=0) < MIRROR_RATIO)  # (F, G) a partition into halves that are mirrors
    best = np.where(found, ratio.argmin(axis=0), -1)
    k = best.max(axis=1)  # (F,) the frame's partition, where its groups that found one agree on it
    agree = found.any(axis=1) & np.all((best == k[:, None]) | (best < 0), axis=1)
    take = agree[rows_f] & np.isfinite(halves[np.maximum(k[rows_f], 0), 0, np.arange(n), 0])
    out = X.copy()
    out[rows_f[take], rows_j[take]] = halves[k[rows_f[take]], 0, np.flatnonzero(take)]
    np.logical_or.at(done, (rows_f[take], group[take]), True)
    return out, done
