"""The numerical core of the sync stage: epipolar lag search, sub-frame refinement and the held-out test
that decides whether an offset is real (see :mod:`mocap.stages.sync`).

Offset d (frames): what the reference camera sees at frame t, camera c sees at t + d. Errors are distances
(pixels of camera c) of camera c's keypoints to the epipolar lines of the reference camera's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mocap.geometry.epipolar import dot3 as _dot3
from mocap.geometry.epipolar import essential, normalised
from mocap.geometry.normal_terms import distance
from mocap.stats import signed_rank_greater, t_greater
from mocap.types import Rig


def epipolar_lines(E: np.ndarray, ni: np.ndarray, focal: float) -> np.ndarray:
    """Epipolar lines (..., 3) in camera j of the reference points ni (..., 3), scaled so that their dot
    product with a normalised point of camera j is its signed distance in pixels (NaN where ni is)."""
    line = ni @ E.T
    with np.errstate(invalid="ignore", divide="ignore"):
        return line / np.hypot(line[..., 0], line[..., 1])[..., None] * focal


def _known(lines: np.ndarray, t: np.ndarray, person_joints: int = 0) -> np.ndarray:
    """(n,) the pairs each reference frame of ``t`` can make: the joints of every person the reference camera sees
    there (``person_joints`` each, 0: one person, seen or not). A person seen briefly counts only where seen (their
    joints counted all take long, ten people each seen in 3 % of the frames left no lag enough pairs)."""
    J = lines.shape[1]
    if not person_joints or person_joints >= J:
        return np.full(len(t), J)
    seen = np.isfinite(lines[t, :, 0]).reshape(len(t), -1, person_joints).any(axis=2)  # (n, P)
    return seen.sum(axis=1) * person_joints


def _gather(lines: np.ndarray, nc: np.ndarray, t: np.ndarray, lags: np.ndarray, person_joints: int = 0):
    """Epipolar errors (L, n·J) px at each lag of ``lags`` over the reference frames ``t`` (NaN where
    unknown or outside the take), yielded per chunk of lags with their count of pairs inside the take
    (L,) (:func:`_known`). ``nc`` is homogeneous (its third coordinate 1), so only its first two are gathered per
    lag."""
    F, J = lines.shape[:2]
    known = _known(lines, t, person_joints)
    pad = int(np.abs(lags).max()) if lags.size else 0
    x, y = (np.concatenate([np.full((pad, J), np.nan), nc[..., i], np.full((pad, J), np.nan)]) for i in (0, 1))
    a, b, c = (lines[t, :, i][None] for i in range(3))  # (1, n, J)
    for i0 in range(0, len(lags), 64):  # a few tens of MB at a time
        idx = t[None, :] + lags[i0:i0 + 64, None]  # (L, n)
        e = np.abs(a * x[idx + pad] + b * y[idx + pad] + c).reshape(len(idx), -1)
        yield i0, e, ((idx >= 0) & (idx < F)) @ known


def _enough(finite: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Rows with at least a tenth of their pairs inside the take finite, and 20."""
    return finite.sum(axis=1) >= np.maximum(20, pairs // 10)


def _lag_medians(lines: np.ndarray, nc: np.ndarray, t: np.ndarray, lags: np.ndarray,
                 person_joints: int = 0) -> np.ndarray:
    """Median epipolar error (px) at each integer lag of ``lags`` over the reference frames ``t``; inf where
    fewer than a tenth of the pairs inside the take (and at least 20) are finite."""
    out = np.full(len(lags), np.inf)
    for i0, e, pairs in _gather(lines, nc, t, lags, person_joints):
        n = np.isfinite(e).sum(axis=1)
        rows = np.flatnonzero(_enough(np.isfinite(e), pairs))
        if rows.size:  # every row sorted at once, the unknown last: the median of each row's n finite errors
            srt, k = np.sort(e[rows], axis=1), n[rows]
            out[i0 + rows] = (srt[np.arange(rows.size), (k - 1) // 2] + srt[np.arange(rows.size), k // 2]) / 2
    return out


class LagSearch:
    """Integer lag d of camera c (read at t + d) minimising the median epipolar error against the reference
    camera over some reference frames; the error curve is sharp where the person moves, and needs only
    these two cameras. Every lag is scored once on about ``coarse_frames`` frames of the take (kept: each
    subset of frames is ranked on its share of them, by a clipped mean), then the ``candidates`` best and
    their neighbours by the median on a few hundred frames of the subset (plenty: the minimum is sharp)."""

    def __init__(self, lines: np.ndarray, nc: np.ndarray, max_lag: int, coarse_frames: int = 150,
                 candidates: int = 8, person_joints: int = 0):
        """``person_joints``: the points are several people's, this many each (0: one person's)."""
        self.lines, self.nc, self.candidates, self.person_joints = lines, nc, candidates, person_joints
        F, J = lines.shape[:2]
        self.lags = np.arange(-max_lag, max_lag + 1)
        self.t = np.arange(0, F, max(1, F // coarse_frames))
        # per lag and coarse frame: the sum of the finite errors clipped at their median over every lag (wrong
        # lags sit mostly above it, the right one mostly below, and outliers weigh no more than the clip), and
        # their count; a subset of frames is ranked by its mean, cheaper than a median per lag and subset
        chunks = list(_gather(lines, nc, self.t, self.lags, person_joints))
        values = np.concatenate([e[np.isfinite(e)] for _, e, _ in chunks])
        cap = np.median(values[::max(1, values.size // 20000)]) if values.size else np.inf
        self.sums = np.zeros((len(self.lags), len(self.t)))
        self.counts = np.zeros((len(self.lags), len(self.t)), int)
        for i0, e, _ in chunks:
            e = e.reshape(len(e), len(self.t), J)
            finite = np.isfinite(e)
            self.sums[i0:i0 + len(e)] = np.where(finite, np.minimum(e, cap), 0.0).sum(axis=2)
            self.counts[i0:i0 + len(e)] = finite.sum(axis=2)
        idx = self.t[None, :] + self.lags[:, None]
        self.pairs = ((idx >= 0) & (idx < F)) * _known(lines, self.t, person_joints)  # (L, n) each frame's pairs

    def best(self, use: np.ndarray | None = None) -> tuple[float, float]:
        """(lag, its median error px) over the reference frames ``use`` (all by default); (0, inf) when no
        lag has enough pairs."""
        F = self.lines.shape[0]
        use = np.ones(F, bool) if use is None else use
        frames = np.flatnonzero(use)
        cols = use[self.t]
        if frames.size == 0 or not cols.any():
            return 0.0, np.inf
        n = self.counts[:, cols].sum(axis=1)
        enough = n >= np.maximum(20, self.pairs[:, cols].sum(axis=1) // 10)
        coarse = np.where(enough, self.sums[:, cols].sum(axis=1) / np.maximum(n, 1), np.inf)
        order = np.argsort(coarse, kind="stable")[:self.candidates]
        best = self.lags[order][np.isfinite(coarse[order])]
        max_lag = self.lags[-1]
        near = np.unique(np.clip((best[:, None] + np.arange(-1, 2)).ravel(), -max_lag, max_lag))
        if near.size == 0:
            return 0.0, np.inf
        fine = _lag_medians(self.lines, self.nc, frames[::max(1, len(frames) // 400)], near,  # a few hundred
                            self.person_joints)
        i = int(np.argmin(fine))
        return (float(near[i]), float(fine[i])) if np.isfinite(fine[i]) else (0.0, np.inf)


def epipolar_lag(rig: Rig, xy: np.ndarray, c: int, max_lag: int, ref: int = 0,
                 use: np.ndarray | None = None, normals: tuple[np.ndarray, np.ndarray] | None = None
                 ) -> tuple[float, float]:
    """Integer lag d of camera c (read at t + d) minimising the median epipolar error against the reference
    camera over the reference frames ``use`` (all by default): see :class:`LagSearch` (keep one to search
    several subsets of frames). ``normals``: the undistorted homogeneous normalised points of the
    reference camera and of camera c (:func:`normalised`), when already known."""
    ni, nc = normals if normals is not None else (normalised(rig, ref, xy[:, ref]), normalised(rig, c, xy[:, c]))
    return LagSearch(epipolar_lines(essential(rig, ref, c), ni, rig[c].K[0, 0]), nc, max_lag).best(use)


def smooth_tracks(xy: np.ndarray, sigma_frames: float = 1.5) -> np.ndarray:
    """NaN-aware Gaussian smoothing along time of (F, ...) tracks. Sub-frame search needs it: linear
    interpolation halfway between two noisy frames averages their noise, which would otherwise pull
    every offset towards half a frame."""
    from scipy.ndimage import gaussian_filter1d

    ok = np.isfinite(xy)
    num = gaussian_filter1d(np.where(ok, xy, 0.0), sigma_frames, axis=0, mode="nearest")
    # points whose x and y are known together: one weight for both (half the filtering)
    if xy.ndim > 1 and xy.shape[-1] == 2 and np.array_equal(ok[..., 0], ok[..., 1]):
        den = gaussian_filter1d(ok[..., 0].astype(float), sigma_frames, axis=0, mode="nearest")[..., None]
    else:
        den = gaussian_filter1d(ok.astype(float), sigma_frames, axis=0, mode="nearest")
    return np.where(ok & (den > 0.3), num / np.maximum(den, 1e-9), np.nan)


def clean_tracks(xy: np.ndarray, sigma_frames: float = 1.5, k: float = 4.0) -> np.ndarray:
    """Smoothed tracks (F, C, J, 2) without their outliers: points farther than ``k`` × the median distance
    from the smoothed track are dropped before smoothing again. An outlier smoothed into its neighbours
    pulls sub-frame offsets by tenths of a frame (0.4 was found as 0.15 to 0.7 with 5 % outliers)."""
    s = smooth_tracks(xy, sigma_frames)
    d = xy - s
    r = distance(d[..., 0], d[..., 1])
    finite = r[np.isfinite(r)]
    if finite.size == 0:
        return s
    return smooth_tracks(np.where((r > k * np.median(finite))[..., None], np.nan, xy), sigma_frames)


def shift_tracks(data: np.ndarray, offset: float) -> np.ndarray:
    """(F, ...) samples → the same track read at t + offset (linear interpolation; NaN outside)."""
    F = data.shape[0]
    t = np.arange(F) + offset
    i0 = np.floor(t).astype(int)
    w = (t - i0).reshape((F,) + (1,) * (data.ndim - 1))
    valid0 = (i0 >= 0) & (i0 < F)
    valid1 = (i0 + 1 >= 0) & (i0 + 1 < F)
    a = np.where(valid0.reshape(w.shape), data[np.clip(i0, 0, F - 1)], np.nan)
    b = np.where(valid1.reshape(w.shape), data[np.clip(i0 + 1, 0, F - 1)], np.nan)
    exact = w == 0
    return np.where(exact, a, (1 - w) * a + w * b)


def golden(f, lo: float, hi: float, tol: float = 0.02) -> float:
    g = (np.sqrt(5) - 1) / 2
    a, b = lo, hi
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = f(c), f(d)
    while b - a > tol:
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = f(d)
    return (a + b) / 2


def _whole_and_fraction(d: float) -> tuple[int, float]:
    """d = k + w with 0 ≤ w < 1; a fraction within 1e-9 of a whole frame is that frame (a track read at
    t + 1e-17 is the track: interpolating would only spread the next frame's gaps)."""
    k = int(np.floor(d))
    w = float(d) - k
    if w < 1e-9:
        return k, 0.0
    if w > 1 - 1e-9:
        return k + 1, 0.0
    return k, w


def smoothed(raw: list[np.ndarray], focal: np.ndarray) -> list[np.ndarray]:
    """Each camera's undistorted normalised track (F, J, 3) cleaned of outliers and smoothed in time
    (:func:`clean_tracks`) in pixels without the distortion (× each camera's focal ``focal`` (C,): before or after
    it agree far below a pixel, and the tracks are undistorted once)."""
    f = np.asarray(focal, float)[None, :, None, None]
    sm = clean_tracks(np.stack([n[..., :2] for n in raw], axis=1) * f) / f  # (F, C, J, 2)
    return [np.concatenate([sm[:, c], np.ones(sm.shape[:1] + sm.shape[2:3] + (1,))], axis=-1)
            for c in range(sm.shape[1])]


def common_means(*per_person: np.ndarray) -> tuple[np.ndarray, ...]:
    """Each (F, P) array's per-frame mean over the people known in every one of them (NaN where none is): errors
    at two offsets compared on the same people (one lost, entering or leaving at one offset only would compare
    someone else's error, not the lag's)."""
    both = np.logical_and.reduce([np.isfinite(a) for a in per_person])
    n = both.sum(axis=1)
    return tuple(np.where(n > 0, np.where(both, a, 0.0).sum(axis=1) / np.maximum(n, 1), np.nan) for a in per_person)


class EpipolarPair:
    """Camera c against the reference camera on smoothed tracks (F, C, J, 2). Both tracks are undistorted
    once; camera c's normalised track is then shifted in time (undistortion is smooth, so interpolating
    before or after it agrees far below a pixel). The signed distances at each whole lag are kept: a
    shift by d = k + w (0 ≤ w < 1) interpolates linearly between the points at k and k + 1, so its
    distance interpolates between theirs, and a sub-frame search costs one interpolation per trial."""

    def __init__(self, rig: Rig, smoothed: np.ndarray | None, c: int, ref: int = 0,
                 normals: tuple[np.ndarray, np.ndarray] | None = None, person_joints: int = 0):
        """``smoothed``: pixel tracks (F, C, J, 2), or None with ``normals``, the reference camera's and
        camera c's smoothed tracks already undistorted (homogeneous normalised, (F, J, 3)). ``person_joints``:
        the J are several people's, this many each, one after another (0: one person's)."""
        self.E, self.focal = essential(rig, ref, c), float(rig[c].K[0, 0])
        self.person_joints = person_joints
        if normals is None:
            normals = normalised(rig, ref, smoothed[:, ref]), normalised(rig, c, smoothed[:, c])
        self.n_ref, self.n_c = normals
        self.lines = epipolar_lines(self.E, self.n_ref, self.focal)
        self._signed: dict[int, np.ndarray] = {}

    def _at(self, k: int) -> np.ndarray:
        """(F, J) signed distances (px) of camera c's points at t + k to the lines of reference frame t."""
        if k not in self._signed:
            F = len(self.lines)
            g = np.full(self.lines.shape[:2], np.nan)
            lo, hi = max(0, -k), min(F, F - k)
            if hi > lo:
                g[lo:hi] = _dot3(self.lines[lo:hi], self.n_c[lo + k:hi + k])
            self._signed[k] = g
        return self._signed[k]

    def errors(self, d: float) -> np.ndarray:
        """(F, J) epipolar distances (px) with camera c read at t + d."""
        k, w = _whole_and_fraction(d)
        if w == 0:
            return np.abs(self._at(k))
        return np.abs((1 - w) * self._at(k) + w * self._at(k + 1))

    def median(self, d: float, use: np.ndarray) -> float:
        e = self.errors(d)[use]
        e = e[np.isfinite(e)]
        return float(np.median(e)) if e.size > 20 else np.inf

    def cauchy(self, d: float, use: np.ndarray, scale: float) -> float:
        """Mean Cauchy loss of the errors: smooth in d, robust, and unbiased where the median is not."""
        e = self.errors(d)[use]
        e = e[np.isfinite(e)]
        return float(np.mean(np.log1p((e / scale) ** 2))) if e.size > 20 else np.inf

    def per_frame(self, d: float, min_joints: int = 3) -> np.ndarray:
        """(F,) median over joints of each reference frame's errors; NaN with fewer than ``min_joints``. With
        several people, the mean over the people seen of each one's median (:meth:`per_person`)."""
        return common_means(self.per_person(d, min_joints))[0]

    def per_person(self, d: float, min_joints: int = 3) -> np.ndarray:
        """(F, P) each person's median over its joints of each reference frame's errors (NaN with fewer than
        ``min_joints``); P = 1 for one person. Compared per person, a person standing still, whose errors are the
        same at every lag, adds the same to both sides of a difference (pooled in one median, the still body's
        points outnumbered the performer's and hid a 3-frame lag)."""
        e = self.errors(d)
        F, J = e.shape[0], self.person_joints or e.shape[1]
        e = e.reshape(-1, J)  # rows (frame, person)
        n = np.isfinite(e).sum(axis=1)
        out = np.full(len(e), np.nan)
        ok = np.flatnonzero(n >= min_joints)
        srt = np.sort(np.where(np.isfinite(e[ok]), e[ok], np.inf), axis=1)  # the unknown last (nanmedian is slow)
        k = n[ok]
        out[ok] = (srt[np.arange(len(ok)), (k - 1) // 2] + srt[np.arange(len(ok)), k // 2]) / 2
        return out.reshape(F, -1)

    def refine(self, centre: float, use: np.ndarray, reach: float = 1.0) -> float:
        """Sub-frame offset within ``centre`` ± ``reach`` on the frames ``use``: a grid of quarter frames, then
        a golden-section search around its best point, on the Cauchy loss (scale: twice the median error
        at ``centre``, held fixed)."""
        scale = 2 * self.median(centre, use)
        if not np.isfinite(scale) or scale <= 0:
            return centre
        grid = centre + np.arange(-reach, reach + 1e-9, 0.25)
        ks = range(int(np.floor(grid[0])) - 1, int(np.floor(grid[-1])) + 2)
        signed = {k: self._at(k)[use].ravel() / scale for k in ks}  # the frames used, in units of the scale
        known = {k: np.isfinite(v) for k, v in signed.items()}
        whole = {k: v[known[k]] for k, v in signed.items()}  # once for every trial: the finite ones ...
        pairs = {k: (signed[k][m], signed[k + 1][m]) for k in ks if k + 1 in signed  # ... and the pairs of
                 for m in [known[k] & known[k + 1]]}  # neighbouring lags finite in both

        def cauchy(d: float) -> float:
            k, w = _whole_and_fraction(d)
            if w == 0:
                e = whole[k]
            else:
                a, b = pairs[k]
                e = (1 - w) * a + w * b
            return float(np.mean(np.log1p(e * e))) if e.size > 20 else np.inf

        i = int(np.argmin([cauchy(d) for d in grid]))
        lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
        return golden(cauchy, lo, hi, tol=0.01)


def correlation_span(x: np.ndarray) -> int:
    """Frames over which the series ``x`` (NaN: missing) stays correlated: its integrated autocorrelation
    time 1 + 2 Σ ρ(k), summed while the autocorrelation stays positive (Geyer's initial positive sequence),
    rounded up. 1 for independent frames; blocks this long are about independent."""
    ok = np.isfinite(x)
    if ok.sum() < 3:
        return 1
    v = np.where(ok, x - np.mean(x[ok]), 0.0)
    var = float(np.sum(v * v))
    if var <= 0:
        return 1
    tau = 1.0
    for k in range(1, int(ok.sum()) // 2):
        pairs = ok[:-k] & ok[k:]
        if pairs.sum() < 2:
            break
        rho = float(np.sum(v[:-k] * v[k:]) / var * ok.sum() / pairs.sum())
        if rho <= 0:
            break
        tau += 2 * rho
    return int(np.ceil(tau))


MIN_T_BLOCKS = 3  # blocks, each favouring the offset, from which the t-test is asked too (see held_out)


@dataclass
class HeldOut:
    gain: float  # relative cut of the median held-out error, offsets against the null offset
    p_value: float  # one-sided Wilcoxon signed-rank test over blocks: the offsets do not lower the error
    blocks: int  # blocks in the test
    error_px: tuple[float, float]  # median held-out error with the null offset, with the estimates
    favoured: float = 0.0  # the share of the blocks whose error the estimates lower


def held_out(pair: EpipolarPair, estimates: tuple[float, float], null: float, block: np.ndarray,
             half: np.ndarray, use: np.ndarray | None = None) -> HeldOut:
    """Each frame scored with the estimate made on the other half, against the null offset (0 for a
    synchronised rig, or the audio offset): the gain, and a paired test over blocks (frames next to each
    other are not independent, blocks about are: never shorter than the differences' correlation span).
    ``use``: (F,) bool, the frames scored (all by default; a part of the take, :mod:`mocap.stages.sync_steps`)."""
    e0, held = common_means(pair.per_person(null), np.where((half == 1)[:, None], pair.per_person(estimates[0]),
                                                            pair.per_person(estimates[1])))
    ok = np.isfinite(e0) & np.isfinite(held) & (True if use is None else use)
    if ok.sum() < 20:
        return HeldOut(0.0, 1.0, 0, (float("nan"), float("nan")))
    m0, m1 = float(np.median(e0[ok])), float(np.median(held[ok]))
    length = int(np.sum(block == block[0]))
    span = correlation_span(np.where(ok, e0 - held, np.nan))
    if span > length:  # the blocks must be longer than the frame-to-frame correlation of the differences
        block = np.arange(len(block)) // span
    diffs = []
    for b in np.unique(block[ok]):
        sel = ok & (block == b)
        if sel.sum() >= 2 or sel.sum() == (block == b).sum():
            diffs.append(np.median(e0[sel]) - np.median(held[sel]))
    diffs = np.asarray(diffs)
    p = 1.0
    if np.count_nonzero(diffs) >= 6:
        p = signed_rank_greater(diffs)
    if len(diffs) >= MIN_T_BLOCKS and np.all(diffs > 0):
        # the signed-rank test's smallest p-value is 2⁻ⁿ: under 7 blocks it never reaches 1 %, whatever the gain
        # (a lag of 10 frames on a 100-frame take: its differences correlated over ~20 frames, 5-6 blocks, every
        # one 3-4× better shifted, p = 1/64 at best). When every block favours the offset, the t-test on them
        # (which weighs how much) decides too; from 7 blocks the signed-rank test alone would pass them.
        p = min(p, t_greater(diffs))
    return HeldOut(1.0 - m1 / m0 if m0 > 0 else 0.0, p, len(diffs), (m0, m1),
                   float(np.mean(diffs > 0)) if len(diffs) else 0.0)
