"""The weighted DLT as sums of per-view normal terms: a point of any subset of views is one sum and one
closed-form 3×3 solve, so many subsets (leave-one-out references, agreeing views) cost little.

Shapes: N points, C views; terms (N, C, 9): the six entries of the symmetric A (00 01 02 11 12 22) of
the inhomogeneous normal equations A X = b, then b.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mocap.types import Rig


def normal_terms(rig: Rig, xn: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Each view's share of the inhomogeneous DLT normal equations A X = b: xn (N, C, 2), w (N, C) →
    (N, C, 9), the six entries of the symmetric A (00 01 02 11 12 22) then b.

    With the DLT rows r_x = x·P₂ − P₀ and r_y = y·P₂ − P₁ of camera P, every entry r_x,i r_x,j + r_y,i r_y,j
    is (x² + y²)·P₂ᵢP₂ⱼ − x·(P₂ᵢP₀ⱼ + P₀ᵢP₂ⱼ) − y·(P₂ᵢP₁ⱼ + P₁ᵢP₂ⱼ) + P₀ᵢP₀ⱼ + P₁ᵢP₁ⱼ: four per-view features
    times a (4, 9) matrix of the camera, one matrix product per camera."""
    P = np.stack([c.cam_from_world[:3, :] for c in rig.cameras])  # (C, 3, 4)
    pairs = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2), (0, 3), (1, 3), (2, 3))
    i, j = np.array(pairs).T
    p0, p1, p2 = P[:, 0], P[:, 1], P[:, 2]  # (C, 4)
    coeff = np.stack([p2[:, i] * p2[:, j], p2[:, i] * p0[:, j] + p0[:, i] * p2[:, j],
                      p2[:, i] * p1[:, j] + p1[:, i] * p2[:, j], p0[:, i] * p0[:, j] + p1[:, i] * p1[:, j]],
                     axis=1)  # (C, 4, 9)
    coeff[:, :, 6:] *= -1  # b = −(the entries with the fourth column)
    N, C = w.shape
    xc = np.moveaxis(xn, 1, 0)  # camera-major: the features are built contiguous for the product
    x0, x1 = np.nan_to_num(xc[..., 0]), np.nan_to_num(xc[..., 1])
    wc = w.T
    feats = np.empty((C, N, 4))  # (x² + y², −x, −y, 1) · w, written in place (a stack and a transposed
    feats[..., 0] = (x0 * x0 + x1 * x1) * wc  # operand cost two thirds more; the same values)
    feats[..., 1] = -x0 * wc
    feats[..., 2] = -x1 * wc
    feats[..., 3] = wc
    return np.matmul(feats, coeff).transpose(1, 0, 2)  # (N, C, 9)


def solve_terms(T: np.ndarray, n_views: np.ndarray) -> np.ndarray:
    """Points of summed normal terms (N, 9) (see :func:`normal_terms`) → (N, 3), NaN under two views."""
    a00, a01, a02, a11, a12, a22, b0, b1, b2 = np.moveaxis(T, -1, 0)
    k00, k01, k02 = a11 * a22 - a12 * a12, a02 * a12 - a01 * a22, a01 * a12 - a02 * a11  # adjugate
    k11, k12, k22 = a00 * a22 - a02 * a02, a01 * a02 - a00 * a12, a00 * a11 - a01 * a01
    det = a00 * k00 + a01 * k01 + a02 * k02
    with np.errstate(divide="ignore", invalid="ignore"):
        X = np.stack([k00 * b0 + k01 * b1 + k02 * b2, k01 * b0 + k11 * b1 + k12 * b2,
                      k02 * b0 + k12 * b1 + k22 * b2], axis=-1) / det[:, None]
    X[(n_views < 2) | ~(np.abs(det) > 0)] = np.nan
    return X


def count_views(views: np.ndarray) -> np.ndarray:
    """(N, 1) number of True views of (N, C) (a product with ones: count_nonzero along a short axis and a
    bool sum cost ten times as much)."""
    return (views @ np.ones(views.shape[1], np.int16))[:, None]


def sum_views(views: np.ndarray, T: np.ndarray) -> np.ndarray:
    """The normal terms T (N, C, 9) summed over the True views of (N, C) → (N, 9)."""
    return np.einsum("nc,nck->nk", views.astype(float), T)


