"""The swap repair's consensus point (mocap.geometry.swaps_time.consensus_points) leaves the view farthest from the
point of all views out first and every view in turn only where that leaves some view disagreeing: the same points
as leaving every view out in turn, on 8 cameras with one, two and three views far off."""

import numpy as np
from body_synth import blazepose_keypoints, body_motion

from mocap.geometry.camera import pixels_to_normalised
from mocap.geometry.normal_terms import count_views, distance, normal_terms, solve_terms, sum_views
from mocap.geometry.swaps_time import consensus_points
from mocap.synth import RigSpec, ring_rig


def every_view_left_out(rig, xy, xn, w, max_px):
    """The consensus as it was made before: every view left out in turn where fewer than two views agree."""
    F, C, J, _ = xy.shape
    uv = np.moveaxis(xy, 1, 2).reshape(F * J, C, 2)
    used = np.moveaxis(w, 1, 2).reshape(F * J, C) > 0
    T = normal_terms(rig, np.moveaxis(xn, 1, 2).reshape(F * J, C, 2), used.astype(float))

    def agreeing(views):
        X = solve_terms(sum_views(views, T), count_views(views)[:, 0])
        proj = np.stack([cam.project(X) for cam in rig.cameras], axis=1)
        return used & (distance(*np.moveaxis(proj - uv, -1, 0)) < max_px)

    best = agreeing(used)
    weak = (count_views(best)[:, 0] < 2) & (count_views(used)[:, 0] >= 3)
    for c in range(C):
        views = used.copy()
        views[:, c] = False
        a = agreeing(views)
        better = weak & (count_views(a)[:, 0] > count_views(best)[:, 0])
        best[better] = a[better]
    X = solve_terms(sum_views(best, T), count_views(best)[:, 0])
    X[count_views(best)[:, 0] < 2] = np.nan
    return X.reshape(F, J, 3)


def test_the_farthest_view_first_gives_the_points_of_every_view_left_out():
    rng = np.random.default_rng(3)
    truth = blazepose_keypoints(body_motion(30, 60.0, seed=3))  # (F, J, 3)
    rig = ring_rig(RigSpec(n_cameras=8), truth.reshape(-1, 3))
    xy = np.moveaxis(rig.project(truth), 0, 1) + rng.normal(0, 1.0, (30, 8, 33, 2))  # (F, C, J, 2)
    far = rng.random(xy.shape[:3]) < 0.12  # about one view in eight far off: rows with 0, 1, 2, 3 of them
    xy[far] += rng.choice([-1, 1], (far.sum(), 2)) * rng.uniform(150, 400, (far.sum(), 2))
    w = np.ones(xy.shape[:3])
    w[rng.random(w.shape) < 0.1] = 0.0
    xn = np.stack([pixels_to_normalised(cam, xy[:, c]) for c, cam in enumerate(rig.cameras)], axis=1)
    X = consensus_points(rig, xy, xn, w, 15.0)
    ref = every_view_left_out(rig, xy, xn, w, 15.0)
    assert np.array_equal(np.isnan(X), np.isnan(ref))
    assert np.nanmax(np.abs(X - ref)) < 1e-9
    outliers = ((far & (w > 0)).sum(axis=1))  # (F, J) far views per point
    one = outliers == 1
    assert one.sum() > 100 and np.nanmax(np.linalg.norm(X[one] - truth[one], axis=-1)) < 0.02  # ≤ 2 cm
