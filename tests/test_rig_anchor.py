"""The refined rig's anchor: the cameras that kept their given poses place it in the world, whichever camera
was bumped (the first one included); when no two agree, the first camera, as before."""

import dataclasses
import json

import numpy as np
import pytest

from mocap.geometry.align import consistent_cameras, similarity_errors, similarity_onto, with_similarity
from mocap.geometry.rotations import axis_angle_to_matrix, geodesic_deg
from mocap.stages import rig_refine
from mocap.synth import RigSpec, ring_rig
from mocap.types import Rig


def _bumped(rig: Rig, which, seed=5, deg=(1.0, 2.0), metres=(0.05, 0.10)) -> Rig:
    rng = np.random.default_rng(seed)
    cams = list(rig.cameras)
    for i in which:
        c = cams[i]
        axis, move = rng.normal(size=3), rng.normal(size=3)
        R = axis_angle_to_matrix(axis / np.linalg.norm(axis) * np.radians(rng.uniform(*deg))) @ c.R
        centre = c.center + move / np.linalg.norm(move) * rng.uniform(*metres)
        T = np.eye(4)
        T[:3, :3], T[:3, 3] = R, -R @ centre
        cams[i] = c.with_pose(T)
    return Rig(tuple(cams))


def _ring(n=6):
    X = np.random.default_rng(0).normal(size=(300, 3)) * [0.4, 0.4, 0.5] + [0.0, 0.0, 1.0]
    return ring_rig(RigSpec(n_cameras=n), X), X


def test_a_change_of_world_frame_keeps_projections_and_is_recovered():
    rig, X = _ring(5)
    Q = axis_angle_to_matrix(np.array([0.2, -0.4, 0.9]))
    moved, Xm = with_similarity(rig, X, 1.07, Q, np.array([0.3, -1.2, 0.05]))
    for a, b in zip(rig.cameras, moved.cameras, strict=True):
        assert np.allclose(a.project(X), b.project(Xm), atol=1e-9)
    s, Q2, t = similarity_onto(moved, rig, [1, 3])  # two cameras give the whole change back
    deg, m = similarity_errors(moved, rig, s, Q2, t)
    assert s == pytest.approx(1 / 1.07) and deg.max() < 1e-5 and m.max() < 1e-9
    assert list(consistent_cameras(moved, rig, 0.25, 0.025)) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="at least one camera"):
        similarity_onto(moved, rig, [])


@pytest.mark.parametrize("which", [[0], [2], [0, 3], [1, 4]])
def test_the_cameras_that_kept_their_poses_are_found_whichever_were_bumped(which):
    rig, X = _ring(6)
    Q = axis_angle_to_matrix(np.array([0.0, 0.3, -0.2]))
    seen = with_similarity(_bumped(rig, which), X, 0.98, Q, np.array([1.0, 0.0, 0.2]))[0]  # and a frame of its own
    assert list(consistent_cameras(seen, rig, 0.25, 0.025)) == [k for k in range(6) if k not in which]


def test_no_two_cameras_agree_when_every_camera_but_one_was_bumped():
    rig, _ = _ring(4)
    assert consistent_cameras(_bumped(rig, [1, 2, 3], seed=1), rig, 0.25, 0.025).size == 0
    with pytest.raises(ValueError, match="4 cameras against 3"):
        consistent_cameras(rig, Rig(rig.cameras[:3]), 0.25, 0.025)


@pytest.mark.shared_data
@pytest.mark.parametrize(("which", "frames", "tol"), [([0], 1000, (0.05, 0.005)), ([2], 1000, (0.05, 0.005)),
                                                    ([0], 150, (0.2, 0.015))])  # 150 frames: one solve, no warm start
def test_a_bumped_first_camera_no_longer_drags_the_world(shared_data, which, frames, tol):
    """Before: with the first camera bumped (1–2°, 5–10 cm) the adjustment kept its wrong pose and refined the
    others into its frame: every camera 1–2° and tens of mm off in the world (the joints 155 mm off on a
    6-camera take). Now the cameras that kept their poses anchor it: the bumped camera alone moves, and every
    camera lands on its true pose in the world."""
    from mocap.bench.robustness import RobustnessBenchConfig

    take = RobustnessBenchConfig(bvh=str(shared_data / "bvh" / "cmu_01_01.bvh"), cameras=5, seed=1,
                                 frames=frames).take()
    given = _bumped(take.rig, which)
    refined, report = rig_refine.run(given, take.keypoints)
    assert refined is not None and report["applied"], report["reason"]
    names = take.rig.names
    assert report["world_from"] == [n for k, n in enumerate(names) if k not in which]
    assert (report["reference_camera"] == names[0]) == (0 not in which)
    assert "cameras that kept their given poses" in report["scale"]
    for k, (r, t) in enumerate(zip(refined.cameras, take.rig.cameras, strict=True)):
        off = geodesic_deg(r.R, t.R), np.linalg.norm(r.center - t.center)
        assert off[0] < tol[0] and off[1] < tol[1], (k, off, report["moves_deg"])
    moved = [n for n in names if report["moves_deg"][n] > 0.5]
    assert moved == [names[k] for k in which]


