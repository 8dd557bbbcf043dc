"""Fault reporting: a camera far worse than the others is flagged (metrics.json, report.html, the
``mocap run`` summary, the verdict) with a hint read from its error's time profile; refine is not
``usable`` when its RMS is far above what the detections' noise explains (mixed identities)."""

import json
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from body_synth import blazepose_keypoints, body_motion

from mocap import report
from mocap.keypoint_sets import get_keypoint_set
from mocap.report.cameras import frame_runs
from mocap.report.verdict import describe, verdict
from mocap.session import Session
from mocap.stages import refine, triangulate
from mocap.synth import CorruptionSpec, RigSpec, corrupt, ring_rig
from mocap.synth.groundtruth import SyntheticTake, write_session
from mocap.types import Keypoints2D, Rig

FRAMES, FPS = 120, 30.0


def _observe(kind: str, frames: int = FRAMES):
    """A 4-camera take with one fault in one camera: (rig the session is given, keypoints, truth)."""
    A = blazepose_keypoints(body_motion(frames, FPS))
    B = blazepose_keypoints(body_motion(frames, FPS, seed=1)) + np.array([1.2, 0.6, 0.0])  # a second person
    rig = ring_rig(RigSpec(n_cameras=4, size=(1280, 720)), np.concatenate([A, B]).reshape(-1, 3))
    uv = np.moveaxis(rig.project(A), 0, 1)  # (F, C, J, 2)
    if kind == "sync":  # cam04 runs 4 frames ahead
        uv[:, 3] = rig.cameras[3].project(np.concatenate([A[4:], np.repeat(A[-1:], 4, axis=0)]))
    elif kind == "person":  # cam02 follows the other person in frames 30-59
        uv[30:60, 1] = rig.cameras[1].project(B[30:60])
    elif kind == "near":  # cam02 follows another person standing close to the performer, throughout
        C = blazepose_keypoints(body_motion(frames, FPS, seed=2)) + np.array([0.3, 0.25, 0.0])
        uv[:, 1] = rig.cameras[1].project(C)
    elif kind == "mixed":  # cam03 and cam04 follow the other person throughout: identities mixed
        uv[:, 2:] = np.moveaxis(rig.project(B), 0, 1)[:, 2:]
    data, masks = corrupt(uv, rig, "blazepose33", CorruptionSpec(1.0, 0.02, 0.05, seed=0))
    if kind == "unseen":  # cam04 never detects the performer (unplugged, the wrong video)
        data[:, 3] = np.nan
    if kind == "swaps":  # cam02 has left and right exchanged in frames 40-69
        data[40:70, 1, 0] = data[40:70, 1, 0][:, get_keypoint_set("blazepose33").flip_permutation]
    given = rig
    if kind == "behind":  # cam02's pose turned 180° about its own vertical axis: the same centre, facing away
        cam = rig.cameras[1]
        pose = cam.cam_from_world.copy()
        pose[:3] = np.diag([-1.0, 1.0, -1.0]) @ pose[:3]
        given = Rig(tuple(cam.with_pose(pose) if i == 1 else c for i, c in enumerate(rig.cameras)))
    if kind == "calibration":  # cam03's pose is off by 3°
        cam = rig.cameras[2]
        pose = cam.cam_from_world.copy()
        pose[:3, :3] = cv2.Rodrigues(np.radians(3.0) * np.array([0.3, 1.0, 0.2]) / 1.063)[0] @ pose[:3, :3]
        given = Rig(tuple(cam.with_pose(pose) if i == 2 else c for i, c in enumerate(rig.cameras)))
    return given, Keypoints2D(data, rig.names, "blazepose33", FPS), A, masks


def _report(root, kind: str, info: dict | None = None) -> tuple[Session, dict]:
    """The report of a take whose 2D faults were not repaired (``info``: what the triangulated points say)."""
    rig, kp, truth, masks = _observe(kind)
    session = Session(write_session(SyntheticTake(rig, kp, truth, masks), root / kind, json_2d=False))
    tri = triangulate.run(rig, kp)
    tri.info["config"] = {**tri.info.get("config", {}), "repair_swaps": False}  # the report reads the 2D as given
    tri.info.update(info or {})
    triangulate.write_outputs(tri, session.points3d("triangulated"))
    points, _ = refine.run(rig, kp, tri, refine.Config(swaps=False))  # nor repaired by refine
    triangulate.write_outputs(points, session.points3d("refined"))
    return session, report.build(session, cfg=report.Config(overlay_videos=False))


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    cache = {}

    def get(kind):
        if kind not in cache:
            cache[kind] = _report(root, kind, {"swaps_repaired": {"cam01": 0, "cam02": 7}} if kind == "swaps" else None)
        return cache[kind]
    return get


