"""The association's small ray functions against their plain definitions (they are written for speed)."""

import numpy as np
import pytest

from mocap.multi.rays import point_ray_distance, robust_median, triangulate_rays


@pytest.mark.parametrize("shape", [(7,), (4, 17), (3, 3, 17), (2, 5, 1)])
def test_robust_median_is_nanmedian_with_a_minimum_count(shape):
    rng = np.random.default_rng(len(shape))
    d = rng.random(shape)
    d[rng.random(shape) < 0.4] = np.nan
    d[..., 0] = np.where(rng.random(shape[:-1]) < 0.2, np.inf, d[..., 0])  # inf: not a value either
    finite = np.isfinite(d)
    plain = np.array([np.median(row[np.isfinite(row)]) if np.isfinite(row).any() else np.inf
                      for row in d.reshape(-1, shape[-1])]).reshape(shape[:-1])
    for k in (1, 3):
        got = robust_median(d, k)
        want = np.where(finite.sum(axis=-1) >= k, plain, np.inf)
        assert got.shape == shape[:-1]
        np.testing.assert_array_equal(got, want)


def test_point_ray_distance_is_the_norm_of_the_cross_product_and_broadcasts():
    rng = np.random.default_rng(0)
    X, o = rng.normal(size=(5, 1, 17, 3)), rng.normal(size=(1, 4, 1, 3))
    d = rng.normal(size=(4, 17, 3))
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    d[1, 3] = np.nan
    got = point_ray_distance(X, o, d)
    want = np.linalg.norm(np.cross(X - o, d), axis=-1)
    assert got.shape == (5, 4, 17)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    assert np.isnan(got[:, 1, 3]).all()
    # a point on the ray is at distance 0, one a metre off its side at 1
    assert point_ray_distance(np.array([0, 0, 5.0]), np.zeros(3), np.array([0, 0, 1.0])) == 0
    assert point_ray_distance(np.array([1, 0, 5.0]), np.zeros(3), np.array([0, 0, 1.0])) == 1


def test_triangulate_rays_meets_the_point_and_refuses_one_line():
    rng = np.random.default_rng(1)
    O = rng.normal(size=(4, 3)) * 3
    X = rng.normal(size=(17, 3))
    d = X[:, None] - O[None]
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    np.testing.assert_allclose(triangulate_rays(O[None], d, np.ones((17, 4))), X, atol=1e-9)
    w = np.ones((17, 4))
    w[:, 1:] = 0  # one ray left: unknown
    assert np.isnan(triangulate_rays(O[None], d, w)).all()
    # two facing cameras on one line: no depth (NaN), not an error
    O2, d2 = np.array([[0, 0, 0], [10, 0, 0.0]]), np.array([[[1, 0, 0], [-1, 0, 0.0]]])
    assert np.isnan(triangulate_rays(O2[None], d2, np.ones((1, 2)))).all()


def test_triangulate_rays_with_rays_on_one_line_leaves_only_those_points_unknown():
    """Three cameras in a row (or one listed twice) and a point on their line: that joint has no depth; the
    other joints of the batch are solved (before, the whole batch raised numpy's "Singular matrix")."""
    O = np.array([[0, 0, 0], [5, 0, 0], [10, 0, 0.0]])
    X = np.array([[20, 0, 0], [3, 2, 1.0]])  # the first on the cameras' line
    d = X[:, None] - O[None]
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    got = triangulate_rays(O[None], d, np.ones((2, 3)))
    assert np.isnan(got[0]).all()
    np.testing.assert_allclose(got[1], X[1], atol=1e-9)
