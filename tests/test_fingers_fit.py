"""Fingers (issue 16): the body52 skeleton, procedural finger motion, and the fit of fingers from noisy 3D
hand keypoints (flexion, fingertips), unseen hands held at rest and flagged, a keypoint set without hands."""

import json
import logging

import numpy as np
import pytest
from body_synth import blazepose_keypoints, body_motion

from mocap.config_files import load_preset
from mocap.fit import FitConfig, fit_motion
from mocap.geometry.rotations import matrix_to_axis_angle, quat_to_matrix
from mocap.keypoint_sets import get_keypoint_set
from mocap.skeletons import load_skeleton
from mocap.stages.fit import gaps_json
from mocap.synth.fingers import (
    add_fingers,
    finger_curls,
    flexion_angles,
    hand_keypoint_names,
    hand_keypoints,
    joint_axes,
)

FPS = 60.0
TIPS = [4, 8, 12, 16, 20, 25, 29, 33, 37, 41]


def _take(frames=150, seed=0, hand_noise=0.004, body_noise=0.01):
    m22 = body_motion(frames, FPS, seed=seed)
    m52 = add_fingers(m22, finger_curls(frames, FPS, seed=seed + 1))
    rng = np.random.default_rng(seed)
    body, hands = blazepose_keypoints(m22), hand_keypoints(m52)
    pts = np.concatenate([body + rng.normal(0, body_noise, body.shape), hands + rng.normal(0, hand_noise, hands.shape)],
                         axis=1)
    return m52, hands, pts


def test_body52_is_body22_plus_fifteen_finger_joints_per_hand():
    b22, b52 = load_skeleton("body22"), load_skeleton("body52")
    assert b52.skeleton.joint_names[:22] == b22.skeleton.joint_names
    assert np.allclose(b52.skeleton.offsets[:22], b22.skeleton.offsets)
    assert len(b52.finger_joints) == 30 and b22.finger_joints == ()
    for side in ("Left", "Right"):
        for f in ("Thumb", "Index", "Middle", "Ring", "Pinky"):
            types = [b52.joints[f"{side}Hand{f}{i}"].type for i in (1, 2, 3)]
            assert types == (["2dof", "2dof", "hinge"] if f == "Thumb" else ["2dof", "hinge", "hinge"])
            assert all(b52.joints[f"{side}Hand{f}{i}"].limits_deg for i in (1, 2, 3))
    mapping = b52.mappings["blazepose33_hands"]
    assert mapping["LeftHandIndex2"] == {"left_index_pip": 1.0}
    assert mapping["RightHandThumb1"] == {"right_thumb_cmc": 1.0}
    assert b52.unmapped_fingers("blazepose33_hands") == [] and len(b52.unmapped_fingers("blazepose33")) == 30


def test_procedural_fingers_move_within_limits_and_mirror():
    curls = finger_curls(600, FPS, seed=4)
    assert set(curls) >= {"LeftIndex", "RightThumb", "LeftSpread"}
    c = np.stack([v for k, v in curls.items() if not k.endswith("Spread")])
    assert c.min() < 0.1 and c.max() > 0.9 and np.abs(np.diff(c, axis=1)).max() < 0.2  # fists, open, smooth
    m52 = add_fingers(body_motion(600, FPS), curls)
    spec = load_skeleton("body52")
    for name, angle in flexion_angles(m52).items():
        lo, hi = np.radians(spec.joints[name].limits_deg)
        assert lo - 1e-6 <= angle.min() and angle.max() <= hi + 1e-6, name
    hk = hand_keypoints(m52)
    assert hk.shape == (600, 42, 3) and hand_keypoint_names() == list(get_keypoint_set("blazepose33_hands").joints[33:])
    seg = np.linalg.norm(hk[:, 8] - hk[:, 7], axis=1)  # index distal segment: rigid
    assert np.ptp(seg) < 1e-9
    # the same curls on both hands of a T-pose give mirror images
    sk = load_skeleton("body22").skeleton
    from mocap.types import Motion

    rest = Motion(sk, np.tile([1.0, 0, 0, 0], (1, 22, 1)), np.zeros((1, 3)), FPS)
    same = {f"{s}{f}": np.full(1, 0.6) for s in ("Left", "Right") for f in ("Thumb", "Index", "Ring", "Spread")}
    h = hand_keypoints(add_fingers(rest, same))[0]
    assert np.allclose(h[:21] * [-1, 1, 1], h[21:], atol=1e-9)