def _flagged(m: dict) -> dict[str, dict]:
    return {k: c for k, c in m["cameras"].items() if c["flagged"]}


def test_a_clean_take_flags_no_camera(reports):
    session, m = reports("clean")
    assert list(m["cameras"]) == ["cam01", "cam02", "cam03", "cam04"]
    assert _flagged(m) == {} and m["verdict"]["usable"], m["verdict"]
    for c in m["cameras"].values():
        assert set(c) >= {"median_px", "p95_px", "detections", "kept_share", "sync_offset_frames", "swaps_repaired",
                          "flagged", "hint"}
        assert c["median_px"] < 1.5 and c["p95_px"] < 5 and c["detections"] > 3000 and c["kept_share"] > 0.9
        assert c["swaps_repaired"] is None and c["hint"] is None and c["sync_offset_frames"] == 0.0
    on_disk = json.loads((session.root / "report" / "metrics.json").read_text())
    assert on_disk["cameras"]["cam01"]["flagged"] is False
    html = (session.root / "report" / "report.html").read_text()
    assert "<h2>Cameras</h2>" in html and "FLAGGED" not in html and "<td>—</td>" in html  # no swap repair ran


def test_a_camera_with_a_wrong_pose_is_flagged_with_a_calibration_hint(reports):
    session, m = reports("calibration")
    assert list(_flagged(m)) == ["cam03"], {k: (c["median_px"], c["p95_px"]) for k, c in m["cameras"].items()}
    cam = m["cameras"]["cam03"]
    assert cam["flag"]["stat"] == "median_px" and cam["median_px"] > 2.5 * cam["flag"]["reference"]
    assert cam["hint"].startswith("calibration?") and cam["profile"]["bad_frames_share"] >= 0.6  # 0.72 measured
    failed = [f for f in m["verdict"]["failed"] if f["metric"].startswith("cameras.")]
    assert [f["metric"] for f in failed] == ["cameras.cam03.median_px"] and not m["verdict"]["usable"]
    assert "camera cam03 median reprojection" in m["verdict"]["summary"]
    assert m["reprojection_px"]["median"] < 8  # the healthy overall median that must not hide cam03
    html = (session.root / "report" / "report.html").read_text()
    assert "FLAGGED: cam03: median" in html and "calibration?" in html and "FAIL: camera cam03" in html


def test_a_burst_of_left_right_swaps_is_flagged_with_a_swap_hint(reports):
    session, m = reports("swaps")
    assert list(_flagged(m)) == ["cam02"]
    cam = m["cameras"]["cam02"]
    assert cam["flag"]["stat"] == "p95_px" and cam["hint"].startswith("left/right swaps?")
    assert cam["profile"]["bad_frames"] == "40–69", cam["profile"]
    assert cam["swaps_repaired"] == 7 and m["cameras"]["cam01"]["swaps_repaired"] == 0
    assert m["cameras"]["cam03"]["swaps_repaired"] is None
    html = (session.root / "report" / "report.html").read_text()
    assert "<td>7</td>" in html and "left/right swaps?" in html


def test_a_time_offset_gets_a_sync_hint(reports):
    _, m = reports("sync")
    assert list(_flagged(m)) == ["cam04"]
    assert m["cameras"]["cam04"]["hint"].startswith("sync?"), m["cameras"]["cam04"]["profile"]


def test_another_person_in_a_burst_gets_a_wrong_person_hint(reports):
    _, m = reports("person")
    assert list(_flagged(m)) == ["cam02"]
    cam = m["cameras"]["cam02"]
    assert cam["hint"].startswith("wrong person?") and cam["profile"]["bad_frames"] == "30–59", cam["profile"]


