"""A camera whose footage is mirrored (a webcam's mirrored preview) or upside down (mounted upside down, no
rotation tag) is flagged, and its hint says so instead of "wrong person?" (mocap.report.cameras)."""

import numpy as np
import pytest
from body_synth import blazepose_keypoints, body_motion

from mocap.keypoint_sets import get_keypoint_set
from mocap.report.cameras import camera_table
from mocap.stages import refine, triangulate
from mocap.synth import CorruptionSpec, RigSpec, corrupt, ring_rig
from mocap.types import Keypoints2D

FRAMES, FPS, SIZE = 120, 30.0, (1280, 720)


def _table(turn: str | None, cam: int = 2, copy_of: int | None = None):
    """Camera table of a 4-camera take (3D triangulated and refined from the 2D as given) with camera ``cam``'s
    detections mirrored left-right ("x"), top-bottom ("y") or turned 180° ("xy")."""
    A = blazepose_keypoints(body_motion(FRAMES, FPS))
    rig = ring_rig(RigSpec(n_cameras=4, size=SIZE), A.reshape(-1, 3))
    data, _ = corrupt(np.moveaxis(rig.project(A), 0, 1), rig, "blazepose33", CorruptionSpec(1.0, 0.02, 0.05, seed=0))
    if turn:
        w, h = SIZE
        d = data[:, cam, 0]
        if "x" in turn:
            d[..., 0] = w - 1 - d[..., 0]
        if "y" in turn:
            d[..., 1] = h - 1 - d[..., 1]
        if turn in ("x", "y"):  # a mirror image shows the left side where the right was: the detector says so
            d = d[:, get_keypoint_set("blazepose33").flip_permutation]
        data[:, cam, 0] = d
    if copy_of is not None:  # camera ``cam``'s video is a copy of camera ``copy_of``'s
        data[:, cam] = data[:, copy_of]
    kp = Keypoints2D(data, rig.names, "blazepose33", FPS)
    tri = triangulate.run(rig, kp, triangulate.Config(repair_swaps=False))
    points, _ = refine.run(rig, kp, tri, refine.Config(swaps=False))
    return camera_table(rig, kp, points)


@pytest.mark.parametrize("turn, what", [("x", "mirrored left-right"), ("xy", "upside down (turned 180°)"),
                                        ("y", "mirrored top-bottom")])
def test_turned_footage_is_named(turn, what):
    rows = _table(turn)
    row = rows["cam03"]
    assert row["flagged"] and row["turned"] == what, (row["hint"], row.get("profile"))
    assert row["hint"].startswith(f"footage {what}? cam03's detections"), row["hint"]
    assert "flip the video back" in row["hint"]
    assert not any(r["flagged"] for n, r in rows.items() if n != "cam03")


def test_footage_as_filmed_is_not_called_turned():
    rows = _table(None)
    assert not any(r["flagged"] or r.get("turned") for r in rows.values())


def test_a_video_no_camera_uses_is_said_in_the_summary_and_the_report(tmp_path, monkeypatch, capsys):
    """A video whose name is no camera of the rig was only logged once, at the start: the 3-camera result then
    read PASS with nothing said. The report's metrics (and page) and the ``mocap run`` summary name it."""
    from types import SimpleNamespace

    from mocap import pipeline
    from mocap.cli.stages import cmd_run
    from mocap.io.video import unused_videos

    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("cam01.mp4", "cam02.MOV", "cam04.mp4", "notes.txt"):
        (videos / name).write_bytes(b"")
    assert unused_videos(videos, ("cam01", "cam02", "cam03")) == ["cam04.mp4"]
    assert unused_videos(tmp_path / "none", ("cam01",)) == []
    metrics = {"reprojection_px": {"median": 6.2}, "bone_length_cv": {"mean": 0.014},
               "reconstructed": {"frames_all_joints": 1.0}, "cameras": {}, "videos_not_used": ["cam04.mp4"],
               "verdict": {"failed": [], "summary": "PASS"}}
    result = SimpleNamespace(status={"report": "ran"}, timings={"report": 0.1}, log_file="log", outputs={},
                             metrics=metrics, why={"report": "no earlier run"})
    monkeypatch.setattr(pipeline, "run", lambda *a, **k: result)
    assert cmd_run(SimpleNamespace(session="s", config=None, set=[], from_stage=None, command_line="mocap run s")) == 0
    out = capsys.readouterr().out
    assert "videos not used: cam04.mp4: no camera of that name in the rig" in out


