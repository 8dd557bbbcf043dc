"""A camera that sees nothing (black, covered) keeps its given pose and the other cameras are still refined
(mocap.stages.rig_refine_kept); with fewer than 3 cameras that see the performer the refinement is refused, naming
the blind ones."""

import json
import logging

import numpy as np
import pytest
from pipeline_synth import synthetic_session

from mocap.bench.robustness import moved_rig
from mocap.bench.robustness import rig_errors as similarity_errors
from mocap.geometry.rotations import axis_angle_to_matrix, geodesic_deg
from mocap.session import Session
from mocap.stages import rig_refine
from mocap.types import Rig

FAST = ["export.formats=['bvh']", "report.overlay_videos=false"]


@pytest.fixture(scope="module")
def take(tmp_path_factory):
    """(true rig, 2D keypoints) of a 240-frame synthetic take seen by 4 cameras."""
    s = Session(synthetic_session(tmp_path_factory.mktemp("dead") / "take", frames=240))
    return s.rig(), s.keypoints2d()


def turned(rig: Rig, names: dict[str, tuple[float, float]], seed: int = 0) -> Rig:
    """``rig`` with the cameras ``names`` turned by deg and moved by metres ({name: (deg, m)}), random axes."""
    rng = np.random.default_rng(seed)
    cams = []
    for c in rig.cameras:
        if c.name in names:
            deg, m = names[c.name]
            axis, move = rng.normal(size=3), rng.normal(size=3)
            R = axis_angle_to_matrix(axis / np.linalg.norm(axis) * np.radians(deg)) @ c.R
            T = np.eye(4)
            T[:3, :3], T[:3, 3] = R, -R @ (c.center + move / np.linalg.norm(move) * m)
            c = c.with_pose(T)
        cams.append(c)
    return Rig(tuple(cams))


def blanked(kp, cameras: list[int], frames=None):
    """A copy of ``kp`` whose ``cameras`` see nothing (but in ``frames``)."""
    kp = type(kp)(kp.data.copy(), kp.camera_names, kp.keypoint_set, kp.fps)
    hide = np.ones(kp.data.shape[0], bool)
    if frames is not None:
        hide[frames] = False
    for c in cameras:
        kp.data[hide, c] = np.nan
    return kp


def off(rig: Rig, truth: Rig, name: str) -> tuple[float, float]:
    """(degrees, millimetres) of camera ``name`` from the truth, in the world (no alignment)."""
    return float(geodesic_deg(rig[name].R, truth[name].R)), float(1000 * np.linalg.norm(rig[name].center
                                                                                        - truth[name].center))


def same_pose(a, b) -> bool:
    return np.allclose(a.cam_from_world, b.cam_from_world, atol=1e-12) and np.allclose(a.K, b.K)


def test_a_black_camera_keeps_its_given_pose_and_the_others_are_refined(take, caplog):
    truth, kp = take
    given = turned(truth, {"cam02": (2.0, 0.05), "cam03": (2.0, 0.05)})  # cam03's given pose is off too
    with caplog.at_level(logging.WARNING):
        refined, report = rig_refine.run(given, blanked(kp, [2]))
    assert refined is not None and report["applied"], report["reason"]
    assert same_pose(refined["cam03"], given["cam03"])  # kept as given, not moved with the others
    deg, mm = off(refined, truth, "cam02")
    assert deg < 0.1 and mm < 10, (deg, mm)  # back from 2° / 50 mm, in the given rig's world (cam01, cam04)
    assert max(off(refined, truth, n)[0] for n in ("cam01", "cam04")) < 0.1
    assert report["cameras"] == ["cam01", "cam02", "cam04"] and "cam03" not in report["moves_deg"]
    assert list(report["kept_cameras"]) == ["cam03"]
    assert "0 frames with the performer" in report["kept_cameras"]["cam03"]
    assert "kept as given" in report["reason"] and "cam03: 0 frames with the performer" in report["reason"]
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("cam03: 0 frames with the performer" in m and "kept as given" in m for m in warned), warned


def test_every_other_camera_off_is_refined_up_to_the_gauge(take):
    """Cameras 2–4 each turned 1–2° and moved 5–10 cm, cam03 black: cam02 and cam04 come back to the truth's
    geometry (after the similarity the gauge leaves free: no camera but cam01 kept its pose)."""
    truth, kp = take
    given = moved_rig(truth)
    refined, report = rig_refine.run(given, blanked(kp, [2]))
    assert refined is not None and report["applied"], report["reason"]
    assert same_pose(refined["cam03"], given["cam03"])
    names = ["cam01", "cam02", "cam04"]
    centres, rotations = similarity_errors(refined.subset(names), truth.subset(names))
    before = similarity_errors(given.subset(names), truth.subset(names))
    assert centres.max() < 10 and rotations.max() < 0.1, (centres, rotations, before)
    assert before[0].max() > 30 and before[1].max() > 1.0


