"""Symmetric banded matrices in LAPACK lower storage and a preconditioned conjugate gradient.

``ab[d, i] = H[i + d, i]`` for ``d = 0..bw``; entries past the end of the matrix are ignored.

:class:`ClusterPreconditioner` is the preconditioner of trajectory problems whose unknowns are J points
over T frames (3 coordinates each), coupled in time within each point (a band) and between points at equal
frames (rank-one couplings such as bone lengths): the points are grouped into small clusters of strongly
coupled points (:func:`strong_clusters`) and each cluster's couplings are solved exactly with its temporal
band, in frame-major order (bandwidth 6 × the cluster's points), so the cost stays linear in the frames.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from scipy import sparse


def band_matvec(ab: np.ndarray, x: np.ndarray, rows=None, work: np.ndarray | None = None) -> np.ndarray:
    """y = H x for a symmetric banded H stored as ``ab`` (bw + 1, n). ``rows``: the sub-diagonals d ≥ 1 that
    hold entries, when the caller knows the others are zero (None: all); ``work``: a scratch array (n,) for the
    products, which a caller repeating the product keeps (fresh temporaries of this size cost their page
    faults every time); the result is the same."""
    n = x.shape[0]
    y = ab[0] * x
    tmp = np.empty(n) if work is None else work
    for d in range(1, ab.shape[0]) if rows is None else rows:
        np.multiply(ab[d, : n - d], x[: n - d], out=tmp[: n - d])
        y[d:] += tmp[: n - d]
        np.multiply(ab[d, : n - d], x[d:], out=tmp[: n - d])
        y[: n - d] += tmp[: n - d]
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


def prior_matvec(G: np.ndarray, V: np.ndarray) -> np.ndarray:
    """The banded prior ``G`` (3, T) of :func:`acceleration_prior` applied to V (points, T, 3) along its frames."""
    out = G[0][None, :, None] * V
    out[:, 1:] += G[1][None, :-1, None] * V[:, :-1]
    out[:, :-1] += G[1][None, :-1, None] * V[:, 1:]
    out[:, 2:] += G[2][None, :-2, None] * V[:, :-2]
    out[:, :-2] += G[2][None, :-2, None] * V[:, 2:]
    return out


class BandedPreconditioner:
    """Cholesky factor of a banded SPD matrix, applied as M⁻¹ r (LAPACK pbtrf / pbtrs)."""

    def __init__(self, ab: np.ndarray, overwrite: bool = False):
        """``overwrite``: the factor may take ``ab``'s memory (when it is Fortran-ordered); else ab stays intact."""
        from scipy.linalg import lapack  # not at the top: see mocap.warm.EARLY

        ab = np.asfortranarray(ab) if overwrite else np.array(ab, order="F")
        factor, info = lapack.dpbtrf(ab, lower=1, overwrite_ab=1)
        if info != 0:
            raise np.linalg.LinAlgError(f"banded Cholesky failed (LAPACK info {info}): matrix not positive definite")
        self.factor, self._solve = factor, lapack.dpbtrs

    def __call__(self, r: np.ndarray, overwrite: bool = False) -> np.ndarray:
        """M⁻¹ r; ``overwrite``: r is the caller's scratch and may become the result."""
        x, info = self._solve(self.factor, r if overwrite else r.copy(), lower=1, overwrite_b=1)
        if info != 0:
            raise np.linalg.LinAlgError(f"banded solve failed (LAPACK info {info})")
        return x


