"""A camera whose given pose is further off than the refinement may move it (bumped, or calibrated in another
setup) keeps its given pose and the other cameras are still refined (mocap.stages.rig_refine_kept.keeping), named
in the report; when most of the rig's cameras would move that far the rig is refused as before."""

import numpy as np
import pytest
from pipeline_synth import synthetic_session
from test_rig_refine_dead_camera import off, same_pose, turned

from mocap.report.calibration_html import moved_too_far_hint
from mocap.session import Session
from mocap.stages import rig_refine
from mocap.stages.rig_refine_kept import error_step, rig_off


@pytest.fixture(scope="module")
def take(tmp_path_factory):
    """(true rig, 2D keypoints) of a short (4 s) synthetic take seen by 4 cameras."""
    s = Session(synthetic_session(tmp_path_factory.mktemp("bumped") / "take", frames=120))
    return s.rig(), s.keypoints2d()


def test_one_camera_too_far_off_is_kept_and_the_others_are_refined(take):
    truth, kp = take
    given = turned(truth, {"cam02": (2.0, 0.05), "cam03": (7.0, 0.05)})  # cam03 bumped 7°: beyond max_move_deg
    refined, report = rig_refine.run(given, kp)
    assert refined is not None and report["applied"], report["reason"]
    assert same_pose(refined["cam03"], given["cam03"])  # kept as given
    deg, mm = off(refined, truth, "cam02")
    assert deg < 0.2 and mm < 15, (deg, mm)  # still refined: back from 2° / 50 mm
    assert list(report["kept_cameras"]) == ["cam03"] and "would move it" in report["kept_cameras"]["cam03"]
    assert report["moved_too_far"] == ["cam03"] and list(report["moved_too_far_kept"]) == ["cam03"]
    assert report["moved_too_far_kept"]["cam03"]["deg"] > rig_refine.Config().max_move_deg
    assert not rig_off(report)  # the rig is not another setup's: the move search and sync's check go on
    assert "cam03" not in report["moves_deg"] and report["error_px"]["heldout_refined"] < report["error_px"][
        "heldout_given"]
    hint = moved_too_far_hint("cam03", report, None)
    assert "would move cam03 by" in hint and "refined without it" in hint and "recalibrate" in hint


def test_most_cameras_too_far_off_is_still_refused(take):
    truth, kp = take
    given = turned(truth, {"cam02": (7.0, 0.05), "cam03": (7.0, 0.05), "cam04": (7.0, 0.05)}, seed=1)
    refined, report = rig_refine.run(given, kp)
    assert refined is None and not report["applied"]
    assert report["moved_too_far"] and rig_off(report) and not report.get("moved_too_far_kept")


def test_a_camera_bumped_mid_take_shows_its_step_and_the_hint_names_it(take):
    """On a short take the report's step test (2 s a side) cannot tell a camera bumped halfway; the kept camera's
    error against the other cameras' points does, and the hint then asks for no single larger move."""
    truth, kp = take
    F, c, cfg = kp.data.shape[0], truth.names.index("cam03"), rig_refine.Config()
    bumped = turned(truth, {"cam03": (3.0, 0.0)}, seed=2)  # cam03 turned 3° from the take's middle on
    X = _points(truth, kp)  # the performer's points (from the true rig)
    data = kp.data.copy()
    later = np.arange(F) >= F // 2
    uv = bumped["cam03"].project(X[later].reshape(-1, 3)).reshape(later.sum(), -1, 2)
    data[later, c, 0, :, :2] = np.where(np.isfinite(data[later, c, 0, :, :2]), uv, np.nan)
    kp2 = type(kp)(data, kp.camera_names, kp.keypoint_set, kp.fps)
    step = error_step(truth, rig_refine._observations(kp2, cfg)[0], c, kp.fps, cfg)
    assert step is not None and abs(step["cut_frame"] - F // 2) <= 2, step
    assert step["levels_px"][1] > 3 * step["levels_px"][0], step
    assert error_step(truth, rig_refine._observations(kp, cfg)[0], c, kp.fps, cfg) is None  # no bump, no step
    report = {"config": {"max_move_deg": 5.0, "max_move_m": 0.3}, "moved_too_far": ["cam03"],
              "moved_too_far_kept": {"cam03": {"deg": 5.3, "mm": 385.0, "error_step": step}}}
    hint = moved_too_far_hint("cam03", report, None)
    assert hint.startswith("camera moved mid-take?") and f"near frame {step['cut_frame']}" in hint
    assert "5.3° / 385 mm" in hint and "allow the move" not in hint and "refined without it" in hint


def _points(rig, kp) -> np.ndarray:
    """(F, J, 3) the keypoints triangulated through ``rig`` (every camera, robust)."""
    from mocap.geometry.rig_errors import points3d

    xy = kp.data[:, :, 0, :, :2]  # (F, C, J, 2)
    F, C, J, _ = xy.shape
    return points3d(rig, xy.transpose(0, 2, 1, 3).reshape(-1, C, 2), 15.0).reshape(F, J, 3)
