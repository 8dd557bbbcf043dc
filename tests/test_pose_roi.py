"""BlazePose's landmark model on an ROI made from a skeleton (mocap.detect.pose_roi): the ROI rule, and the model on a
real frame, agreeing with the landmarker, finding a person whose head is blacked out (the detector does not), from an
ROI off by 15 % / 20°, and saying nobody is there where nobody is."""

import pickle

import numpy as np
import pytest

pytest.importorskip("mediapipe")

from mocap.detect.pose_roi import RoiPose, crop_matrix, project, roi_from_points  # noqa: E402

# cam02 of the Pose2Sim demo (the subject on the platform, bystanders behind): the frame most tests use, and the one
# where blacking out the subject's head defeats BlazePose's detector
FRAME, MASKED = 88, 76
BODY = slice(11, 33)  # the body joints (shoulders down): the face points are compared nowhere
# BlazePose's left ↔ right
SWAP = np.arange(33)
for _a, _b in [(1, 4), (2, 5), (3, 6), (7, 8), (9, 10)] + [(k, k + 1) for k in range(11, 33, 2)]:
    SWAP[_a], SWAP[_b] = _b, _a


def upright(scale: float = 1.0) -> np.ndarray:
    """A standing BlazePose-33 skeleton in pixels (y down), hips' midpoint at the origin."""
    p = np.zeros((33, 2))
    p[0] = (0, -80)
    p[1:7] = [(-3, -84), (-5, -84), (-7, -84), (3, -84), (5, -84), (7, -84)]
    p[7:11] = [(-10, -82), (10, -82), (-3, -76), (3, -76)]
    p[11:17] = [(-18, -60), (18, -60), (-22, -32), (22, -32), (-24, -5), (24, -5)]
    p[17:23] = [(-25, 2), (25, 2), (-24, 3), (24, 3), (-22, 0), (22, 0)]
    p[23:29] = [(-10, 0), (10, 0), (-11, 45), (11, 45), (-11, 88), (11, 88)]
    p[29:33] = [(-12, 92), (12, 92), (-9, 96), (9, 96)]
    return p * scale


def median_px(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.median(np.linalg.norm(a[BODY, :2] - b[BODY, :2], axis=1)))


def same_person_px(a: np.ndarray, b: np.ndarray) -> float:
    """Median body-joint distance, left / right as given or swapped (a detection seen from behind)."""
    return min(median_px(a, b), median_px(a[SWAP], b))


# --- the ROI rule ----------------------------------------------------------------------------------------------
def test_roi_from_points_rejects_a_wrong_shape():
    with pytest.raises(ValueError, match=r"expected .*\(33, 2\), got \(17, 2\)"):
        roi_from_points(np.zeros((17, 2)))
    with pytest.raises(ValueError, match=r"\(33, 2\), got \(33, 3\)"):
        roi_from_points(np.zeros((33, 3)))


def test_roi_from_points_needs_enough_points_and_a_hip_or_a_shoulder():
    p = upright()
    few = np.full_like(p, np.nan)
    few[[11, 12, 23, 24, 25, 26, 27]] = p[[11, 12, 23, 24, 25, 26, 27]]  # 7 points
    assert roi_from_points(few) is None
    assert roi_from_points(few, min_joints=7) is not None
    headless = p.copy()
    headless[[11, 12, 23, 24]] = np.nan  # 29 points, but no hip and no shoulder: no centre, no direction
    assert roi_from_points(headless) is None


def test_roi_from_points_follows_a_rotated_skeleton():
    p = upright(3.0) + (400, 300)
    cx, cy, side, angle = roi_from_points(p)
    assert (cx, cy) == pytest.approx((400, 300)) and angle == pytest.approx(0, abs=1e-9)
    e = np.max(np.linalg.norm(p - (400, 300), axis=1))  # farthest point from the hips (the head, 84 × 3 px)
    torso = 60 * 3.0
    assert side == pytest.approx(2 * 1.25 * max(e, np.sqrt(1.09 * e * 1.74 * torso)))
    for turn in (0.5, -1.2, np.pi - 0.1):  # clockwise on screen (y down) by ``turn``
        R = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
        q = (p - (400, 300)) @ R.T + (400, 300)
        roi = roi_from_points(q)
        assert roi[3] == pytest.approx(turn) and roi[2] == pytest.approx(side) and roi[:2] == pytest.approx((400, 300))
    # no hips: the shoulders moved down the body; one side's points only: still a hip and a shoulder
    no_hips = p.copy()
    no_hips[[23, 24]] = np.nan
    cx, cy, _, angle = roi_from_points(no_hips)
    assert abs(cx - 400) < 1 and 200 < cy < 400 and abs(angle) < 0.1
    left = np.where(np.isin(np.arange(33), [11, 13, 15, 23, 25, 27, 29, 31])[:, None], p, np.nan)
    assert roi_from_points(left)[3] == pytest.approx(-np.arctan2(8, 60))  # left hip → left shoulder leans left


