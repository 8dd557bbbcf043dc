"""Hands on a rendered take (``mocap bench e2e`` on ``mocap synth render --hands --frame upper``): the hand's
size in the image, when a hand counts as visible, the bias-corrected fingertip error, the close-range framing."""

import numpy as np
import pytest

from mocap.bench.hands_rendered import bias_corrected_tips, hand_scale_px, hand_visibility
from mocap.geometry.rotations import axis_angle_to_matrix
from mocap.synth.groundtruth import RigSpec, ring_rig

# one flat hand in its own frame (x: pinky → index side, z: wrist → fingers), MediaPipe's 21-point order, metres
_BASES = {1: (0.03, 0.02), 5: (0.025, 0.09), 9: (0.0, 0.095), 13: (-0.02, 0.09), 17: (-0.04, 0.08)}


def _hand() -> np.ndarray:
    pts = np.zeros((21, 3))
    for base, (x, z) in _BASES.items():
        for k in range(4):
            pts[base + k] = [x * (1 + 0.1 * k), 0.0, z + 0.03 * k]
    return pts


def _take(frames: int = 40) -> np.ndarray:
    """(F, 75, 3): two hands 1.2 m up, turning about changing axes, plus a body of zeros placed near them."""
    rng = np.random.default_rng(0)
    out = np.zeros((frames, 75, 3))
    for s, x in ((0, 0.3), (1, -0.3)):
        for f in range(frames):
            R = axis_angle_to_matrix(np.array([0.4 * np.sin(f / 5), 0.6 * np.cos(f / 7), 0.3 * f / frames]) + s)
            out[f, 33 + 21 * s: 54 + 21 * s] = _hand() @ R.T + [x, 0.02 * f, 1.2]
    out[:, :33] = [0.0, 0.0, 1.2] + rng.normal(0, 0.1, (33, 3))
    return out


def test_hand_scale_is_focal_times_the_flat_hand_over_depth():
    truth = _take()
    rig = ring_rig(RigSpec(n_cameras=2, radius=2.0, size=(640, 480), dist=(0.0,) * 5), truth.reshape(-1, 3))
    scale = hand_scale_px(rig, truth)
    length = 0.095 + 3 * 0.03  # wrist → middle MCP → PIP → DIP → tip
    cam = rig.cameras[0]
    z = (truth[:, 33] @ cam.R.T + cam.t)[:, 2]
    assert scale.shape == (40, 2, 2)
    np.testing.assert_allclose(scale[:, 0, 0], cam.K[0, 0] * length / z, rtol=1e-9)
    # a fist keeps its size: the measure does not shrink with the curl
    curled = truth.copy()
    curled[:, 33 + 12] = curled[:, 33 + 9]
    assert np.allclose(hand_scale_px(rig, curled)[:, :, 1], scale[:, :, 1])


def test_a_hand_is_visible_when_inside_the_image_and_mostly_not_hidden():
    truth = _take(3)
    rig = ring_rig(RigSpec(n_cameras=2, radius=2.0, size=(640, 480), dist=(0.0,) * 5), truth.reshape(-1, 3))
    seen = np.ones((3, 2, 42))
    seen[:, :, [4, 8, 12, 16, 20, 25, 29, 33, 37, 41]] = np.nan  # fingertips: no rig joint
    assert hand_visibility(rig, truth, seen).all()
    hidden = seen.copy()
    hidden[0, 1, :21] = np.where(np.isfinite(hidden[0, 1, :21]), 0.0, np.nan)  # left hand behind the body in cam 2
    hidden[1, 0, 21:30] = 0.0  # a few right-hand joints hidden: still visible
    v = hand_visibility(rig, truth, hidden)
    assert not v[0, 1, 0] and v[0, 1, 1] and v[1, 0, 1] and v.sum() == 3 * 2 * 2 - 1
    away = truth.copy()
    away[2, 54:] += [0.0, 0.0, 40.0]  # the right hand far above every image
    assert not hand_visibility(rig, away, seen)[2, :, 1].any()