def test_the_report_says_which_cameras_placed_the_world():
    from mocap.report.calibration_html import calibration_html as _calibration_html

    base = {"applied": True, "reason": "held-out frames improve", "cameras": ["cam01", "cam02", "cam<3>"],
            "error_px": {"heldout_given": 3.0, "heldout_refined": 2.0, "used_given": 3.1, "used_refined": 1.9}}
    html = _calibration_html(base | {"world_from": ["cam02", "cam<3>"]})
    assert "The refined rig's world frame follows cam02, cam&lt;3&gt;, which kept their given poses; cam01 did not." \
        in html
    html = _calibration_html(base | {"world_from": ["cam01"]})
    assert "No two cameras kept their given poses: the refined rig's world frame follows cam01." in html
    html = _calibration_html(base | {"world_from": ["cam02", "cam<3>"], "applied": False, "reason": "no gain"})
    assert "world frame would follow (had it been applied) cam02" in html
    assert "world frame" not in _calibration_html(base)  # a report written before world_from


def test_a_camera_bumped_beyond_the_move_limit_is_told_to_be_recalibrated(tmp_path):
    """cam03 turned 8° (beyond rig_refine.max_move_deg = 5): the refinement finds it but keeps the given pose;
    the report's hint says so (its profile alone read "wrong person?"), and the setting it names applies it."""
    from pipeline_synth import synthetic_session

    from mocap.io.rig_files import read_rig, write_rig
    from mocap.pipeline import run
    from mocap.report import moved_too_far_hint

    session = synthetic_session(tmp_path / "take", frames=300)
    path = session / "calibration" / "rig.toml"
    rig = read_rig(path)
    c = rig.cameras[2]
    R = axis_angle_to_matrix(np.array([0.3, 1.0, 0.2]) / np.linalg.norm([0.3, 1.0, 0.2]) * np.radians(8.0)) @ c.R
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, -R @ c.center
    write_rig(Rig(tuple(c.with_pose(T) if i == 2 else k for i, k in enumerate(rig.cameras))), path)
    sets = ["report.overlay_videos=false"]
    run(session, sets=sets, progress=False)
    m = json.loads((session / "report" / "metrics.json").read_text())
    cam = m["cameras"]["cam03"]
    assert cam["flagged"] and cam["hint"].startswith("calibration? the camera refinement from the performer would "
                                                     "move cam03 by 8.0°"), cam["hint"]
    assert "--set rig_refine.max_move_deg=N" in cam["hint"]
    run(session, sets=sets + ["rig_refine.max_move_deg=10"], progress=False)
    m = json.loads((session / "report" / "metrics.json").read_text())
    assert not m["cameras"]["cam03"]["flagged"] and m["calibration_refinement"]["applied"]
    swapped = "videos swapped? cam03's detections fit cam02's pose"
    moved = {"moves_deg": {"cam03": 1.0}, "moves_mm": {"cam03": 450.0},
             "config": {"max_move_deg": 5.0, "max_move_m": 0.3}}
    assert "(mocap run SESSION --set rig_refine.max_move_m=N)" in moved_too_far_hint("cam03", moved, None)
    assert moved_too_far_hint("cam03", {"moves_deg": {"cam03": 9.0}}, swapped) == swapped


def test_placing_on_two_cameras_side_by_side_takes_the_scale_from_every_camera():
    """Two agreeing cameras 6 cm apart would set the scale on their baseline (2 mm of error there: 3 %); it comes
    from every camera's mean distance to the rig's centre instead. With none agreeing, the rig is scaled about the
    camera the adjustment held, which keeps its pose."""
    from mocap.optim.rig_anchor import placed

    rig, X = _ring(5)
    c0 = rig.cameras[0]
    T = c0.cam_from_world.copy()
    T[:3, 3] = -c0.R @ (c0.center + np.array([0.06, 0.0, 0.0]))
    given = Rig((c0, dataclasses.replace(c0, name="cam02", cam_from_world=T)) + rig.cameras[2:])
    est, _ = with_similarity(given, X, 0.9, axis_angle_to_matrix(np.array([0.1, 0.2, -0.3])), np.array([1.0, 0, 0]))
    cams = list(est.cameras)  # the second camera's centre 2 mm off along the baseline
    T = cams[1].cam_from_world.copy()
    T[:3, 3] = -cams[1].R @ (cams[1].center + np.array([0.002, 0, 0]) @ cams[1].R)
    est = Rig((cams[0], cams[1].with_pose(T)) + tuple(cams[2:]))
    out, _ = placed(est, X, given, np.array([0, 1]))
    d = [np.linalg.norm(np.stack([c.center for c in r.cameras])[2:] - r.cameras[0].center, axis=1)
         for r in (out, given)]
    assert np.allclose(d[0], d[1], rtol=2e-3), d
    held, _ = placed(est, X, given, np.zeros(0, int), held=3)
    assert np.allclose(held.cameras[3].center, est.cameras[3].center)


def test_the_world_tolerances_must_be_positive():
    with pytest.raises(ValueError, match="world_tolerance_deg and world_tolerance_m must be positive, got 0.0, 0.025"):
        rig_refine.Config(world_tolerance_deg=0.0)
