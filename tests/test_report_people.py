"""The report explains itself: the worst frames of each camera as crops (detections as detected vs
the reprojection), their captions naming the left/right repair, the verdict naming metric, threshold
and setting; with two people: each detection matched to its person, ``persons`` and ``timeline`` in
metrics.json, a timeline and a section per person in report.html."""

from __future__ import annotations

import base64
import dataclasses
import json
import re

import cv2
import numpy as np
import pytest
from pipeline_synth import synthetic_session
from test_view_synth import SECOND_ENTERS, two_person_session, write_videos

from mocap import report
from mocap.keypoint_sets import get_keypoint_set
from mocap.report.crops import worst_frames
from mocap.session import Session
from mocap.stages import triangulate

SWAPPED = (10, 22)  # cam02's detections have left and right exchanged in these frames


def _images(html: str) -> list[np.ndarray]:
    out = []
    for b64 in re.findall(r'src="data:image/jpeg;base64,([A-Za-z0-9+/=]+)"', html):
        out.append(cv2.imdecode(np.frombuffer(base64.b64decode(b64), np.uint8), cv2.IMREAD_COLOR))
    return out


@pytest.fixture(scope="module")
def swapped(tmp_path_factory):
    """One performer; cam02's detections swapped in SWAPPED; triangulated with the repair (as the stage does)."""
    root = synthetic_session(tmp_path_factory.mktemp("s") / "take", frames=40, fps=30.0)
    import h5py

    with h5py.File(root / "pose2d.h5", "r+") as f:
        d = f["keypoints"][...]
        a, b = SWAPPED
        d[a:b, 1, 0] = d[a:b, 1, 0][:, get_keypoint_set("blazepose33").flip_permutation]
        f["keypoints"][...] = d
    s = Session(root)
    triangulate.main(s)
    return s


def test_worst_frames_are_spread_out():
    e = np.array([0, 1, 9, 8, 7, 0, 0, 5, np.nan, 6, 0], float)
    assert worst_frames(e, 3, 2) == [2, 5, 9]  # 9, then 6 (8, 7 and 5 too near), then what is left
    assert worst_frames(e, 2, 0) == [2, 3]
    assert worst_frames(np.full(4, np.nan), 3, 1) == []


def test_the_swapped_camera_shows_its_swaps(swapped):
    m = report.build(swapped, cfg=report.Config(overlay_videos=False))
    assert m["cameras"]["cam02"]["swaps_repaired"] >= 8
    html = (swapped.root / "report" / "report.html").read_text()
    caps = re.findall(r"<figcaption>(cam02, frame (\d+)[^<]*)</figcaption>", html)
    assert len(caps) == 3
    for text, frame in caps:  # its worst frames are the swapped ones, and say so
        assert SWAPPED[0] <= int(frame) < SWAPPED[1], text
        assert "left/right repaired here (" in text and "no video: drawn on grey" in text
        before, after = map(float, re.findall(r"([\d.]+) px", text)[:2])
        assert before > 5 * after, text
    imgs = _images(html)
    assert len(imgs) == 3 * 4 and all(i is not None and i.shape[0] == 300 for i in imgs)
    assert "cam02 as detected (before the left/right repair)" in html  # the dashed line of the time plot
    assert 'stroke-dasharray="4 3"' in html


def test_crops_come_from_the_videos_when_the_report_reads_them(tmp_path):
    session, _ = two_person_session(tmp_path / "v", frames=30)
    write_videos(session, 30)
    report.build(session, cfg=report.Config(worst_frames=2))
    html = (session.root / "report" / "report.html").read_text()
    caps = re.findall(r"<figcaption>([^<]*)</figcaption>", html)
    assert len(caps) == 2 * 4 * 2 and all("(video frame " in c for c in caps)
    grey = [np.mean(np.abs(i.astype(int) - 88) < 12) for i in _images(html)]
    assert min(grey) > 0.3  # the video's grey shows behind the skeletons
    cap = cv2.VideoCapture(str(session.root / "review" / "cam01_reprojected.mp4"))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 25)
    ok, img = cap.read()
    cap.release()
    from mocap.view.render import palette

    for p in (0, 1):  # the review video draws both people, each in its colour
        assert ok and (np.abs(img.astype(int) - palette(p)[0]) < 40).all(axis=-1).sum() > 50, p
    report.build(session, cfg=report.Config(worst_frames=0, overlay_videos=False))
    assert "<img" not in (session.root / "report" / "report.html").read_text()


