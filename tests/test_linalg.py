import numpy as np
import pytest

from mocap.geometry.linalg import inv3, solve_spd


def test_inv3_matches_numpy_and_checks_its_shape():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(500, 3, 3)) + 3 * np.eye(3)
    assert np.allclose(inv3(A), np.linalg.inv(A), atol=1e-10)
    assert np.allclose(inv3(A[0]) @ A[0], np.eye(3), atol=1e-12)
    with pytest.raises(ValueError, match=r"expected shape \(\.\.\., 3, 3\), got \(4, 2, 2\)"):
        inv3(np.zeros((4, 2, 2)))


def test_solve_spd_matches_numpy_and_falls_back_on_a_singular_system():
    rng = np.random.default_rng(1)
    M = rng.normal(size=(50, 70, 70))
    A = M @ np.swapaxes(M, 1, 2) + np.eye(70)
    b = rng.normal(size=(50, 70))
    assert np.allclose(solve_spd(A, b), np.linalg.solve(A, b[..., None])[..., 0], atol=1e-8)
    A[3] = 0.0  # not positive definite: least squares, system by system (the zero system gives 0)
    x = solve_spd(A, b)
    assert np.all(x[3] == 0) and np.allclose(x[4], np.linalg.solve(A[4], b[4]), atol=1e-8)
    with pytest.raises(ValueError, match="expected A"):
        solve_spd(A, b[:, :5])