def test_a_burst_in_a_take_where_every_person_was_looked_for_is_called_failed_detections(reports, tmp_path):
    """The report stage passes detect's ``persons``: with ``auto`` or a number above 1 every person was looked for
    (the real demo's JPEG-3 camera read "--set detect.persons=auto, the default"), with 1 the advice stays."""
    import dataclasses
    import shutil
    from pathlib import Path

    from mocap.settings import Settings
    from mocap.stages import report as report_stage

    session, _ = reports("person")
    copy = Session(Path(shutil.copytree(session.root, tmp_path / "person")))
    for persons, start in (("auto", "detections failed?"), (3, "detections failed?"), (1, "wrong person?")):
        settings = Settings()
        settings = dataclasses.replace(settings, detect=dataclasses.replace(settings.detect, persons=persons),
                                       report=dataclasses.replace(settings.report, overlay_videos=False))
        cam = report_stage.main(copy, settings)["cameras"]["cam02"]
        assert cam["flagged"] and cam["hint"].startswith(start), (persons, cam["hint"])
        assert ("--set detect.persons=auto" in cam["hint"]) == (persons == 1), cam["hint"]
        assert persons == 1 or "poor image there (dark, blurred, heavily compressed)" in cam["hint"]


def test_another_person_near_the_performer_throughout_is_not_called_a_calibration_fault(reports):
    _, m = reports("near")
    assert list(_flagged(m)) == ["cam02"], {k: (c["median_px"], c["p95_px"]) for k, c in m["cameras"].items()}
    cam = m["cameras"]["cam02"]
    assert cam["profile"]["bad_error_to_body_size"] < 0.25, cam["profile"]  # the old size rule alone said calibration
    assert cam["hint"].startswith("wrong person?") and "--set detect.persons=auto" in cam["hint"], cam["profile"]
    _, cal = reports("calibration")  # a camera pose error keeps the body's size and shape
    p = cal["cameras"]["cam03"]["profile"]
    assert p["bad_scale_change"] < 0.05 and p["bad_shape_residual"] < 0.1, p


def test_refine_is_not_usable_when_identities_are_mixed():
    for kind, usable in (("clean", True), ("mixed", False)):
        rig, kp, _, _ = _observe(kind, frames=60)
        _, (s,) = refine.run(rig, kp, triangulate.run(rig, kp))
        assert s.usable is usable, s
    assert s.rms_px > 20 and "detection noise" in s.message and "mixed identities" in s.message


def test_the_verdict_names_a_flagged_camera_whatever_the_median():
    row = {"flagged": True, "flag": {"stat": "median_px", "value": 23.6, "threshold": 23.5, "reference": 9.4,
                                     "ratio": 2.5}}
    m = {"reprojection_px": {"median": 5.0}, "reprojection_mm": {"median": 9.0},
         "bone_length_cv": {"mean": 0.01}, "reconstructed": {"points": 1.0},
         "cameras": {"cam01": {"flagged": False}, "cam03": row}}
    v = verdict(m, 30, 0.05, 0.9)
    assert not v["usable"] and [f["metric"] for f in v["failed"]] == ["cameras.cam03.median_px"]
    assert describe(v["failed"][0]) == \
        "camera cam03 median reprojection 23.6 px > 23.5 px (2.5 × the other cameras' 9.4 px)"
    assert v["summary"] == "FAIL: " + describe(v["failed"][0])


def test_two_cameras_videos_exchanged_fail_the_verdict_flagged_or_not():
    """The report names two cameras whose videos were exchanged (``swapped_with``); the pair need not be flagged
    (mocap.report.exchanged names it from the 2D when no camera stands out), and the take read PASS on a 3D made
    from two wrong views. Once per pair."""
    m = {"reprojection_px": {"median": 5.0}, "reprojection_mm": {"median": 9.0},
         "bone_length_cv": {"mean": 0.01}, "reconstructed": {"points": 1.0},
         "cameras": {"cam01": {"flagged": False}, "cam02": {"flagged": False, "swapped_with": "cam05"},
                     "cam05": {"flagged": False, "swapped_with": "cam02"}}}
    v = verdict(m, 30, 0.05, 0.9)
    assert not v["usable"] and [f["metric"] for f in v["failed"]] == ["cameras.cam02.swapped_with"]
    assert v["summary"] == "FAIL: cameras cam02 and cam05: their videos exchanged? (rename the two and run again)"


def test_frame_runs():
    assert frame_runs(np.array([3, 4, 5, 9])) == "3–5, 9"
    assert frame_runs(np.array([0, 2, 4, 6, 7, 8, 9])) == "0, 2, 6–9, …"
    assert frame_runs(np.array([], int)) == ""


