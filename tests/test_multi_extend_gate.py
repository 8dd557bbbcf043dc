"""A person seen by one view is extended by another view's detection whose ray meets its view's near the prediction
(mocap.multi.track ``_extend``); the result was bounded by the median distance of every joint to the prediction,
most of them the prediction's own (the solve fills the joints the views do not place with it), so two views of two
people meeting 1.2 m away read 0 m: the person jumped onto another's detections, followed junk for 20 frames, and came
back as another identity (a helper's 5-person 3-camera take: one person in two files)."""

from __future__ import annotations

import numpy as np
import pytest

from mocap.multi.tracklets import apart, solved_apart


def test_the_distance_of_a_solve_counts_the_joints_its_views_placed():
    prior = np.zeros((10, 3))
    X = prior.copy()
    X[:3] += [1.2, 0.0, 0.0]  # three joints placed 1.2 m away, the other seven the prediction's
    assert apart(X, prior) == 0.0  # what the gate read
    assert solved_apart(X, prior) == pytest.approx(1.2)
    assert solved_apart(prior.copy(), prior) == np.inf  # nothing placed: no fix
    X[3:] += [0.05, 0.0, 0.0]
    assert solved_apart(X, prior) == pytest.approx(0.05)  # all placed: the median, as before


@pytest.mark.slow
@pytest.mark.shared_data
def test_a_crowded_three_camera_take_keeps_each_person_one_identity(shared_data, tmp_path):
    """The helper's take (5 people, 3 cameras at zoom 2, seed 12): the person at (-1, -3.5) was split at frame 87
    into identities over frames 0–109 and 119–299; one identity now."""
    import h5py

    from mocap.cli import build_parser
    from mocap.cli.products import synth_crowd
    from mocap.io.hdf5 import read_keypoints2d
    from mocap.multi.track import associate_take
    from mocap.session import Session

    bvh = shared_data / "bvh" / "cmu_01_01.bvh"
    args = build_parser().parse_args(["synth", "keypoints", str(tmp_path / "take"), "--bvh", str(bvh), "--frames",
                                      "300", "--fps", "30", "--cameras", "3", "--people", "5", "--zoom", "2",
                                      "--seed", "12"])
    synth_crowd(args)
    s = Session(tmp_path / "take")
    rig = s.rig()
    slots, _ = associate_take(rig, s.keypoints2d(rig), "auto", progress=False, quiet=True)
    truth = h5py.File(tmp_path / "take" / "groundtruth" / "points3d.h5")["xyz"][()]  # (F, P, J, 3)
    kp = read_keypoints2d(s.pose2d_h5)
    # which identity holds the person's detections in view 0, frame by frame (their keypoints' nearest projection)
    uv = np.moveaxis(rig.project(truth[:, 1]), 0, 1)  # (F, C, J, 2)
    owner = []
    for f in range(len(slots)):
        for q in range(slots.shape[2]):
            for c in range(slots.shape[1]):
                sl = slots[f, c, q]
                if sl >= 0 and np.nanmedian(np.linalg.norm(kp.data[f, c, sl, :, :2] - uv[f, c], axis=-1)) < 10:
                    owner.append(q)
    ids, counts = np.unique(owner, return_counts=True)
    assert counts.max() >= 0.95 * counts.sum(), dict(zip(ids.tolist(), counts.tolist(), strict=True))
