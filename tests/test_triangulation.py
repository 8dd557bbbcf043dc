import numpy as np
import pytest

from mocap.geometry.triangulation import dlt, normalise_observations, reprojection_errors, triangulate
from mocap.synth import RigSpec, ring_rig


@pytest.fixture(scope="module")
def scene():
    rng = np.random.default_rng(0)
    X = rng.uniform([-1.5, -1.5, 0.0], [1.5, 1.5, 2.0], size=(5000, 3))
    rig = ring_rig(RigSpec(n_cameras=6, dist=(-0.2, 0.05, 0.001, -0.001, 0.01)), X)
    uv = np.moveaxis(rig.project(X), 0, 1)  # (N, C, 2)
    return rig, X, uv


def test_noiseless_triangulation_recovers_points_exactly(scene):
    rig, X, uv = scene
    Y, err, views = triangulate(rig, uv, np.ones(uv.shape[:2]))
    assert np.max(np.linalg.norm(Y - X, axis=1)) < 1e-6
    assert np.max(err) < 1e-6 and views.all()
    Y, _, _ = triangulate(rig, uv, np.ones(uv.shape[:2]), max_reproj_px=5.0)
    assert np.max(np.linalg.norm(Y - X, axis=1)) < 1e-6


def test_noisy_triangulation_error_matches_noise_level(scene):
    rig, X, uv = scene
    sigma = 1.0
    noisy = uv + np.random.default_rng(1).normal(0, sigma, uv.shape)
    Y, err, _ = triangulate(rig, noisy, np.ones(uv.shape[:2]))
    # Each view constrains the point to sigma·depth/f metres; C views average that down by ~√C.
    f = rig[0].K[0, 0]
    depth = np.mean([np.linalg.norm(X - c.center, axis=1).mean() for c in rig])
    bound = 3 * sigma * depth / f / np.sqrt(len(rig) / 2)
    assert np.sqrt(np.mean(np.sum((Y - X) ** 2, axis=1))) < bound
    assert 0.3 * sigma < np.median(err) < 2 * sigma


def test_robust_mode_rejects_gross_outliers(scene):
    rig, X, uv = scene
    rng = np.random.default_rng(2)
    noisy = uv + rng.normal(0, 1.0, uv.shape)
    bad = rng.random(uv.shape[:2]) < 0.1
    noisy[bad] = rng.uniform(0, 1000, size=(bad.sum(), 2))
    w = np.ones(uv.shape[:2])
    clean = np.where(bad[..., None], np.nan, noisy)  # the same noise, outliers known and removed
    e_oracle = np.linalg.norm(triangulate(rig, clean, w)[0] - X, axis=1)
    e_plain = np.linalg.norm(triangulate(rig, noisy, w)[0] - X, axis=1)
    robust, _, views = triangulate(rig, noisy, w, max_reproj_px=10.0)
    e_robust = np.linalg.norm(robust - X, axis=1)
    assert np.nanmean(e_plain) > 5 * np.nanmean(e_oracle)
    assert np.nanmean(e_robust) < 1.1 * np.nanmean(e_oracle)
    assert np.nanpercentile(e_robust, 99) < 2 * np.nanpercentile(e_oracle, 99)
    assert np.mean(views[bad]) < 0.01 and np.mean(views[~bad]) > 0.98


def test_insufficient_views_give_nan(scene):
    rig, X, uv = scene
    uv = uv[:10].copy()
    w = np.ones(uv.shape[:2])
    uv[:5, 1:] = np.nan  # one view only
    w[5:, 2:] = 0.0  # two views, but min_views=3
    Y, err, views = triangulate(rig, uv, w, min_views=3)
    assert np.all(np.isnan(Y)) and np.all(np.isnan(err)) and not views.any()
    Y, _, _ = triangulate(rig, uv, w, min_views=2)
    assert np.all(np.isnan(Y[:5])) and np.all(np.isfinite(Y[5:]))


