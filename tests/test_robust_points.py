"""robust_points (mocap.geometry.normal_terms): the robust triangulation of
mocap.geometry.triangulation.triangulate on normal terms, with the undistortion done once by the caller
(camera refinement triangulates the same observations through several rigs): the same points and views."""

import numpy as np
import pytest

from mocap.geometry.normal_terms import robust_points
from mocap.geometry.rotations import axis_angle_to_matrix
from mocap.geometry.triangulation import normalise_observations, triangulate
from mocap.synth import RigSpec, ring_rig
from mocap.types import Rig


def _turned(rig: Rig, deg: float, rng) -> Rig:
    """Every camera but the first turned by ``deg`` about a random axis (its pixels then disagree)."""
    cams = [rig.cameras[0]]
    for c in rig.cameras[1:]:
        a = rng.normal(size=3)
        R = axis_angle_to_matrix(a / np.linalg.norm(a) * np.radians(deg)) @ c.R
        T = np.eye(4)
        T[:3, :3], T[:3, 3] = R, -R @ c.center
        cams.append(c.with_pose(T))
    return Rig(tuple(cams))


@pytest.mark.parametrize("cameras", [3, 4, 6])
@pytest.mark.parametrize("turn_deg", [0.0, 1.5])
def test_robust_points_are_the_robust_triangulation(cameras, turn_deg):
    rng = np.random.default_rng(cameras)
    X = rng.uniform([-1.0, -1.0, 0.0], [1.0, 1.0, 2.0], size=(3000, 3))
    rig = ring_rig(RigSpec(n_cameras=cameras, dist=(-0.2, 0.05, 0.001, -0.001, 0.01)), X)
    uv = np.moveaxis(rig.project(X), 0, 1) + rng.normal(0, 2.0, (len(X), cameras, 2))
    bad = rng.random(uv.shape[:2]) < 0.08
    uv[bad] = rng.uniform(0, 1000, size=(bad.sum(), 2))  # gross outliers
    uv[rng.random(uv.shape[:2]) < 0.1] = np.nan  # dropouts
    w = np.all(np.isfinite(uv), axis=-1).astype(float)
    through = _turned(rig, turn_deg, rng)  # a rig that is off: many points need the pair search
    Y, _, views = triangulate(through, uv, w, max_reproj_px=15.0)
    Z, views_z = robust_points(through, normalise_observations(through, uv), uv, w, 15.0)
    assert np.array_equal(np.isnan(Y[:, 0]), np.isnan(Z[:, 0]))
    assert np.nanmax(np.linalg.norm(Y - Z, axis=1)) < 1e-9
    assert np.array_equal(views, views_z)
    if turn_deg == 0 and cameras >= 4:  # and it is robust: the outliers are left out
        assert np.mean(views_z[bad]) < 0.02


def test_finite_is_all_finite_along_the_last_axis():
    from mocap.geometry.normal_terms import finite

    rng = np.random.default_rng(0)
    for k in (1, 2, 3):
        a = rng.normal(size=(50, 4, k))
        a[rng.random(a.shape) < 0.1] = np.nan
        a[rng.random(a.shape) < 0.05] = np.inf
        assert np.array_equal(finite(a), np.all(np.isfinite(a), axis=-1))


@pytest.mark.parametrize("cameras", [2, 3, 5])
def test_robust_points_match_on_two_cameras_and_rows_with_fewer_than_two_views(cameras):
    """Two cameras (no leave-one-out; the only pair decides), rows with no view or one view (NaN, no views),
    weights other than 1, pixels rounded to whole pixels (equal errors: the first pair wins in both)."""
    rng = np.random.default_rng(10 + cameras)
    X = rng.uniform([-1.0, -1.0, 0.0], [1.0, 1.0, 2.0], size=(1500, 3))
    rig = ring_rig(RigSpec(n_cameras=cameras), X)
    uv = np.round(np.moveaxis(rig.project(X), 0, 1) + rng.normal(0, 2.0, (len(X), cameras, 2)))
    bad = rng.random(uv.shape[:2]) < 0.15
    uv[bad] = rng.uniform(0, 1000, size=(bad.sum(), 2))
    uv[:40] = np.nan  # no view
    uv[40:80, 1:] = np.nan  # one view
    w = np.all(np.isfinite(uv), axis=-1) * rng.uniform(0.3, 1.0, uv.shape[:2])
    Y, _, views = triangulate(rig, uv, w, max_reproj_px=15.0)
    Z, views_z = robust_points(rig, normalise_observations(rig, uv), uv, w, 15.0)
    assert np.isnan(Z[:80]).all() and not views_z[:80].any()
    assert np.array_equal(np.isnan(Y[:, 0]), np.isnan(Z[:, 0])) and np.array_equal(views, views_z)
    assert np.nanmax(np.linalg.norm(Y - Z, axis=1)) < 1e-9
    assert np.isfinite(Z[80:, 0]).mean() > 0.5  # most points are found: the comparison is not of NaNs
