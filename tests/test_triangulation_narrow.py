"""Two views whose rays are nearly on one line (facing cameras) fix a point's depth badly and agree with a wrong
detection anywhere near the other's epipolar line (the real two-person demo: 6 % of one person's points came
from such a pair). The robust triangulation must not prefer them (min_pair_angle_deg)."""

import numpy as np
import pytest

from mocap.geometry.triangulation import pair_cosine, triangulate
from mocap.stages.triangulate import Config
from mocap.synth import RigSpec, ring_rig

THR = 15.0


@pytest.fixture(scope="module")
def scene():
    """A ring of four cameras (cam01 faces cam03, cam02 faces cam04, as on the Qualisys demo rig) and points
    near the middle, where the facing pairs' rays are within ~18° of one line (31° at most)."""
    rng = np.random.default_rng(3)
    X = rng.uniform([-0.3, -0.3, 0.6], [0.3, 0.3, 1.4], size=(3000, 3))
    rig = ring_rig(RigSpec(n_cameras=4), X)
    uv = np.moveaxis(rig.project(X), 0, 1) + rng.normal(0, 1.0, (len(X), 4, 2))
    return rig, X, uv, rng


def _ray(rig, c, X):
    centre = rig[c].center
    d = X - centre
    return d / np.linalg.norm(d, axis=1, keepdims=True)


def test_facing_pairs_are_narrow(scene):
    rig, X, _, _ = scene
    Ps = np.stack([c.cam_from_world for c in rig.cameras])
    angle = np.degrees(np.arccos(pair_cosine(Ps, X, 0, 2)))
    assert np.median(angle) < 20  # within 20° of one line: depth along it barely observed
    assert np.median(np.degrees(np.arccos(pair_cosine(Ps, X, 0, 1)))) > 60


def test_a_wrong_view_on_the_facing_cameras_line_does_not_win(scene):
    """Three views: cam01 and cam02 right, cam03 (facing cam01) wrong but on cam01's ray (it agrees with
    cam01 exactly, at another depth). Both pairs explain two views; the facing pair's agreement costs nothing,
    so it won the tie and put the point 0.1–0.4 m off along cam01's ray. Now the well-conditioned pair wins
    (where the wrong view is nearly right, within the threshold of the true point's projection, it is kept)."""
    rig, X, uv, rng = scene
    obs = uv.copy()
    obs[:, 3] = np.nan  # cam04 does not see these points
    depth = rng.uniform(0.1, 0.4, len(X)) * rng.choice([-1, 1], len(X))
    wrong = X + depth[:, None] * _ray(rig, 0, X)
    obs[:, 2] = rig[2].project(wrong)
    w = np.ones(obs.shape[:2])
    old, _, _ = triangulate(rig, obs, w, max_reproj_px=THR)
    new = triangulate(rig, obs, w, max_reproj_px=THR, min_pair_angle_deg=30.0)[0]
    e_old, e_new = np.linalg.norm(old - X, axis=1), np.linalg.norm(new - X, axis=1)
    assert np.median(e_old) > 0.1 and np.percentile(e_old, 90) > 0.3  # the fault: the facing pair won
    assert np.isfinite(new).all()
    assert np.median(e_new) < 0.003 and np.percentile(e_new, 90) < 0.01  # measured 1.6 and 5 mm (old: 140, 352)


def test_a_facing_pair_that_explains_more_views_is_kept(scene):
    """cam01 and cam03 right (facing), cam02 off by 40–200 px: every pair with cam02 explains one view, the
    facing pair two: it is kept (its depth is noisy, but it is the right answer), exactly as before."""
    rig, X, uv, rng = scene
    obs = uv.copy()
    obs[:, 3] = np.nan
    obs[:, 1] += rng.uniform(40, 200, (len(X), 1)) * rng.choice([-1, 1], (len(X), 2))
    w = np.ones(obs.shape[:2])
    old = triangulate(rig, obs, w, max_reproj_px=THR)
    new = triangulate(rig, obs, w, max_reproj_px=THR, min_pair_angle_deg=30.0)
    for x, y in zip(old, new, strict=True):
        assert np.array_equal(x, y, equal_nan=True)
    assert np.isfinite(new[0]).all() and not new[2][:, 1].any()
    assert np.median(np.linalg.norm(new[0] - X, axis=1)) < 0.01


def test_a_point_only_two_cameras_saw_is_kept(scene):
    """A stereo pair (or two views only): no other answer, the point is kept as before."""
    rig, X, uv, _ = scene
    obs = uv.copy()
    obs[:, [1, 3]] = np.nan
    w = np.ones(obs.shape[:2])
    a = triangulate(rig, obs, w, max_reproj_px=THR)[0]
    b = triangulate(rig, obs, w, max_reproj_px=THR, min_pair_angle_deg=30.0)[0]
    assert np.array_equal(a, b, equal_nan=True) and np.isfinite(b).all()


def test_without_narrow_pairs_nothing_changes(scene):
    """Every view right: no point is touched (the rule only acts where the search dropped views)."""
    rig, X, uv, _ = scene
    w = np.ones(uv.shape[:2])
    a = triangulate(rig, uv, w, max_reproj_px=THR)
    b = triangulate(rig, uv, w, max_reproj_px=THR, min_pair_angle_deg=30.0)
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x, y, equal_nan=True)


@pytest.mark.parametrize("value", [-1.0, 90.0, float("nan")])
def test_bad_min_pair_angle_is_refused(value):
    with pytest.raises(ValueError, match=r"min_pair_angle_deg must be in \[0, 90\) degrees \(0: off\), got"):
        Config(min_pair_angle_deg=value)