def test_fit_recovers_finger_flexion_and_fingertips_from_noisy_3d_hands():
    truth, hands, pts = _take()
    motion, summary = fit_motion(pts, "blazepose33_hands", FPS, FitConfig(skeleton="body52"))
    ft, ff = flexion_angles(truth), flexion_angles(motion)
    err = np.degrees(np.abs(np.concatenate([ff[k] - ft[k] for k in ft])))
    tips = np.linalg.norm(hand_keypoints(motion)[:, TIPS] - hands[:, TIPS], axis=2) * 1000
    assert np.median(err) < 5.0, np.median(err)
    assert np.median(tips) < 8.0, np.median(tips)
    assert summary.finger_rms_mm_median is not None and summary.finger_rms_mm_median < 6
    # the 2-DoF joints do not twist about their bones
    spec = load_skeleton("body52")
    for name in ("LeftHandIndex1", "RightHandPinky1"):
        flex, spread = joint_axes(spec, name)
        rv = matrix_to_axis_angle(quat_to_matrix(motion.rotations[:, motion.skeleton.index(name)]))
        assert np.degrees(np.abs(rv @ np.cross(flex, spread))).max() < 6


def test_keypoint_set_without_hands_holds_fingers_at_rest_with_one_warning(caplog):
    truth, _, pts = _take(60)
    with caplog.at_level(logging.WARNING, logger="mocap.fit"):
        motion, summary = fit_motion(pts[:, :33], "blazepose33", FPS, FitConfig(skeleton="body52"))
    said = [r.getMessage() for r in caplog.records if "no hand keypoints" in r.getMessage()]
    assert said == ["skeleton body52 has fingers but keypoint set blazepose33 has no hand keypoints: the fingers are "
                    "held at rest (detect with hands, e.g. blazepose33_hands, to fit them)"]
    idx = [motion.skeleton.index(n) for n in load_skeleton("body52").finger_joints]
    assert np.allclose(np.abs(motion.rotations[:, idx, 0]), 1.0)
    assert summary.finger_rms_mm_median is None and summary.rms_mm_median < 30


def test_hand_unseen_for_a_second_eases_to_rest_and_is_flagged_a_finger_gap_is_bridged(caplog):
    truth, hands, pts = _take(240, seed=2)
    pts[60:150, 33:54] = np.nan  # the left hand unseen for 1.5 s
    pts[180:220, 33 + 5:33 + 9] = np.nan  # the left index unseen for 0.67 s (longer than the smoother bridges)
    with caplog.at_level(logging.WARNING, logger="mocap.fit"):
        motion, summary = fit_motion(pts, "blazepose33_hands", FPS, FitConfig(skeleton="body52"))
    assert summary.rest_frames == {"LeftHand": [(60, 150)]}
    assert any("eased to rest" in r.getMessage() for r in caplog.records)
    record = json.loads(gaps_json(summary, FPS))  # motion/body52.gaps.json
    assert record["fingers_at_rest"] == {"LeftHand": [[60, 150]]} and "LeftHandIndex2" in record["joints"]
    assert summary.gap_frames["LeftHandIndex2"] == [(60, 150), (180, 220)]
    assert summary.gap_frames["LeftHandPinky2"] == [(60, 150)]
    left = [motion.skeleton.index(f"LeftHand{f}{i}") for f in ("Thumb", "Index", "Pinky") for i in (1, 2, 3)]
    assert np.allclose(np.abs(motion.rotations[80:130, left, 0]), 1.0)  # at rest in the middle of the gap
    q = motion.rotations[:, left]
    step = np.degrees(2 * np.arccos(np.clip(np.abs(np.sum(q[1:] * q[:-1], axis=-1)), 0, 1)))
    assert step[55:155].max() < 25 and step[175:225, 3:6].max() < 25  # no jump into or out of a gap (the index's)
    err = np.linalg.norm(hand_keypoints(motion)[180:220, 8] - hands[180:220, 8], axis=1) * 1000
    assert np.median(err) < 25, np.median(err)  # the finger follows its neighbours across the gap
    right = np.linalg.norm(hand_keypoints(motion)[60:150, 21 + 8] - hands[60:150, 21 + 8], axis=1) * 1000
    assert np.median(right) < 8  # the other hand is unaffected


