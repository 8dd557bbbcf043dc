"""A camera whose given pose is further off than the refinement may move it (bumped, or calibrated in another
setup) keeps its given pose and the other cameras are still refined (mocap.stages.rig_refine_kept.keeping), named
in the report; when most of the rig's cameras would move that far the rig is refused as before."""

import pytest
from pipeline_synth import synthetic_session
from test_rig_refine_dead_camera import off, same_pose, turned

from mocap.report.calibration_html import moved_too_far_hint
from mocap.session import Session
from mocap.stages import rig_refine
from mocap.stages.rig_refine_kept import rig_off


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