def test_two_people_metrics_timeline_and_sections(tmp_path):
    session, truth = two_person_session(tmp_path / "two", frames=45)
    from mocap.io.hdf5 import read_points3d, write_points3d

    tri = read_points3d(session.points3d("triangulated"))  # what the association stage records
    tri.info["association"] = {"overall": {"tracks": 2, "<b>switches</b>": 0}, "per_frame": [1, 2]}
    write_points3d(tri, session.points3d("triangulated"))
    m = report.build(session, cfg=report.Config(overlay_videos=False))
    on_disk = json.loads((session.root / "report" / "metrics.json").read_text())
    assert [p["name"] for p in on_disk["persons"]] == ["person1", "person2"]
    assert [p["frames_present"] for p in m["persons"]] == [45, 45 - SECOND_ENTERS]
    assert on_disk["timeline"][1]["spans"] == [[SECOND_ENTERS, 44]] and on_disk["timeline"][0]["spans"] == [[0, 44]]
    assert m["reprojection_px"] == m["persons"][0]["reprojection_px"]  # today's keys: the first person's
    for p in m["persons"]:  # each person's detections found among the shuffled ones of every view
        assert all(c["median_px"] < 3 and c["detections"] > 0.8 * p["frames_present"] * 33
                   for c in p["cameras"].values()), p["cameras"]
    late = m["persons"][1]["reconstructed"]  # judged from its entry on: arriving late is not a failure
    assert late["points"] > 0.95 and not any(f["metric"] == "persons.1.reconstructed.points"
                                             for f in m["verdict"]["failed"]), (late, m["verdict"])
    for f in m["verdict"]["failed"]:  # a person's failed check is named with the person
        assert re.match(r"person[12]: ", f["label"]) and re.match(r"persons\.[01]\.", f["metric"]), f
    html = (session.root / "report" / "report.html").read_text()
    assert html.count("who is where") == 1 and '<h2 id="person1">person1</h2>' in html
    assert '<h2 id="person2">person2</h2><p>30 of 45 frames present.</p>' in html
    assert html.count("<h3>Worst frames per camera</h3>") == 2 and len(_images(html)) == 2 * 4 * 3
    assert "<h2>Association of the people</h2>" in html and "<td>&lt;b&gt;switches&lt;/b&gt;</td><td>0</td>" in html


def test_verdict_names_metric_threshold_and_setting(swapped):
    m = report.build(swapped, cfg=report.Config(overlay_videos=False, max_reprojection_px=0.5))
    assert not m["verdict"]["usable"]
    html = (swapped.root / "report" / "report.html").read_text()
    f = m["verdict"]["failed"][0]
    assert f["metric"] == "reprojection_px.median" and f["threshold"] == 0.5
    assert ("<li>median reprojection " in html and "&gt; 0.5 px (metric <code>reprojection_px.median</code>, "
            "threshold setting <code>report.max_reprojection_px</code>)</li>" in html)


def test_worst_frames_setting_is_checked():
    with pytest.raises(ValueError, match=r"worst_frames must be an integer ≥ 0, got -1"):
        report.Config(worst_frames=-1)


def test_long_takes_keep_the_page_small_and_the_spikes():
    from mocap.report.svg import envelope, lines

    v = np.random.default_rng(0).normal(5, 1, 36_000)  # ten minutes at 60 fps
    v[20_000] = 250.0  # one bad frame
    v[30_000:30_500] = np.nan
    out = lines({"cam01": v, "cam02": v + 1}, "t", "time (s)", "px", 1 / 60)
    assert len(out) < 120_000 and out.count("<polyline") == 4  # the gap breaks each line once
    xs, ys = envelope(v, 1000)
    assert len(xs) <= 1000 and ys[np.nanargmax(ys)] == 250.0 and xs[np.nanargmax(ys)] == 20_000
    assert np.all(np.diff(xs) > 0)