def test_a_copy_of_another_cameras_video_is_named_and_wins_over_the_calibration_hint():
    from mocap.report import moved_too_far_hint

    rows = _table(None, cam=2, copy_of=1)
    row = rows["cam03"]
    assert row["flagged"] and row["same_as"] == "cam02", row["hint"]
    assert row["hint"].startswith("the same video as cam02? cam03's detections are cam02's to the pixel in 100%")
    assert not rows["cam02"].get("same_as")  # the camera whose own video it is: not flagged, not called a copy
    calib = {"moves_deg": {"cam03": 6.0}, "moves_mm": {"cam03": 429.0},
             "config": {"max_move_deg": 5.0, "max_move_m": 0.3}}
    assert moved_too_far_hint("cam03", calib, row["hint"]) == row["hint"]  # no camera move explains a copy
    assert moved_too_far_hint("cam03", calib, "wrong person? ...").startswith("calibration? the camera refinement")


def test_a_camera_that_never_detects_a_person_standing_in_its_view_fails_the_verdict():
    """Two cameras' names exchanged in the rig of a two-person take: each camera's detections of one person only
    fit through the other's pose, so each person is 'seen' by two cameras and never by the other two, which saw
    the other person. Those cameras are said (not 'ok') and the verdict fails; a camera the person is outside of
    is not."""
    from mocap.report.verdict import verdict
    from mocap.types import Points3D

    A = blazepose_keypoints(body_motion(FRAMES, FPS))
    B = blazepose_keypoints(body_motion(FRAMES, FPS, seed=1)) + np.array([1.0, 0.5, 0.0])
    rig = ring_rig(RigSpec(n_cameras=4, size=SIZE), np.concatenate([A, B]).reshape(-1, 3))
    both = np.stack([A, B], axis=1)  # (F, P, J, 3)
    uv = np.stack([rig.cameras[c].project(both) for c in range(4)], axis=1)  # (F, C, P, J, 2)
    data = np.concatenate([uv, np.full(uv.shape[:-1] + (1,), 0.9)], axis=-1)
    data[:, 1, 0] = np.nan  # cam02 never detects person A (it detects B)
    kp = Keypoints2D(data, rig.names, "blazepose33", FPS)
    J = A.shape[1]
    pts = Points3D(both, np.zeros((FRAMES, 2, J)), np.ones((FRAMES, 2, J, 4), bool), rig.names, "blazepose33", FPS)
    rows = camera_table(rig, kp, pts, person=0)
    assert rows["cam02"]["missed"] and rows["cam02"]["in_view_share"] == 1.0
    assert rows["cam02"]["hint"].startswith("never detected this person although it stood in this camera's view")
    assert not any(r["missed"] for n, r in rows.items() if n != "cam02")
    m = {"reprojection_mm": {"median": 5.0}, "reprojection_px": {"median": 2.0}, "bone_length_cv": {"mean": 0.01},
         "reconstructed": {"points": 1.0}, "cameras": rows}
    v = verdict(m, 30.0, 0.05, 0.9)
    assert v["usable"]  # three cameras still see the person: said, not failed (a far camera missing a small person)
    for n in ("cam03", "cam04"):  # two cameras or fewer see the person (split by exchanged names): failed
        m["cameras"][n] = dict(rows[n], detections=0)
    v = verdict(m, 30.0, 0.05, 0.9)
    assert not v["usable"] and "camera cam02 never detected the person although it stood in its view in 100%" in v[
        "summary"]
    # the same person far outside cam02's image (behind it): not in its view, not missed
    far = both.copy()
    far[:, 0] += 50 * (rig.cameras[1].center - both[:, 0].mean(axis=(0, 1)))
    pts_far = Points3D(far, pts.reproj_err, pts.views, rig.names, "blazepose33", FPS)
    assert not camera_table(rig, kp, pts_far, person=0)["cam02"]["missed"]


