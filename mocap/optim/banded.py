"""Symmetric banded matrices in LAPACK lower storage and a preconditioned conjugate gradient.

``ab[d, i] = H[i + d, i]`` for ``d = 0..bw``; entries past the end of the matrix are ignored.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.linalg import lapack


def band_matvec(ab: np.ndarray, x: np.ndarray) -> np.ndarray:
    """y = H x for a symmetric banded H stored as ``ab`` (bw + 1, n)."""
    n = x.shape[0]
    y = ab[0] * x
    for d in range(1, ab.shape[0]):
        y[d:] += ab[d, : n - d] * x[: n - d]
        y[: n - d] += ab[d, : n - d] * x[d:]
    return y


def second_difference_gram(T: int) -> np.ndarray:
    """Diagonals (3, T) of D2ᵀD2 where D2 is the (T-2, T) second-difference operator."""
    diag, off1, off2 = np.zeros(T), np.zeros(T), np.zeros(T)
    if T >= 3:  # each row (1, -2, 1) of D2 adds its outer product at frames r, r+1, r+2
        diag[:-2] += 1.0
        diag[1:-1] += 4.0
        diag[2:] += 1.0
        off1[:-2] -= 2.0
        off1[1:-1] -= 2.0
        off2[:-2] += 1.0
    return np.stack([diag, off1, off2])


def acceleration_prior(T: int, fps: float, accel_sigma: float) -> np.ndarray:
    """The acceleration prior's normal matrix, banded (3, T) as above: Σ_t |ẍ_t / accel_sigma|² with
    ẍ_t = (x_t+1 − 2 x_t + x_t−1) · fps² equals xᵀ H x for each coordinate. One matrix for the
    refinement (:mod:`mocap.optim.refine`) and the smoother (:mod:`mocap.fit.smooth`)."""
    return second_difference_gram(T) * (fps**2 / accel_sigma) ** 2


class BandedPreconditioner:
    """Cholesky factor of a banded SPD matrix, applied as M⁻¹ r (LAPACK pbtrf / pbtrs)."""

    def __init__(self, ab: np.ndarray):
        factor, info = lapack.dpbtrf(np.array(ab, order="F"), lower=1, overwrite_ab=1)  # ab stays intact
        if info != 0:
            raise np.linalg.LinAlgError(f"banded Cholesky failed (LAPACK info {info}): matrix not positive definite")
        self.factor = factor

    def __call__(self, r: np.ndarray) -> np.ndarray:
        x, info = lapack.dpbtrs(self.factor, r.copy(), lower=1, overwrite_b=1)
        if info != 0:
            raise np.linalg.LinAlgError(f"banded solve failed (LAPACK info {info})")
        return x


def pcg(
    matvec: Callable[[np.ndarray], np.ndarray],
    b: np.ndarray,
    precond: Callable[[np.ndarray], np.ndarray],
    rtol: float = 1e-8,
    max_iter: int = 200,
) -> tuple[np.ndarray, int]:
    """Preconditioned conjugate gradient for SPD systems. Returns (x, iterations)."""
    x = precond(b)
    r = b - matvec(x)
    z = precond(r)
    p = z.copy()
    rz = r @ z
    bnorm = np.linalg.norm(b) or 1.0
    for it in range(1, max_iter + 1):
        if np.linalg.norm(r) <= rtol * bnorm:
            return x, it - 1
        Ap = matvec(p)
        alpha = rz / (p @ Ap)
        x += alpha * p
        r -= alpha * Ap
        z = precond(r)
        rz_new = r @ z
        p = z + (rz_new / rz) * p
        rz = rz_new
    return x, max_iter