def test_fingertip_offsets_that_turn_with_the_hand_are_removed_in_its_frame():
    truth = _take()
    est = truth.copy()
    rng = np.random.default_rng(1)
    for s in (0, 1):  # each tip 1 cm off along the hand's own axes (a detector's tip on the finger pad)
        b = 33 + 21 * s
        x = truth[:, b + 5] - truth[:, b + 17]
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        z = truth[:, b + 9] - truth[:, b]
        z -= np.sum(z * x, axis=1, keepdims=True) * x
        z /= np.linalg.norm(z, axis=1, keepdims=True)
        y = np.cross(z, x)
        for k in (4, 8, 12, 16, 20):
            est[:, b + k] += 0.01 * (y + 0.5 * z) + rng.normal(0, 0.0005, (len(est), 3))
    r = bias_corrected_tips(est, truth)
    assert r["fingertip_hand_bias_corrected_mm"] < 1.5  # the 0.5 mm noise is what remains
    assert r["fingertip_world_bias_corrected_mm"] > 3 * r["fingertip_hand_bias_corrected_mm"]


@pytest.mark.shared_data
def test_upper_framing_leaves_the_legs_out_and_keeps_the_head_top(shared_data):
    from mocap.synth.render import RenderSpec, framed_points, people_motions

    with pytest.raises(ValueError, match="frame: expected one of body, upper, got 'hands'"):
        RenderSpec("x.bvh", frame="hands")
    m = people_motions(RenderSpec(str(shared_data / "bvh" / "cmu_01_01.bvh"), start_s=8.0, seconds=0.2))[0]
    body, upper = framed_points(m, "body"), framed_points(m, "upper")
    assert body.shape[1] == len(m.skeleton.joint_names)
    assert upper.shape[1] == len(m.skeleton.joint_names) - 8 + 1  # 8 leg joints out, the head top in
    head = m.fk()[1][:, m.skeleton.index("Head")]
    assert np.allclose(upper[:, -1], head + [0, 0, 0.15])
    assert upper[..., 2].min() > body[..., 2].min() + 0.3  # the feet are no longer framed


def test_an_unsure_body_wrist_still_places_a_hand_crop():
    from test_hands_detect import body_with_arms

    from mocap.detect.hands import body_roi

    body = body_with_arms()
    body[[13, 15, 17, 19], 2] = 0.06  # BlazePose unsure of the whole left arm (its smoothed visibility still low)
    assert body_roi(body, "left") is None  # the default gate of body_roi
    roi = body_roi(body, "left", 0.0)  # HandDetector's: the hand model's presence decides
    assert roi is not None and np.allclose(roi, body_roi(body_with_arms(), "left"))
    body[15] = np.nan  # no wrist at all: no crop
    assert body_roi(body, "left", 0.0) is None


def test_a_palm_on_a_hand_found_already_is_recognised():
    from test_hands_detect import fake_hand

    from mocap.detect.hands import _covers

    hand = fake_hand((300.0, 500.0), direction=(0.0, -1.0))
    assert _covers(hand, hand.mean(0)) and _covers(hand, hand[0] + [0.0, 10.0])
    assert not _covers(hand, hand.mean(0) + [200.0, 0.0])


def test_a_hidden_hand_the_body_is_unsure_of_is_tried_every_other_frame():
    from test_hands_detect import body_with_arms

    from mocap.detect.hands import HandDetector

    det = HandDetector.__new__(HandDetector)  # the crop logic alone, the models replaced by a hand never found
    det.min_body_score, det.min_presence, det.recrop, det.palms = 0.0, 0.5, None, None
    det.previous, det.palm_wait, det.unsure_wait = {}, {}, {}
    det.palm_every, det.unsure_score, det.unsure_every = 5, 0.3, 2
    det.stats = dict.fromkeys(("crops", "calls", "recrops", "palm_runs", "palm_found", "tracked", "found"), 0)
    tried = []

    def nothing(bgr, rois):  # both hands' crops come in one call
        tried.extend(rois)
        return [(np.zeros((21, 2)), 0.0) for _ in rois]

    det._landmarks_of = nothing
    body = body_with_arms()[None]
    body[0, 15, 2] = 0.1  # the left wrist unsure, the right one sure
    image = np.zeros((720, 1280, 3), np.uint8)
    for _ in range(6):
        assert np.isnan(det(image, body)).all()
    left = sum(abs(r[0] - tried[0][0]) < 1e-9 for r in tried)
    assert left == 3 and len(tried) == 3 + 6  # the sure right wrist is tried every frame