def test_intrinsics_from_another_resolution_come_before_allowing_a_larger_move():
    """cam02's camera matrix from a 720p calibration under a 1088×1920 image: the camera refinement would move
    it 21° and the hint said to allow that — which fitted a wrong pose (3D 98 mm off, PASS). The principal
    point far from the image's centre is named first."""
    import dataclasses

    from mocap.report import moved_too_far_hint
    from mocap.report.calibration_html import intrinsics_doubt

    rig = ring_rig(RigSpec(n_cameras=4, size=SIZE), blazepose_keypoints(body_motion(10, FPS)).reshape(-1, 3))
    cam = rig.cameras[1]
    assert intrinsics_doubt(cam) is None  # a principal point at the centre
    K = cam.K.copy()
    K[:2] *= 2 / 3
    small = dataclasses.replace(cam, K=K)
    doubt = intrinsics_doubt(small)
    assert doubt.startswith(f"intrinsics? {cam.name}'s principal point") and "about ×1.50" in doubt
    calib = {"moves_deg": {cam.name: 20.8}, "moves_mm": {cam.name: 920.0},
             "config": {"max_move_deg": 5.0, "max_move_m": 0.3}}
    hint = moved_too_far_hint(cam.name, calib, "wrong person? ...", small)
    assert hint.startswith("intrinsics?") and "; else calibration? the camera refinement" in hint
    assert moved_too_far_hint(cam.name, calib, "wrong person? ...", cam).startswith("calibration?")


def test_a_move_along_the_line_of_sight_beyond_the_limit_is_told_focal_length():
    """A focal length 10 % off (helper's synthetic take): the refinement would move the camera 463 mm straight
    along its line of sight with 0.5° of turn; it is told "focal length?" and pointed at refining the intrinsics
    (which, followed, gave PASS and 3.97 mm against 5.24), not "bumped or another setup's"."""
    from mocap.report import moved_too_far_hint

    calib = {"moves_deg": {"cam02": 0.5}, "moves_mm": {"cam02": 464.0}, "moves_along_axis_mm": {"cam02": -463.0},
             "config": {"max_move_deg": 5.0, "max_move_m": 0.3}}
    hint = moved_too_far_hint("cam02", calib, "wrong person? ...")
    assert hint.startswith("focal length? the camera refinement from the performer would move cam02 463 mm along")
    assert "rig_refine.refine_intrinsics=true" in hint
    sideways = calib | {"moves_along_axis_mm": {"cam02": 120.0}}  # mostly sideways: a pose off
    assert moved_too_far_hint("cam02", sideways, None).startswith("calibration? the camera refinement")
    turned = calib | {"moves_deg": {"cam02": 8.0}}  # beyond the turn limit too: a pose off
    assert moved_too_far_hint("cam02", turned, None).startswith("calibration?")
    assert moved_too_far_hint("cam02", {k: v for k, v in calib.items() if k != "moves_along_axis_mm"},
                              None).startswith("calibration?")  # an older report


def test_an_applied_refinement_that_moved_a_camera_along_its_line_of_sight_notes_the_focal_length():
    """A focal length 5 % off is within the refinement's limits: it moves the camera 231 mm along its line of sight
    (0.28°) and the take passes, 11.4 mm off (4.8 after a similarity). The summary and the page note it (following
    the note, refining the intrinsics: 5.8 / 3.97 mm); a rig whose cameras turned 2–2.6° (the real demo) gets none."""
    from mocap.report.calibration_html import calibration_html, focal_notes

    calib = {"applied": True, "moves_mm": {"cam01": 1.0, "cam02": 232.0}, "moves_deg": {"cam01": 0.1, "cam02": 0.28},
             "moves_along_axis_mm": {"cam01": -0.1, "cam02": -231.0}, "error_px": {"heldout_given": 3.1}}
    notes = focal_notes(calib)
    assert len(notes) == 1 and notes[0].startswith("cam02 moved 231 mm along its line of sight with 0.28° of turn")
    assert "rig_refine.refine_intrinsics=true" in calibration_html(calib)
    demo = {"applied": True, "moves_mm": {"cam02": 96.0, "cam04": 143.0}, "moves_deg": {"cam02": 2.33, "cam04": 1.94},
            "moves_along_axis_mm": {"cam02": -25.0, "cam04": 54.0}}
    assert focal_notes(demo) == []
    assert focal_notes(calib | {"applied": False}) == []  # not applied: the flag's own hint says it
