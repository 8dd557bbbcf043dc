"""How much 2D keypoint noise the detections themselves explain, without a 3D fit's residuals: the check of
:func:`mocap.optim.refine.refine_person` that the views agree (moved here from that module)."""

from __future__ import annotations

import numpy as np

JITTER_QUANTILE = 0.1  # the share of the 2D tracks' second differences the jitter is read from (see below)
BODY_NOISE_SHARE = 0.01  # a keypoint detector's error floor, as a share of the person's size in the image


def detection_noise(uv: np.ndarray, w: np.ndarray, proj: np.ndarray) -> tuple[float, str]:
    """σ per axis that the 2D detections can explain, estimated without the 3D fit's residuals (which
    absorb any disagreement between views): the larger of the tracks' frame-to-frame jitter (second
    differences of each camera's keypoints, robustly) and a detector's floor of
    :data:`BODY_NOISE_SHARE` of the person's size in the images (``proj``: (C, T, J, 2) projections of
    the fitted points). uv: (T, C, J, 2), w: (T, C, J). Returns (σ, how it was found).

    The jitter is read from the lower :data:`JITTER_QUANTILE` of the second differences (scaled as for
    Gaussian noise), not their median: when a view's slot holds another person's keypoints in some frames
    (identities mixed, shuffled per frame), most second differences span a jump between two people and
    the median would call that noise; the lower tail still comes from frames of one person."""
    seen = (w > 0) & np.isfinite(uv).all(axis=-1)
    d = np.linalg.norm(uv[2:] - 2 * uv[1:-1] + uv[:-2], axis=-1)[seen[2:] & seen[1:-1] & seen[:-2]]
    rayleigh_q = np.sqrt(-2 * np.log1p(-JITTER_QUANTILE))  # that quantile of |r|, r 2D Gaussian of unit σ
    jitter = float(np.quantile(d, JITTER_QUANTILE) / (np.sqrt(6) * rayleigh_q)) if d.size else float("nan")
    p = np.where(np.moveaxis(seen, 1, 0)[..., None], proj, np.nan)  # (C, T, J, 2)
    enough = np.isfinite(p[..., 0]).sum(axis=-1) >= 3
    size = float("nan")
    if enough.any():
        with np.errstate(invalid="ignore"):
            extent = np.nanmax(p[enough], axis=1) - np.nanmin(p[enough], axis=1)
        size = float(np.median(np.linalg.norm(extent, axis=-1)))
    floor = BODY_NOISE_SHARE * size
    noise = float(np.nanmax([jitter, floor])) if np.isfinite([jitter, floor]).any() else float("nan")
    return noise, (f"the larger of the 2D tracks' frame-to-frame jitter, {jitter:.1f}px, and "
                   f"{BODY_NOISE_SHARE:.0%} of the person's {size:.0f}px size in the images")
