"""The weighted DLT as sums of per-view normal terms: a point of any subset of views is one sum and one
closed-form 3×3 solve, so many subsets (leave-one-out references, agreeing views) cost little.

Shapes: N points, C views; terms (N, C, 9): the six entries of the symmetric A (00 01 02 11 12 22) of
the inhomogeneous normal equations A X = b, then b.
"""

from __future__ import annotations

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
    x = np.nan_to_num(xn)
    feats = np.stack([x[..., 0] ** 2 + x[..., 1] ** 2, -x[..., 0], -x[..., 1], np.ones(w.shape)], axis=-1)
    feats *= w[..., None]  # (N, C, 4)
    return np.matmul(feats.transpose(1, 0, 2), coeff).transpose(1, 0, 2)  # (N, C, 9)


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
