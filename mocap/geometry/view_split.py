"""Frames whose views show two bodies: one detection per view, but two groups of views that agree within each
group and not across (a bystander or a mannequin that two cameras' detectors picked instead of the performer).

With four cameras, two on the performer and two on someone else, no view is an outlier of a majority: the robust
triangulation takes a pair per joint, some joints from one body and some from the other (a synthetic take with a
static figure in two of four cameras in 25 % of its frames: 264 mm MPJPE, frames 2.8 m off). The views' whole
bodies tell it at once: per camera pair, the median over joints of the epipolar distance (px) of one view's
keypoints to the other's lines. A frame is split when two disjoint pairs each agree (≤ ``agree`` × the take's
pair distance, its 25th percentile) while no pair across them does and three of the four disagree (≥ ``apart``
× that scale and ≥ ``min_apart_px``; one may not, the other body lying near its epipolar lines).
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from mocap.geometry.epipolar import epipolar_px, essential, normalised
from mocap.types import Rig

MIN_JOINTS = 4  # a pair's distance needs this many joints both views see
SCALE_PERCENTILE = 25  # the take's agreeing distance: this percentile of its pair distances (not the median: with
# the bystander in most frames, two thirds of those frames' pairs disagree)


def pair_distances(rig: Rig, xy: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """(F, P) per frame and camera pair, the median over joints of the epipolar distance (px, in the pair's
    second camera; NaN with fewer than ``MIN_JOINTS`` joints both see) of xy (F, C, J, 2), and the pairs."""
    C = xy.shape[1]
    pairs = list(combinations(range(C), 2))
    n = [normalised(rig, c, xy[:, c]) for c in range(C)]
    out = np.full((xy.shape[0], len(pairs)), np.nan)
    for p, (i, j) in enumerate(pairs):
        d = epipolar_px(essential(rig, i, j), n[i], n[j], float(rig[j].K[0, 0]))
        enough = np.isfinite(d).sum(axis=1) >= MIN_JOINTS
        if enough.any():
            out[enough, p] = np.nanmedian(d[enough], axis=1)
    return out, pairs


def split_frames(rig: Rig, xy: np.ndarray, agree: float = 3.0, apart: float = 10.0,
                 min_apart_px: float = 40.0) -> np.ndarray:
    """(F,) bool: the frames of xy (F, C, J, 2) whose views form two groups of two or more that agree within and
    not across (see the module docstring)."""
    F, C = xy.shape[:2]
    out = np.zeros(F, bool)
    if C < 4:
        return out
    d, pairs = pair_distances(rig, xy)
    scale = np.nanpercentile(d, SCALE_PERCENTILE) if np.isfinite(d).any() else np.nan
    if not np.isfinite(scale):
        return out
    near = d <= agree * scale  # NaN compares False: unknown is neither
    far = d >= max(apart * scale, min_apart_px)
    index = {pq: k for k, pq in enumerate(pairs)}
    for (a, b), (c, e) in combinations(pairs, 2):
        if len({a, b, c, e}) < 4:
            continue
        across = [index[tuple(sorted(x))] for x in ((a, c), (a, e), (b, c), (b, e))]
        out |= near[:, index[(a, b)]] & near[:, index[(c, e)]] & (far[:, across].sum(axis=1) >= 3) & ~near[
            :, across].any(axis=1)
    return out
