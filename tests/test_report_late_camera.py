"""A camera whose video looks started late (its detections end frames before the first camera's) while sync applied
it no offset: named at the end of the run, and a flagged camera's hint starts with it instead of blaming its
calibration (Pose2Sim's two-person demo with cam03's video 12 frames late: "bumped? recalibrate")."""

import logging

import numpy as np

from mocap.report import log_cameras
from mocap.report.late import late_cameras
from mocap.types import Keypoints2D

VIDEOS = {"cam01": 100, "cam02": 100, "cam03": 95}  # cam03's video 5 frames shorter


def _kp(late: int = 5, frames: int = 100) -> Keypoints2D:
    data = np.random.default_rng(0).uniform(1, 100, (frames, 3, 1, 33, 3))
    data[frames - late:, 2] = np.nan  # cam03 started `late` frames after the others: as many frames shorter
    return Keypoints2D(data, ("cam01", "cam02", "cam03"), "blazepose33", 60.0)


def _tables(flagged: bool) -> list[dict[str, dict]]:
    row = {"flagged": flagged, "hint": "calibration? its error is high in 84% of frames" if flagged else None,
           "flag": {"stat": "median_px", "value": 55.1, "ratio": 2.5, "reference": 9.4} if flagged else None}
    return [{"cam01": {"flagged": False}, "cam02": {"flagged": False}, "cam03": dict(row)} for _ in range(2)]


def test_a_flagged_camera_that_started_late_is_told_sync_before_its_calibration(caplog):
    tables = _tables(flagged=True)
    late = late_cameras(_kp(), {"cam01": 0.0, "cam02": 0.0, "cam03": 0.0}, tables, VIDEOS)
    assert set(late) == {"cam03"} and late["cam03"]["frames"] == -5.0
    for t in tables:
        assert t["cam03"]["late"] == -5.0
        assert t["cam03"]["hint"].startswith("sync? cam03's video is 5 frames shorter than cam01's and its detections "
                                             "end as early: it started 5 frames late?"), t["cam03"]["hint"]
        assert "cut 5 frames from the start of the other cameras' videos" in t["cam03"]["hint"]
        assert t["cam03"]["hint"].endswith("else: calibration? its error is high in 84% of frames")
    metrics = {"persons": [{"name": f"person{p + 1}", "cameras": t} for p, t in enumerate(tables)],
               "late_cameras": late}
    with caplog.at_level(logging.WARNING, logger="mocap.report"):
        log_cameras(metrics)
    said = [r.getMessage() for r in caplog.records]
    assert sum("5 frames late?" in m for m in said) == 2, said  # in each person's flag, not once more


def test_a_late_camera_not_flagged_is_named_once_at_the_end(caplog):
    tables = _tables(flagged=False)
    late = late_cameras(_kp(), {}, tables, VIDEOS)
    metrics = {"persons": [{"name": f"person{p + 1}", "cameras": t} for p, t in enumerate(tables)],
               "late_cameras": late}
    with caplog.at_level(logging.WARNING, logger="mocap.report"):
        log_cameras(metrics)
    said = [r.getMessage() for r in caplog.records]
    assert said == ["camera cam03: " + late["cam03"]["text"]], said
    assert tables[0]["cam03"]["hint"] is None


def test_no_late_camera_when_sync_applied_its_offset_or_the_lengths_agree():
    assert late_cameras(_kp(), {"cam03": -5.1}, _tables(True), VIDEOS) == {}
    assert late_cameras(_kp(late=1), {}, _tables(True), VIDEOS) == {}
    assert late_cameras(_kp(late=0), {}, _tables(True), VIDEOS) == {}


def test_a_person_who_left_one_view_first_is_not_a_late_video():
    """cam03's detections end 5 frames early, its video as long as the others (the person walked out of its view),
    or no videos to tell (2D keypoints brought along): nothing said."""
    tables = _tables(True)
    assert late_cameras(_kp(), {}, tables, {"cam01": 100, "cam02": 100, "cam03": 100}) == {}
    assert late_cameras(_kp(), {}, tables, None) == {}
    assert tables[0]["cam03"]["hint"].startswith("calibration?") and "late" not in tables[0]["cam03"]


def test_detections_ending_far_earlier_than_the_video_is_shorter_is_not_a_late_start():
    """Videos a couple of frames apart (common) and a person who left cam03's view 40 frames early: the lengths do
    not tell a late start of 40 frames (it was told to cut 40 frames)."""
    assert late_cameras(_kp(late=40), {}, _tables(True), {"cam01": 100, "cam02": 100, "cam03": 98}) == {}
    assert set(late_cameras(_kp(late=2), {}, _tables(True), {"cam01": 100, "cam02": 100, "cam03": 97})) == {"cam03"}


def test_the_first_camera_started_late_is_named_not_every_other():
    data = np.random.default_rng(0).uniform(1, 100, (100, 3, 1, 33, 3))
    data[95:, 0] = np.nan  # cam01's video 5 frames shorter: each other camera's detections end 5 frames after it
    kp = Keypoints2D(data, ("cam01", "cam02", "cam03"), "blazepose33", 60.0)
    tables = [{"cam01": {"flagged": False}, "cam02": {"flagged": False}, "cam03": {"flagged": False}}]
    late = late_cameras(kp, {}, tables, {"cam01": 95, "cam02": 100, "cam03": 100})
    assert list(late) == ["cam01"] and late["cam01"]["frames"] == -5.0, late
    assert late["cam01"]["text"].startswith("cam01's video is 5 frames shorter than the other cameras'")


