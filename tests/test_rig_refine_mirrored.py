"""Camera refinement leaves out views whose left and right sides are exchanged (mocap.optim.rig_refine.mirrored_views):
swap repair runs after it, so a detector's swaps would otherwise reach the adjustment."""

import numpy as np
from body_synth import blazepose_keypoints, body_motion

from mocap.keypoint_sets import get_keypoint_set
from mocap.optim.rig_refine import mirror_rows, mirrored_views
from mocap.stages import rig_refine
from mocap.synth import CorruptionSpec, RigSpec, corrupt, ring_rig
from mocap.types import Keypoints2D

KS = get_keypoint_set("blazepose33")


def test_mirror_rows_pair_each_joint_with_its_mirror_in_the_same_frame():
    perm = np.array([1, 0, -1, 2])  # joints 0 and 1 a pair, 2 unpaired (−1), 3 → 2
    frame = np.array([0, 0, 0, 1, 1, 2])
    joint = np.array([0, 1, 2, 0, 3, 1])
    assert mirror_rows(frame, joint, perm).tolist() == [1, 0, -1, -1, -1, -1]  # frame 1 lacks joint 1; 3 → 2 absent
    assert mirror_rows(frame[:0], joint[:0], perm).size == 0


def test_views_with_left_and_right_exchanged_are_found_and_few_others():
    rng = np.random.default_rng(0)
    truth = blazepose_keypoints(body_motion(300, 60.0, seed=0))  # (F, J, 3)
    rig = ring_rig(RigSpec(n_cameras=8), truth.reshape(-1, 3))
    uv = np.moveaxis(rig.project(truth), 0, 1)  # (F, C, J, 2)
    data, _ = corrupt(uv, rig, "blazepose33", CorruptionSpec(2.0, 0.05, 0.10, seed=0))  # (F, C, 1, J, 3)
    swapped = rng.random(data.shape[:2]) < 0.03
    f, c = np.nonzero(swapped)
    data[f, c] = data[f, c][:, :, KS.flip_permutation]
    kp = Keypoints2D(data, rig.names, "blazepose33", 60.0)
    xy, joints = rig_refine._observations(kp, rig_refine.Config())
    frames = np.arange(len(xy))
    obs, which, frame = rig_refine._used(xy, frames, 3)
    X = truth[frame, joints[which]] + rng.normal(0, 0.003, (len(frame), 3))  # a rig and points near the solution
    drop = mirrored_views(rig, obs, X, frame, mirror_rows(frame, which, rig_refine._mirrors(kp, joints)), 2.0)
    found = np.zeros_like(swapped)
    rows, cams = np.nonzero(drop)
    found[frame[rows], cams] = True
    seen = np.isfinite(xy[..., 0]).any(axis=2)  # views with some limb detection
    assert found[swapped & seen].mean() >= 0.95, found[swapped & seen].mean()
    assert found[~swapped & seen].mean() <= 0.02, found[~swapped & seen].mean()
    assert not drop[~np.isfinite(obs[..., 0])].any()  # only observations that exist are dropped
