"""The 2D noise levels of a :mod:`mocap.optim.refine` problem: each camera's and each joint group's, relative.

A keypoint detector's error in pixels grows with the person's size in the image: a camera of 3× the resolution, or
much nearer the performer, errs ~3× the pixels of the others. Weighing every pixel alike then lets that camera pull
the trajectory (a synthetic take with one camera of 3× the resolution: refine 6.66 → 7.83 mm). So each camera gets
its σ relative to the others' median (:func:`camera_noise`), estimated robustly (Rayleigh, from the lower quartile)
from the residuals of the body's observations at the start, in the observation weights' units (pixels × √weight: a
low score or a keypoint hidden behind another person is already weighed down), as the joint groups get theirs
relative to the body's (:func:`group_noise`). The problem's σ of an observation is σ · group ratio · camera ratio:
in the cost's weights, the robust loss's bend point and the outlier cut (a residual is measured in its camera's σ).

The camera ratios apply only when one of them differs from 1 by more than :data:`CAMERA_MARGIN` (either way):
cameras that are alike measure ratios a few % off 1 from the noise alone, and those change nothing (the ratios
stay exactly 1 and the results are bit-identical to a refine without them).
"""

from __future__ import annotations

import logging

import numpy as np

from mocap.optim.lm import rayleigh_sigma

CAMERA_MARGIN = 2.0  # a camera's σ beyond this factor of the others' median (or below its inverse) is its own;
# at 1.5, rendered two-person takes got weighed by 1.5-1.7 (a detector's pose-dependent offsets): mixed results
MIN_OBSERVATIONS = 20  # fewer residuals than this: no σ of its own (ratio 1)
LOW_QUANTILE = 0.25  # each camera's σ from this quantile of its residual norms (see _low_sigma)
RATIO_RANGE = (0.1, 10.0)  # measured ratios are clipped to this range
log = logging.getLogger("mocap.optim.refine")


def camera_noise(pixel_norms: np.ndarray, observed: np.ndarray, names=None,
                 margin: float = CAMERA_MARGIN) -> np.ndarray | None:
    """Each camera's 2D noise σ relative to the median of the cameras' (C,), from residual norms (T, C, J) where
    ``observed`` (from each camera's lower quartile: :func:`_low_sigma`); None when every camera is within
    ``margin`` of the median, or fewer than three cameras have :data:`MIN_OBSERVATIONS` residuals of points seen by
    three views or more: a point seen by two views leaves one degree of freedom in their residuals, and how it
    splits between them is the start triangulation's choice, not the cameras' noise (two cameras, one 3× noisier:
    both measure alike; one of 3× the focal length: 3× the other). Such points are not counted: a person seen by
    two cameras but for a few frames got one of them weighed down 10× from those (its joints then refined from
    the other view alone, 0.3–0.7 m off where triangulation was 9–25 mm). A camera with too few residuals keeps
    ratio 1. Logged (with the cameras' ``names``) when applied."""
    C = pixel_norms.shape[1]
    sig = np.full(C, np.nan)
    observed = observed & (observed.sum(axis=1, keepdims=True) >= 3)  # only points seen by three views or more
    for c in range(C):
        sel = observed[:, c] & np.isfinite(pixel_norms[:, c])
        if sel.sum() >= MIN_OBSERVATIONS:
            sig[c] = _low_sigma(pixel_norms[:, c][sel])
    ok = np.isfinite(sig) & (sig > 0)
    if ok.sum() < 3:
        return None
    ratio = np.where(ok, sig / np.median(sig[ok]), 1.0)
    if not np.any((ratio > margin) | (ratio < 1.0 / margin)):
        return None
    ratio = np.clip(ratio, *RATIO_RANGE)
    names = range(C) if names is None else names
    log.info("refine: 2D noise of each camera relative to the others' (their σ weighs each camera's residuals): %s",
             {str(n): round(float(r), 2) for n, r in zip(names, ratio, strict=True)})
    return ratio


def _low_sigma(norms: np.ndarray) -> float:
    """σ per axis of 2D Gaussian residuals from the lower quartile of their norms (Rayleigh): a camera whose
    every residual is larger (resolution, distance) moves it; a share of its residuals larger (a person hidden
    in that view for a while, a burst of bad detections) hardly does."""
    return float(np.quantile(norms, LOW_QUANTILE) / np.sqrt(-2.0 * np.log(1.0 - LOW_QUANTILE)))


def group_noise(norms: np.ndarray, observed: np.ndarray, groups: np.ndarray) -> dict[int, float]:
    """Each joint group's σ relative to the body's (group 0), from residual norms (T, C, J) where ``observed``
    (robust, Rayleigh); {group: ratio}, empty with one group; 1 for a group (or a body) of too few residuals."""
    ids = np.unique(groups)
    if ids.size < 2:
        return {}
    sig = {}
    for g in ids:
        sel = observed & (groups == g)[None, None, :] & np.isfinite(norms)
        sig[int(g)] = rayleigh_sigma(norms[sel]) if sel.sum() >= MIN_OBSERVATIONS else float("nan")
    base = sig.get(0, float("nan"))
    ratios = {}
    for g in ids:
        r = sig[int(g)] / base if np.isfinite(base) and base > 0 else float("nan")
        ratios[int(g)] = float(np.clip(r, *RATIO_RANGE)) if np.isfinite(r) else 1.0
    return ratios
