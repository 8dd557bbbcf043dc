"""Two cameras' videos exchanged, told from the 2D alone (mocap.report.exchanged): the exchange that makes every
camera pair agree with the rig's epipolar geometry; nothing on a take whose videos are right."""

import numpy as np
from body_synth import blazepose_keypoints, body_motion

from mocap.report.exchanged import exchanges
from mocap.synth import CorruptionSpec, RigSpec, corrupt, ring_rig


def _take(cameras: int, swap: tuple[int, int] | None):
    X = blazepose_keypoints(body_motion(300, 60.0, seed=2))
    rig = ring_rig(RigSpec(n_cameras=cameras), X.reshape(-1, 3))
    data, _ = corrupt(np.moveaxis(rig.project(X), 0, 1), rig, "blazepose33", CorruptionSpec(2.0, 0.05, 0.1, seed=3))
    obs, score = data[:, :, 0, :, :2], data[:, :, 0, :, 2]
    if swap:
        a, b = swap
        obs[:, [a, b]] = obs[:, [b, a]]
        score[:, [a, b]] = score[:, [b, a]]
    return rig, obs, np.isfinite(score) & (score >= 0.2)


def test_the_exchanged_pair_is_named():
    for cameras, swap in ((4, (1, 2)), (3, (0, 1)), (6, (2, 5))):
        rig, obs, det = _take(cameras, swap)
        pairs, errors = exchanges(rig, obs, det, list(range(cameras)))
        assert pairs and pairs[0] == swap, (cameras, pairs, errors)
        name = f"{rig.names[swap[0]]}↔{rig.names[swap[1]]}"
        assert errors[name] * 5 < errors["given"], errors


def test_a_half_turn_of_a_symmetric_ring_is_named_with_its_twin():
    rig, obs, det = _take(4, (0, 2))
    pairs, _ = exchanges(rig, obs, det, [0, 1, 2, 3])
    assert (0, 2) in pairs, pairs


def test_nothing_on_right_videos_or_without_a_flagged_camera():
    rig, obs, det = _take(4, None)
    assert exchanges(rig, obs, det, [0, 1, 2, 3])[0] == []
    rig, obs, det = _take(4, (1, 2))
    assert exchanges(rig, obs, det, [])[0] == []


def test_detections_outside_the_calibrated_image_are_told_image_size():
    """A camera calibrated at 1280×720 whose video is 1920×1080 (or turned a quarter): its detections reach past
    the calibrated image; flagged, it is told "image size?" instead of a pose 20° off."""
    from mocap.report.exchanged import outside_image

    rig, obs, det = _take(4, None)
    w, h = rig.cameras[1].size
    big = obs.copy()
    big[:, 1] *= 1.5  # the detections in the pixels of a 1.5× larger video
    rows = {n: {"flagged": n == "cam02", "hint": "calibration? ..."} for n in rig.names}
    outside_image(rows, rig, big, det)
    assert rows["cam02"]["hint"].startswith("image size? ") and f"calibrated {w}×{h} image" in rows["cam02"]["hint"]
    rows = {n: {"flagged": True, "hint": "calibration? ..."} for n in rig.names}
    outside_image(rows, rig, obs, det)  # every detection inside: nothing said
    assert all(r["hint"] == "calibration? ..." for r in rows.values())
    rows = {n: {"flagged": False, "hint": None} for n in rig.names}
    outside_image(rows, rig, big, det)  # not flagged: nothing said
    assert rows["cam02"]["hint"] is None


def test_detections_in_another_resolutions_pixels_are_told_scaled():
    """Detections of a resized copy not scaled back (×0.5): they fit the camera's reprojections once scaled ×2
    about the image's corner; flagged, the camera is told "detections scaled?" (it was "calibration? would move
    25°"); with the image-size hint already said, the factor is added to it."""
    from mocap.report.exchanged import scaled_detections

    rig, obs, det = _take(4, None)
    uv = obs.copy()  # the reprojections: where the detections belong
    half = obs.copy()
    half[:, 1] *= 0.5
    rows = {n: {"flagged": n == "cam02", "hint": "calibration? ..."} for n in rig.names}
    scaled_detections(rows, uv, half, det)
    assert rows["cam02"]["hint"].startswith("detections scaled? cam02's detections fit its pose once scaled ×2.00")
    assert rows["cam01"]["hint"] == "calibration? ..."
    rows = {n: {"flagged": True, "hint": "image size? 12 % ..."} for n in rig.names}
    scaled_detections(rows, uv, half, det)
    assert rows["cam02"]["hint"].startswith("image size? 12 % ...") and "scaled ×2.00" in rows["cam02"]["hint"]
    rows = {n: {"flagged": True, "hint": "wrong person? ..."} for n in rig.names}
    scaled_detections(rows, uv, obs, det)  # as they belong: nothing said
    assert all(r["hint"] == "wrong person? ..." for r in rows.values())
