"""Where :func:`mocap.optim.refine.refine_person` starts: the triangulated points with their gaps filled.

A body joint's gap is filled by linear interpolation. A joint of another group (a hand keypoint) is small and
moves with the body: a hand missing from most views for a few frames (the hand detector lost it) would cut
straight across the gap while the arm swings, far from where the few views that still see it put it, and
refine would spend many iterations (and a robust loss that takes those views for outliers) pulling it back.
So such a joint fills its gaps by interpolating its offset from its anchor, the body joint nearest to it over
the frames where both are known (a hand keypoint: the body's wrist or knuckles), and moves with it.

A hand keypoint triangulated from two views one of which is wrong can land metres away (two views cannot
outvote each other); its acceleration term then dwarfs the whole cost (×100 on a take whose hands were found
in a third of the views) and refine takes many iterations to pull it back. A point farther from its anchor than
:data:`REACH_FACTOR` × its median distance plus :data:`REACH_MARGIN_M` (beyond the hand's reach) is therefore
treated as a gap too.
"""

from __future__ import annotations

import numpy as np

from mocap.filters import interpolate_gaps
from mocap.optim.banded import column_median

ANCHOR_FRAMES = 200  # frames (evenly spread) that the nearest body joint is chosen on
REACH_FACTOR = 2.0  # a joint farther from its anchor than this × its median distance ...
REACH_MARGIN_M = 0.05  # ... plus this is a gross triangulation error, not a pose


def start_points(X0: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
    """(T, J, 3) starting trajectories from X0 (T, J, 3), NaN where not triangulated; ``groups`` (J,): 0 the
    body, > 0 joints that follow their anchor across gaps (None: every joint interpolated on its own). Joints
    never triangulated stay NaN. The anchored joints are handled all at once (one median of the sampled
    distances, one interpolation of their offsets): a loop over a hand's 42 joints cost as much as a tenth
    of the body's whole refine."""
    if groups is None:
        return interpolate_gaps(X0, None, None)
    groups = np.asarray(groups)
    body, others = np.flatnonzero(groups == 0), np.flatnonzero(groups > 0)
    known = np.isfinite(X0[..., 0])
    gappy = others[known[:, others].any(axis=0)]  # (every joint can have gross errors to drop)
    if not body.size or not gappy.size:
        return interpolate_gaps(X0, None, None)
    rest = np.setdiff1d(np.arange(X0.shape[1]), gappy)
    X = np.empty_like(X0, dtype=float)
    X[:, rest] = interpolate_gaps(X0[:, rest], None, None)  # the anchors (body) and the joints never seen
    frames = np.unique(np.linspace(0, len(X0) - 1, min(ANCHOR_FRAMES, len(X0))).astype(int))
    A, B = X0[frames][:, gappy], X0[frames][:, body]
    with np.errstate(invalid="ignore"):  # (frames, gappy, body), one coordinate at a time (no 4-D temporary)
        dist = np.sqrt(sum((A[:, :, None, k] - B[:, None, :, k]) ** 2 for k in range(3)))
    median = column_median(dist.reshape(len(frames), -1)).reshape(gappy.size, body.size)
    median[np.isnan(median)] = np.inf  # never known with a body joint in the sampled frames
    nearest = body[np.argmin(median, axis=1)]
    usable = np.isfinite(median).any(axis=1) & np.isfinite(X[:, nearest]).all(axis=(0, 2))
    X[:, gappy[~usable]] = interpolate_gaps(X0[:, gappy[~usable]], None, None)
    j, anchor = gappy[usable], X[:, nearest[usable]]
    offset = X0[:, j] - anchor
    with np.errstate(invalid="ignore"):
        reach = np.sqrt(np.sum(offset**2, axis=-1))  # (T, joints)
        good = known[:, j] & (reach <= REACH_FACTOR * column_median(reach) + REACH_MARGIN_M)
    filled = anchor + interpolate_gaps(np.where(good[..., None], offset, np.nan), None, None)
    X[:, j] = np.where(good[..., None], X0[:, j], filled)
    return X
