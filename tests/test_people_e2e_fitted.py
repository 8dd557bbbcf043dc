"""``mocap bench people-e2e``: the fitted skeleton scored as the refined points are, and where the error is."""

from __future__ import annotations

import numpy as np

from mocap.bench.people_e2e import breakdown, person_errors, skeleton_keypoints
from mocap.skeletons import load_skeleton
from mocap.types import Motion

EVAL = ["left_shoulder", "left_elbow", "left_wrist", "right_knee", "nose"]


def _motion(F: int, seed: int = 0) -> Motion:
    spec = load_skeleton("body22")
    J = len(spec.skeleton.joint_names)
    rng = np.random.default_rng(seed)
    q = np.concatenate([np.ones((F, J, 1)), rng.normal(0, 0.2, (F, J, 3))], axis=-1)
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    return Motion(spec.skeleton, q, rng.normal(0, 0.5, (F, 3)), 30.0)


def test_skeleton_keypoints_are_the_joints_that_play_a_keypoint_alone():
    spec = load_skeleton("body22")
    motion = _motion(6)
    _, pos = motion.fk()
    sk = motion.skeleton
    out = skeleton_keypoints(motion, spec.mappings["blazepose33"], EVAL, 8)
    assert out.shape == (8, len(EVAL), 3)
    for k, joint in enumerate(["LeftArm", "LeftForeArm", "LeftHand", "RightLeg"]):
        np.testing.assert_allclose(out[:6, k], pos[:, sk.index(joint)])
    assert np.isnan(out[:, 4]).all()  # the nose: no joint plays it alone (the head is the ears' midpoint)
    assert np.isnan(out[6:]).all()  # frames beyond the motion
    assert np.isnan(skeleton_keypoints(motion, {}, EVAL, 6)).all()  # no mapping for the keypoint set


def test_fitted_and_refined_scored_alike_and_the_constant_bone_wins_on_jitter():
    """A fitted skeleton with a steady offset per keypoint scores as the truth (bias-corrected), where points with
    the same offset and per-frame jitter do not."""
    F, K = 40, 3
    rng = np.random.default_rng(1)
    truth = rng.normal(0, 0.3, (F, K, 3))
    fitted = truth + [0.02, -0.01, 0.03]
    refined = fitted + rng.normal(0, 0.01, (F, K, 3))
    a, b = person_errors(fitted, truth), person_errors(refined, truth)
    assert a["mpjpe_bias_corrected_mm"] < 1e-9 and abs(a["mpjpe_raw_mm"] - np.linalg.norm([20, 10, 30])) < 1e-6
    assert 10 < b["mpjpe_bias_corrected_mm"] < 25  # ~ the jitter's 3D norm (16 mm), plus the first half's mean
    assert b["keypoints_finite"] == 1.0


def test_breakdown_finds_the_frames_a_nearer_person_overlaps_in_two_views():
    F, C, K = 20, 4, 3
    truth = np.zeros((F, K, 3)) + np.arange(K)[:, None] * 0.2
    X = truth.copy()
    occ = np.zeros((F, C, K), bool)
    occ[[12, 15], :2, 1] = True  # frames 12 and 15: keypoint 1 overlapped in views 0 and 1
    occ[17, 3, 0] = True  # frame 17: one view
    X[[12, 15], 1] += [0.0, 0.06, 0.0]  # 60 mm off where two views overlap
    r = breakdown(X, truth, ["a", "b", "c"], occ)
    groups = r["by_occluded_views"]
    assert {k: v["frames"] for k, v in groups.items()} == {"0": 7, "1": 1, "2": 2}
    assert abs(groups["2"]["mpjpe_bias_corrected_mm"] - 20.0) < 1e-9  # one of three keypoints 60 mm off
    assert groups["0"]["mpjpe_bias_corrected_mm"] == 0.0 and groups["1"]["mpjpe_bias_corrected_mm"] == 0.0
    assert abs(r["per_keypoint_bias_corrected_mm"]["b"] - 12.0) < 1e-9  # 2 of the 10 scored frames
    assert r["per_keypoint_bias_corrected_mm"]["a"] == 0.0
    assert len(r["per_frame_bias_corrected_mm"]) == 10 and abs(r["per_frame_bias_corrected_mm"][2] - 20.0) < 1e-9


def test_straightened_limbs_finds_a_fitted_elbow_held_straight_where_the_points_bend():
    from mocap.bench.people_e2e import straightened_limbs

    names = ["left_shoulder", "left_elbow", "left_wrist", "right_hip", "right_knee", "right_ankle"]
    F = 6
    bend = np.radians(np.array([10, 40, 60, 80, 60, 40]))  # the refined left elbow's flexion per frame
    X = np.zeros((F, 6, 3))
    X[:, 1] = [0.3, 0, 0]
    X[:, 2] = X[:, 1] + 0.25 * np.stack([np.cos(bend), np.sin(bend), 0 * bend], axis=1)
    X[:, 3:] = [[0.1, 0, 1.0], [0.1, 0, 0.55], [0.1, 0.2, 0.2]]  # a leg, fitted as the points
    fitted = X.copy()
    fitted[2:5, 2] = fitted[2:5, 1] + [0.25 * np.cos(0.1), 0.25 * np.sin(0.1), 0]  # frames 2-4: straight (5.7°)
    assert straightened_limbs(X, fitted, names) == {"left_elbow": [2, 3, 4]}
    assert straightened_limbs(X, X, names) == {}
    assert straightened_limbs(X[:, 3:], fitted[:, 3:], names[3:]) == {}  # no arm evaluated