def test_crop_and_projection_are_mediapipe_s():
    """The ROI's corners go to the crop's corners (MediaPipe's ImageToTensor: corners at 0 and size in pixel-centre
    coordinates, the ROI centre read as MediaPipe's image coordinate, the repo's + 0.5); a crop point projected back
    lands where it came from, less MediaPipe's half pixel (as the landmarker's results)."""
    roi = (300.0, 200.0, 128.0, 0.3)
    M = crop_matrix(roi, 256)
    c, s = np.cos(0.3), np.sin(0.3)
    corner = np.array([300.5, 200.5]) + 64 * np.array([[c, -s], [s, c]]) @ np.array([-1.0, -1.0])
    assert M @ np.append(corner, 1) == pytest.approx([0, 0], abs=1e-9)
    q = np.array([[310.0, 190.0], [250.0, 260.0]])
    crop = q @ M[:, :2].T + M[:, 2]
    assert project(crop / 256, roi) == pytest.approx(q - 0.5)


def test_roipose_checks_its_inputs_before_loading_anything():
    model = RoiPose()
    with pytest.raises(ValueError, match="variant"):
        RoiPose("huge")
    with pytest.raises(ValueError, match="border"):
        RoiPose(border="mirror")
    with pytest.raises(ValueError, match="uint8 BGR image"):
        model(np.zeros((10, 10)), [(5, 5, 10, 0)])
    for bad in [(5, 5, 0, 0), (5, 5, 10), (np.nan, 5, 10, 0), "roi"]:
        with pytest.raises(ValueError, match="ROI"):
            model(np.zeros((10, 10, 3), np.uint8), [bad])
    landmarks, presence = model(np.zeros((10, 10, 3), np.uint8), [])
    assert landmarks.shape == (0, 33, 3) and presence.shape == (0,) and model._graph is None
    assert pickle.loads(pickle.dumps(model.spec)) == {"variant": "full", "model_path": None, "border": "replicate"}


def test_nobody_in_a_black_image():
    model = RoiPose()
    try:
        landmarks, presence = model(np.zeros((480, 640, 3), np.uint8), [(320, 240, 400, 0.0), (100, 100, 150, 1.0)])
        assert landmarks.shape == (2, 33, 3) and np.isfinite(landmarks).all()
        assert (presence < 0.5).all(), presence  # 3e-5 measured
    finally:
        model.close()


# --- on a real frame -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def frames(shared_data):
    """cam02's frames FRAME and MASKED → (image, the subject's landmarks by the IMAGE-mode landmarker (the larger of
    its two poses), the ROI made from them)."""
    from mocap.detect.blazepose import CropPose
    from mocap.io.video import read_frames

    video = shared_data / "pose2sim_demo" / "videos" / "cam02.mp4"
    images = {i: img for i, img in read_frames(video, 1, MASKED, FRAME + 1) if i in (FRAME, MASKED)}
    landmarker = CropPose(num_poses=2)
    try:
        subjects = {i: max((p for p in landmarker(img) if np.isfinite(p).all()), key=lambda p: np.ptp(p[:, 1]))
                    for i, img in images.items()}
    finally:
        landmarker.close()
    return {i: (images[i], subjects[i], roi_from_points(subjects[i][:, :2])) for i in images}


@pytest.fixture(scope="module")
def model():
    model = RoiPose()
    yield model
    model.close()


@pytest.mark.shared_data
def test_agrees_with_the_landmarker(frames, model):
    """Measured: body joints within 4.7 px of the landmarker's at the median (9.5 px at most; face points 12 px),
    presence 0.9997. (The landmarker's crop comes from its detector, this one from its landmarks: over the demo's
    400 frames the median is 5.1 px; in 20 frames of cam02, where the subject is seen from the side, the two
    disagree on left / right.)"""
    image, subject, roi = frames[FRAME]
    landmarks, presence = model(image, [roi])
    assert landmarks.shape == (1, 33, 3) and presence.shape == (1,)
    assert median_px(landmarks[0], subject) < 8
    assert presence[0] > 0.9
    assert (landmarks[0, BODY, 2] > 0.5).mean() > 0.8  # the visibility as score, as the landmarker's
    again, _ = model(image, [roi, roi])  # several ROIs in one call: each as alone
    assert np.abs(again - landmarks[0]).max() < 1e-3


