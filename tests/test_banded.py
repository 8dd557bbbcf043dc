"""The cluster preconditioner of mocap.optim.banded against dense linear algebra on small random systems
shaped like refine's: J points over T frames, a temporal band per point (the acceleration prior plus 3x3
blocks of observations) and rank-one couplings between points at equal frames (bones)."""

import numpy as np
import pytest
from scipy import sparse

from mocap.optim.banded import (
    BandedPreconditioner,
    ClusterPreconditioner,
    acceleration_prior,
    band_matvec,
    clusters_along,
    pcg,
    strong_clusters,
)


def system(T: int, J: int, bones, stiffness, seed: int = 0):
    """ab (7, J·T·3) in point-major order, couplings [(a, b, B)] and the (sparse) matrix they make."""
    rng = np.random.default_rng(seed)
    gram = acceleration_prior(T, 60.0, 15.0) / 1e4
    H = np.zeros((J, T, 3, 3))
    for _ in range(2):  # two "views" per point and frame: rank-2 each
        A = rng.normal(size=(J, T, 2, 3))
        H += np.swapaxes(A, -1, -2) @ A
    couplings = []
    for (a, b), s in zip(bones, stiffness, strict=True):
        u = rng.normal(size=(T, 3))
        B = u / np.linalg.norm(u, axis=1, keepdims=True) * np.sqrt(s)
        uu = B[:, :, None] * B[:, None, :]
        H[a] += uu
        H[b] += uu
        couplings.append((a, b, B))
    ab = np.zeros((7, J, T, 3))
    for d in range(3):
        for k in range(3 - d):
            ab[d, :, :, k] = H[:, :, k + d, k]
    ab[0] += gram[0][None, :, None]
    ab[3] += gram[1][None, :, None]
    ab[6] += gram[2][None, :, None]
    ab = ab.reshape(7, -1)
    n = ab.shape[1]
    offsets = [0] + [s * d for d in range(1, 7) for s in (-1, 1)]
    matrix = sparse.diags([ab[0]] + [ab[d, : n - d] for d in range(1, 7) for _ in (0, 1)], offsets, format="csr")
    rows, cols, vals = [], [], []
    t = np.arange(T)
    for a, b, B in couplings:
        for ca in range(3):
            for cb in range(3):
                rows += [(a * T + t) * 3 + ca, (b * T + t) * 3 + cb]
                cols += [(b * T + t) * 3 + cb, (a * T + t) * 3 + ca]
                vals += [-B[:, ca] * B[:, cb]] * 2
    if rows:
        matrix = matrix + sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                                            shape=(n, n))
    return ab, couplings, matrix


BONES = [(0, 1), (1, 2), (2, 3), (3, 4), (1, 4)]


def test_clusters_holding_whole_components_solve_exactly():
    T, J = 12, 6  # point 5 has no bone
    ab, couplings, dense = system(T, J, BONES, [50.0, 80.0, 30.0, 60.0, 40.0])
    r = np.random.default_rng(1).normal(size=J * T * 3)
    exact = np.linalg.solve(dense.toarray(), r)
    P = ClusterPreconditioner(ab, couplings, [[0, 1, 2, 3, 4], [5]], T)
    assert np.allclose(P(r), exact, rtol=1e-9, atol=1e-12)
    # clusters in any order, points in any order inside them
    P = ClusterPreconditioner(ab, couplings, [[5], [3, 1, 4, 0, 2]], T)
    assert np.allclose(P(r), exact, rtol=1e-9, atol=1e-12)


def test_single_points_are_the_banded_cholesky_of_each_point():
    T, J = 15, 4
    ab, couplings, _ = system(T, J, BONES[:3], [5.0, 5.0, 5.0])
    r = np.random.default_rng(2).normal(size=J * T * 3)
    P = ClusterPreconditioner(ab, couplings, [[j] for j in range(J)], T)
    assert np.allclose(P(r), BandedPreconditioner(ab)(r), rtol=1e-10)
    assert np.allclose(band_matvec(ab, P(r)), r, rtol=1e-8, atol=1e-10)  # no coupling in it


def test_stiff_couplings_in_the_preconditioner_cut_the_cg_iterations():
    T, J = 200, 6
    ab, couplings, dense = system(T, J, BONES, [1e4, 1e4, 0.1, 1e4, 0.1], seed=3)
    b = np.random.default_rng(4).normal(size=J * T * 3)
    _, band_iters = pcg(lambda v: dense @ v, b, BandedPreconditioner(ab), rtol=1e-6, max_iter=500)
    clusters = strong_clusters(ab, couplings, T)
    assert sorted(map(sorted, clusters)) == [[0, 1, 2], [3, 4], [5]]  # the stiff bones, not the weak ones
    x, iters = pcg(lambda v: dense @ v, b, ClusterPreconditioner(ab, couplings, clusters, T), rtol=1e-6,
                   max_iter=500)
    assert np.linalg.norm(dense @ x - b) <= 1e-6 * np.linalg.norm(b)
    assert iters <= 3 < 10 <= band_iters


def test_cluster_size_is_capped_and_stiffest_couplings_join_first():
    pairs = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]
    out = clusters_along(pairs, [1.0, 5.0, 2.0, 9.0, 3.0], 6, max_size=3)
    assert sorted(map(sorted, out)) == [[0, 1, 2], [3, 4, 5]]  # (2, 3) would make 5
    assert all(len(c) == 1 for c in clusters_along(pairs, [1.0] * 5, 6, max_size=1))
    assert sorted(map(sorted, clusters_along([], [], 3, 4))) == [[0], [1], [2]]


def test_cost_is_linear_in_frames():
    """The factor's storage grows with the frames, not their square."""
    sizes = []
    for T in (50, 100):
        ab, couplings, _ = system(T, 5, BONES, [1e4] * 5)
        P = ClusterPreconditioner(ab, couplings, strong_clusters(ab, couplings, T, max_size=5), T)
        sizes.append(sum(f.factor.size for _, f in P.groups))
    assert sizes[1] == 2 * sizes[0]


def test_bad_input_is_reported():
    T, J = 10, 3
    ab, couplings, _ = system(T, J, BONES[:2], [1.0, 1.0])
    with pytest.raises(ValueError, match="clusters must partition the 3 points"):
        ClusterPreconditioner(ab, couplings, [[0, 1]], T)
    with pytest.raises(ValueError, match="clusters must partition the 3 points"):
        ClusterPreconditioner(ab, couplings, [[0, 1], [1, 2]], T)
    with pytest.raises(ValueError, match="not a point-major band of width ≤ 6 over 7 frames"):
        ClusterPreconditioner(ab, couplings, [[0], [1], [2]], 7)
    with pytest.raises(ValueError, match="not a point-major band"):
        ClusterPreconditioner(np.vstack([ab, ab[:2]]), couplings, [[0], [1], [2]], T)
    bad = ab.copy()
    bad[0, :3] = -1.0
    with pytest.raises(np.linalg.LinAlgError, match="not positive definite"):
        ClusterPreconditioner(bad, couplings, [[0, 1, 2]], T)
