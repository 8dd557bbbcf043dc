"""Cameras too far off the others to take part in the left/right swap test (:mod:`mocap.geometry.swaps`).

The swap test judges each view against references triangulated from the other views. A camera whose pose
is wrong (bumped beyond what the camera refinement applies) or that was given another camera's video is
not a noisy view but a wrong one: in the references it drags the points, and the good views' detections
then fit better mirrored. Six cameras of which two had exchanged poses: 124–529 of 1,200 views of every good
camera "repaired", the refined joints 37 mm off (P95 292) against 4.1 mm without any repair.

Such a camera is found on the sample frames of the test: the keypoints are triangulated robustly (the
consensus pair search of :func:`~mocap.geometry.normal_terms.robust_points`, which a minority of wrong views
does not move), and each camera's typical error is the median over frames of the better of its detections'
median distance to the reprojection, as given or mirrored (a view swapped in most frames, seen from behind,
is not broken). A camera over ``ratio`` × the median of the others' and over ``max_reproj_px`` is left out,
provided three cameras remain.
"""

from __future__ import annotations

import logging

import numpy as np

from mocap.geometry.normal_terms import robust_points
from mocap.types import Rig

log = logging.getLogger("mocap.geometry.swaps")
FRAMES = 32  # frames judged


def camera_levels(rig: Rig, xy: np.ndarray, xn: np.ndarray, w: np.ndarray, perm: np.ndarray,
                  max_reproj_px: float) -> np.ndarray:
    """(C,) each camera's typical error in px (NaN: too few detections). xy (F, C, J, 2) pixels, xn their
    undistorted normalised coordinates, w (F, C, J) weights (0: unused), perm (J,) the left/right permutation."""
    F, C, J, _ = xy.shape
    uv = np.moveaxis(xy, 2, 1).reshape(F * J, C, 2)
    X = robust_points(rig, np.moveaxis(xn, 2, 1).reshape(F * J, C, 2), uv,
                      np.moveaxis(w, 2, 1).reshape(F * J, C), max_reproj_px)[0].reshape(F, J, 3)
    proj = np.moveaxis(rig.project(X.reshape(-1, 3)).reshape(C, F, J, 2), 0, 1)  # (F, C, J, 2)
    used = w > 0
    per = []
    for p in (proj, proj[:, :, perm]):  # as given, and each detection against its mirror joint
        d = np.where(used, np.linalg.norm(p - xy, axis=-1), np.nan)
        ok = np.isfinite(d).sum(axis=2) >= 3
        m = np.full((F, C), np.nan)
        if ok.any():
            m[ok] = np.nanmedian(d[ok], axis=1)
        per.append(m)
    best = np.fmin(*per)
    return np.array([np.median(v[np.isfinite(v)]) if np.isfinite(v).any() else np.nan for v in best.T])


def broken_views(rig: Rig, xy: np.ndarray, xn: np.ndarray, w: np.ndarray, perm: np.ndarray, sample: np.ndarray,
                 ratio: float, max_reproj_px: float) -> np.ndarray:
    """(C,) bool: the cameras left out of the swap test, judged on at most :data:`FRAMES` of the ``sample`` frames
    (F,) bool, evenly spread (a camera this far off is off in every frame)."""
    frames = np.flatnonzero(sample)
    frames = frames[:: max(1, -(-len(frames) // FRAMES))]
    level = camera_levels(rig, xy[frames], xn[frames], w[frames], perm, max_reproj_px)
    C = len(level)
    out = np.zeros(C, bool)
    for c in range(C):
        others = np.delete(level, c)
        others = others[np.isfinite(others)]
        out[c] = bool(np.isfinite(level[c]) and others.size
                      and level[c] > max(ratio * float(np.median(others)), max_reproj_px))
    if C - out.sum() < 3:
        return np.zeros(C, bool)
    if out.any():
        log.info(
            "swaps: %s left out of the left/right test: typical error %s px against the other cameras' %.3g px "
            "(a wrong pose, or another camera's video?)", [rig.names[c] for c in np.flatnonzero(out)],
            [round(float(v), 1) for v in level[out]], float(np.nanmedian(level[~out])))
    return out