def distance(dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """√(dx² + dy²) elementwise (a new array): np.hypot guards against overflow at about three times the cost,
    and pixel or normalised coordinate differences never come near it."""
    out = dx * dx
    out += dy * dy
    return np.sqrt(out, out=out)


def finite(a: np.ndarray) -> np.ndarray:
    """All entries finite along the last (short) axis of a (..., k): written out, np.all over an axis of two
    or three entries costs some thirty times as much."""
    out = np.isfinite(a[..., 0])
    for i in range(1, a.shape[-1]):
        out &= np.isfinite(a[..., i])
    return out


def consensus_views(valid: np.ndarray, keep: np.ndarray, e: np.ndarray, thr: float,
                    solve: Callable[[np.ndarray, np.ndarray], np.ndarray],
                    errors: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The views' consensus of points the view farthest from the point of all views, left out, did not settle
    (the robust triangulations' step before the camera-pair search): the view farthest from the point of the
    views kept is left out again and again while those kept disagree (a distance not under ``thr`` px) and
    more than three remain. Where the views kept, at least three, all agree, they take the place of the pair
    search's winner: the views that agree with their point, then those that agree with that point's (the pair
    search's last round); settled where that explains at least three views, more than half of the valid ones
    (two views prove little, and a smaller set of agreeing views, wrong ones at another point, is left to the
    pair search: more views may agree elsewhere).

    valid (n, C) the points' valid views, keep (n, C) the views kept so far and e (n, C) the distances to
    their point (NaN where not valid); ``solve(views (m, C), rows (m,))`` the points of those views of the
    points at ``rows`` (positions in these n) and ``errors(X (m, 3), rows (m,))`` their distances (n, C).
    Returns which of the n points it settles (n,) and their views (k, C)."""
    taken = np.zeros(len(valid), bool)
    some = np.flatnonzero(keep.sum(axis=1) > 3)  # three views kept that disagree (or fewer): the pair search's
    if some.size == 0:
        return taken, np.zeros((0, valid.shape[1]), bool)
    v, keep, e = valid[some], keep[some], e[some]
    for _ in range(v.shape[1]):  # the worst view of those kept out while they disagree and more than 3 remain
        worst = np.where(keep & ~(e < thr), np.nan_to_num(e, nan=np.inf), -np.inf)  # NaN: as bad as can be
        rows = np.flatnonzero((worst > -np.inf).any(axis=1) & (count_views(keep)[:, 0] > 3))
        if rows.size == 0:
            break
        keep[rows, np.argmax(worst[rows], axis=1)] = False
        e[rows] = errors(solve(keep[rows], some[rows]), some[rows])
    rows = np.flatnonzero(np.all(~keep | (e < thr), axis=1) & (count_views(keep)[:, 0] >= 3))
    X = solve(v[rows] & (e[rows] < thr), some[rows])  # the views left out back in where they agree
    inl = v[rows] & (errors(X, some[rows]) < thr)  # one more round, as after the pair search
    n = count_views(inl)[:, 0]
    ok = (n >= 3) & (2 * n > count_views(v[rows])[:, 0]) & finite(X)
    taken[some[rows[ok]]] = True
    return taken, inl[ok]


def camera_pairs(rig: Rig, per_camera: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Camera pairs (a, b) with a < b, each (K,): every pair (``per_camera`` None, or ≥ C − 1), else the union
    over cameras of each one's ``per_camera`` best-conditioned partners: those whose optical axis is the
    closest to perpendicular to its own (largest sine of the angle between them; facing or parallel
    cameras triangulate poorly). With C cameras that is between C·per_camera/2 and C·per_camera pairs of the
    C(C − 1)/2; with four cameras and three partners, all six."""
    C = len(rig)
    a, b = np.triu_indices(C, 1)
    if per_camera is None or per_camera >= C - 1:
        return a, b
    z = np.stack([c.R[2] for c in rig.cameras])  # optical axes in the world
    cos = np.clip(z @ z.T, -1.0, 1.0)
    score = np.sqrt(1.0 - cos * cos)
    np.fill_diagonal(score, -1.0)
    best = np.argsort(-score, axis=1, kind="stable")[:, :max(1, per_camera)]  # (C, k)
    keep = np.zeros((C, C), bool)
    keep[np.repeat(np.arange(C), best.shape[1]), best.ravel()] = True
    keep |= keep.T
    sel = keep[a, b]
    return a[sel], b[sel]


def robust_points(rig: Rig, xn: np.ndarray, uv: np.ndarray, w: np.ndarray, max_reproj_px: float,
                  min_views: int = 2, pairs: tuple[np.ndarray, np.ndarray] | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`mocap.geometry.triangulation.triangulate` with ``max_reproj_px`` on normal terms: the point of
    all views; where a view is farther than ``max_reproj_px``, the point without the worst view (kept when
    every remaining view of at least three agrees, the worst one back in when it then agrees); else the
    camera pair whose point most views agree with (then the least truncated error), solved again from
    its agreeing views and once more from the views that point explains. ``xn`` (N, C, 2): the
    undistorted normalised coordinates of the pixels ``uv`` (N, C, 2), computed once by the caller for
    several rigs of the same intrinsics; w (N, C) weights. Every pair's point is projected in one batch
    (one projection per camera, not one per pair and camera). ``pairs``: the camera pairs searched (a, b)
    (:func:`camera_pairs`; None: every pair), then every pair for the points where those find no consensus
    of three views (or of the point's two). Returns X (N, 3) (NaN under ``min_views`` views) and the views
    used (N, C)."""
    N, C = w.shape
    if pairs is not None and len(pairs[0]) == C * (C - 1) // 2:
        pairs = None  # every pair: no fallback search
    valid = finite(uv) & np.isfinite(w) & (w > 0)
    T = normal_terms(rig, xn, np.where(valid, w, 0.0))

    def solve(views: np.ndarray, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        return solve_terms(sum_views(views, T[rows]), count_views(views)[:, 0])

    def errors(X: np.ndarray, rows: np.ndarray | slice) -> np.ndarray:
        """(..., n, C) pixel distances of points X (..., n, 3) to uv[rows]; inf behind a camera."""
        proj = np.stack([cam.project(X) for cam in rig.cameras], axis=-2)
        e = distance(proj[..., 0] - uv[rows][..., 0], proj[..., 1] - uv[rows][..., 1])
        return np.where(valid[rows] & ~np.isfinite(e), np.inf, e)

    X = solve(valid)
    views = valid.copy()
    err = errors(X, slice(None))
    worst = np.max(np.where(valid, err, 0.0), axis=1)
    n_valid = count_views(valid)[:, 0]
    idx = np.flatnonzero((worst > max_reproj_px) | ~finite(X) & (n_valid >= 2))
    if idx.size and C >= 4:  # one wrong view is the common case: without the worst view first
        v = valid[idx]
        e = np.where(v, err[idx], -np.inf)
        keep = v & (np.arange(C) != np.argmax(e, axis=1)[:, None])
        Xk = solve(keep, idx)
        e2 = errors(Xk, idx)
        fixed = (n_valid[idx] >= 4) & finite(Xk) & np.all(~keep | (e2 < max_reproj_px), axis=1)
        inl = v & (e2 < max_reproj_px)
        again = fixed & (count_views(inl)[:, 0] > count_views(keep)[:, 0])
        if again.any():
            Xk[again] = solve(inl[again], idx[again])
        X[idx[fixed]], views[idx[fixed]] = Xk[fixed], np.where(again[:, None], inl, keep)[fixed]
        idx = idx[~fixed]
    def best_pair(idx: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The inliers (n, C) of the pair (a, b) whose point most views agree with (then the least truncated
        error), every pair at once; and how many views agree with it (n,) (−1: no pair held both views)."""
        v = valid[idx]
        ok = v[:, a] & v[:, b]  # (n, K)
        pair = (np.arange(C) == a[:, None])[:, None, :] | (np.arange(C) == b[:, None])[:, None, :]  # (K, 1, C)
        Tp = np.einsum("kc,nci->kni", pair[:, 0].astype(float), T[idx])  # (K, n, 9)
        Xp = solve_terms(Tp.reshape(-1, 9), np.where(ok.T, 2, 0).ravel()).reshape(len(a), idx.size, 3)
        e = errors(Xp, idx)  # (K, n, C)
        inl = v & (e < max_reproj_px)
        count = np.where(ok.T, count_views(inl.reshape(-1, C))[:, 0].reshape(len(a), -1), -1)
        cost = np.where(inl, e, max_reproj_px).sum(axis=2)
        best = np.zeros(idx.size, np.intp)  # the first pair with the most views, then the least cost
        for k in range(1, len(a)):
            better = (count[k] > count[best, np.arange(idx.size)]) | (
                (count[k] == count[best, np.arange(idx.size)]) & (cost[k] < cost[best, np.arange(idx.size)]))
            best = np.where(better, k, best)
        most = count[best, np.arange(idx.size)]
        return inl[best, np.arange(idx.size)] & (most >= 0)[:, None], most

    if idx.size:  # the camera-pair search, every pair (or the given ones) at once
        a, b = np.triu_indices(C, 1)
        chosen, most = best_pair(idx, *(pairs if pairs is not None else (a, b)))
        weak = most < np.minimum(3, n_valid[idx]) if pairs is not None else np.zeros(0, bool)
        if weak.any():  # the given pairs found no consensus of three views (or of a point's two): every pair
            chosen[weak] = best_pair(idx[weak], a, b)[0]
        v = valid[idx]
        Xs = solve(chosen, idx)
        inl = v & (errors(Xs, idx) < max_reproj_px)  # the views the consensus point explains
        X[idx], views[idx] = solve(inl, idx), inl
    X[count_views(views)[:, 0] < min_views] = np.nan
    return X, views & finite(X)[:, None]
