"""A detector's left/right swaps in the camera sync times (:mod:`mocap.stages.sync`): read back before the lag's
sub-frame estimate and its held-out test (:mod:`mocap.stages.sync_search`).

A swap (left and right exchanged in one view, a whole body for 16 frames on Pose2Sim's two-person demo) puts that
view's points 10× as far from the reference camera's epipolar lines as a 3-frame lag does: those frames' blocks
outweighed the rest of the held-out test, and smoothed into their neighbours they spoilt those too (a lag estimated
on both halves, -3.00 frames, was not proven). Camera c's frames whose points, read left for right, lie far nearer the
lines (at the lag searched) are read back before its track is smoothed; a lag or the detector's noise moves every
point off its line, not to its mirror's, and is left as it is.
"""

from __future__ import annotations

import numpy as np

from mocap.geometry.epipolar import dot3
from mocap.stages.sync_search import EpipolarPair, epipolar_lines, smoothed
from mocap.types import Rig

MIRROR_SHARE = 0.5  # camera c's points of a frame are read left for right where that halves their epipolar
MIRROR_GROSS = 3.0  # error, and it is this many times the median frame's (a detector's swap, not a lag's error)


def mirrors(keypoint_set: str, joints: list[int]) -> np.ndarray:
    """Of the keypoints ``joints`` (indices into the set): the position in ``joints`` of each one's left/right
    mirror (its own where it has none among them)."""
    from mocap.keypoint_sets import get_keypoint_set

    at = {j: i for i, j in enumerate(joints)}
    perm = np.arange(len(joints))
    for a, b in get_keypoint_set(keypoint_set).pairs:
        if a in at and b in at:
            perm[at[a]], perm[at[b]] = at[b], at[a]
    return perm


def unswapped(lines: np.ndarray, nc: np.ndarray, lag: int, mirror: np.ndarray) -> np.ndarray:
    """Camera c's points ``nc`` (F, P·J, 3: P people's J points one after another) with each person's frames a
    detector exchanged left for right read back: at the whole ``lag`` (camera c's frame t + lag against the
    reference camera's epipolar lines ``lines`` of frame t), a person's points that have a mirror (``mirror`` (J,),
    :func:`mirrors`) read left for right are off by less than ``MIRROR_SHARE`` of their median distance as given,
    itself ``MIRROR_GROSS`` times the median person-frame's; ``nc`` itself where none is. A swap (a whole body for
    16 frames, on real two-person footage) is 10× a lag's error: its blocks outweighed the rest of the held-out
    test, and smoothed into its neighbours spoilt them too."""
    F, J = len(nc), len(mirror)
    P = nc.shape[1] // J
    lo, hi = max(0, -lag), min(F, F - lag)
    has = mirror != np.arange(J)
    if hi <= lo or not has.any():
        return nc
    L, Q = lines[lo:hi].reshape(hi - lo, P, J, 3)[:, :, has], nc[lo + lag:hi + lag].reshape(hi - lo, P, J, 3)
    a, b = np.abs(dot3(L, Q[:, :, has])), np.abs(dot3(L, Q[:, :, mirror[has]]))  # (frames, P, points)
    both = np.isfinite(a) & np.isfinite(b)
    n = both.sum(axis=2)[..., None]
    a, b = (np.sort(np.where(both, x, np.inf), axis=2) for x in (a, b))  # medians over the points known both
    a, b = ((np.take_along_axis(x, np.maximum(n - 1, 0) // 2, 2) + np.take_along_axis(x, n // 2, 2))[..., 0] / 2
            for x in (a, b))  # ways (the unknown last)
    n = n[..., 0]
    typical = np.median(a[n >= 2]) if np.any(n >= 2) else np.inf
    frames, people = np.nonzero((n >= 2) & (b < MIRROR_SHARE * a) & (a > MIRROR_GROSS * typical))
    if not frames.size:
        return nc
    out = nc.copy().reshape(F, P, J, 3)
    frames += lo + lag
    out[frames, people] = out[frames, people][:, mirror]
    return out.reshape(nc.shape)


def pairs(rig: Rig, raw: list[np.ndarray], smooth: list[np.ndarray], c: int, ref: int, mirror: np.ndarray):
    """lag → :class:`EpipolarPair` of camera c against camera ``ref``, camera c's frames a detector exchanged left
    for right at that lag read back (:func:`unswapped`) and its track smoothed again; the pair of the tracks as
    given where none is. ``raw``/``smooth``: every camera's track undistorted (homogeneous normalised) as
    detected / :func:`smoothed`. The function's ``lines``: the reference camera's epipolar lines in camera c."""
    group = len(mirror) if raw[c].shape[1] > len(mirror) else 0  # several people, one after another
    base = EpipolarPair(rig, None, c, ref, normals=(smooth[ref], smooth[c]), person_joints=group)
    lines = epipolar_lines(base.E, raw[ref], base.focal)

    def at(lag: float) -> EpipolarPair:
        nc = unswapped(lines, raw[c], int(round(lag)), mirror)
        return base if nc is raw[c] else EpipolarPair(rig, None, c, ref, normals=(
            smooth[ref], smoothed([nc], np.array([base.focal]))[0]), person_joints=group)

    at.lines, at.person_joints = lines, group
    return at