def black_head(image: np.ndarray, subject: np.ndarray) -> np.ndarray:
    """The image with the box of the subject's face points (0-10), grown by its size on each side (the head), black."""
    lo, hi = subject[:11, :2].min(0), subject[:11, :2].max(0)
    grow = float(np.max(hi - lo))
    (x0, y0), (x1, y1) = np.floor(lo - grow).astype(int), np.ceil(hi + grow).astype(int)
    out = image.copy()
    out[max(y0, 0):y1 + 1, max(x0, 0):x1 + 1] = 0
    return out


@pytest.mark.shared_data
def test_finds_the_body_the_detector_misses_with_the_head_blacked_out(frames, model):
    """Frame 76 with the head black. Measured: the IMAGE-mode landmarker on the frame finds nobody; on the subject's
    person box (the crop :mod:`mocap.detect.recover` runs it on today) it finds two wrong skeletons (229 and 106 px
    off); on the ROI from the unmasked landmarks the model finds the subject, 9.3 px from the unmasked landmarks at
    the median, presence 0.997 (heavy: 2.4 px). Asserted less strictly (no pose found is the subject, rather than
    none found): the bystander's detection score is near the threshold here. (BlazePose's detector is not
    face-driven alone: over every other frame of the demo's 4 views, a black head defeats it in 14 of 200, 12 of
    them cam02's frames 40-90.)"""
    from mocap.detect.blazepose import CropPose
    from mocap.detect.boxes import crop_image, person_box, to_image

    image, subject, roi = frames[MASKED]
    masked = black_head(image, subject)
    box = person_box(subject[:, :2], (image.shape[1], image.shape[0]), 0.25, 0.5, 8)
    whole, crop = CropPose(num_poses=1), CropPose(num_poses=2, min_detection=0.3)  # recover's
    try:
        found = list(whole(masked)) + list(to_image(crop(crop_image(masked, box, 256)), box, 256))
    finally:
        whole.close()
        crop.close()
    found = [p for p in found if np.isfinite(p).all()]
    assert all(same_person_px(p, subject) > 50 for p in found), "the detector found the subject: not the case tested"
    landmarks, presence = model(masked, [roi])
    assert median_px(landmarks[0], subject) < 14
    assert presence[0] > 0.9


@pytest.mark.shared_data
@pytest.mark.parametrize(("dx", "dy", "scale", "turn"), [
    (0.15, 0, 1, 0), (-0.15, 0, 1, 0), (0, 0.15, 1, 0), (0, -0.15, 1, 0), (0, 0, 1.15, 0), (0, 0, 0.85, 0),
    (0, 0, 1, 20), (0, 0, 1, -20), (0.15, 0.15, 1.15, 20), (-0.15, -0.15, 1.15, -20)])
def test_finds_the_body_from_an_roi_off_by_15_percent_and_20_degrees(frames, model, dx, dy, scale, turn):
    """Measured (median body-joint distance to the landmarker's, presence): shifts by 15 % of the side 3.8-4.9 px,
    scaled by 1.15 / 0.85 4.9 / 3.8 px, turned by ±20° 10.8 / 7.9 px, all three at once 10.9 / 9.3 px; presence
    ≥ 0.998 in all. (Shrunk by 15 %, shifted down-right by 15 % and turned -20° together, the crop loses the body:
    143 px off, not tested. On frame 76, where the subject is side-on, turning the ROI by +20° gives the body with
    left and right swapped, 9.7 px off once swapped back.)"""
    image, subject, (cx, cy, side, angle) = frames[FRAME]
    roi = (cx + dx * side, cy + dy * side, side * scale, angle + np.radians(turn))
    landmarks, presence = model(image, [roi])
    assert median_px(landmarks[0], subject) < 16
    assert presence[0] > 0.9


@pytest.mark.shared_data
def test_low_presence_where_nobody_is(frames, model):
    """Measured: 0 on the mat at the bottom of the frame, 5e-7 on the wall and ceiling at the upper right."""
    image = frames[FRAME][0]
    h, w = image.shape[:2]
    _, presence = model(image, [(w / 2, h - 300, 500, 0.0), (w - 200, 300, 400, 0.3)])
    assert (presence < 0.5).all(), presence


@pytest.mark.shared_data
def test_heavy_model_from_the_shared_file(frames, shared_data):
    """The heavy landmark model (the file the wheel lacks): body joints 4.0 px from the full landmarker's at the
    median, presence 0.99999."""
    image, subject, roi = frames[FRAME]
    model = RoiPose("heavy", shared_data / "models" / "pose_landmark_heavy.tflite")
    try:
        landmarks, presence = model(image, [roi])
    finally:
        model.close()
    assert median_px(landmarks[0], subject) < 8 and presence[0] > 0.9
