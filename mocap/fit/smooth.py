"""Gap-aware temporal smoothing of 3D trajectories with a prior on acceleration.

Each coordinate is the minimiser of Σ w (x − y)² / σ² + Σ (ẍ)² / a², with ẍ the second difference
times fps²: σ is the measurement noise (metres) and ``a`` a typical acceleration (m/s²), so one
setting gives the same cut-off at any frame rate. Missing samples get weight 0 and are interpolated
across gaps up to ``max_gap_s``; longer gaps stay NaN.
"""

from __future__ import annotations

import numpy as np

from mocap.filters import bridged
from mocap.optim.banded import acceleration_prior


def estimate_noise(x: np.ndarray) -> float:
    """Robust noise σ (same unit as ``x``, shape (F, ...)) from second differences: the MAD of
    x[t-1] − 2 x[t] + x[t+1] is √6 σ for white noise (motion adds little at mocap frame rates)."""
    d2 = x[:-2] - 2 * x[1:-1] + x[2:]
    d2 = d2[np.isfinite(d2)]
    if d2.size < 10:
        return float("nan")
    return float(np.median(np.abs(d2 - np.median(d2))) / 0.6745 / np.sqrt(6))


def smooth_trajectories(y: np.ndarray, fps: float, noise_sigma: float, accel_sigma: float,
                        max_gap_s: float = 0.5) -> np.ndarray:
    """(F, K, 3) trajectories with NaN for missing → smoothed (F, K, 3)."""
    y = np.asarray(y, float)
    if y.ndim != 3 or y.shape[-1] != 3:
        raise ValueError(f"smooth_trajectories: expected (frames, points, 3), got {y.shape}")
    F = y.shape[0]
    out = np.full_like(y, np.nan)
    if F < 3:
        return y.copy()
    from scipy.linalg import solveh_banded  # not at the top: see mocap.warm.EARLY

    prior = acceleration_prior(F, fps, accel_sigma) * noise_sigma**2  # relative to the data term's 1/σ²
    max_gap = int(round(max_gap_s * fps))
    finite = np.isfinite(y).all(axis=2)  # (F, K)
    keep = bridged(finite, max_gap)
    # points seen in the same frames share one banded matrix: one factorisation and solve for all of them
    _, group = np.unique(finite.T, axis=0, return_inverse=True)
    for g in range(int(group.max()) + 1 if group.size else 0):
        ks = np.flatnonzero(group.ravel() == g)
        seen = finite[:, ks[0]]
        if seen.sum() < 2:
            out[np.ix_(seen, ks)] = y[np.ix_(seen, ks)]
            continue
        ab = prior.copy()
        ab[0] += seen
        rhs = np.where(seen[:, None, None], y[:, ks], 0.0).reshape(F, -1)
        x = solveh_banded(ab, rhs, lower=True, check_finite=False).reshape(F, len(ks), 3)
        rows = keep[:, ks[0]]
        out[np.ix_(rows, ks)] = x[rows]
    return out
