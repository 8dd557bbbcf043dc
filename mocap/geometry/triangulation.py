"""Triangulation of many points at once: weighted DLT and a robust camera-subset search.

All functions work on flat batches: ``N`` points seen by ``C`` cameras, observations ``uv``
(N, C, 2) in pixels (NaN when missing) and weights (N, C).
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from mocap.geometry._checks import check_trailing
from mocap.geometry.camera import pixels_to_normalised, project
from mocap.geometry.linalg import inv3
from mocap.types import Rig


def dlt(cam_from_world: np.ndarray, xn: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted linear triangulation in normalised camera coordinates.

    cam_from_world: (C, 3, 4) or (C, 4, 4). xn: (N, C, 2) undistorted normalised coordinates.
    weights: (N, C), 0 for views to ignore. Returns (N, 3); points with fewer than two weighted
    views come back as NaN.
    """
    rows_x, rows_y, w = _dlt_rows(cam_from_world, xn, weights)
    rows = np.concatenate([rows_x, rows_y], axis=1)  # (N, 2C, 4)
    M = np.matmul(rows.transpose(0, 2, 1) * np.concatenate([w, w], axis=1)[:, None, :], rows)  # (N, 4, 4)
    return _solve_terms(M, np.sum(w > 0, axis=-1))


def _dlt_rows(cam_from_world: np.ndarray, xn: np.ndarray, weights: np.ndarray):
    """The DLT rows (x·P₂ − P₀, y·P₂ − P₁), each (N, C, 4) (row · (X, 1) = 0 for the true point), and the
    weights (N, C), 0 where the view is missing or not finite."""
    P = np.asarray(cam_from_world, float)[:, :3, :]
    C = P.shape[0]
    xn = check_trailing("normalised points", xn, (C, 2))
    w = np.asarray(weights, float)
    if w.shape != xn.shape[:-1]:
        raise ValueError(f"weights: expected shape {xn.shape[:-1]}, got {w.shape}")
    w = np.where(np.isfinite(w) & np.all(np.isfinite(xn), axis=-1), w, 0.0)
    x = np.nan_to_num(xn)
    return x[..., 0, None] * P[:, 2] - P[:, 0], x[..., 1, None] * P[:, 2] - P[:, 1], w