TOE = 'LeftToeBase = { parent = "LeftFoot", offset = [0.0, -0.13, -0.06]'
INDEX1 = 'offset = [0.092, -0.02, 0.0], type = "2dof", '
TWIST_TEXT = "twist must be a number of degrees in \\(0, 180\\] or \\[low, high\\] limits, got "
BAD_SPECS = {  # a case: (text in body52, what replaces its first occurrence, the error expected)
    "hinge_spread": ("limits = [-5.0, 115.0] }", "limits = [-5.0, 115.0], spread = [-1.0, 1.0] }",
                     "spread limits are for 2dof joints"),
    "hinge_twist": ("limits = [-5.0, 115.0] }", "limits = [-5.0, 115.0], twist = 10.0 }",
                    "a twist is for 2dof joints, not hinge"),
    "twist_zero": ("twist = 17.0", "twist = 0.0", "joint 'LeftShoulder': " + TWIST_TEXT + "0.0"),
    "twist_text": ("twist = 17.0", 'twist = "17"', "joint 'LeftShoulder': " + TWIST_TEXT + "'17'"),
    "twist_reversed": ("twist = [-30.0, 30.0]", "twist = [30.0, -30.0]",
                       "joint 'LeftFoot': twist must be \\[low, high\\] with low < high, got \\[30.0, -30.0\\]"),
    "twist_wide": ("twist = [-30.0, 30.0]", "twist = [-400.0, 400.0]",
                   "joint 'LeftFoot': twist limits must lie within \\[-180, 180\\] degrees, got \\[-400.0, 400.0\\]"),
    "2dof_leaf": (TOE + " }", TOE + ', type = "2dof", axis = [1.0, 0.0, 0.0] }',
                  "2dof joint 'LeftToeBase' has no bone to twist about: give it a child, a \\[tips\\] entry or a "
                  "twist_axis"),
    "twist_axis_along": ("twist_axis = [0.0, 0.0, 1.0]", "twist_axis = [2.0, 0.0, 0.0]",
                         "joint 'LeftFoot': twist_axis must be a direction across its axis, got \\[2.0, 0.0, 0.0\\]"),
    "2dof_no_axis": (INDEX1 + "axis = [0.0, 1.0, 0.0], ", INDEX1, "2dof joint 'LeftHandIndex1' needs an axis"),
}


@pytest.mark.parametrize("bad", list(BAD_SPECS))
def test_bad_finger_joint_specs_are_named(tmp_path, bad):
    old, new, expect = BAD_SPECS[bad]
    text = load_preset("skeletons", "body52")[1].read_text()
    assert old in text
    path = tmp_path / "bad.toml"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ValueError, match=expect):
        load_skeleton(str(path))


def test_body22_fits_the_body_points_of_a_hands_keypoint_set(caplog):
    _, _, pts = _take(60)
    cfg = FitConfig(smooth=False)
    with caplog.at_level(logging.INFO, logger="mocap.fit"):
        a, _ = fit_motion(pts, "blazepose33_hands", FPS, cfg)
    assert any("fitting its first points as blazepose33" in r.getMessage() for r in caplog.records)
    b, _ = fit_motion(pts[:, :33], "blazepose33", FPS, cfg)
    assert a.skeleton.joint_names == b.skeleton.joint_names
    assert np.array_equal(a.rotations, b.rotations) and np.array_equal(a.root_positions, b.root_positions)


def test_finger_gap_before_the_hand_is_unseen_is_bridged_from_that_hands_data():
    # both hands are solved in one problem: frames where only the other hand is seen must not anchor the
    # bridge of this hand's finger gap (its fingers there come from the prior alone, at rest)
    truth, hands, pts = _take(150, seed=2)
    pts[40:55, 33 + 5:33 + 9] = np.nan  # the left index unseen, then
    pts[55:, 33:54] = np.nan  # the whole left hand till the end (the right hand seen throughout)
    motion, summary = fit_motion(pts, "blazepose33_hands", FPS, FitConfig(skeleton="body52"))
    assert summary.rest_frames == {"LeftHand": [(55, 150)]}
    err = np.linalg.norm(hand_keypoints(motion)[40:55, 8] - hands[40:55, 8], axis=1) * 1000
    assert np.median(err) < 15, np.median(err)  # held from the hand's own frames (was eased to rest: ~65 mm)


def test_a_short_hand_gap_next_to_a_dropped_frame_is_bridged_not_eased_to_rest():
    """A frame with no keypoint at all (a dropped frame) right after a 0.3 s hand gap made the gap look open-ended:
    the fingers eased to the rest pose (fingertips 130 mm off) and the frames were reported at rest."""
    truth, hands, pts = _take(240, seed=2)
    pts[100:118, 33:54] = np.nan  # the left hand unseen for 0.3 s
    results = []
    for dropped in (False, True):
        p = pts.copy()
        if dropped:
            p[118] = np.nan
        motion, summary = fit_motion(p, "blazepose33_hands", FPS, FitConfig(skeleton="body52", smooth=False))
        err = np.linalg.norm(hand_keypoints(motion)[100:118, :21] - hands[100:118, :21], axis=-1) * 1000
        results.append((summary.rest_frames, float(np.max(err))))
    (rest0, e0), (rest1, e1) = results
    assert rest0 == rest1 == {} and e1 < 1.25 * e0 + 5, results