def test_dlt_and_errors_check_shapes(scene):
    rig, X, uv = scene
    with pytest.raises(ValueError, match=r"expected shape \(\.\.\., 6, 2\), got \(10, 5, 2\)"):
        triangulate(rig, uv[:10, :5], np.ones((10, 5)))
    with pytest.raises(ValueError, match=r"weights: expected shape \(10, 6\), got \(10, 5\)"):
        triangulate(rig, uv[:10], np.ones((10, 5)))
    with pytest.raises(ValueError, match="min_views must be at least 2"):
        triangulate(rig, uv[:10], np.ones((10, 6)), min_views=1)
    xn = normalise_observations(rig, uv[:10])
    Ps = np.stack([c.cam_from_world for c in rig])
    assert np.allclose(dlt(Ps, xn, np.ones((10, 6))), X[:10], atol=1e-6)
    assert reprojection_errors(rig, X[:10], uv[:10]).shape == (10, 6)


def test_leaving_the_worst_view_out_gives_what_the_pair_search_gives(scene, monkeypatch):
    """Points with one wrong view are solved without their worst view before the camera-pair search; the
    search alone finds the same points and views (and takes the points with two wrong views)."""
    import mocap.geometry.triangulation as tri

    rig, X, uv = scene
    rng = np.random.default_rng(7)
    obs = uv + rng.normal(0, 1.0, uv.shape)
    one = rng.random(len(X)) < 0.3
    obs[one, rng.integers(0, 6, one.sum())] += rng.uniform(60, 300, (one.sum(), 2))
    two = np.flatnonzero(~one)[:300]
    obs[two, 1] += 150.0
    obs[two, 4] -= 200.0
    w = np.ones(obs.shape[:2])
    Y, err, views = triangulate(rig, obs, w, max_reproj_px=15.0)
    calls = []
    real = tri._subset_search

    def search_only(*a):
        calls.append(len(a[6]))
        return real(*a)

    monkeypatch.setattr(tri, "_subset_search", search_only)
    Y2, err2, views2 = triangulate(rig, obs, w, max_reproj_px=15.0)
    assert calls and calls[0] < one.sum()  # the one-wrong-view points were settled before the search
    monkeypatch.setattr(tri, "_without_worst", lambda Ps, xn, w, valid, idx, *a: (
        np.zeros(len(idx), bool), np.zeros((0, 3)), np.zeros((0, valid.shape[1]), bool)))
    Z, errz, viewsz = triangulate(rig, obs, w, max_reproj_px=15.0)
    assert (views == viewsz).mean() > 0.999
    assert np.nanmax(np.linalg.norm(Y - Z, axis=1)[(views == viewsz).all(axis=1)]) < 1e-9
    assert np.median(np.linalg.norm(Y - X, axis=1)) < 0.01


def test_three_cameras_with_one_wrong_view_are_left_to_the_pair_search(monkeypatch):
    """With three views, leaving the worst out leaves two, which agree with each other even when one of them
    is the wrong view (near the other's epipolar line): those points go to the pair search, as before."""
    import mocap.geometry.triangulation as tri

    rng = np.random.default_rng(0)
    X = rng.uniform([-1.5, -1.5, 0.0], [1.5, 1.5, 2.0], size=(4000, 3))
    rig = ring_rig(RigSpec(n_cameras=3), X)
    obs = np.moveaxis(rig.project(X), 0, 1) + rng.normal(0, 1.0, (len(X), 3, 2))
    one = rng.random(len(X)) < 0.4
    sign = rng.choice([-1, 1], (one.sum(), 2))
    obs[one, rng.integers(0, 3, one.sum())] += rng.uniform(30, 300, (one.sum(), 2)) * sign
    w = np.ones(obs.shape[:2])
    Y, _, views = triangulate(rig, obs, w, max_reproj_px=15.0)
    monkeypatch.setattr(tri, "_without_worst", lambda Ps, xn, w, valid, idx, *a: (
        np.zeros(len(idx), bool), np.zeros((0, 3)), np.zeros((0, valid.shape[1]), bool)))
    Z, _, search = triangulate(rig, obs, w, max_reproj_px=15.0)
    assert np.array_equal(views, search) and np.allclose(Y, Z, equal_nan=True)
    assert np.sum(np.linalg.norm(Y - X, axis=1) > 0.05) < 0.005 * len(X)  # was 73 of 4,000 (0.9 m median)
