"""Triangulation of many points at once: weighted DLT and a robust camera-subset search.

All functions work on flat batches: ``N`` points seen by ``C`` cameras, observations ``uv``
(N, C, 2) in pixels (NaN when missing) and weights (N, C).

Two views whose rays meet at a small angle (two cameras nearly on one line through the point, facing each
other or side by side) fix the point's depth badly, and prove little: a wrong detection anywhere near the
other view's epipolar line agrees with it at another depth, at no cost. In the robust camera-pair search
(``min_pair_angle_deg``) such a pair therefore loses its ties (as many views explained) to a pair at a wider
angle. A narrow pair that explains more views than any other still wins: every wider pair then disagrees with
the dropped view, the likely wrong one, and the pair's point, noisy in depth (6 mm median at 18° and 1 px),
beats leaving the point to refine. Taking back a dropped view near the threshold was tried and dropped:
such a view is a biased one (on a synthetic scene its point was 22 mm off against 5 mm for the pair's).
A point that only two cameras saw is never searched (a stereo pair: no other answer).
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from mocap.geometry._checks import check_trailing
from mocap.geometry.camera import pixels_to_normalised, project
from mocap.geometry.linalg import inv3
from mocap.geometry.normal_terms import consensus_views, finite
from mocap.types import Keypoints2D, Rig

PAIR_BATCH = 100_000  # points (suspect points × camera pairs) the pair search solves and projects at once
BLOCK = 1 << 16  # points triangulated at once (each solved on its own; to rounding): memory bounded on long takes


def observation_weights(kp: Keypoints2D, min_score: float) -> np.ndarray:
    """(F, C, P, J) weights: the score where a detection is usable, else 0."""
    s = kp.score
    ok = np.isfinite(s) & (s >= min_score) & finite(kp.xy)
    return np.where(ok, np.maximum(s, 1e-6), 0.0)


def dlt(cam_from_world: np.ndarray, xn: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted linear triangulation in normalised camera coordinates.

    cam_from_world: (C, 3, 4) or (C, 4, 4). xn: (N, C, 2) undistorted normalised coordinates.
    weights: (N, C), 0 for views to ignore. Returns (N, 3); points with fewer than two weighted
    views come back as NaN.
    """
    coef, basis, w = _view_terms(cam_from_world, xn, weights)
    return _solve_terms(_subset_terms(coef, basis, w), np.sum(w > 0, axis=-1))


def _view_terms(cam_from_world: np.ndarray, xn: np.ndarray, weights: np.ndarray):
    """Each view's normal matrix of its DLT rows (x·P₂ − P₀, y·P₂ − P₁) (row · (X, 1) = 0 for the true point),
    as coefficients on per-camera constant matrices: rxᵀrx + ryᵀry = (x² + y²)·P₂P₂ᵀ − x·(P₂P₀ᵀ + P₀P₂ᵀ)
    − y·(P₂P₁ᵀ + P₁P₂ᵀ) + (P₀P₀ᵀ + P₁P₁ᵀ). Returns the coefficients (N, C, 4), the matrices (C, 4, 12) (of each
    4×4 only the 12 entries :func:`_solve_terms` reads: the upper-left 3×3 block, then the last column's top
    3) and the weights (N, C), 0 where the view is missing or not finite. Σ_c u_c T_c for any weights u is
    then one matrix product (:func:`_subset_terms`)."""
    P = np.asarray(cam_from_world, float)[:, :3, :]
    C = P.shape[0]
    xn = check_trailing("normalised points", xn, (C, 2))
    w = np.asarray(weights, float)
    if w.shape != xn.shape[:-1]:
        raise ValueError(f"weights: expected shape {xn.shape[:-1]}, got {w.shape}")
    w = np.where(np.isfinite(w) & finite(xn), w, 0.0)
    x, y = (np.nan_to_num(xn[..., k]) for k in (0, 1))
    coef = np.stack([x * x + y * y, -x, -y, np.ones_like(x)], axis=-1)

    def outer(a, b):
        return a[:, :, None] * b[:, None, :]

    P0, P1, P2 = P[:, 0], P[:, 1], P[:, 2]
    mats = np.stack([outer(P2, P2), outer(P2, P0) + outer(P0, P2), outer(P2, P1) + outer(P1, P2),
                     outer(P0, P0) + outer(P1, P1)], axis=1)  # (C, 4, 4, 4)
    basis = np.concatenate([mats[..., :3, :3].reshape(C, 4, 9), mats[..., :3, 3]], axis=-1)  # (C, 4, 12)
    return coef, basis, w


