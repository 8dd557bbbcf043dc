"""camera_pairs and robust_points' ``pairs`` (mocap.geometry.normal_terms): the camera-pair consensus search of
the robust triangulation over each camera's best-conditioned partners (what camera refinement seeds its
adjustment and measures its held-out error with): every pair with four cameras, fewer with eight, and the
same points as the search over every pair wherever it finds the same consensus."""

import numpy as np
import pytest

from mocap.geometry.normal_terms import camera_pairs, robust_points
from mocap.geometry.triangulation import normalise_observations
from mocap.stages.rig_refine import Config
from mocap.synth import RigSpec, ring_rig


def _rig(cameras: int, X: np.ndarray):
    return ring_rig(RigSpec(n_cameras=cameras, dist=(-0.2, 0.05, 0.001, -0.001, 0.01)), X)


@pytest.mark.parametrize("cameras", [3, 4, 6, 8])
def test_pairs_cover_every_camera_and_all_of_them_up_to_four(cameras):
    X = np.random.default_rng(0).uniform([-1, -1, 0], [1, 1, 2], size=(50, 3))
    rig = _rig(cameras, X)
    a, b = camera_pairs(rig, 3)
    assert np.all(a < b) and len(set(zip(a.tolist(), b.tolist(), strict=True))) == len(a)
    every = len(np.triu_indices(cameras, 1)[0])
    if cameras <= 4:
        assert len(a) == every
    else:
        assert len(a) < every
        deg = np.bincount(np.r_[a, b], minlength=cameras)
        assert np.all(deg >= 3)  # each camera with its three partners (at least)
        z = np.stack([c.R[2] for c in rig.cameras])
        sin = np.sqrt(1 - np.clip(np.sum(z[a] * z[b], axis=1), -1, 1) ** 2)
        others = np.ones((cameras, cameras), bool)
        others[a, b] = others[b, a] = False
        np.fill_diagonal(others, False)
        i, j = np.nonzero(np.triu(others))
        left = np.sqrt(1 - np.clip(np.sum(z[i] * z[j], axis=1), -1, 1) ** 2)
        assert sin.mean() > left.mean()  # the kept pairs are the better conditioned ones
    assert len(camera_pairs(rig, None)[0]) == every


def test_bad_partner_count_is_refused():
    with pytest.raises(ValueError, match="pair_partners must be ≥ 1"):
        Config(pair_partners=0)
    with pytest.raises(ValueError, match="max_eval_views must be ≥ 1"):
        Config(max_eval_views=0)


def test_subset_search_gives_the_points_of_every_pair():
    """Eight cameras, two gross outliers in many points (the pair search decides): the points of the search
    over the best-conditioned pairs are near the truth as those of every pair, and the same almost everywhere;
    a point whose views hold none of the given pairs falls back to every pair (not left out)."""
    rng = np.random.default_rng(3)
    X = rng.uniform([-1.0, -1.0, 0.0], [1.0, 1.0, 2.0], size=(2000, 3))
    rig = _rig(8, X)
    uv = np.moveaxis(rig.project(X), 0, 1) + rng.normal(0, 1.0, (len(X), 8, 2))
    for c in range(8):  # two or three wrong views per point in a third of the points
        bad = rng.random(len(X)) < 0.12
        uv[bad, c] = rng.uniform(0, 1000, size=(bad.sum(), 2))
    uv[:20] = np.moveaxis(rig.project(X[:20]), 0, 1)  # three views only: cameras 0 and 1 right, 2 wrong
    uv[:20, 2] = rng.uniform(0, 1000, size=(20, 2))  # (too few for the point without the worst view: the
    uv[:20, 3:] = np.nan  # pair search decides)
    w = np.isfinite(uv).all(-1).astype(float)
    xn = normalise_observations(rig, uv)
    Y, vy = robust_points(rig, xn, uv, w, 15.0)
    pairs = camera_pairs(rig, 3)
    Z, vz = robust_points(rig, xn, uv, w, 15.0, pairs=pairs)
    ok = np.isfinite(Y).all(1)
    assert np.array_equal(ok, np.isfinite(Z).all(1))
    assert np.mean(np.all(vy == vz, axis=1)) > 0.99
    err_y = np.linalg.norm(Y[ok] - X[ok], axis=1)
    err_z = np.linalg.norm(Z[ok] - X[ok], axis=1)
    assert np.median(err_z) < 0.01 and np.percentile(err_z, 99) <= 1.05 * np.percentile(err_y, 99) + 1e-3
    only = (np.array([0]), np.array([5]))  # a pair none of the first 20 points has
    W, _ = robust_points(rig, xn[:20], uv[:20], w[:20], 15.0, pairs=only)
    V, _ = robust_points(rig, xn[:20], uv[:20], w[:20], 15.0)
    assert np.isfinite(W).all()
    np.testing.assert_allclose(W, V)
    np.testing.assert_allclose(W, X[:20], atol=1e-6)