def test_mocap_run_prints_the_flagged_camera_after_the_quality_line(monkeypatch, capsys):
    from mocap import pipeline
    from mocap.cli.stages import cmd_run

    row = {"median_px": 23.6, "flagged": True, "hint": "calibration? check it",
           "flag": {"stat": "median_px", "value": 23.6, "threshold": 23.5, "reference": 9.4, "ratio": 2.5}}
    metrics = {"reprojection_px": {"median": 9.1}, "bone_length_cv": {"mean": 0.013},
               "reconstructed": {"frames_all_joints": 1.0},
               "cameras": {"cam01": {"median_px": 9.4, "flagged": False}, "cam03": row},
               "verdict": {"failed": [{}], "summary": "FAIL: camera cam03 median reprojection 23.6 px > 23.5 px"}}
    result = SimpleNamespace(status={"report": "ran"}, timings={"report": 0.1}, log_file="log", outputs={},
                             metrics=metrics, why={"report": "no earlier run"})  # a RunResult's fields
    monkeypatch.setattr(pipeline, "run", lambda *a, **k: result)
    assert cmd_run(SimpleNamespace(session="s", config=None, set=[], from_stage=None, command_line="mocap run s")) == 0
    out = capsys.readouterr().out.splitlines()
    quality = next(i for i, line in enumerate(out) if line.startswith("quality:"))
    assert "(cam03 median 23.6 px: FLAGGED)" in out[quality]
    assert out[quality + 1] == "camera flagged: cam03: median 23.6 px > 2.5 × 9.4 px (the other cameras' median)"
    assert out[quality + 2] == "  hint: calibration? check it" and out[quality + 3].startswith("verdict: FAIL")


def test_mocap_run_prints_one_quality_line_per_person(monkeypatch, capsys):
    from mocap import pipeline
    from mocap.cli.stages import cmd_run

    bad = {"median_px": 30.0, "flagged": True, "hint": "wrong person? mixed",
           "flag": {"stat": "p95_px", "value": 354.0, "threshold": 321.0, "reference": 64.2, "ratio": 5}}

    def person(name, median, present, cams):
        return {"name": name, "frames_present": present, "frames": 100, "reprojection_px": {"median": median},
                "bone_length_cv": {"mean": 0.01}, "reconstructed": {"frames_all_joints": present / 100},
                "cameras": cams}
    people = [person("person1", 17.1, 100, {"cam01": {"flagged": False}, "cam03": bad}),
              person("person2", 5.2, 60, {"cam01": {"flagged": False}})]
    metrics = {**people[0], "persons": people, "verdict": {"failed": [{}], "summary": "FAIL: person1: ..."}}
    result = SimpleNamespace(status={"report": "ran"}, timings={"report": 0.1}, log_file="log", outputs={},
                             metrics=metrics, why={"report": "no earlier run"})  # a RunResult's fields
    monkeypatch.setattr(pipeline, "run", lambda *a, **k: result)
    assert cmd_run(SimpleNamespace(session="s", config=None, set=[], from_stage=None, command_line="mocap run s")) == 0
    out = [line for line in capsys.readouterr().out.splitlines() if line.startswith(("quality", "camera", "  hint"))]
    assert out[0].startswith("quality: person1 (100 of 100 frames): reprojection median 17.10 px (cam03 P95 354.0")
    assert out[1].startswith("camera flagged: person1: cam03: P95 354 px") and out[2] == "  hint: wrong person? mixed"
    assert out[3].startswith("quality: person2 (60 of 100 frames): reprojection median 5.20 px, ") and len(out) == 4


def test_the_camera_table_escapes_names_and_hints():
    from mocap.report import _camera_rows

    evil = "<script>alert(1)</script>"
    row = {"median_px": 23.6, "p95_px": float("nan"), "detections": 10, "kept_share": 0.5, "sync_offset_frames": 0.0,
           "swaps_repaired": None, "ratio_to_others": 2.6, "flagged": True, "hint": "wrong person? <b>",
           "flag": {"stat": "median_px", "value": 23.6, "threshold": 23.5, "reference": 9.4, "ratio": 2.5}}
    html = _camera_rows({evil: row})
    assert "<script" not in html and "<b>" not in html and "&lt;script&gt;" in html
    assert html.startswith("<tr class=bad><td>&lt;script&gt;") and "<td>—</td>" in html and "2.60×" in html


