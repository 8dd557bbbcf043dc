"""Frames a camera repeats (a frozen video, a recorder filling dropped frames with copies): measured while detection
decodes, their detections left out where a session's keypoints are read, named by the report
(:mod:`mocap.detect.repeats`, :mod:`mocap.repeated_frames`)."""

import cv2
import numpy as np
import pytest
from test_detect_pool import fakes  # noqa: F401 (the stand-in detectors)

from mocap.detect.repeats import BLANK, Changes, blank_frames, still_frames
from mocap.io.hdf5 import keypoints2d_info, read_keypoints2d
from mocap.repeated_frames import mask_repeated, ranges_text, repeated_frames
from mocap.stages import detect
from mocap.types import Keypoints2D


def noisy_video(path, n, seed, frozen=(), size=(96, 64), black=()):
    """Frames of sensor-like noise around a grey level (each differs from the one before); frames in ``frozen``
    are copies of the frame before the first of them; frames in ``black`` black (as a damaged frame is given)."""
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, size)
    last = None
    for i in range(n):
        if i in black:
            frame = np.zeros((size[1], size[0], 3), np.uint8)
        elif i in frozen and last is not None:
            frame = last
        else:
            frame = np.clip(120 + rng.normal(0, 12, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
        writer.write(frame)
        last = frame
    writer.release()


def take(tmp_path, frozen: dict):
    (tmp_path / "videos").mkdir(parents=True)
    for k in range(3):
        noisy_video(tmp_path / "videos" / f"cam{k + 1}.avi", 60, k, frozen.get(k, ()))
    return tmp_path


def test_a_frozen_stretch_of_one_camera_is_found_while_detecting(tmp_path, fakes):  # noqa: F811
    session = take(tmp_path, {1: range(20, 30)})
    out = detect.main(session, detect.Config(detector="still", workers=1))
    info = keypoints2d_info(out)
    still = info["still_frames"]
    assert still == {"cam1": [], "cam2": list(range(20, 30)), "cam3": []}
    assert set(info["quiet_frames"]["cam2"]) >= set(range(20, 30))
    kp = read_keypoints2d(out)
    masked, rep = mask_repeated(kp, {"still_frames": still})
    assert rep == {"cam2": list(range(20, 30))}
    assert np.isnan(masked.data[20:30, 1]).all() and np.isfinite(masked.data[:20, 1, 0, 0, 0]).all()
    assert np.array_equal(masked.data[:, [0, 2]], kp.data[:, [0, 2]], equal_nan=True)
    # cut into chunks (a stateless detector is split over the workers): the same frames
    again = detect.main(session, detect.Config(detector="still", workers=2, split=True), overwrite=True)
    assert keypoints2d_info(again)["still_frames"]["cam2"] == list(range(20, 30))


def test_a_scene_standing_still_in_every_camera_repeats_nothing(tmp_path, fakes):  # noqa: F811
    """Every camera still over the same frames (nobody moving in a noise-free render): nothing is repeated; the
    cameras still at once with one other of three are not either (half the others)."""
    session = take(tmp_path, {0: range(20, 30), 1: range(20, 30), 2: range(25, 35)})
    out = detect.main(session, detect.Config(detector="still", workers=1))
    still = keypoints2d_info(out)["still_frames"]
    assert still["cam1"] == list(range(20, 30)) and still["cam3"] == list(range(25, 35))
    assert repeated_frames({"still_frames": still}, ["cam1", "cam2", "cam3"], 60) == {"cam3": list(range(30, 35))}


def test_changes_and_still_frames_on_arrays():
    rng = np.random.default_rng(0)
    meter = Changes()
    frames = [rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for _ in range(10)]
    for i, f in enumerate(frames):
        meter.add(frames[4] if i in (5, 6) else f)  # 5 and 6 copies of 4
    c = np.array(meter.values)
    assert np.isnan(c[0]) and c[5] == 0 and c[6] == 0 and (np.delete(c, [0, 5, 6]) > 50).all()
    assert still_frames(c) == [5, 6]
    assert still_frames(np.zeros(10)) == [] and still_frames(np.full(5, np.nan)) == []  # no change anywhere
    assert ranges_text([3, 4, 5, 9, 11, 12]) == "3-5, 9, 11-12"


def test_black_frames_are_blank_not_still():
    """Frames the decoder cannot read are given as black images: blank, neither still nor quiet (two in a row
    changed by 0, and read as a frozen camera)."""
    rng = np.random.default_rng(0)
    meter = Changes()
    for i in range(10):
        meter.add(np.zeros((64, 64, 3), np.uint8) if i in (4, 5) else rng.integers(0, 255, (64, 64, 3), np.uint8))
    c = np.array(meter.values)
    assert c[4] == BLANK and c[5] == BLANK and blank_frames(c) == [4, 5]
    assert still_frames(c) == [] and c[6] > 50


def test_a_video_with_black_frames_records_them_and_the_report_names_them(tmp_path, fakes, caplog):  # noqa: F811
    """A damaged file's undecodable frames, given as black images (mocap.io.video.read_frames), read in the report
    as a camera that lost the performer: "footage dark, blurred...?". Detection records them (info["blank_frames"])
    and the report names them, in metrics.json, the log, the page and the lost camera's hint."""
    import logging

    from mocap.report.lost import lost_cameras
    from mocap.report.repeated import log_repeated

    session = take(tmp_path, {})
    noisy_video(session / "videos" / "cam2.avi", 60, 1, black=range(20, 32))
    info = keypoints2d_info(detect.main(session, detect.Config(detector="still", workers=1)))
    assert info["blank_frames"] == {"cam1": [], "cam2": list(range(20, 32)), "cam3": []}
    assert info["still_frames"]["cam2"] == [] and set(info["quiet_frames"]["cam2"]) >= set(range(20, 32))
    blank = {"cam2": {"frames": 12, "ranges": [[20, 32]], "text": "20-31"}}
    tables = [{c: {"detections": 50, "in_view_frames": 60, "lost_frames": 12 if c == "cam2" else 0}
               for c in ("cam1", "cam2", "cam3")}]
    assert "footage dark" in lost_cameras([{c: dict(r) for c, r in tables[0].items()}])["cam2"]["text"]
    text = lost_cameras(tables, blank)["cam2"]["text"]
    assert "12 frame(s) of its video are black" in text and "damaged file" in text and "footage dark" not in text
    few = {"cam2": dict(blank["cam2"], frames=5)}  # black frames explaining less than half of what it lost: as before
    assert "footage dark" in lost_cameras([{c: dict(r) for c, r in tables[0].items()}], few)["cam2"]["text"]
    with caplog.at_level(logging.WARNING, logger="mocap"):
        log_repeated({"blank_frames": blank})
    assert any("camera cam2: frames 20-31 are black (12 frame(s))" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("still, expect", [({"a": [1, 2]}, {}),  # one camera recorded: nothing to compare
                                           ({"a": [1, 2], "b": [2]}, {"a": [1]})])
def test_repeated_needs_the_other_cameras_moving(still, expect):
    assert repeated_frames({"still_frames": still}, ["a", "b"], 5) == expect


def test_a_clean_camera_still_while_the_others_are_quiet_repeats_nothing():
    """The performer pausing: a clean camera's frames change as little as copies (still), the noisier cameras' drop
    to their noise (quiet, not still): nothing is repeated; with the others moving, it is."""
    still = {"a": list(range(20, 30)), "b": [], "c": []}
    quiet = {"a": list(range(20, 30)), "b": list(range(18, 31)), "c": list(range(19, 32))}
    assert repeated_frames({"still_frames": still, "quiet_frames": quiet}, ["a", "b", "c"], 60) == {}
    moving = {"a": list(range(20, 30)), "b": [5], "c": []}
    assert repeated_frames({"still_frames": still, "quiet_frames": moving}, ["a", "b", "c"], 60) == {
        "a": list(range(20, 30))}


def test_a_camera_repeating_every_other_frame_keeps_its_detections():
    """A camera at half the others' frame rate (30 fps in a 60 fps file) repeats every other frame: no freeze; its
    detections are kept (dropping them halved its data) and the report says so."""
    from mocap.repeated_frames import frequent

    info = {"still_frames": {"a": list(range(1, 100, 2)), "b": [], "c": []}}
    kp = Keypoints2D(np.ones((100, 3, 1, 33, 3)), ("a", "b", "c"), "blazepose33", 60.0)
    assert len(repeated_frames(info, ["a", "b", "c"], 100)["a"]) == 50 and frequent({"a": [1] * 50}, 100) == {"a"}
    same, rep = mask_repeated(kp, info)
    assert same is kp and rep == {}
    assert ranges_text(list(range(1, 100, 2))) == "1, 3, 5, 7, 9, 11, 13, 15, … (50 ranges)"


def test_masking_leaves_keypoints_without_a_record_alone():
    kp = Keypoints2D(np.ones((4, 2, 1, 33, 3)), ("a", "b"), "blazepose33", 30.0)
    same, rep = mask_repeated(kp, {})
    assert same is kp and rep == {}


def test_a_session_leaves_repeated_detections_out_and_the_report_names_them(tmp_path, caplog):
    import json
    import logging

    from pipeline_synth import synthetic_session

    from mocap.io.hdf5 import update_keypoints2d_info
    from mocap.pipeline import run_stages
    from mocap.session import Session

    s = Session(synthetic_session(tmp_path / "take", frames=60))
    names = list(s.rig().names)
    before = s.keypoints2d()
    update_keypoints2d_info(s.pose2d_h5, still_frames={n: list(range(10, 20)) if n == names[1] else []
                                                      for n in names},
                            blank_frames={n: [5, 6, 7] if n == names[2] else [] for n in names})
    kp = s.keypoints2d()
    assert np.isnan(kp.data[10:20, 1]).all()
    keep = np.ones(kp.shape[:2], bool)
    keep[10:20, 1] = False
    assert np.array_equal(kp.data[keep], before.data[keep], equal_nan=True)
    with caplog.at_level(logging.WARNING, logger="mocap"):
        run_stages(s, only=["triangulate", "report"], progress=False)
    metrics = json.loads((s.root / "report" / "metrics.json").read_text())
    assert metrics["repeated_frames"] == {names[1]: {"frames": 10, "ranges": [[10, 20]], "text": "10-19",
                                                     "used": False}}
    assert any(f"camera {names[1]}: frames 10-19 repeat the frame before them (10 frames" in r.getMessage()
               and "not used" in r.getMessage() for r in caplog.records)
    html = (s.root / "report" / "report.html").read_text()
    assert "frozen video; their detections not used" in html and f"{names[1]} 10-19 (10)" in html
    assert metrics["blank_frames"] == {names[2]: {"frames": 3, "ranges": [[5, 8]], "text": "5-7"}}
    assert "black frames of a video (undecodable: a damaged file?" in html and f"{names[2]} 5-7 (3)" in html


def test_still_frames_with_no_one_detected_are_not_called_repeated(tmp_path, caplog):
    """The real demo with cam02's performer blacked out for 30 frames: its still picture was said to repeat 27 frames
    ("too many for a freeze: a video at a lower frame rate than the others'?"), where nothing was repeated and there
    was no detection to leave out. A still frame where the camera detected no one is not a repeated frame: the
    report names only the still frames that have detections."""
    import json
    import logging

    from pipeline_synth import synthetic_session

    from mocap.io.hdf5 import update_keypoints2d_info, write_keypoints2d
    from mocap.pipeline import run_stages
    from mocap.session import Session

    s = Session(synthetic_session(tmp_path / "take", frames=60))
    names = list(s.rig().names)
    kp = read_keypoints2d(s.pose2d_h5)
    data = np.array(kp.data)
    data[10:40, 1] = np.nan  # covered: no one detected in camera 1 for 30 frames
    write_keypoints2d(Keypoints2D(data, kp.camera_names, kp.keypoint_set, kp.fps), s.pose2d_h5)
    update_keypoints2d_info(s.pose2d_h5, still_frames={n: list(range(10, 40)) + [50, 51] if n == names[1] else []
                                                      for n in names})
    assert repeated_frames(keypoints2d_info(s.pose2d_h5), names, 60) == {names[1]: list(range(10, 40)) + [50, 51]}
    with caplog.at_level(logging.WARNING, logger="mocap"):
        run_stages(s, only=["triangulate", "report"], progress=False)
    metrics = json.loads((s.root / "report" / "metrics.json").read_text())
    assert metrics["repeated_frames"] == {names[1]: {"frames": 2, "ranges": [[50, 52]], "text": "50-51",
                                                     "used": False}}
    said = [r.getMessage() for r in caplog.records if "repeat the frame before them" in r.getMessage()]
    assert len(said) == 1 and "frames 50-51" in said[0] and "lower frame rate" not in said[0]
    assert np.isnan(s.keypoints2d().data[50:52, 1]).all()  # the stale detections left out, as before


def test_a_half_rate_camera_seeing_the_performer_for_a_quarter_of_the_take_keeps_its_detections():
    """Repeats are counted among the frames with a detection, so "too many for a freeze" is judged against those too:
    a 30 fps camera in a 60 fps rig, the performer in its view for 100 of 400 frames, repeats 50 of them (every
    other one) — not a freeze (its detections kept), where 50 of 400 read as one and half were masked (a review)."""
    from mocap.repeated_frames import repeated_and_kept

    info = {"still_frames": {"a": list(range(1, 400, 2)), "b": [], "c": []}}
    detected = np.zeros((400, 3), bool)
    detected[100:200, 0] = True
    detected[:, 1:] = True
    rep, kept = repeated_and_kept(info, ["a", "b", "c"], 400, detected)
    assert len(rep["a"]) == 50 and kept == {"a"}


def test_a_camera_still_while_another_is_black_is_not_repeated():
    """A black stretch (a damaged file) shows nothing of the scene moving: it counts as quiet, so a camera still
    there (someone holding a pose) is not called repeated on its account (review: with two cameras it was)."""
    import tempfile
    from pathlib import Path

    from mocap.detect.collect import record_still
    from mocap.io.hdf5 import write_keypoints2d

    rng = np.random.default_rng(3)
    moving = rng.uniform(5, 10, 60)
    a, b = moving.copy(), moving.copy()
    a[20:32] = -1.0  # camera A black (repeats.BLANK)
    b[21:32] = 0.0  # camera B still over those frames
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "pose2d.h5"
        write_keypoints2d(Keypoints2D(np.zeros((60, 2, 1, 17, 3)), ["A", "B"], "coco17", 30.0), path)
        record_still(path, "A", a)
        record_still(path, "B", b)
        info = keypoints2d_info(path)
    assert info["blank_frames"]["A"] == list(range(20, 32)) and info["still_frames"]["B"] == list(range(21, 32))
    assert repeated_frames(info, ["A", "B"], 60) == {}
