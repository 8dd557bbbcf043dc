"""The association's small ray functions against their plain definitions (they are written for speed)."""

import numpy as np
import pytest

from mocap.multi.associate import pair_affinity
from mocap.multi.rays import point_ray_distance, ray_ray_distance, robust_median, triangulate_rays


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


def test_ray_ray_distance_is_unknown_where_either_ray_is():
    """A joint one of two detections does not see (its ray NaN) has no distance, whichever detection comes first:
    it was the other camera's distance from the seen ray (metres) when the second ray was the missing one, so a
    pair of detections seeing different joints (one body side hidden) read as far apart in one order only."""
    o1, o2 = np.zeros(3), np.array([2.0, 0.0, 0.0])
    up, skew, missing = np.array([0, 0, 1.0]), np.array([-1.0, 0, 1.0]) / np.sqrt(2), np.full(3, np.nan)
    d1 = np.stack([up, missing, up, up])
    d2 = np.stack([missing, up, up, skew])
    got = ray_ray_distance(o1, d1, o2, d2)
    np.testing.assert_array_equal(np.isnan(got), [True, True, False, False])
    np.testing.assert_allclose(got[2:], [2.0, 0.0], atol=1e-12)  # parallel lines 2 m apart; lines that cross
    np.testing.assert_array_equal(np.isnan(ray_ray_distance(o2, d2, o1, d1)), np.isnan(got))
    # two detections of one body, the second missing most joints: they meet (median over the joints both see),
    # in either order
    rng = np.random.default_rng(0)
    X = rng.normal(size=(17, 3)) * 0.3 + [0, 0, 4.0]
    origins = np.array([[0.0, 0, 0], [3.0, 0, 0]])
    rays = (X[None] - origins[:, None]) / np.linalg.norm(X[None] - origins[:, None], axis=-1, keepdims=True)
    rays[1, :10] = np.nan
    cost = pair_affinity(origins, rays, np.array([0, 1]), 3)
    assert cost[0, 1] < 1e-9 and cost[1, 0] < 1e-9
    # ``cover``: [a, b] over the joints a sees: the partial detection covers the few joints it sees of the whole
    # one's, not the other way round (10 of its 17 joints unseen: far)
    cover = pair_affinity(origins, rays, np.array([0, 1]), 3, cover=True)
    assert cover[1, 0] < 1e-9 and cover[0, 1] > 100
    rays[1, :15] = np.nan  # fewer joints in common than min_joints: no distance either way
    assert np.isinf(pair_affinity(origins, rays, np.array([0, 1]), 3, cover=True)[[0, 1], [1, 0]]).all()


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