def test_the_wrong_person_hint_suggests_settings_mocap_run_accepts():
    """The hint is printed after ``mocap run``: what it suggests must parse there (``--persons`` is only the
    detect command's flag)."""
    import re
    import shlex

    from mocap.cli import build_parser
    from mocap.report.cameras import hint

    profile = {"bad_frames_share": 0.3, "bad_frames": "30–59", "flip_fits_better_share": 0.0,
               "bad_error_to_body_size": 0.1, "bad_scale_change": 0.4, "bad_shape_residual": 0.05,
               "speed_correlation": 0.0}
    text = hint(profile)
    assert text.startswith("wrong person?") and "factor of 1.49" in text
    suggested = re.search(r"mocap run with (--\S+ \S+?),", text).group(1)
    args = build_parser().parse_args(["run", "S", *shlex.split(suggested)])
    assert args.set == ["detect.persons=auto"]
    assert "identities mixed" in hint(profile, several=True)


def test_a_camera_that_saw_no_one_is_said_not_called_ok(reports, tmp_path):
    """A rig camera with no detection in the whole take: the others carry the 3D (no flag, the verdict stands)
    but the table, the log and metrics.json say it saw no one and what to check; the swap repair counts no
    repair in it."""
    from mocap.geometry.swaps_repair import repair_keypoints

    session, m = reports("unseen")
    cam = m["cameras"]["cam04"]
    assert cam["detections"] == 0 and cam["unseen"] and not cam["flagged"], cam
    assert "unplugged" in cam["hint"] and not any(m["cameras"][c]["unseen"] for c in ("cam01", "cam02", "cam03"))
    assert m["verdict"]["usable"], m["verdict"]
    html = (session.root / "report" / "report.html").read_text()
    assert "saw no one: no detection of this person" in html
    rig, kp, _, _ = _observe("unseen")
    _, info = repair_keypoints(rig, kp, get_keypoint_set("blazepose33"))
    assert info["swaps_repaired"]["cam04"] == 0 and not any(c == 3 for _, c, _, _ in info["swap_repairs"]["views"])


def _exchanged_report(tmp_path, cameras: int, a: int, b: int) -> tuple[Rig, dict]:
    """(the true rig, the report) of a ring of ``cameras`` whose rig has cameras a's and b's poses exchanged (their
    videos named the other way round), triangulated and refined through it."""
    A = blazepose_keypoints(body_motion(FRAMES, FPS))
    rig = ring_rig(RigSpec(n_cameras=cameras, size=(1280, 720)), A.reshape(-1, 3))
    data, masks = corrupt(np.moveaxis(rig.project(A), 0, 1), rig, "blazepose33", CorruptionSpec(1.0, 0.02, 0.05,
                                                                                                  seed=0))
    kp = Keypoints2D(data, rig.names, "blazepose33", FPS)
    c = list(rig.cameras)
    c[a], c[b] = c[a].with_pose(rig.cameras[b].cam_from_world), c[b].with_pose(rig.cameras[a].cam_from_world)
    given = Rig(tuple(c))
    session = Session(write_session(SyntheticTake(given, kp, A, masks), tmp_path / "exchanged", json_2d=False))
    tri = triangulate.run(given, kp)
    triangulate.write_outputs(tri, session.points3d("triangulated"))
    points, _ = refine.run(given, kp, tri)
    triangulate.write_outputs(points, session.points3d("refined"))
    return rig, report.build(session, cfg=report.Config(overlay_videos=False))


def test_two_cameras_given_each_others_video_are_said_to_be_swapped(tmp_path):
    """cam02's and cam04's poses exchanged in the rig (their videos named the other way round): both flagged, and
    the hint names the swap (each one's detections fit the other's pose), not "wrong person?". The left/right
    repair, run through the wrong poses, mirrors many of their views: the check takes each frame's better of
    the detections and their mirror."""
    m = _exchanged_report(tmp_path, 6, 1, 3)[1]
    assert list(_flagged(m)) == ["cam02", "cam04"]
    assert m["cameras"]["cam02"]["swapped_with"] == "cam04" and m["cameras"]["cam04"]["swapped_with"] == "cam02"
    assert m["cameras"]["cam02"]["hint"].startswith("videos swapped? cam02's detections fit cam04's pose")
    assert "swapped_with" not in m["cameras"]["cam01"]


