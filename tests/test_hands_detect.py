"""Hand detection: crops placed by the body, left/right by the body, whole-body ONNX mapping, the detect hook."""

import numpy as np
import pytest

from mocap.detect.hands import assign_sides, body_roi, crop_transform, invert, landmark_roi
from mocap.keypoint_sets import HAND_POINTS, get_keypoint_set


def body_with_arms(left_wrist=(700.0, 500.0), right_wrist=(300.0, 500.0), down=True) -> np.ndarray:
    """(33, 3) BlazePose keypoints (only the arms matter here): forearms hanging down (or pointing right)."""
    body = np.full((33, 3), np.nan)
    step = np.array([0.0, 30.0]) if down else np.array([30.0, 0.0])
    for (e, w, p, i), wrist in (((13, 15, 17, 19), left_wrist), ((14, 16, 18, 20), right_wrist)):
        wrist = np.array(wrist)
        body[e] = [*(wrist - 8 * step), 0.9]
        body[w] = [*wrist, 0.9]
        body[p] = [*(wrist + 2.5 * step + step[::-1] * 0.3), 0.9]
        body[i] = [*(wrist + 2.5 * step - step[::-1] * 0.3), 0.9]
    return body


def fake_hand(wrist, direction=(0.0, 1.0), length=60.0) -> np.ndarray:
    """(21, 2) a flat open hand from ``wrist`` along ``direction``."""
    d = np.asarray(direction, float) / np.linalg.norm(direction)
    n = np.array([-d[1], d[0]])
    pts = [np.asarray(wrist, float)]
    for f, off in enumerate((-0.35, -0.15, 0.0, 0.15, 0.3)):
        for k in range(1, 5):
            pts.append(pts[0] + d * length * (0.25 + 0.19 * k) * (0.8 if f == 0 else 1.0) + n * length * off)
    return np.array(pts)


def test_crop_puts_the_hand_upright_and_maps_back():
    body = body_with_arms()
    roi = body_roi(body, "left")
    cx, cy, size, angle = roi
    assert np.isclose(angle, np.pi / 2)  # the forearm hangs down: fingers point down the image
    assert size >= 0.9 * 240  # at least 0.9 forearm
    M = crop_transform(roi, 224)
    wrist, knuckles = M[:, :2] @ body[15, :2] + M[:, 2], M[:, :2] @ body[19, :2] + M[:, 2]
    assert knuckles[1] < wrist[1]  # in the crop the fingers point up, as the landmark model expects
    assert 0 < wrist[1] < 224 and abs(wrist[0] - 111.5) < 1e-6
    pts = np.array([[10.0, 20.0], [200.0, 5.0]])
    np.testing.assert_allclose(M[:, :2] @ invert(M, pts).T + M[:, 2:3], pts.T, atol=1e-9)


def test_roi_needs_a_wrist_and_follows_the_landmarks():
    body = body_with_arms()
    body[15, 2] = 0.1  # an unsure wrist: no crop
    assert body_roi(body, "left") is None
    assert body_roi(body, "right") is not None
    hand = fake_hand((300.0, 500.0), direction=(1.0, 0.0))
    roi = landmark_roi(hand)
    assert np.isclose(roi[3], 0.0, atol=0.2) and roi[2] > 60  # along +x, spanning the hand twice


def test_left_and_right_come_from_the_body_wrists():
    wrists = {"left": np.array([700.0, 500.0]), "right": np.array([300.0, 500.0])}
    left, right = fake_hand((702.0, 505.0)), fake_hand((298.0, 503.0))
    out = assign_sides([(right, 0.9), (left, 0.8)], wrists)  # found in any order
    assert np.allclose(out["left"][0], left) and np.allclose(out["right"][0], right)
    # both crops on the same (left) hand: one hand kept, on its side
    out = assign_sides([(left, 0.9), (left + 1.0, 0.8)], wrists)
    assert list(out) == ["left"]
    # two distinct hands both nearest the left wrist (a crossed pair): the farther goes to the free side
    out = assign_sides([(left, 0.9), (fake_hand((640.0, 520.0)), 0.7)], wrists)
    assert np.allclose(out["left"][0], left) and "right" in out
    assert assign_sides([], wrists) == {}


