"""Sync undistorts only the detections it has (mocap.geometry.epipolar.normalised): the same coordinates as
undistorting every point, NaN where a detection is missing, the homogeneous coordinate 1 everywhere."""

import dataclasses

import numpy as np

from mocap.geometry.camera import pixels_to_normalised
from mocap.geometry.epipolar import normalised
from mocap.synth import RigSpec, ring_rig
from mocap.types import Rig


def test_known_points_are_undistorted_as_every_point_and_missing_ones_stay_nan():
    rng = np.random.default_rng(0)
    rig = ring_rig(RigSpec(n_cameras=3), rng.normal(0, 0.5, (50, 3)) + [0, 0, 1])
    cam = dataclasses.replace(rig.cameras[1], dist=np.array([-0.2, 0.05, 0.001, -0.001, 0.0]))  # distorted
    rig = Rig((rig.cameras[0], cam, rig.cameras[2]))
    xy = rng.uniform(100, 500, (40, 6, 2))
    xy[rng.random((40, 6)) < 0.2] = np.nan
    xy[0, 0, 1] = np.nan  # one coordinate missing: the point is missing
    out = normalised(rig, 1, xy)
    every = pixels_to_normalised(rig[1], np.nan_to_num(xy))
    known = np.isfinite(xy).all(axis=-1)
    assert np.array_equal(out[known, :2], every[known])
    assert np.isnan(out[~known, :2]).all() and (out[..., 2] == 1).all()