def test_a_black_reference_camera_hands_the_gauge_on(take):
    """The first camera (the adjustment's reference) black and its given pose off: the next one is the reference,
    the world comes from the cameras that kept their poses (cam02, cam04) and cam03 comes back to the truth."""
    truth, kp = take
    given = turned(truth, {"cam01": (3.0, 0.08), "cam03": (2.0, 0.05)}, seed=1)
    refined, report = rig_refine.run(given, blanked(kp, [0]))
    assert refined is not None and report["applied"], report["reason"]
    assert same_pose(refined["cam01"], given["cam01"])
    deg, mm = off(refined, truth, "cam03")
    assert deg < 0.1 and mm < 10, (deg, mm)
    assert report["reference_camera"] != "cam01" and set(report["world_from"]) == {"cam02", "cam04"}
    assert list(report["kept_cameras"]) == ["cam01"] and "cam01: 0 frames with the performer" in report["reason"]


def test_a_camera_that_sees_the_performer_in_three_frames_is_kept_as_given(take):
    truth, kp = take
    given = turned(truth, {"cam02": (2.0, 0.05), "cam03": (2.0, 0.05)})
    refined, report = rig_refine.run(given, blanked(kp, [2], frames=[10, 50, 100]))
    assert refined is not None and report["applied"], report["reason"]
    assert same_pose(refined["cam03"], given["cam03"])
    assert "3 frames with the performer" in report["kept_cameras"]["cam03"]
    deg, mm = off(refined, truth, "cam02")
    assert deg < 0.1 and mm < 10, (deg, mm)


@pytest.mark.parametrize("dead", [[1, 2, 3], [2, 3]])
def test_fewer_than_three_seeing_cameras_are_refused_naming_the_blind_ones(take, dead):
    truth, kp = take
    given = moved_rig(truth)
    refined, report = rig_refine.run(given, blanked(kp, dead))
    assert refined is None and report["refused"] and not report["applied"]
    reason = report["reason"]
    for c in dead:
        assert f"{truth.names[c]}: 0 frames with the performer" in reason, reason
    assert "at least 3 cameras that see the performer are needed" in reason
    left = [n for c, n in enumerate(truth.names) if c not in dead]
    assert f"{len(left)} camera{'s' if len(left) > 1 else ''} left: " + ", ".join(f"{n} (240 frames)" for n in left) \
        in reason
    assert sorted(report["kept_cameras"]) == [truth.names[c] for c in dead]


def test_a_too_short_take_is_still_refused_as_such(take):
    """Every camera with few keypoints (a take of 6 frames) is not a blind camera: the take is too short."""
    truth, kp = take
    short = type(kp)(kp.data[:6], kp.camera_names, kp.keypoint_set, kp.fps)
    refined, report = rig_refine.run(truth, short)
    assert refined is None and "frames seen well by 3 cameras" in report["reason"]
    assert "kept_cameras" not in report


def test_downstream_stages_use_the_refined_cameras_and_the_report_names_the_kept_one(tmp_path):
    from mocap.io.hdf5 import write_keypoints2d
    from mocap.io.rig_files import read_rig, write_rig
    from mocap.pipeline import run

    root = synthetic_session(tmp_path / "take", frames=240)
    given = root / "calibration" / "rig.toml"
    truth = read_rig(given)
    bad = turned(truth, {"cam02": (2.0, 0.05), "cam04": (1.5, 0.05)})
    write_rig(bad, given)
    s = Session(root)
    write_keypoints2d(blanked(s.keypoints2d(), [2]), root / "pose2d.h5")
    run(root, sets=FAST, progress=False)
    report = json.loads((s.refined_rig_dir / "report.json").read_text())
    assert report["applied"], report["reason"]
    assert s.rig_input() == s.refined_rig_dir / "rig.toml"
    used = s.rig()
    assert same_pose(used["cam03"], read_rig(given)["cam03"])
    assert max(off(used, truth, n)[0] for n in ("cam02", "cam04")) < 0.1
    metrics = json.loads((root / "report" / "metrics.json").read_text())
    assert metrics["reprojection_px"]["median"] < 2.0  # through the given rig: several pixels
    assert metrics["cameras"]["cam03"]["calibration_move"] is None  # not shown as refined
    assert metrics["cameras"]["cam02"]["calibration_move"]["applied"]
    page = (root / "report" / "report.html").read_text()
    assert "kept as given (not refined): cam03: 0 frames with the performer" in page