def test_two_cameras_side_by_side_with_bursts_of_another_person_are_not_called_swapped():
    """Two flagged cameras 1° apart about the performer see nearly alike: each one's detections fit the other's
    pose about as well as their own. That is no swap: their own hint ("wrong person?") stays."""
    from conftest import toy_motion

    from mocap.geometry.rotations import axis_angle_to_matrix
    from mocap.report.cameras import camera_table
    from mocap.types import Points3D

    X = toy_motion(300)
    rig = ring_rig(RigSpec(n_cameras=6), X)
    c = rig.cameras[1]
    Rz = axis_angle_to_matrix(np.array([0.0, 0.0, np.radians(1.0)]))  # cam03 put 1° round from cam02
    o = np.array([*np.nanmean(X.reshape(-1, 3), axis=0)[:2], 0.0])
    T = np.eye(4)
    T[:3, :3] = c.R @ Rz.T
    T[:3, 3] = -T[:3, :3] @ (Rz @ (c.center - o) + o)
    rig = Rig(tuple(k.with_pose(T) if i == 2 else k for i, k in enumerate(rig.cameras)))
    data, _ = corrupt(np.moveaxis(rig.project(X), 0, 1), rig, "coco17", CorruptionSpec(1.5, 0.0, 0.0, seed=0))
    rng = np.random.default_rng(1)
    for cam in (1, 2):  # another person's detection in bursts (a fifth of the frames)
        for s in rng.choice(290, 6, replace=False):
            data[s:s + 10, cam, 0, :, :2] += 150.0
    kp = Keypoints2D(data, rig.names, "coco17", 60.0)
    J = X.shape[1]
    pts = Points3D(X[:, None], np.zeros((300, 1, J)), np.ones((300, 1, J, 6), bool), rig.names, "coco17", 60.0)
    rows = camera_table(rig, kp, pts)
    for name in ("cam02", "cam03"):
        assert rows[name]["flagged"] and "swapped_with" not in rows[name], rows[name]["hint"]
        assert rows[name]["hint"].startswith("wrong person?")


@pytest.mark.parametrize("cameras, a, b", [(3, 0, 1), (4, 1, 2)])
def test_videos_exchanged_are_told_from_the_2d_when_the_3d_fit_does_not(tmp_path, cameras, a, b):
    """Two cameras' poses exchanged in the rig: with three cameras every camera is off about as much (none was
    flagged, the verdict failed on millimetres with no word of why; a real take flagged the third camera
    "calibration?"): the epipolar check of every camera pair (mocap.report.exchanged) names the exchange; with four
    the fit through the 3D names it as before."""
    rig, m = _exchanged_report(tmp_path, cameras, a, b)
    assert m["verdict"]["failed"]
    na, nb = rig.names[a], rig.names[b]
    assert m["cameras"][na]["swapped_with"] == nb and m["cameras"][nb]["swapped_with"] == na
    for name, row in m["cameras"].items():  # every camera flagged or exchanged is told of the exchange
        if row["flagged"] or name in (na, nb):
            assert row["hint"].startswith("videos swapped? ") and na in row["hint"] and nb in row["hint"], row["hint"]
    if cameras == 3:  # no camera stands out: the 2D check runs on the take's epipolar error
        assert f"with {na}'s and {nb}'s detections exchanged every camera pair agrees" in m["cameras"][na]["hint"]


def test_a_camera_facing_away_from_the_person_fails_the_take(reports):
    """A pose turned the wrong way puts the person behind the camera: every reprojection there is NaN, and the row
    read "ok" with its 3,000 detections, the take PASS."""
    session, m = reports("behind")
    cam = m["cameras"]["cam02"]
    assert cam["behind"] and cam["detections"] > 2000 and np.isnan(cam["median_px"]), cam
    assert not m["verdict"]["usable"] and "camera cam02: the person is behind it" in m["verdict"]["summary"]
    assert not any(c["behind"] for k, c in m["cameras"].items() if k != "cam02")
    html = (session.root / "report" / "report.html").read_text()
    assert "the person is behind this camera in every frame" in html and "PASS" not in html.split("<h2>")[0]
