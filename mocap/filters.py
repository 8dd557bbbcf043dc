"""Temporal filters for trajectories shaped (T, ...): time on axis 0, NaN for gaps.

* :func:`butterworth`: zero-phase low-pass, run separately on every gap-free segment;
* :func:`one_euro`: the adaptive causal filter of Casiez et al. (CHI 2012), restarted after gaps;
* :func:`hampel`: replaces samples further than ``n_sigmas`` robust σ from the running median;
* :func:`interpolate_gaps`: linear interpolation of NaN runs up to ``max_gap`` frames.

Gaps are handled in one place for the whole project: :func:`gap_brackets` (the known frames around
every frame) and :func:`bridged` (which missing frames lie in a gap short enough to fill) serve
:func:`interpolate_gaps`, the refinement's start and output, the smoother's output and the slerp of
:func:`mocap.motion.fill_gaps`.
"""

from __future__ import annotations

import numpy as np


def runs(finite: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) runs where ``finite`` (T,) is True (gaps, contacts, ...), as Python ints."""
    edges = np.diff(np.concatenate([[0], np.asarray(finite).astype(np.int8), [0]]))
    return [(int(a), int(b)) for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True)]


def strays(finite: np.ndarray, max_len: int, isolation: int) -> np.ndarray:
    """(T, ...) bool: the runs of ``finite`` (T, ...) along the first axis no longer than ``max_len`` samples with
    more than ``isolation`` unknown samples between them and the column's next known one on each side (or none
    there): lone points."""
    f = np.asarray(finite, bool).reshape(len(finite), -1)
    out = np.zeros_like(f)
    for k in np.flatnonzero(f.any(axis=0)):
        r = runs(f[:, k])
        for i, (a, b) in enumerate(r):
            before = a - r[i - 1][1] if i else np.inf
            after = r[i + 1][0] - b if i + 1 < len(r) else np.inf
            if b - a <= max_len and before > isolation and after > isolation:
                out[a:b, k] = True
    return out.reshape(np.shape(finite))


def _columns(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, float)
    if x.ndim == 0:
        raise ValueError("trajectory: expected shape (T, ...), got a scalar")
    return x.reshape(x.shape[0], -1)


def _neighbours(finite: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frame numbers (T, 1, ...), last finite frame at or before each frame (-1: none), first at or
    after (T: none)."""
    finite = np.asarray(finite, bool)
    T = finite.shape[0]
    t = np.arange(T).reshape((T,) + (1,) * (finite.ndim - 1))
    a = np.maximum.accumulate(np.where(finite, t, -1), axis=0)
    b = np.flip(np.minimum.accumulate(np.flip(np.where(finite, t, T), axis=0), axis=0), axis=0)
    return t, a, b