def column_median(values: np.ndarray) -> np.ndarray:
    """The median of each column of ``values`` (n, m) over its non-NaN entries (NaN for a column without one):
    ``np.median`` of each column's finite entries, in one sort for all the columns."""
    values = np.asarray(values, float)
    if values.shape[0] == 0:
        return np.full(values.shape[1], np.nan)
    k = np.sum(~np.isnan(values), axis=0)
    s = np.sort(values, axis=0)  # NaN last
    cols = np.arange(values.shape[1])
    mid = 0.5 * (s[np.maximum(k - 1, 0) // 2, cols] + s[k // 2, cols])  # k // 2 < rows: k ≤ rows
    return np.where(k > 0, mid, np.nan)


def bone_scatter(a: np.ndarray, b: np.ndarray, n_points: int) -> sparse.csr_matrix:
    """(n_points, 2·bones) 0/1 matrix that sums per-bone rows into points: column i is bone i's first point
    ``a[i]``, column bones + i its second point ``b[i]``; ``S @ vstack([at_a, at_b])`` adds each bone's terms
    to both ends."""
    from scipy import sparse  # not at the top: see mocap.warm.EARLY

    nb = len(a)
    rows = np.concatenate([np.asarray(a, int), np.asarray(b, int)])
    return sparse.csr_matrix((np.ones(2 * nb), (rows, np.arange(2 * nb))), shape=(n_points, 2 * nb))


class Couplings:
    """Rank-one couplings between points at equal frames, all at once: coupling i adds −B_i,t B_i,tᵀ between
    points a[i] and b[i] at frame t (B: (n, T, 3)). Iterates as the triples ``(a, b, B)`` that
    :func:`strong_clusters` and :class:`ClusterPreconditioner` take; :meth:`subtract` applies them to a
    (points, T, 3) array in one pass (a sparse scatter, not a loop over the couplings)."""

    def __init__(self, a: np.ndarray, b: np.ndarray, B: np.ndarray, scatter: sparse.csr_matrix | None = None):
        self.a, self.b, self.B = np.asarray(a, int), np.asarray(b, int), np.asarray(B, float)
        if len(self.a) != len(self.b) or len(self.B) != len(self.a) or (self.B.size and self.B.ndim != 3):
            raise ValueError(f"Couplings: a {self.a.shape}, b {self.b.shape} and B {self.B.shape} disagree "
                             "(expected n, n and (n, T, 3))")
        self.scatter = scatter
        self._ends: np.ndarray | None = None  # see subtract

    def __len__(self) -> int:
        return len(self.B)

    def __iter__(self):
        return iter(zip(self.a.tolist(), self.b.tolist(), self.B, strict=True))

    def subtract(self, V: np.ndarray, y: np.ndarray) -> None:
        """In place: y −= (the couplings' matrix) applied to V; both (points, T, 3)."""
        if not len(self):
            return
        if self.scatter is None:
            self.scatter = bone_scatter(self.a, self.b, len(V))
        B, n = self.B, len(self.B)
        # −B Bᵀ V_b goes to a, −B Bᵀ V_a to b, written into one buffer kept for every call (a CG solve makes
        # many, and a fresh array of this size pays its page faults each time)
        if self._ends is None:
            self._ends = np.empty((2 * n,) + B.shape[1:])
        E = self._ends
        np.multiply(B, np.einsum("ntk,ntk->nt", B, np.take(V, self.b, axis=0))[..., None], out=E[:n])
        np.multiply(B, np.einsum("ntk,ntk->nt", B, np.take(V, self.a, axis=0))[..., None], out=E[n:])
        y -= (self.scatter @ E.reshape(2 * n, -1)).reshape(y.shape)


def strong_clusters(ab: np.ndarray, couplings, T: int, threshold: float = 0.1, max_size: int = 6) -> list[list[int]]:
    """The clusters of :class:`ClusterPreconditioner` for the matrix (``ab``, ``couplings``) described there:
    points joined by strong couplings, as algebraic multigrid picks them. A coupling (a, b, B) is strong when
    the median over the frames of |B_t|² (its stiffness) is at least ``threshold`` × √(d_a d_b), d being
    each point's mean diagonal entry at that frame (time prior, observations, all its couplings); weaker
    ones are left to the conjugate gradient, which handles them in a few iterations, while every joint put
    in a cluster makes its factor dearer. Strong couplings join clusters of at most ``max_size`` points
    (:func:`clusters_along`). On refine's problems (2,000 frames, body and hands) thresholds of 0.05-0.1 gave
    the least time in the solves (CG iterations × their cost, plus the factors); 0 (every bone, clusters of up
    to 4) took 17-52 % more, 0.25 13-27 % more."""
    n_points = ab.shape[1] // (3 * T)
    if not couplings:
        return [[j] for j in range(n_points)]
    diag = ab[0].reshape(n_points, T, 3).mean(axis=2)
    if isinstance(couplings, Couplings):
        a, b, B = couplings.a, couplings.b, couplings.B
    else:
        a, b = (np.array([c[i] for c in couplings], int) for i in (0, 1))
        B = np.stack([c[2] for c in couplings])
    stiff = np.einsum("ntk,ntk->nt", B, B)  # |B_t|², (couplings, T)
    strength = np.median(stiff / np.sqrt(np.maximum(diag[a] * diag[b], 1e-300)), axis=1)
    strong = np.flatnonzero(strength >= threshold)
    return clusters_along(list(zip(a[strong], b[strong], strict=True)), strength[strong], n_points, max_size)


def clusters_along(pairs, stiffness, n_points: int, max_size: int) -> list[list[int]]:
    """Clusters of points joined by their stiffest couplings: the couplings ``pairs`` [(a, b)] are taken in
    decreasing ``stiffness`` and join the clusters of a and b while the result holds at most ``max_size``
    points (each cluster costs ∝ its size³ per frame in :class:`ClusterPreconditioner`). Every point of
    ``range(n_points)`` is in exactly one cluster, in increasing order inside it."""
    parent, size = list(range(n_points)), [1] * n_points

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i in np.argsort(-np.asarray(stiffness, float), kind="stable"):
        ra, rb = root(int(pairs[i][0])), root(int(pairs[i][1]))
        if ra != rb and size[ra] + size[rb] <= max_size:
            parent[ra], size[rb] = rb, size[ra] + size[rb]
    clusters: dict[int, list[int]] = {}
    for j in range(n_points):
        clusters.setdefault(root(j), []).append(j)
    return list(clusters.values())


class ClusterPreconditioner:
    """Block-diagonal preconditioner of a (J·T·3)² matrix in point-major order (index (j·T + t)·3 + c) that
    is the banded ``ab`` (within each point: its 3×3 blocks and time couplings, no entry between two points)
    plus the couplings ``[(a, b, B)]``, B (T, 3), that add −B_t B_tᵀ between points a and b at frame t. The
    blocks are ``clusters`` of points (:func:`strong_clusters`); a cluster's block holds its points' bands and
    the couplings inside it, ordered frame-major (t, point, coordinate), a band of width 6·k for k points
    (the time couplings reach two frames), factored by banded Cholesky. Couplings between clusters are left
    out. Clusters of one size share one banded factor."""

    def __init__(self, ab: np.ndarray, couplings, clusters: list[list[int]], T: int):
        n_points = ab.shape[1] // (3 * T)
        if ab.shape[1] != 3 * T * n_points or ab.shape[0] > 7:
            raise ValueError(f"ClusterPreconditioner: ab {ab.shape} is not a point-major band of width ≤ 6 "
                             f"over {T} frames")
        where = {}
        for ci, cl in enumerate(clusters):
            for p, j in enumerate(cl):
                where[j] = (ci, p)
        if sorted(where) != list(range(n_points)) or sum(map(len, clusters)) != n_points:
            raise ValueError(f"ClusterPreconditioner: clusters must partition the {n_points} points")
        self.T, self.n_points = T, n_points
        bands = ab.reshape(ab.shape[0], n_points, T, 3)
        inside = [(a, b, B) for a, b, B in couplings if where[a][0] == where[b][0]]  # the rest are left out
        self.groups = []  # (points (m, k), factor)
        for k in sorted({len(cl) for cl in clusters}):
            members = [ci for ci, cl in enumerate(clusters) if len(cl) == k]
            pts = np.array([clusters[ci] for ci in members], int)  # (m, k)
            if k == 1:  # single points: their own rows of ab in the same order, gathered row by row into the
                # Fortran-ordered band (no coupling inside; most of a hand's points are alone)
                Z1 = np.zeros((len(members), 3 * T, 7))
                flat = ab.reshape(ab.shape[0], n_points, 3 * T)
                for d in range(ab.shape[0]):
                    np.take(flat[d], pts[:, 0], axis=0, out=Z1[..., d])
                self.groups.append((pts, BandedPreconditioner(Z1.reshape(-1, 7).T, overwrite=True)))
                continue
            # Z[i, t, p, c, d] is the band's entry d below (cluster i, frame t, point p, coordinate c): the
            # memory of the Fortran-ordered band (6k + 1, m·T·3k) that LAPACK takes
            Z = np.zeros((len(members), T, k, 3, 6 * k + 1))
            src = bands[:, pts].transpose(0, 1, 3, 2, 4)  # (rows, m, T, k, 3)
            for d in range(ab.shape[0]):  # H[(j, t, c) + d, (j, t, c)]: coordinate (c+d) % 3
                for c in range(3):  # of frame t + (c+d) // 3
                    Z[..., c, 3 * k * ((c + d) // 3) + (c + d) % 3 - c] = src[d, ..., c]
            slot = {int(j): (i, p) for i in range(len(members)) for p, j in enumerate(pts[i])}
            for a, b, B in inside:
                if a not in slot:  # a cluster of another size
                    continue
                (i, pa), (_, pb) = sorted((slot[a], slot[b]))
                for ca in range(3):  # −B Bᵀ between (t, pa, ca) and (t, pb, cb), 3(pb − pa) + cb − ca below
                    Z[i, :, pa, ca, 3 * (pb - pa) - ca: 3 * (pb - pa) - ca + 3] -= B[:, ca:ca + 1] * B
            band = Z.reshape(-1, 6 * k + 1).T  # Fortran-ordered view
            self.groups.append((pts, BandedPreconditioner(band, overwrite=True)))

    def __call__(self, r: np.ndarray) -> np.ndarray:
        R = r.reshape(self.n_points, self.T, 3)
        out = np.empty_like(R)
        for pts, factor in self.groups:
            m, k = pts.shape
            x = factor(np.ascontiguousarray(R[pts].transpose(0, 2, 1, 3)).reshape(-1), overwrite=True)  # a copy
            out[pts] = x.reshape(m, self.T, k, 3).transpose(0, 2, 1, 3)
        return out.reshape(-1)


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
