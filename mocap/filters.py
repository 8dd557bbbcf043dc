"""Temporal filters for trajectories shaped (T, ...): time on axis 0, NaN for gaps.

* :func:`butterworth`: zero-phase low-pass, run separately on every gap-free segment;
* :func:`one_euro`: the adaptive causal filter of Casiez et al. (CHI 2012), restarted after gaps;
* :func:`hampel`: replaces samples further than ``n_sigmas`` robust σ from the running median;
* :func:`interpolate_gaps`: linear interpolation of NaN runs up to ``max_gap`` frames.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, sosfiltfilt


def _segments(finite: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) runs where ``finite`` (T,) is True."""
    edges = np.diff(np.concatenate([[0], finite.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def _columns(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, float)
    if x.ndim == 0:
        raise ValueError("trajectory: expected shape (T, ...), got a scalar")
    return x.reshape(x.shape[0], -1)


def interpolate_gaps(x: np.ndarray, max_gap: int) -> np.ndarray:
    """Fill NaN runs of at most ``max_gap`` frames between two known samples by linear interpolation."""
    cols = _columns(x).copy()
    t = np.arange(cols.shape[0])
    for c in range(cols.shape[1]):
        v = cols[:, c]
        ok = np.isfinite(v)
        if ok.sum() < 2 or ok.all():
            continue
        filled = np.interp(t, t[ok], v[ok])
        for a, b in _segments(~ok):
            if a > 0 and b < len(v) and b - a <= max_gap:
                v[a:b] = filled[a:b]
    return cols.reshape(np.shape(x))


def butterworth(x: np.ndarray, fps: float, cutoff_hz: float, order: int = 4) -> np.ndarray:
    """Zero-phase Butterworth low-pass (forward-backward, so the effective order is 2·order).

    Each gap-free segment is filtered on its own; segments too short for the filter's padding
    are left unfiltered.
    """
    if not 0 < cutoff_hz < fps / 2:
        raise ValueError(f"butterworth: cut-off must be in (0, {fps / 2}) Hz (Nyquist), got {cutoff_hz}")
    sos = butter(order, cutoff_hz, btype="low", fs=fps, output="sos")
    min_len = 3 * (2 * len(sos) + 1)
    settle = int(round(3 * fps / cutoff_hz))  # odd-extension padding over ~3 periods of the cut-off
    cols = _columns(x).copy()
    for c in range(cols.shape[1]):
        for a, b in _segments(np.isfinite(cols[:, c])):
            if b - a > min_len:
                cols[a:b, c] = sosfiltfilt(sos, cols[a:b, c], padlen=min(b - a - 1, max(min_len, settle)))
    return cols.reshape(np.shape(x))


def one_euro(x: np.ndarray, fps: float, min_cutoff: float = 1.0, beta: float = 0.007,
             d_cutoff: float = 1.0) -> np.ndarray:
    """One-euro filter: cut-off ``min_cutoff + beta·|speed|`` (Hz), causal; restarts after NaN."""
    cols = _columns(x)
    out = np.full_like(cols, np.nan)
    dt = 1.0 / fps

    def alpha(cutoff):
        tau = 1.0 / (2 * np.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    prev = np.full(cols.shape[1], np.nan)
    dprev = np.zeros(cols.shape[1])
    for t in range(cols.shape[0]):
        v = cols[t]
        fresh = ~np.isfinite(prev)
        d = np.where(fresh, 0.0, (v - prev) / dt)
        dprev = np.where(fresh, 0.0, dprev + alpha(d_cutoff) * (d - dprev))
        a = alpha(min_cutoff + beta * np.abs(dprev))
        cur = np.where(fresh, v, prev + a * (v - prev))
        out[t] = cur
        prev = cur  # NaN input → NaN state → restart at the next sample
    return out.reshape(np.shape(x))


def hampel(x: np.ndarray, half_window: int = 3, n_sigmas: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Replace outliers by the running median. Returns (filtered, outlier mask)."""
    cols = _columns(x)
    T = cols.shape[0]
    padded = np.pad(cols, ((half_window, half_window), (0, 0)), constant_values=np.nan)
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half_window + 1, axis=0)[:T]
    with np.errstate(all="ignore"), np.testing.suppress_warnings() as sup:
        sup.filter(RuntimeWarning)
        med = np.nanmedian(windows, axis=-1)
        mad = 1.4826 * np.nanmedian(np.abs(windows - med[..., None]), axis=-1)
    outlier = np.isfinite(cols) & (np.abs(cols - med) > n_sigmas * mad) & (mad > 0)
    out = np.where(outlier, med, cols)
    return out.reshape(np.shape(x)), outlier.reshape(np.shape(x))