def test_with_a_stride_the_lengths_compare_in_keypoint_frames():
    videos = {"cam01": 200, "cam02": 200, "cam03": 190}  # every other video frame detected: 5 keypoint frames
    assert set(late_cameras(_kp(), {}, _tables(True), videos, stride=2)) == {"cam03"}


def test_the_page_s_time_offsets_row_says_which_video_looks_started_late():
    from mocap.report.page import summary_rows

    late = late_cameras(_kp(), {}, _tables(False), VIDEOS)
    m = {"reprojection_px": {"median": 5.0, "p95": 9.0, "median_views_used": 5.0, "views_used_share": 0.9},
         "reconstructed": {"frames_all_joints": 1.0, "points": 1.0}, "bone_length_cv": {"mean": 0.01, "max": 0.02},
         "jitter_mean_accel_m_s2": 1.0, "sync_offsets_frames": {"cam01": 0.0, "cam02": 0.0, "cam03": 0.0},
         "late_cameras": late}
    html = summary_rows(m)
    assert ("cam03 +0.00 (its video 5 frames shorter: started late? no offset proven)" in html
            and "cam02 +0.00, cam03" in html), html


def test_frames_dropped_mid_take_are_told_apart_from_a_late_start_by_sync_s_halves():
    """A video shortened by frames dropped mid-take ends as early as one started late; sync's halves tell them apart
    (the single-person demo, 3 frames of cam03 dropped at frame 50: halves −0.73 / −2.00, told "started 3 frames late?
    cut 3 frames from the start of the other cameras' videos"). Halves both near the lag: a late start."""
    from mocap.report.page import summary_rows

    tables = _tables(flagged=True)
    late = late_cameras(_kp(), {}, tables, VIDEOS, halves={"cam03": [-0.73, -4.1], "cam02": [0.1, -0.2]})
    assert late["cam03"]["mid_take"] and late["cam03"]["frames"] == -5.0, late
    text = late["cam03"]["text"]
    assert ("first half is in time (-0.73 frames) and its second off (-4.10): 5 frames dropped mid-take?" in text
            and "-fps_mode cfr -r 60" in text and "cut 5 frames" not in text), text
    assert tables[0]["cam03"]["hint"].startswith("sync? cam03's video is 5 frames shorter") and \
        tables[0]["cam03"]["hint"].endswith("else: calibration? its error is high in 84% of frames")
    m = {"reprojection_px": {"median": 5.0, "p95": 9.0, "median_views_used": 5.0, "views_used_share": 0.9},
         "reconstructed": {"frames_all_joints": 1.0, "points": 1.0}, "bone_length_cv": {"mean": 0.01, "max": 0.02},
         "jitter_mean_accel_m_s2": 1.0, "sync_offsets_frames": {"cam01": 0.0, "cam02": 0.0, "cam03": 0.0},
         "late_cameras": late}
    assert "cam03 +0.00 (its video 5 frames shorter: frames dropped mid-take? no offset proven)" in summary_rows(m)
    assert late_cameras(_kp(), {}, _tables(True), VIDEOS, halves={"cam03": [0.2, -0.3]}) == {}  # stopped early
    for halves in ([-3.5, -5.0], [-7.0, -10.0], [-4.9, -5.1]):  # both halves nearer the lag than 0: started late
        late = late_cameras(_kp(), {}, _tables(True), VIDEOS, halves={"cam03": halves})
        assert "mid_take" not in late["cam03"] and "started 5 frames late?" in late["cam03"]["text"], halves
    kp = _kp(late=0)
    kp.data[95:, :2] = np.nan  # cam03's detections end 5 frames after the others', its video 5 frames longer
    videos = {"cam01": 95, "cam02": 95, "cam03": 100}
    late = late_cameras(kp, {}, _tables(True), videos, halves={"cam03": [0.2, 4.4]})
    assert "5 frames repeated mid-take?" in late["cam03"]["text"] and "shown twice" in late["cam03"]["text"], late


def test_a_camera_out_of_time_after_frames_dropped_mid_take_fails_the_verdict():
    """The real demo with 6 frames of cam03 dropped at frame 50: the warning said "6 frames dropped mid-take?" but the
    verdict read PASS (7.94 px) while cam03's P95 went 39 → 89 px and the 3D after the drop was 17 mm off; and the
    advice (re-encode from its timestamps) cannot help a file that lost them. Now every camera row says so and the
    verdict fails naming the camera; the advice says what to do when the timestamps are lost too."""
    from mocap.report.verdict import verdict

    tables = _tables(flagged=False)
    late = late_cameras(_kp(), {}, tables, VIDEOS, halves={"cam03": [-0.49, -4.43]})
    assert tables[0]["cam03"]["mid_take"] == {"frames": 5, "kind": "dropped", "second_half_frames": -4.43}
    assert 'leave the camera out of the rig (Qualisys: active="0"' in late["cam03"]["text"]
    m = {"reprojection_px": {"median": 5.0}, "reprojection_mm": {"median": 10.0},
         "reconstructed": {"frames_all_joints": 1.0, "points": 1.0}, "bone_length_cv": {"mean": 0.01, "max": 0.02},
         "cameras": tables[0]}
    v = verdict(m, 30.0, 0.05, 0.9)
    assert not v["usable"] and [f["metric"] for f in v["failed"]] == ["cameras.cam03.mid_take"], v
    assert v["summary"] == ("FAIL: camera cam03: 5 frames dropped mid-take? its second half is -4.43 frames out of "
                            "time (see its warning)")
    started_late = _tables(flagged=False)
    late_cameras(_kp(), {}, started_late, VIDEOS, halves={"cam03": [-4.9, -5.1]})
    assert "mid_take" not in started_late[0]["cam03"]
    assert verdict(m | {"cameras": started_late[0]}, 30.0, 0.05, 0.9)["usable"]
