"""A keypoint unseen for a while whose segment's other keypoints are seen is carried with them (not
interpolated in space by the smoothing)."""


import numpy as np
from body_synth import blazepose_keypoints, body_motion

from mocap.fit import FitConfig, combine_keypoints, fit_motion
from mocap.fit.segments import fill_from_segments, segment_groups
from mocap.geometry.rotations import axis_angle_to_matrix
from mocap.keypoint_sets import get_keypoint_set
from mocap.skeletons import load_skeleton


def test_segments_come_from_the_skeletons_mapping():
    kps = get_keypoint_set("blazepose33")
    groups = [{kps.joints[k] for k in g} for g in segment_groups(load_skeleton(), "blazepose33")]
    assert {"left_wrist", "left_index", "left_pinky"} in groups
    assert {"right_ankle", "right_heel", "right_foot_index"} in groups
    assert {"left_ear", "right_ear", "nose"} in groups
    assert not any("left_hip" in g for g in groups)  # two hip points: nothing to carry one with


def test_a_rigid_segment_carries_its_unseen_point():
    """Three points of a segment that turns and moves; the fourth, unseen in the middle, follows them."""
    F = 40
    body = np.array([[0.0, 0, 0], [0.1, 0, 0], [0, 0.08, 0], [0.03, 0.02, 0.09]])
    R = axis_angle_to_matrix(np.outer(np.linspace(0, 1.5, F), [0.3, 1.0, 0.2]) / np.linalg.norm([0.3, 1.0, 0.2]))
    pts = np.einsum("fij,kj->fki", R, body) + np.linspace(0, 1, F)[:, None, None] * [0.5, 0.2, 0]
    gap = pts.copy()
    gap[10:30, 3] = np.nan
    out, filled = fill_from_segments(gap, [np.arange(4)], max_gap=25)
    assert filled[10:30, 3].all() and filled.sum() == 20
    assert np.abs(out - pts).max() < 1e-9
    assert not fill_from_segments(gap, [np.arange(4)], max_gap=15)[1].any()  # longer than max_gap: left alone
    gap[15, 1] = np.nan  # one of the others unseen too: the segment is not located there, left to the smoothing
    assert not fill_from_segments(gap, [np.arange(4)], max_gap=25)[1].any()
    tri = fill_from_segments(gap[:, [0, 2, 3]], [np.arange(3)], max_gap=25)  # two others (a line) carry it too
    assert tri[1][10:30, 2].all() and np.isfinite(tri[0]).all()


def test_the_wrist_is_carried_by_the_seen_index_and_pinky():
    """Both wrists unseen for 28 frames (under fit.max_gap_s) while the index and pinky are seen: the smoothing
    interpolated them in space, 290 mm off the moving hand; carried with the hand's points they stay near it."""
    truth = body_motion(240, seed=2)
    kp = blazepose_keypoints(truth)
    noisy = kp + np.random.default_rng(2).normal(scale=0.002, size=kp.shape)
    kps = get_keypoint_set("blazepose33")
    a, b = 100, 128
    for n in ("left_wrist", "right_wrist"):
        noisy[a:b, kps.index(n)] = np.nan
    motion, _ = fit_motion(noisy, "blazepose33", truth.fps, FitConfig(noise_mm=2.0))
    spec = load_skeleton()
    W, _ = spec.mapping_matrix("blazepose33")
    target = combine_keypoints(W, kp)
    j = [spec.skeleton.index("LeftHand"), spec.skeleton.index("RightHand")]
    _, p = motion.fk()
    err = np.linalg.norm(p[:, j] - target[:, j], axis=2)
    assert err[a:b].max() < 0.06, err[a:b].max(axis=0)
    assert np.delete(err, np.arange(a, b), axis=0).max() < 0.01