def test_ground_truth_of_several_people_is_matched_person_by_person(tmp_path):
    """The truth's person order is not the association's: each reconstructed person is scored against the
    true person it matches (person1 against truth 0 by index gave metres of 'error')."""
    from mocap.io.hdf5 import write_points3d
    from mocap.types import Points3D

    session, truth = two_person_session(tmp_path / "gt", frames=45)
    T = np.stack([truth[1], truth[0]], axis=1)  # stored the other way round
    F, P, J, _ = T.shape
    write_points3d(Points3D(T, np.zeros((F, P, J)), np.ones((F, P, J, 4), bool),
                            tuple(session.rig().names), "blazepose33", 30.0, {"stage": "groundtruth"}),
                   session.groundtruth_dir / "points3d.h5")
    m = report.build(session, cfg=report.Config(overlay_videos=False))
    gt = m["groundtruth"]
    assert [(p["name"], p["true_person"]) for p in gt["persons"]] == [("person1", 1), ("person2", 0)]
    assert gt["mpjpe_mm"] < 20 and all(p["mpjpe_mm"] < 20 for p in gt["persons"]), gt
    html = (session.root / "report" / "report.html").read_text()  # each person's own row on the page
    assert all(f"error against ground truth (MPJPE)</td><td>{p['mpjpe_mm']:.1f} mm" in html for p in gt["persons"])


def test_a_camera_poor_for_one_person_only_is_not_sent_to_its_calibration():
    """A camera's pose and timing are everyone's: flagged for one person ("calibration?") while at the other
    cameras' level for the other person, the hint names that person's detections in that view instead."""
    from body_synth import blazepose_keypoints, body_motion

    from mocap.report.cameras import camera_table
    from mocap.report.people import person_specific
    from mocap.synth import CorruptionSpec, RigSpec, corrupt, ring_rig
    from mocap.types import Keypoints2D, Points3D

    F, fps = 240, 60.0
    X = np.stack([blazepose_keypoints(body_motion(F, fps, seed=s)) + [0.9 * s - 0.45, 0, 0] for s in (0, 1)], 1)
    rig = ring_rig(RigSpec(n_cameras=4), X.reshape(-1, 3))
    uv = np.moveaxis(rig.project(X.reshape(F, -1, 3)), 0, 1).reshape(F, 4, 2, -1, 2)
    data = np.stack([corrupt(uv[:, :, p], rig, "blazepose33", CorruptionSpec(1.0, 0.0, 0.0, seed=p))[0][:, :, 0]
                     for p in (0, 1)], axis=2)  # (F, C, 2, J, 3)
    bias = data.copy()
    bias[:, 1, 0, :, 0] += 12.0  # cam02's detections of the first person 12 px off, steadily
    pts = Points3D(X, np.zeros(X.shape[:3]), np.ones(X.shape[:3] + (4,), bool), rig.names, "blazepose33", fps, {})
    for d, expected in ((bias, True), (data, False)):
        kp = Keypoints2D(d, rig.names, "blazepose33", fps)
        per = [{"cameras": camera_table(rig, kp, pts, p)} for p in (0, 1)]
        if not expected:
            assert not any(r["flagged"] for m in per for r in m["cameras"].values())
            continue
        row = per[0]["cameras"]["cam02"]
        assert row["flagged"] and row["hint"].startswith("calibration?"), row["hint"]
        person_specific(per)
        assert row["hint"].startswith("this person's detections in cam02, not the camera?"), row["hint"]
        assert not per[1]["cameras"]["cam02"]["flagged"]
    # the same camera off for both people: its calibration, as hinted
    both = data.copy()
    both[:, 1, :, :, 0] += 12.0
    kp = Keypoints2D(both, rig.names, "blazepose33", fps)
    per = [{"cameras": camera_table(rig, kp, pts, p)} for p in (0, 1)]
    person_specific(per)
    assert all(m["cameras"]["cam02"]["hint"].startswith("calibration?") for m in per), [
        m["cameras"]["cam02"]["hint"] for m in per]


def _in_person_order(kp, rig, truth) -> np.ndarray:
    """The detections with each person's in its own slot (the association's order)."""
    data = kp.data.copy()
    for f in range(len(data)):
        for c, cam in enumerate(rig.cameras):
            d = np.nanmean(np.linalg.norm(data[f, c, :, None, :, :2] - np.stack(
                [cam.project(truth[0][f]), cam.project(truth[1][f])]), axis=-1), axis=-1)  # (slot, person)
            if np.isfinite(d).all() and d[0, 0] + d[1, 1] > d[0, 1] + d[1, 0]:
                data[f, c] = data[f, c, ::-1]
            lone = np.flatnonzero(np.isfinite(d).any(axis=1))
            if lone.size == 1 and np.nanargmin(d[lone[0]]) != lone[0]:  # one detection, in the other's slot
                data[f, c] = data[f, c, ::-1]
    return data