def _view_terms(cam_from_world: np.ndarray, xn: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each view's unweighted normal matrix (N, C, 4, 4) of the DLT rows and the weights (N, C):
    Σ_c w_c T_c is the normal matrix of any subset of views."""
    rows_x, rows_y, w = _dlt_rows(cam_from_world, xn, weights)
    return rows_x[..., :, None] * rows_x[..., None, :] + rows_y[..., :, None] * rows_y[..., None, :], w


def _solve_terms(M: np.ndarray, n_views: np.ndarray) -> np.ndarray:
    """(X, 1) minimising the weighted algebraic error of the normal matrices M (N, 4, 4): the 3×3 normal
    equations in closed form (one vectorised adjugate, not a LAPACK call per point); NaN under two views."""
    with np.errstate(divide="ignore", invalid="ignore"):
        X = np.einsum("nij,nj->ni", inv3(M[:, :3, :3]), -M[:, :3, 3])
    X[(n_views < 2) | ~np.all(np.isfinite(X), axis=-1)] = np.nan
    return X


def reprojection_errors(rig: Rig, X: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Pixel distance between the projection of X (N, 3) and observations uv (N, C, 2) → (N, C)."""
    X = check_trailing("points", X, (3,))
    uv = check_trailing("observations", uv, (len(rig), 2))
    proj = np.stack([project(cam, X) for cam in rig.cameras], axis=-2)
    return np.linalg.norm(proj - uv, axis=-1)


def normalise_observations(rig: Rig, uv: np.ndarray) -> np.ndarray:
    """Undistorted normalised coordinates of pixel observations (N, C, 2)."""
    uv = check_trailing("observations", uv, (len(rig), 2))
    return np.stack([pixels_to_normalised(cam, uv[:, c]) for c, cam in enumerate(rig.cameras)], axis=1)


def triangulate(
    rig: Rig,
    uv: np.ndarray,
    weights: np.ndarray,
    *,
    min_views: int = 2,
    max_reproj_px: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Triangulate N points; returns (X (N, 3), mean reprojection error (N,), views used (N, C)).

    Without ``max_reproj_px`` every valid view is used (confidence-weighted DLT). With it, points
    whose worst view exceeds the threshold get a camera-subset search: every camera pair proposes
    a point, the proposal with most views under the threshold (then the smallest error) wins,
    and the point is re-triangulated from those views. Points left with fewer than
    ``min_views`` views are NaN.
    """
    C = len(rig)
    uv = check_trailing("observations", uv, (C, 2))
    w = np.asarray(weights, float)
    if w.shape != uv.shape[:-1]:
        raise ValueError(f"weights: expected shape {uv.shape[:-1]}, got {w.shape}")
    if min_views < 2:
        raise ValueError(f"min_views must be at least 2, got {min_views}")
    valid = np.all(np.isfinite(uv), axis=-1) & np.isfinite(w) & (w > 0)
    w = np.where(valid, w, 0.0)
    xn = normalise_observations(rig, uv)
    Ps = np.stack([c.cam_from_world for c in rig.cameras])
    X = dlt(Ps, xn, w)
    views = valid.copy()

    def errors(points: np.ndarray, rows: np.ndarray | slice) -> np.ndarray:
        e = reprojection_errors(rig, points, uv[rows])
        return np.where(valid[rows] & ~np.isfinite(e), np.inf, e)  # behind a camera: as bad as can be

    if max_reproj_px is not None and C >= 2:
        err = errors(X, slice(None))
        worst = np.max(np.where(valid, err, 0.0), axis=1)
        suspect = np.flatnonzero((worst > max_reproj_px) | ~np.all(np.isfinite(X), axis=1) & (valid.sum(1) >= 2))
        if suspect.size and C >= 4:  # first without the worst view (one wrong view is common), then the search
            fixed, X_loo, views_loo = _without_worst(Ps, xn, w, valid, suspect, err, max_reproj_px, errors)
            X[suspect[fixed]], views[suspect[fixed]] = X_loo, views_loo
            suspect = suspect[~fixed]
        if suspect.size:
            X[suspect], views[suspect] = _subset_search(rig, Ps, xn, uv, w, valid, suspect, max_reproj_px, errors)
    X[views.sum(axis=1) < min_views] = np.nan
    err = errors(X, slice(None))
    mean_err = np.where(views, err, 0.0).sum(1) / np.maximum(views.sum(1), 1)
    mean_err[~np.all(np.isfinite(X), axis=1)] = np.nan
    return X, mean_err, views & np.all(np.isfinite(X), axis=1, keepdims=True)


def _without_worst(Ps, xn, w, valid, idx, err, thr, errors):
    """Points ``idx`` solved again without their worst view: (which of idx every remaining view (≥ 3, of
    ≥ 4) explains within ``thr``, their points and views, the worst view back in when it then agrees). Two
    remaining views prove little (a wrong view near the other's epipolar line agrees with it, and the worst
    view of three may be a right one): with three views the camera-pair search decides."""
    v = valid[idx]
    e = np.where(v, err[idx], -np.inf)
    e = np.where(v & ~np.isfinite(e), np.inf, e)  # behind a camera: the worst
    keep = v & (np.arange(v.shape[1]) != np.argmax(e, axis=1)[:, None])
    T, wi = _view_terms(Ps, xn[idx], w[idx])
    used = np.where(keep, wi, 0.0)
    X = _solve_terms(np.einsum("nc,ncij->nij", used, T), keep.sum(axis=1))
    e2 = errors(X, idx)
    fixed = (v.sum(axis=1) >= 4) & np.all(np.isfinite(X), axis=1) & np.all(~keep | (e2 < thr), axis=1)
    inl = v & (e2 < thr)  # the left-out view back in where it agrees with the others' point
    again = fixed & (inl.sum(axis=1) > keep.sum(axis=1))
    if again.any():
        used = np.where(inl[again], wi[again], 0.0)
        X[again] = _solve_terms(np.einsum("nc,ncij->nij", used, T[again]), inl[again].sum(axis=1))
    return fixed, X[fixed], np.where(again[:, None], inl, keep)[fixed]


def _subset_search(rig, Ps, xn, uv, w, valid, idx, thr, errors):
    n, C = idx.size, len(rig)
    best_count = np.full(n, -1)
    best_cost = np.full(n, np.inf)
    best_inl = np.zeros((n, C), bool)
    v = valid[idx]
    T, wi = _view_terms(Ps, xn[idx], w[idx])  # each view's normal matrix, once: a subset is a weighted sum
    WT = wi[..., None, None] * T
    two = np.full(n, 2)
    for a, b in combinations(range(C), 2):
        ok = v[:, a] & v[:, b]
        if not ok.any():
            continue
        e = errors(_solve_terms(WT[:, a] + WT[:, b], np.where(ok, two, 0)), idx)
        inl = v & (e < thr)
        count = np.where(ok, inl.sum(1), -1)
        cost = np.where(inl, e, thr).sum(1)
        better = (count > best_count) | ((count == best_count) & (cost < best_cost))
        best_count = np.where(better, count, best_count)
        best_cost = np.where(better, cost, best_cost)
        best_inl = np.where(better[:, None], inl, best_inl)

    def subset(views: np.ndarray) -> np.ndarray:
        used = np.where(views, wi, 0.0)
        return _solve_terms(np.einsum("nc,ncij->nij", used, T), np.sum(used > 0, axis=-1))

    X = subset(best_inl)
    inl = v & (errors(X, idx) < thr)  # one more round: views the consensus point explains
    return subset(inl), inl