def test_keypoint_set_names_follow_the_hand_model():
    ks = get_keypoint_set("blazepose33_hands")
    assert ks.joints[33:54] == tuple(f"left_{p}" for p in HAND_POINTS)
    assert ks.joints[54:] == tuple(f"right_{p}" for p in HAND_POINTS)
    flip = ks.flip_permutation
    assert ks.joints[flip[33 + 8]] == "right_index_tip"


def test_whole_body_models_map_onto_blazepose33_hands():
    from mocap.detect.onnx import whole_body_map

    names = get_keypoint_set("blazepose33_hands").joints
    for n, left_hand, heel in ((133, 91, 19), (136, 94, 24)):
        m = dict(zip(names, whole_body_map(n), strict=True))
        assert m["left_hand_wrist"] == left_hand and m["right_pinky_tip"] == n - 1
        assert m["left_wrist"] == 9 and m["left_heel"] == heel
        assert m["left_index"] == m["left_index_mcp"]  # BlazePose's hand points are knuckles


def test_whole_body_onnx_model_gives_hands(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")

    class WholeBody(torch.nn.Module):
        """Keypoint k at x bin 2k (SimCC ratio 2: x = k px in the crop), all at the crop's middle row."""

        def forward(self, img):
            x = torch.zeros(1, 133, 384) + 0 * img.mean()
            y = torch.zeros(1, 133, 512)
            for k in range(133):
                x[0, k, 2 * k] = 1.0
            y[:, :, 256] = 1.0
            return x, y

    path = tmp_path / "rtmw.onnx"
    torch.onnx.export(WholeBody(), torch.zeros(1, 3, 256, 192), str(path), input_names=["input"],
                      output_names=["simcc_x", "simcc_y"], dynamo=False)
    from mocap.detect.onnx import OnnxPose

    det = OnnxPose(path)
    assert det.keypoint_set == "blazepose33_hands"
    out = det(np.zeros((256, 192, 3), np.uint8), 0)
    names = get_keypoint_set("blazepose33_hands").joints
    assert out.shape == (1, 75, 3)
    x = dict(zip(names, out[0, :, 0], strict=True))
    # x grows with the source index: the order of the mapped points shows where each came from
    assert x["left_hand_wrist"] < x["left_index_tip"] < x["right_hand_wrist"] < x["right_pinky_tip"]
    assert x["nose"] < x["left_wrist"] < x["left_foot_index"] < x["mouth_right"] < x["left_hand_wrist"]


def test_hands_need_a_body_with_hand_keypoints():
    from mocap.detect.hands import WithHands

    class Coco:
        keypoint_set, num_poses = "coco17", 1

    with pytest.raises(ValueError, match="detect.hands: hands are placed from BlazePose's wrist/index/pinky "
                                         "keypoints, but the detector gives coco17"):
        WithHands(Coco())


def test_hands_setting_defaults_to_the_skeleton():
    from mocap.settings import as_settings
    from mocap.stages import detect
    from mocap.stages.detect import wants_hands

    settings = as_settings(None)
    assert wants_hands(settings) is False  # body22 has no fingers
    fingers = as_settings(None).__class__(**{**settings.__dict__, "fit": type(settings.fit)(
        solver=type(settings.fit.solver)(skeleton="body52"))})
    assert wants_hands(fingers) is True
    onnx = fingers.__class__(**{**fingers.__dict__, "detect": detect.Config(detector="onnx")})
    assert wants_hands(onnx) is False  # a whole-body model brings hands itself; a body-only one cannot
    off = fingers.__class__(**{**fingers.__dict__, "detect": detect.Config(hands=False)})
    assert wants_hands(off) is False


@pytest.mark.slow
@pytest.mark.shared_data
def test_real_frames_find_hands_at_the_body_wrists(shared_data):
    import cv2

    from mocap.detect.blazepose import BlazePose
    from mocap.detect.hands import WithHands

    cap = cv2.VideoCapture(str(shared_data / "pose2sim_demo" / "videos" / "cam04.mp4"))
    det = WithHands(BlazePose())
    try:
        outs = []
        for i in range(4):
            ok, img = cap.read()
            assert ok
            outs.append(det(img, i * 17)[0])
    finally:
        det.close()
        cap.release()
    out = np.stack(outs)  # (4, 75, 3)
    assert out.shape == (4, 75, 3)
    found = np.isfinite(out[:, [33, 54], 0])
    assert found.sum() >= 4, found  # cam04 sees both hands in nearly every frame
    for s, wrist in ((0, 15), (1, 16)):
        ok = found[:, s]
        hand = out[ok, 33 + 21 * s: 54 + 21 * s]
        size = np.linalg.norm(hand[:, 12, :2] - hand[:, 0, :2], axis=-1)
        gap = np.linalg.norm(hand[:, 0, :2] - out[ok, wrist, :2], axis=-1)
        assert np.all(gap < 0.6 * size), (gap, size)  # each hand sits at its own body wrist
        assert np.all((hand[:, :, 2] >= 0.5) & (hand[:, :, 2] <= 1.0))


@pytest.mark.slow
def test_no_hand_in_a_blank_image():
    from mocap.detect.hands import HandDetector

    det = HandDetector()
    try:
        out = det(np.full((480, 640, 3), 128, np.uint8), body_with_arms((400.0, 200.0), (200.0, 200.0))[None])
    finally:
        det.close()
    assert out.shape == (1, 42, 3) and np.all(np.isnan(out))


@pytest.mark.slow
@pytest.mark.shared_data
def test_hand_models_native_chatter_goes_to_the_log(shared_data, tmp_path):
    from test_detect import NATIVE_CHATTER, _run_quietly

    video = shared_data / "pose2sim_demo" / "videos" / "cam04.mp4"
    r = _run_quietly(f"""
import logging
from mocap.detect import get_detector
from mocap.detect.hands import WithHands
from mocap.io.video import read_frames
logging.basicConfig(level=logging.WARNING)
d = WithHands(get_detector("blazepose", variant="full"))
found = sum(bool((d(img, int(i * 17))[:, 33:, 2] > 0.5).any()) for i, img in read_frames({str(video)!r}, 1, 0, 3))
d.close()
print("found", found)
""", tmp_path)
    assert "found" in r.stdout, r.stderr
    assert not NATIVE_CHATTER.search(r.stderr + r.stdout), r.stderr


def test_hand_set_declares_its_body_set(tmp_path):
    from mocap.keypoint_sets import body_keypoint_set

    assert body_keypoint_set("blazepose33_hands") == "blazepose33"
    assert body_keypoint_set("blazepose33") is None
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\nbody = "blazepose33"\njoints = ["nose", "left_hand_wrist"]\n')
    with pytest.raises(ValueError, match="body must name a keypoint set whose joints begin this set's, got "
                                         "'blazepose33'"):
        get_keypoint_set(str(bad))


@pytest.mark.slow
def test_detect_stage_with_hands_on_a_take_without_hands(tmp_path, caplog):
    import logging

    from test_detect import blank_video

    from mocap.io.hdf5 import read_keypoints2d
    from mocap.stages import detect

    (tmp_path / "videos").mkdir()
    for cam in ("a", "b"):
        blank_video(tmp_path / "videos" / f"{cam}.avi", n=4)
    with caplog.at_level(logging.WARNING, logger="mocap.stages.detect"):
        out = detect.main(tmp_path, detect.Config(workers=1, hands=True))
    kp = read_keypoints2d(out)
    assert kp.keypoint_set == "blazepose33_hands" and kp.shape == (4, 2, 1, 75)
    assert np.all(np.isnan(kp.data))
    assert "hands: no hand detected in any frame of cameras ['a', 'b']" in caplog.text
    assert "the body is unaffected" in caplog.text


def test_choosing_a_finger_skeleton_re_runs_detection(tmp_path):
    """detect.hands unset follows the fit skeleton: body52 switches hands on, so detection's cache key changes
    (a body22 take's key is unchanged by the hook)."""
    from mocap.pipeline import _key, load_config
    from mocap.session import Session
    from mocap.stages import detect

    s = Session(tmp_path)

    def key(*sets):
        return _key(detect, load_config(s, sets=list(sets))[0], [], tmp_path)

    assert key() == key("fit.skeleton=body22")
    assert key("fit.skeleton=body52") != key()
    assert key("fit.skeleton=body52", "detect.hands=false") != key("fit.skeleton=body52")