def test_a_person_lost_for_good_while_a_camera_still_sees_it_is_missing_points(tmp_path):
    """The association lost a person 20 frames before the end while a camera still detected it (its detections
    kept in its slot, never in 3D again): the person was judged only up to its last frame in 3D ("98 %
    reconstructed", PASS, on a take where it was lost for 40 %); now up to its last detection."""
    import warnings

    from mocap.io.hdf5 import read_keypoints2d, read_points3d
    from mocap.report.metrics import compute

    session, truth = two_person_session(tmp_path / "lost", frames=90)
    pts = read_points3d(session.points3d("triangulated"))
    xyz = pts.xyz.copy()
    xyz[70:, 1] = np.nan
    pts = type(pts)(xyz, pts.reproj_err, pts.views, pts.camera_names, pts.keypoint_set, pts.fps, pts.info)
    kp, rig = read_keypoints2d(session.root / "pose2d.h5"), session.rig()
    data = _in_person_order(kp, rig, truth)
    data[70:, 1:, 1] = np.nan  # only the first camera's detections of it are left
    span = 90 - SECOND_ENTERS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rec = compute(rig, type(kp)(data, kp.camera_names, kp.keypoint_set, kp.fps), pts, 1)["reconstructed"]
    assert rec["frames_all_joints"] == pytest.approx((span - 20) / span, abs=0.02), rec


