"""The hand models through onnxruntime: the tflite → ONNX rewrite gives mediapipe's numbers, a model it cannot
rewrite says which operator, and the detector falls back to mediapipe's graphs."""

import logging
import os

import numpy as np
import pytest

pytest.importorskip("mediapipe")
pytest.importorskip("onnxruntime")

from mocap.detect import hand_onnx, hands  # noqa: E402


def _crop(size: int, seed: int = 0) -> np.ndarray:
    """A smooth RGB test pattern with an edge and noise (what the networks see does not matter here, only that
    both runtimes see the same pixels)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    base = np.stack([np.sin(6 * x + 2 * y), np.cos(5 * y - x), x * y], -1)
    img = 127 + 90 * base + rng.normal(0, 12, (size, size, 3))
    img[size // 3: 2 * size // 3, size // 4: size // 2] = (200, 160, 130)  # a skin-coloured block
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("variant", ["full", "lite"])
def test_onnx_landmarks_match_mediapipe(variant):
    ours, theirs = hand_onnx.OnnxHandLandmarks(variant), hands.HandLandmarks(variant)
    try:
        for seed in range(2):
            crop = _crop(hands.INPUT, seed)
            (p1, s1), (p2, s2) = ours(crop), theirs(crop)
            assert p1.shape == (21, 2)
            assert np.abs(p1 - p2).max() < 1e-2, f"landmarks differ by {np.abs(p1 - p2).max()} px"
            assert abs(s1 - s2) < 1e-4
        # two crops in one call give what each gives alone
        both = ours.batch(np.stack([_crop(hands.INPUT, 0), _crop(hands.INPUT, 1)]))
        assert np.abs(both[1][0] - ours(_crop(hands.INPUT, 1))[0]).max() < 1e-3
    finally:
        theirs.close()


def test_onnx_recrop_matches_mediapipe():
    ours, theirs = hand_onnx.OnnxHandRecrop(), hands.HandRecrop()
    try:
        crop = _crop(hands.RECROP_INPUT)
        a, b = ours(crop), theirs(crop)
        assert a.shape == b.shape == (2, 2)
        assert np.abs(a - b).max() < 1e-2
    finally:
        theirs.close()


def test_written_protobuf_is_valid_onnx():
    onnx = pytest.importorskip("onnx")
    path = os.path.join(os.path.dirname(hands._mediapipe().__file__), "modules", "hand_landmark",
                        "hand_landmark_lite.tflite")
    data, names = hand_onnx.tflite_to_onnx(path)
    model = onnx.load_from_string(data)
    onnx.checker.check_model(model)
    assert [o.name for o in model.graph.output] == names
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in conv.attribute}
    assert attrs["auto_pad"] in (b"SAME_UPPER", b"VALID") and len(attrs["strides"]) == 2
    # int64 attributes keep their sign (two's-complement varints)
    node = onnx.NodeProto.FromString(hand_onnx._node("Flatten", ["a"], ["b"], axis=-1, perm=[-2, 3]))
    assert {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute} == {"axis": -1, "perm": [-2, 3]}


def test_unsupported_operator_is_named():
    path = os.path.join(os.path.dirname(hands._mediapipe().__file__), "modules", "palm_detection",
                        "palm_detection_full.tflite")
    with pytest.raises(NotImplementedError, match="operator (RESHAPE|RESIZE_BILINEAR|CONCATENATION) is not supported"):
        hand_onnx.tflite_to_onnx(path)


def test_detector_falls_back_to_mediapipe_graphs(monkeypatch, caplog):
    def unconvertible(path):
        raise NotImplementedError(f"{path}: operator FANCY is not supported")

    monkeypatch.setattr(hand_onnx, "tflite_to_onnx", unconvertible)
    with caplog.at_level(logging.INFO, logger="mocap.detect.hands"):
        landmarks, recrop = hands.hand_models("lite", "auto")
    assert isinstance(landmarks, hands.HandLandmarks) and isinstance(recrop, hands.HandRecrop)
    assert "mediapipe's graphs" in caplog.text and "FANCY" in caplog.text
    landmarks.close()
    recrop.close()
    with pytest.raises(NotImplementedError, match="FANCY"):
        hands.hand_models("lite", "onnxruntime")


def test_bad_backend_or_variant_is_refused():
    with pytest.raises(ValueError, match=r"backend must be one of .*got 'tpu'"):
        hands.hand_models("full", "tpu")
    with pytest.raises(ValueError, match=r"variant must be one of .*got 'heavy'"):
        hands.hand_models("heavy")


def test_both_hands_first_tries_share_one_model_call():
    from test_hands_detect import body_with_arms, fake_hand

    det = hands.HandDetector.__new__(hands.HandDetector)  # the crop logic alone, the model replaced
    det.min_body_score, det.min_presence, det.recrop, det.palms = 0.0, 0.5, None, None
    det.previous, det.palm_wait, det.unsure_wait = {}, {}, {}
    det.palm_every, det.unsure_score, det.unsure_every = 5, 0.3, 2
    det.stats = dict.fromkeys(("crops", "calls", "recrops", "palm_runs", "palm_found", "tracked", "found"), 0)
    body = body_with_arms()[None]
    right_roi = hands.body_roi(body[0], "right", 0.0)
    calls = []

    def model(bgr, rois):  # the right hand is found only in the body's crop, the left one nowhere
        calls.append(len(rois))
        return [(fake_hand(body[0, 16, :2]), 0.9) if np.allclose(r, right_roi) else (np.zeros((21, 2)), 0.0)
                for r in rois]

    det._landmarks_of = model
    image = np.zeros((720, 1280, 3), np.uint8)
    first = det(image, body)
    assert calls == [2]  # both sides' crops in one call
    second = det(image, body)  # right: last frame's hand first (not found there), then the body's crop
    assert calls == [2, 2, 1]
    for out in (first, second):
        assert np.isnan(out[0, :21]).all() and np.allclose(out[0, 21, :2], body[0, 16, :2])


def test_a_model_onnxruntime_refuses_falls_back(monkeypatch, caplog):
    real = hand_onnx.tflite_to_onnx

    def broken(path):
        model, names = real(path)
        return model[: len(model) // 2], names  # a truncated protobuf

    monkeypatch.setattr(hand_onnx, "tflite_to_onnx", broken)
    with pytest.raises(NotImplementedError, match="onnxruntime does not take the rewritten model"):
        hand_onnx.OnnxHandRecrop()
    with caplog.at_level(logging.INFO, logger="mocap.detect.hands"):
        landmarks, recrop = hands.hand_models("lite")
    assert isinstance(landmarks, hands.HandLandmarks) and "does not take" in caplog.text
    landmarks.close()
    recrop.close()


def test_a_hand_crop_outside_the_image_is_not_run():
    from test_hands_detect import body_with_arms

    shape = (720, 1280, 3)
    inside = hands.body_roi(body_with_arms(), "left")
    assert hands.overlaps_image(inside, shape)
    # the body's left wrist placed beyond the right edge (BlazePose extrapolates limbs out of the frame)
    outside = hands.body_roi(body_with_arms(left_wrist=(1700.0, 300.0)), "left")
    assert not hands.overlaps_image(outside, shape)
    assert hands.overlaps_image(outside - [outside[0] - 1280 - 0.4 * outside[2], 0, 0, 0], shape)  # a sliver in

    det = hands.HandDetector.__new__(hands.HandDetector)
    det.min_body_score, det.min_presence, det.recrop, det.palms = 0.0, 0.5, None, None
    det.previous, det.palm_wait, det.unsure_wait = {}, {}, {}
    det.palm_every, det.unsure_score, det.unsure_every = 5, 0.3, 2
    det.stats = dict.fromkeys(("crops", "calls", "recrops", "palm_runs", "palm_found", "tracked", "found"), 0)
    tried = []
    det._landmarks_of = lambda bgr, rois: tried.extend(rois) or [(np.zeros((21, 2)), 0.0) for _ in rois]
    det(np.zeros(shape, np.uint8), body_with_arms(left_wrist=(1700.0, 300.0))[None])
    assert len(tried) == 1 and np.allclose(tried[0], hands.body_roi(body_with_arms(), "right"))  # the right hand only


@pytest.mark.slow
@pytest.mark.shared_data
def test_both_runtimes_agree_on_real_hand_crops(shared_data):
    import cv2

    from mocap.detect.blazepose import BlazePose

    cap = cv2.VideoCapture(str(shared_data / "pose2sim_demo" / "videos" / "cam01.mp4"))
    body_model = BlazePose()
    ours, theirs = hand_onnx.OnnxHandLandmarks(), hands.HandLandmarks()
    seen = 0
    try:
        for i in range(6):
            ok, img = cap.read()
            assert ok
            body = body_model(img, i * 17)[0]
            for side in hands.SIDES:  # the crops the detector makes from the body (cam01 shows hands found and not)
                M = hands.crop_transform(hands.body_roi(body, side, 0.0), hands.INPUT)
                crop = hands._rgb(cv2.warpAffine(img, M, (hands.INPUT, hands.INPUT), flags=cv2.INTER_LINEAR))
                (p1, s1), (p2, s2) = ours(crop), theirs(crop)
                assert abs(s1 - s2) < 1e-4 and np.abs(p1 - p2).max() < 1e-2
                seen += s2 >= 0.5
    finally:
        body_model.close()
        theirs.close()
        cap.release()
    assert seen >= 3  # real hands among the crops, not only empty ones
