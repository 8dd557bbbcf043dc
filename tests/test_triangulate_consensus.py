"""Triangulate's consensus before the camera-pair search (``consensus_first``, on with the swap repair's work):
a point whose worst views, left out one after another, leave at least three views, more than half, that agree
takes that consensus; the same points and views as the pair search, which runs on the rest only."""

import numpy as np
import pytest
from test_swaps import swapped_take
from test_triangulate_reuse import assert_same, repaired

import mocap.geometry.triangulation as tri
from mocap.geometry.triangulation import triangulate
from mocap.stages import triangulate as stage
from mocap.synth import RigSpec, ring_rig


@pytest.fixture(scope="module")
def eight():
    """8 cameras, 1 px noise; a third of the points with two or three wrong views, a tenth with one."""
    rng = np.random.default_rng(0)
    X = rng.uniform([-1.5, -1.5, 0.0], [1.5, 1.5, 2.0], size=(3000, 3))
    rig = ring_rig(RigSpec(n_cameras=8), X)
    obs = np.moveaxis(rig.project(X), 0, 1) + rng.normal(0, 1.0, (len(X), 8, 2))
    wrong = np.zeros(obs.shape[:2], bool)
    for k, share in ((1, 0.1), (2, 0.2), (3, 0.13)):
        rows = np.flatnonzero(~wrong.any(axis=1) & (rng.random(len(X)) < share / (1 - wrong.any(axis=1).mean())))
        for r in rows:
            wrong[r, rng.choice(8, k, replace=False)] = True
    sign = rng.choice([-1, 1], (wrong.sum(), 2))
    obs[wrong] += rng.uniform(40, 300, (wrong.sum(), 2)) * sign
    return rig, X, obs, wrong


def counting(monkeypatch):
    calls = []
    real = tri._subset_search

    def search(*a, **k):
        calls.append(a[6].size)
        return real(*a, **k)

    monkeypatch.setattr(tri, "_subset_search", search)
    return calls


def test_the_consensus_gives_the_pair_search_points_and_leaves_it_few(eight, monkeypatch):
    rig, X, obs, wrong = eight
    w = np.ones(obs.shape[:2])
    calls = counting(monkeypatch)
    Y, err, views = triangulate(rig, obs, w, max_reproj_px=15.0, min_pair_angle_deg=30.0)
    searched = calls.pop()
    Z, err_z, views_z = triangulate(rig, obs, w, max_reproj_px=15.0, min_pair_angle_deg=30.0, consensus_first=True)
    assert searched > 0.3 * len(X)  # the points with two or three wrong views
    assert sum(calls) < 0.05 * searched
    np.testing.assert_allclose(Z, Y, rtol=0, atol=1e-9)
    assert np.array_equal(views, views_z)
    np.testing.assert_allclose(err_z, err, rtol=0, atol=1e-9)
    assert np.mean(views_z[wrong]) < 0.01 and np.mean(views_z[~wrong]) > 0.98
    assert np.median(np.linalg.norm(Z - X, axis=1)) < 0.01


def test_a_set_of_agreeing_views_that_is_no_majority_is_left_to_the_pair_search(monkeypatch):
    """Three views of six see another point (a limb of someone else, 40 cm away): three against three is no
    consensus (the pair search decides, as without it)."""
    rng = np.random.default_rng(1)
    X = rng.uniform([-1.0, -1.0, 0.5], [1.0, 1.0, 1.5], size=(200, 3))
    rig = ring_rig(RigSpec(n_cameras=6), X)
    obs = np.moveaxis(rig.project(X), 0, 1) + rng.normal(0, 0.5, (len(X), 6, 2))
    other = np.moveaxis(rig.project(X + [0.4, 0.0, 0.0]), 0, 1)
    obs[:, 3:] = other[:, 3:]
    w = np.ones(obs.shape[:2])
    calls = counting(monkeypatch)
    Z, _, views = triangulate(rig, obs, w, max_reproj_px=10.0, consensus_first=True)
    assert calls and calls[0] == len(X)  # none settled before the pair search
    Y, _, views_y = triangulate(rig, obs, w, max_reproj_px=10.0)
    assert np.array_equal(views, views_y) and np.allclose(Y, Z, equal_nan=True)


def test_the_stage_reusing_the_swap_repair_uses_it_with_the_same_points(monkeypatch):
    rig, kp, _, _ = swapped_take(300, swaps=0.03, n_cameras=8)
    fixed, work = repaired(rig, kp)
    plain = stage.run(rig, fixed)
    calls = counting(monkeypatch)
    stage.run(rig, fixed)
    alone = sum(calls)
    calls.clear()
    assert_same(plain, stage.run(rig, fixed, swap_work=work))
    assert alone > 0 and sum(calls) < 0.5 * alone