def _subset_terms(coef: np.ndarray, basis: np.ndarray, used: np.ndarray) -> np.ndarray:
    """Σ_c used_c T_c (N, 12) for view weights ``used`` (N, C) (:func:`_view_terms`): one matrix product."""
    N, C = used.shape
    return (coef * used[..., None]).reshape(N, 4 * C) @ basis.reshape(4 * C, 12)


def _solve_terms(M: np.ndarray, n_views: np.ndarray) -> np.ndarray:
    """(X, 1) minimising the weighted algebraic error of the normal matrices M (N, 12) (the upper-left 3×3
    block and the last column's top 3 of each 4×4): the 3×3 normal equations in closed form (one vectorised
    adjugate, not a LAPACK call per point); NaN under two views."""
    with np.errstate(divide="ignore", invalid="ignore"):
        X = np.einsum("nij,nj->ni", inv3(M[:, :9].reshape(-1, 3, 3)), -M[:, 9:])
    X[(n_views < 2) | ~finite(X)] = np.nan
    return X


def reprojection_errors(rig: Rig, X: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Pixel distance between the projection of X (N, 3) and observations uv (N, C, 2) → (N, C)."""
    X = check_trailing("points", X, (3,))
    uv = check_trailing("observations", uv, (len(rig), 2))
    proj = np.stack([project(cam, X) for cam in rig.cameras], axis=-2)
    d = proj - uv
    return np.hypot(d[..., 0], d[..., 1])


def normalise_observations(rig: Rig, uv: np.ndarray) -> np.ndarray:
    """Undistorted normalised coordinates of pixel observations (N, C, 2)."""
    uv = check_trailing("observations", uv, (len(rig), 2))
    out = np.full(uv.shape, np.nan)
    seen = finite(uv)
    for c, cam in enumerate(rig.cameras):  # only the observations there are
        out[seen[..., c], c] = pixels_to_normalised(cam, uv[..., c, :][seen[..., c]])
    return out


def triangulate(
    rig: Rig,
    uv: np.ndarray,
    weights: np.ndarray,
    *,
    min_views: int = 2,
    max_reproj_px: float | None = None,
    known: dict | None = None,
    min_pair_angle_deg: float | None = None,
    consensus_first: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Triangulate N points; returns (X (N, 3), mean reprojection error (N,), views used (N, C)).

    Without ``max_reproj_px`` every valid view is used (confidence-weighted DLT). With it, points
    whose worst view exceeds the threshold get a camera-subset search: every camera pair proposes
    a point, the proposal with most views under the threshold (then the smallest error) wins,
    and the point is re-triangulated from those views. Points left with fewer than
    ``min_views`` views are NaN.

    ``known``: work already done on these very observations and weights (the swap repair's first pass,
    see :func:`mocap.geometry.swaps.find_swaps`), not done again: "xn" (N, C, 2) their undistorted
    normalised coordinates (NaN where not known: computed here), "rows" (N,) bool the points whose
    point of all valid views "X" (N, 3) and its pixel distances to every view "err" (N, C) are known.
    The same points as without it, to rounding (another sum order of the same normal equations).

    ``min_pair_angle_deg`` (with ``max_reproj_px``): two views whose rays are within this angle of one line are
    ill-conditioned (see the module's docstring): they lose ties in the camera-pair search.

    ``consensus_first`` (with ``max_reproj_px``): a point that leaving its worst view out did not settle first
    takes the views' consensus (:func:`_consensus`: the worst view left out again and again while the views
    kept disagree) when at least three views, more than half, agree on it, refined as the pair search's
    winner is; only the others search camera pairs. Where the consensus's views are the pair search winner's,
    the same point to rounding (on synthetic takes of 4–8 cameras with 5 % outliers: all but one point of
    1.2 million, where three wrong views of five agree and the consensus found the three right ones).
    """
    C = len(rig)
    uv = check_trailing("observations", uv, (C, 2))
    w = np.asarray(weights, float)
    if w.shape != uv.shape[:-1]:
        raise ValueError(f"weights: expected shape {uv.shape[:-1]}, got {w.shape}")
    if min_views < 2:
        raise ValueError(f"min_views must be at least 2, got {min_views}")
    if len(w) > BLOCK:  # block by block: the same points, the work's arrays (a few per view and point) bounded
        blocks = [triangulate(rig, uv[s], w[s], min_views=min_views, max_reproj_px=max_reproj_px,
                              known=None if known is None else {k: v[s] for k, v in known.items()},
                              min_pair_angle_deg=min_pair_angle_deg, consensus_first=consensus_first)
                  for s in (slice(a, a + BLOCK) for a in range(0, len(w), BLOCK))]
        return tuple(np.concatenate(parts) for parts in zip(*blocks, strict=True))
    valid = finite(uv) & np.isfinite(w) & (w > 0)
    w = np.where(valid, w, 0.0)
    enough = valid.sum(axis=1) >= min_views
    if not enough.all() and known is None:  # too few views (a hand the detector missed): NaN, and no work
        X, mean_err, views = np.full((len(w), 3), np.nan), np.full(len(w), np.nan), np.zeros(w.shape, bool)
        if enough.any():
            X[enough], mean_err[enough], views[enough] = triangulate(
                rig, uv[enough], w[enough], min_views=min_views, max_reproj_px=max_reproj_px,
                min_pair_angle_deg=min_pair_angle_deg, consensus_first=consensus_first)
        return X, mean_err, views
    # with ``known`` those points stay in (no copies of everything): never searched, NaN at the end
    Ps = np.stack([c.cam_from_world for c in rig.cameras])

    def errors(points: np.ndarray, rows: np.ndarray | slice) -> np.ndarray:
        e = reprojection_errors(rig, points, uv[rows])
        return np.where(valid[rows] & ~np.isfinite(e), np.inf, e)  # behind a camera: as bad as can be

    if known is None:
        xn = normalise_observations(rig, uv)
        X = dlt(Ps, xn, w)
        err = errors(X, slice(None)) if max_reproj_px is not None and C >= 2 else None
    else:
        xn, X, err = _known_work(rig, Ps, uv, w, valid, known, errors)
    views = valid.copy()
    suspect_all = np.zeros(0, np.intp)

    if max_reproj_px is not None and C >= 2:
        worst = np.max(np.where(valid, err, 0.0), axis=1)
        suspect = np.flatnonzero(((worst > max_reproj_px) | ~finite(X) & (valid.sum(1) >= 2)) & enough)
        suspect_all = suspect
        left: dict = {}  # what leaving the worst view out found for the points it did not settle
        if suspect.size and C >= 4:  # first without the worst view (one wrong view is common), then the search
            fixed, X_loo, views_loo = _without_worst(Ps, xn, w, valid, suspect, err, max_reproj_px, errors, left)
            X[suspect[fixed]], views[suspect[fixed]] = X_loo, views_loo
            suspect = suspect[~fixed]
        if suspect.size and consensus_first and C >= 3:
            taken, X_c, views_c = _consensus(Ps, xn, w, valid, suspect, err, max_reproj_px, errors,
                                             left or None)
            X[suspect[taken]], views[suspect[taken]] = X_c, views_c
            suspect = suspect[~taken]
        cos_max = np.cos(np.radians(min_pair_angle_deg)) if min_pair_angle_deg else None
        if suspect.size:
            X[suspect], views[suspect] = _subset_search(rig, Ps, xn, uv, w, valid, suspect, max_reproj_px, errors,
                                                        cos_max)
    X[(views.sum(axis=1) < min_views) | ~enough] = np.nan
    if known is None or err is None:
        err = errors(X, slice(None))
    else:  # only the points solved again moved
        moved = np.union1d(suspect_all, np.flatnonzero(~finite(X)))
        err[moved] = errors(X[moved], moved)
    mean_err = np.where(views, err, 0.0).sum(1) / np.maximum(views.sum(1), 1)
    found = finite(X)
    mean_err[~found] = np.nan
    return X, mean_err, views & found[:, None]


def _known_work(rig, Ps, uv, w, valid, known, errors):
    """:func:`triangulate`'s normalised coordinates, point of all views and its errors from ``known``: the
    undistortion only of the valid observations it lacks, the DLT and errors only of the rows it lacks."""
    xn = known["xn"]
    lack = valid & ~finite(xn)
    if lack.any():
        xn = np.array(xn, float)
        for c, cam in enumerate(rig.cameras):
            if lack[:, c].any():
                xn[lack[:, c], c] = pixels_to_normalised(cam, uv[lack[:, c], c])
    rows = np.asarray(known.get("rows", np.zeros(len(w), bool)), bool)
    new = np.flatnonzero(~rows)
    if new.size < len(w):  # whole arrays (a copy, then the rows it lacks): cheaper than masked gathers
        X = np.array(known["X"], float)
        e = known["err"]
        err = np.where(valid & ~np.isfinite(e), np.inf, e)
    else:
        X, err = np.empty((len(w), 3)), np.empty(w.shape)
    if new.size:
        X[new] = dlt(Ps, xn[new], w[new])
        err[new] = errors(X[new], new)
    return xn, X, err


def _without_worst(Ps, xn, w, valid, idx, err, thr, errors, left=None):
    """Points ``idx`` solved again without their worst view: (which of idx every remaining view (≥ 3, of
    ≥ 4) explains within ``thr``, their points and views, the worst view back in when it then agrees). Two
    remaining views prove little (a wrong view near the other's epipolar line agrees with it, and the worst
    view of three may be a right one): with three views the camera-pair search decides. ``left``: filled with
    "keep" (n, C) the views kept and "e" (n, C) the distances to their point, of the points not settled."""
    v = valid[idx]
    e = np.where(v, err[idx], -np.inf)
    e = np.where(v & ~np.isfinite(e), np.inf, e)  # behind a camera: the worst
    keep = v & (np.arange(v.shape[1]) != np.argmax(e, axis=1)[:, None])
    coef, basis, wi = _view_terms(Ps, xn[idx], w[idx])
    X = _solve_terms(_subset_terms(coef, basis, np.where(keep, wi, 0.0)), keep.sum(axis=1))
    e2 = errors(X, idx)
    fixed = (v.sum(axis=1) >= 4) & finite(X) & np.all(~keep | (e2 < thr), axis=1)
    inl = v & (e2 < thr)  # the left-out view back in where it agrees with the others' point
    if left is not None:
        left.update(keep=keep[~fixed], e=np.where(v, e2, np.nan)[~fixed])
    again = fixed & (inl.sum(axis=1) > keep.sum(axis=1))
    if again.any():
        used = np.where(inl[again], wi[again], 0.0)
        X[again] = _solve_terms(_subset_terms(coef[again], basis, used), inl[again].sum(axis=1))
    return fixed, X[fixed], np.where(again[:, None], inl, keep)[fixed]


def _consensus(Ps, xn, w, valid, idx, err, thr, errors, start=None):
    """Points ``idx`` from the views' consensus instead of the pair search (:func:`consensus_views`): (which of
    idx it settles, their points and views). ``err`` (N, C): the distances to the point of all views, or
    ``start``: "keep" (n, C) the views :func:`_without_worst` kept and "e" (n, C) the distances to their point."""
    if start is None:
        keep, e = valid[idx], np.where(valid[idx], err[idx], np.nan)
    else:
        keep, e = start["keep"], start["e"]
    some = np.flatnonzero(keep.sum(axis=1) > 3)  # the others cannot be settled: no terms made for them
    taken = np.zeros(idx.size, bool)
    if some.size == 0:
        return taken, np.zeros((0, 3)), np.zeros((0, valid.shape[1]), bool)
    sub = idx[some]
    coef, basis, wi = _view_terms(Ps, xn[sub], w[sub])

    def solve(views: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return _solve_terms(_subset_terms(coef[rows], basis, np.where(views, wi[rows], 0.0)), views.sum(axis=1))

    got, views = consensus_views(valid[sub], keep[some], e[some], thr, solve,
                                 lambda X, rows: errors(X, sub[rows]))
    taken[some[got]] = True
    return taken, solve(views, np.flatnonzero(got)), views


def centres(Ps: np.ndarray) -> np.ndarray:
    """(C, 3) camera centres of cam_from_world matrices (C, 3|4, 4)."""
    R, t = Ps[:, :3, :3], Ps[:, :3, 3]
    return -np.einsum("cji,cj->ci", R, t)


def pair_cosine(Ps: np.ndarray, X: np.ndarray, a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """|cos| of the angle between the rays from cameras ``a`` and ``b`` to the points X (N, 3): 1 when the
    two cameras lie on one line through the point (its depth along that line is then unobserved)."""
    c = centres(Ps)
    u, v = X - c[a], X - c[b]
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.einsum("ni,ni->n", u, v) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1))
    return np.abs(np.nan_to_num(cos, nan=1.0))


def _subset_search(rig, Ps, xn, uv, w, valid, idx, thr, errors, cos_max=None):
    """The camera-pair search (see :func:`triangulate`); with ``cos_max``, a pair whose rays are within that
    angle of one line proposes its point at the worst cost of its count (a better-conditioned pair explaining
    as many views wins). Every pair's point of a batch of points is solved and projected at once (``PAIR_BATCH``
    points at a time): the most views explained, then the least cost, then the first pair, as a loop over the
    pairs would choose."""
    n, C = idx.size, len(rig)
    v = valid[idx]
    coef, basis, wi = _view_terms(Ps, xn[idx], w[idx])  # a subset's normal matrix is a weighted sum of views'
    WC = coef * wi[..., None]
    A, B = np.array(list(combinations(range(C), 2)), np.intp).reshape(-1, 2).T
    some = (v[:, A] & v[:, B]).any(axis=0)  # pairs no point has are not tried
    A, B = A[some], B[some]
    K = A.size
    best_inl = np.zeros((n, C), bool)
    if K:
        Tv = np.stack([WC[:, c] @ basis[c] for c in range(C)], axis=1)  # (n, C, 12) each view's normal terms
        step = max(1, PAIR_BATCH // K)
        for s in range(0, n, step):
            r = np.arange(s, min(n, s + step))
            m = r.size
            ok = v[r][:, A] & v[r][:, B]  # (m, K)
            Xp = _solve_terms((Tv[r][:, A] + Tv[r][:, B]).reshape(m * K, 12), np.where(ok, 2, 0).reshape(-1))
            e = errors(Xp, np.repeat(idx[r], K)).reshape(m, K, C)
            inl = v[r][:, None, :] & (e < thr)
            count = np.where(ok, inl.sum(axis=2), -1)
            cost = np.where(inl, e, thr).sum(axis=2)
            if cos_max is not None:  # an ill-conditioned pair's agreement proves little: it loses ties
                bad = pair_cosine(Ps, Xp, np.tile(A, m), np.tile(B, m)).reshape(m, K) > cos_max
                cost = np.where(bad, thr * C, cost)
            cost = np.where(count == count.max(axis=1, keepdims=True), cost, np.inf)
            best_inl[r] = inl[np.arange(m), np.argmin(cost, axis=1)]

    def subset(views: np.ndarray) -> np.ndarray:
        used = np.where(views, wi, 0.0)
        return _solve_terms(_subset_terms(coef, basis, used), np.sum(used > 0, axis=-1))

    X = subset(best_inl)
    inl = v & (errors(X, idx) < thr)  # one more round: views the consensus point explains
    return subset(inl), inl