def gap_brackets(finite: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The known frames around every frame, per column of ``finite`` (T, ...).

    Returns ``a``, ``b`` (int, shaped like ``finite``): the last finite frame at or before t and the
    first at or after t. Frames before the first or after the last finite frame get that frame as
    both ends (held); columns with no finite frame get -1 and T. ``s`` = (t − a) / (b − a), 0 when
    a = b, is the interpolation weight: x(t) = x[a] + (x[b] − x[a]) · s.
    """
    t, a, b = _neighbours(finite)
    T = len(t)
    a, b = np.where((a < 0) & (b < T), b, a), np.where((b >= T) & (a >= 0), a, b)
    s = np.where(b > a, (t - a) / np.maximum(b - a, 1), 0.0)
    return a, b, s


def bridged(finite: np.ndarray, max_gap: int | None, max_end_gap: int | None = 0) -> np.ndarray:
    """Frames (T, ...) that are finite or inside a gap short enough to fill: at most ``max_gap`` frames
    between two finite frames, at most ``max_end_gap`` before the first or after the last one (None:
    any length). Columns with no finite frame have none."""
    finite = np.asarray(finite, bool)
    t, a, b = _neighbours(finite)
    T = len(t)
    inner = T if max_gap is None else max_gap
    end = T if max_end_gap is None else max_end_gap
    interior = (a >= 0) & (b < T) & (b - a - 1 <= inner)
    start = (a < 0) & (b < T) & (b <= end)
    tail = (b >= T) & (a >= 0) & (T - 1 - a <= end)
    return finite | interior | start | tail


def interpolate_gaps(x: np.ndarray, max_gap: int | None, max_end_gap: int | None = 0) -> np.ndarray:
    """Fill NaN runs of at most ``max_gap`` frames between two known samples by linear interpolation,
    and runs of at most ``max_end_gap`` frames at either end by the nearest sample (None: any length).
    Each column (every entry after the time axis) on its own."""
    cols = _columns(x)
    ok = np.isfinite(cols)
    fill = bridged(ok, max_gap, max_end_gap) & ~ok
    if not fill.any():
        return cols.copy().reshape(np.shape(x))
    a, b, s = gap_brackets(ok)
    xa = np.take_along_axis(cols, np.maximum(a, 0), axis=0)
    xb = np.take_along_axis(cols, np.maximum(b, 0).clip(max=len(cols) - 1), axis=0)
    out = np.where(fill, xa + (xb - xa) * s, cols)
    return out.reshape(np.shape(x))


def butterworth(x: np.ndarray, fps: float, cutoff_hz: float, order: int = 4) -> np.ndarray:
    """Zero-phase Butterworth low-pass (forward-backward, so the effective order is 2·order).

    Each gap-free segment is filtered on its own; segments too short for the filter's padding
    are left unfiltered.
    """
    if not 0 < cutoff_hz < fps / 2:
        raise ValueError(f"butterworth: cut-off must be in (0, {fps / 2}) Hz (Nyquist), got {cutoff_hz}")
    from scipy.signal import butter, sosfiltfilt  # here: its import costs ~0.5 s and most runs never filter

    sos = butter(order, cutoff_hz, btype="low", fs=fps, output="sos")
    min_len = 3 * (2 * len(sos) + 1)
    settle = int(round(3 * fps / cutoff_hz))  # odd-extension padding over ~3 periods of the cut-off
    cols = _columns(x).copy()
    for c in range(cols.shape[1]):
        for a, b in runs(np.isfinite(cols[:, c])):
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


def _windows(cols: np.ndarray, half_window: int) -> np.ndarray:
    """(T, N, 2·half_window + 1) the samples of (T, N) columns around each one (NaN beyond the ends)."""
    padded = np.pad(cols, ((half_window, half_window), (0, 0)), constant_values=np.nan)
    return np.lib.stride_tricks.sliding_window_view(padded, 2 * half_window + 1, axis=0)[: cols.shape[0]]


def running_median(x: np.ndarray, half_window: int) -> np.ndarray:
    """The median of x (T, ...) over ± ``half_window`` samples along the first axis, NaN ignored (NaN where the
    whole window is)."""
    with np.errstate(all="ignore"), np.testing.suppress_warnings() as sup:
        sup.filter(RuntimeWarning)
        return np.nanmedian(_windows(_columns(x), half_window), axis=-1).reshape(np.shape(x))


def hampel(x: np.ndarray, half_window: int = 3, n_sigmas: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Replace outliers by the running median. Returns (filtered, outlier mask)."""
    cols = _columns(x)
    windows = _windows(cols, half_window)
    with np.errstate(all="ignore"), np.testing.suppress_warnings() as sup:
        sup.filter(RuntimeWarning)
        med = np.nanmedian(windows, axis=-1)
        mad = 1.4826 * np.nanmedian(np.abs(windows - med[..., None]), axis=-1)
    outlier = np.isfinite(cols) & (np.abs(cols - med) > n_sigmas * mad) & (mad > 0)
    out = np.where(outlier, med, cols)
    return out.reshape(np.shape(x)), outlier.reshape(np.shape(x))
