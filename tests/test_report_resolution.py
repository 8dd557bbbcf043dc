"""Small people in the images (far cameras, wide lenses, low resolution): a pixel is many millimetres at the
person, so a detector at its best errs beyond the verdict's 30 mm. The verdict says the take is limited by
its resolution (with the pixels and the millimetres per pixel) instead of failing it; a real fault there
still fails, and ``report.resolution_floor_px = 0`` keeps the millimetre check alone."""

import dataclasses

import cv2
import numpy as np
import pytest
from body_synth import blazepose_keypoints, body_motion

from mocap import report
from mocap.report.page import verdict_html
from mocap.report.verdict import verdict
from mocap.session import Session
from mocap.stages import triangulate
from mocap.synth import CorruptionSpec, RigSpec, corrupt, ring_rig
from mocap.synth.groundtruth import SyntheticTake, write_session
from mocap.types import Keypoints2D, Rig

FRAMES, FPS = 60, 30.0


def _report(root, floor_px: float | None = None, pose_error_deg: float = 0.0) -> dict:
    """A take whose performer is ~60 px tall (focal length 100 px at 4-5 m), detections at σ 1 px, the
    3D the truth (so the errors are the detections' own), and its report."""
    A = blazepose_keypoints(body_motion(FRAMES, FPS))
    rig = ring_rig(RigSpec(n_cameras=4, size=(640, 360), focal_px=100.0), A.reshape(-1, 3))
    uv = np.moveaxis(rig.project(A), 0, 1)
    data, masks = corrupt(uv, rig, "blazepose33", CorruptionSpec(1.0, 0.0, 0.05, seed=3))
    given = rig
    if pose_error_deg:  # cam02 turned by this much about its centre
        cams = list(rig.cameras)
        turn = np.eye(4)
        turn[:3, :3] = cv2.Rodrigues(np.radians(pose_error_deg) * np.array([0.0, 1.0, 0.0]))[0]
        pose = turn @ cams[1].cam_from_world
        given = Rig(tuple(c.with_pose(pose) if i == 1 else c for i, c in enumerate(cams)))
    kp = Keypoints2D(data, rig.names, "blazepose33", FPS)
    session = Session(write_session(SyntheticTake(given, kp, A, masks), root, json_2d=False))
    tri = triangulate.run(given, kp)
    triangulate.write_outputs(dataclasses.replace(tri, xyz=A[:, None].copy()), session.points3d("refined"))
    cfg = report.Config(overlay_videos=False, worst_frames=0)
    if floor_px is not None:
        cfg = dataclasses.replace(cfg, resolution_floor_px=floor_px)
    return report.build(session, cfg=cfg), session


def test_small_people_at_the_detectors_floor_pass_limited_by_resolution(tmp_path):
    m, session = _report(tmp_path / "small")
    px, mm = m["reprojection_px"]["median"], m["reprojection_mm"]["median"]
    assert px < 2.0 and mm > 30.0, (px, mm)  # a pixel is ~40 mm at the person: 30 mm is under a pixel
    v = m["verdict"]
    assert v["usable"] and not v["failed"], v
    (lim,) = v["limited"]
    assert lim["metric"] == "reprojection_mm.median" and lim["px"] == pytest.approx(px)
    assert lim["mm_per_px"] == pytest.approx(mm / px)
    assert v["summary"].startswith("PASS (limited by the images' resolution, not a fault: median reprojection at the "
                                   f"person {mm:.3g} mm > 30 mm at {px:.3g} px, within the detector's floor of 2 px")
    html = (session.root / "report" / "report.html").read_text()
    assert "Limited by the images' resolution, not a fault" in html
    assert "floor setting <code>report.resolution_floor_px</code>" in html


def test_small_people_fail_with_the_floor_off_and_a_fault_fails_at_the_floor(tmp_path):
    strict, _ = _report(tmp_path / "strict", floor_px=0.0)
    assert not strict["verdict"]["usable"] and not strict["verdict"]["limited"]
    assert strict["verdict"]["summary"].startswith("FAIL: median reprojection at the person")
    fault, _ = _report(tmp_path / "fault", pose_error_deg=3.0)  # 5 px at a focal length of 100 px
    assert not fault["verdict"]["usable"]
    assert any(f["metric"].startswith("cameras.cam02.") for f in fault["verdict"]["failed"]), fault["verdict"]


def test_verdict_limited_only_within_the_floor():
    m = {"reprojection_px": {"median": 1.5}, "reprojection_mm": {"median": 45.0},
         "bone_length_cv": {"mean": 0.01}, "reconstructed": {"points": 1.0}}
    v = verdict(m, 30, 0.05, 0.9, 0.0, 2.0)
    assert v["usable"] and v["limited"][0]["mm_per_px"] == pytest.approx(30.0)
    assert not verdict(m, 30, 0.05, 0.9, 0.0, 0.0)["usable"]  # the floor off
    m["reprojection_px"]["median"] = 2.5  # beyond the floor: a fault
    v = verdict(m, 30, 0.05, 0.9, 0.0, 2.0)
    assert not v["usable"] and not v["limited"]
    m["reprojection_px"]["median"], m["reconstructed"]["points"] = 1.5, 0.5  # other checks still fail
    v = verdict(m, 30, 0.05, 0.9, 0.0, 2.0)
    assert [f["metric"] for f in v["failed"]] == ["reconstructed.points"] and v["limited"]
    assert v["summary"].startswith("FAIL: points reconstructed 50.0% < 90.0%; (limited by the images' resolution")
    html = verdict_html(v["failed"], v["limited"])
    assert html.startswith("<p class=bad>FAIL") and "Limited by the images' resolution" in html


def test_resolution_floor_is_checked():
    with pytest.raises(ValueError, match=r"resolution_floor_px must be ≥ 0 px \(0: the mm check alone\), got -1"):
        report.Config(resolution_floor_px=-1)