def test_one_cameras_detections_before_a_person_entered_are_not_missing_points(tmp_path):
    """Several people: a person's slot holding one camera's detections for 10 frames before it entered (something
    else's, taken by the walk back over frames seen by one view) counted those frames as its points missing (a
    16-camera take's person read 97 % reconstructed, all its true frames in 3D); a person is judged from its first
    frame in 3D or in two cameras' detections, as one performer is."""
    import warnings

    from mocap.io.hdf5 import read_keypoints2d, read_points3d
    from mocap.report.metrics import compute

    session, truth = two_person_session(tmp_path / "before", frames=90)
    pts = read_points3d(session.points3d("triangulated"))
    kp, rig = read_keypoints2d(session.root / "pose2d.h5"), session.rig()
    early = slice(SECOND_ENTERS - 10, SECOND_ENTERS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        data = _in_person_order(kp, rig, truth)
        data[early, 0, 1] = data[SECOND_ENTERS, 0, 1]  # camera 1 alone, the person's first detection held still
        rec = compute(rig, type(kp)(data, kp.camera_names, kp.keypoint_set, kp.fps), pts, 1)["reconstructed"]
        assert rec["frames_all_joints"] == pytest.approx(1.0), rec
        assert rec["first_frame"] == SECOND_ENTERS, rec
        data[early, 1, 1] = data[SECOND_ENTERS, 1, 1]  # two cameras' detections there: the person's frames
        rec = compute(rig, type(kp)(data, kp.camera_names, kp.keypoint_set, kp.fps), pts, 1)["reconstructed"]
    span = 90 - SECOND_ENTERS + 10
    assert rec["first_frame"] == SECOND_ENTERS - 10 and rec["frames_all_joints"] == pytest.approx((span - 10) / span)


def test_a_person_away_for_a_while_is_not_missing_points(tmp_path):
    """One of several people seen nowhere for a second in the middle of the take (out of the volume, back in):
    those frames are away, not points missing (they failed a perfect person's verdict); frames without 3D while
    the cameras still detect the person, and a few frames lost, count as missing."""
    import warnings

    from mocap.io.hdf5 import read_keypoints2d, read_points3d
    from mocap.report.metrics import compute
    from mocap.stages import triangulate

    session, truth = two_person_session(tmp_path / "away", frames=90)
    pts = read_points3d(session.points3d("triangulated"))
    xyz = pts.xyz.copy()
    xyz[40:70, 1] = np.nan  # no 3D for a second (30 frames at 30 fps) ...
    xyz[80:82, 1] = np.nan  # ... and for two frames
    pts = type(pts)(xyz, pts.reproj_err, pts.views, pts.camera_names, pts.keypoint_set, pts.fps, pts.info)
    kp, rig = read_keypoints2d(session.root / "pose2d.h5"), session.rig()
    data = _in_person_order(kp, rig, truth)
    span = 90 - SECOND_ENTERS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rec = compute(rig, type(kp)(data, kp.camera_names, kp.keypoint_set, kp.fps), pts, 1)["reconstructed"]
        assert "frames_away" not in rec and rec["frames_all_joints"] == pytest.approx((span - 32) / span), rec
        data[40:70, :, 1] = np.nan  # ... and the cameras did not detect it then: away
        rec = compute(rig, type(kp)(data, kp.camera_names, kp.keypoint_set, kp.fps), pts, 1)["reconstructed"]
    assert rec["frames_away"] == 30 and rec["frames_all_joints"] == pytest.approx((span - 32) / (span - 30)), rec
    triangulate.write_outputs(pts, session.points3d("triangulated"))
    report.build(session, cfg=report.Config(overlay_videos=False))
    assert "frames away" in (session.root / "report" / "report.html").read_text()


def test_ground_truth_is_scored_when_the_first_person_is_a_fragment_of_nobody(tmp_path):
    """A fragment (person1, a few frames where nobody truly is) matches no true person: the ground-truth section
    was dropped whole; now its figures are the first matched person's, and each matched person is listed."""
    from mocap.io.hdf5 import write_points3d
    from mocap.report.truth import groundtruth as _groundtruth
    from mocap.types import Points3D

    session, truth = two_person_session(tmp_path / "frag", frames=45)
    T = np.stack([truth[0], truth[1]], axis=1)
    write_points3d(Points3D(T, np.zeros(T.shape[:3]), np.ones(T.shape[:3] + (4,), bool), tuple(session.rig().names),
                            "blazepose33", 30.0, {"stage": "groundtruth"}), session.groundtruth_dir / "points3d.h5")
    frag = np.full_like(T[:, :1], np.nan)
    frag[:5] = T[:5, :1] + np.array([9.0, 9.0, 0.0])  # 5 frames, 9 m from anyone
    X = np.concatenate([frag, T[:, ::-1] + 0.004], axis=1)  # then both people, in the other order, 4-7 mm off
    pts = Points3D(X, np.zeros(X.shape[:3]), np.ones(X.shape[:3] + (4,), bool), tuple(session.rig().names),
                   "blazepose33", 30.0)
    gt = _groundtruth(session, pts)
    assert gt is not None and gt["headline_person"] == "person2", gt
    assert [(p["name"], p["true_person"]) for p in gt["persons"]] == [("person2", 1), ("person3", 0)]
    assert 5 < gt["mpjpe_mm"] < 8 and all(5 < p["mpjpe_mm"] < 8 for p in gt["persons"]), gt


def test_a_person_with_no_3d_point_fails_the_take(tmp_path):
    """A person whose reconstruction failed (refine leaves it empty with several people) was "absent" with no failed
    check: metrics.json's verdict PASS while that person's read unusable."""
    session, _ = two_person_session(tmp_path / "a", frames=45)
    cfg = report.Config(overlay_videos=False, worst_frames=0, max_bone_length_cv=0.2)
    assert report.build(session, cfg=cfg)["verdict"]["usable"]
    from mocap.io.hdf5 import read_points3d

    pts = read_points3d(session.points3d("triangulated"))
    xyz, views = pts.xyz.copy(), pts.views.copy()
    xyz[:, 1], views[:, 1] = np.nan, False
    triangulate.write_outputs(dataclasses.replace(pts, xyz=xyz, views=views), session.points3d("triangulated"))
    m = report.build(session, cfg=cfg)
    assert [p["verdict"]["usable"] for p in m["persons"]] == [True, False]
    assert not m["verdict"]["usable"] and "person2: no 3D point in any frame" in m["verdict"]["summary"]
    assert "PASS: looks usable" not in (session.root / "report" / "report.html").read_text()


def test_every_persons_flagged_cameras_are_logged(caplog):
    """The report's warnings named the first person's flagged cameras only (the run summary listed every person)."""
    from mocap.report import log_cameras

    ok = {"flagged": False, "hint": None}
    bad = {"flagged": True, "flag": {"stat": "median_px", "value": 23.6, "threshold": 23.5, "reference": 9.4,
                                     "ratio": 2.5}, "hint": "calibration?"}
    behind = {"flagged": False, "behind": True, "hint": "the person is behind this camera"}
    metrics = {"cameras": {"cam01": ok, "cam03": ok},
               "persons": [{"name": "person1", "cameras": {"cam01": ok, "cam03": ok}},
                           {"name": "person2", "cameras": {"cam01": behind, "cam03": bad}}]}
    with caplog.at_level("WARNING", logger="mocap.report"):
        log_cameras(metrics)
    assert "camera flagged: person2: cam03: median 23.6 px > 2.5 × 9.4 px" in caplog.text
    assert "camera cam01 (person2): the person is behind this camera" in caplog.text and "person1" not in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="mocap.report"):
        log_cameras({"cameras": {"cam03": bad}})
    assert "camera flagged: cam03: median 23.6 px" in caplog.text
