"""A hand cut by the image border (review): the landmark model places all 21 points, those outside the image guessed
(the crop hanging off the image is padded black); they get no score (NaN: not seen), the points inside keep the
hand's presence score, and every point keeps its x, y."""

import numpy as np
from test_hands_detect import body_with_arms, fake_hand

from mocap.detect import hands as hands_module
from mocap.detect.hands import INPUT, HandDetector, body_roi, crop_transform, in_image

W, H = 400, 300  # the image: x in [0, 399], y in [0, 299]


class FixedHands:
    """A landmark model that finds, in each crop it is given (left then right), the hand placed in the image
    beforehand: returns it in the crop's pixels, with a presence score."""

    def __init__(self, image_points: list[np.ndarray], transforms: list[np.ndarray], presence: float):
        self.crop_points = [pts @ M[:, :2].T + M[:, 2] for pts, M in zip(image_points, transforms, strict=True)]
        self.presence, self.calls = presence, 0

    def __call__(self, crop: np.ndarray) -> tuple[np.ndarray, float]:
        assert crop.shape == (INPUT, INPUT, 3)
        pts = self.crop_points[self.calls % len(self.crop_points)]
        self.calls += 1
        return pts, self.presence

    def close(self) -> None:
        pass


def test_in_image_is_the_pixel_centres_span():
    pts = np.array([[0.0, 0.0], [W - 1, H - 1], [-0.01, 5.0], [W - 1 + 0.01, 5.0], [5.0, -0.1], [5.0, H - 0.5],
                    [np.nan, 5.0]])
    assert in_image(pts, (H, W, 3)).tolist() == [True, True, False, False, False, False, False]


def test_landmarks_outside_the_image_get_no_score(monkeypatch):
    # the left forearm points right, its wrist 44 px from the right border: the fingers run off the image; the
    # right hand lies wholly inside
    body = body_with_arms(left_wrist=(355.0, 150.0), right_wrist=(100.0, 150.0), down=False)
    left = fake_hand((356.0, 150.0), direction=(1.0, 0.0))
    right = fake_hand((101.0, 150.0), direction=(1.0, 0.0))
    Ms = [crop_transform(body_roi(body, side), INPUT) for side in ("left", "right")]
    model = FixedHands([left, right], Ms, presence=0.56)
    monkeypatch.setattr(hands_module, "hand_models", lambda variant, backend, recrop: (model, None))
    det = HandDetector(palm_fallback=False, recrop=False)
    out = det(np.zeros((H, W, 3), np.uint8), body[None])[0]
    assert model.calls == 2  # one crop per hand
    outside = left[:, 0] > W - 1
    assert outside.sum() == 9 and not outside[0]  # 9 of 21 off the image (the last two joints of each finger)
    np.testing.assert_allclose(out[:21, :2], left, atol=1e-6)  # every point placed, as the model put it
    np.testing.assert_allclose(out[21:, :2], right, atol=1e-6)
    assert np.isnan(out[:21, 2][outside]).all()  # no score off the image (was the hand's 0.56 on all 21)
    assert np.allclose(out[:21, 2][~outside], 0.56) and np.allclose(out[21:, 2], 0.56)
    assert (0, "left") in det.previous  # the next frame's crop still follows the cut hand
