"""The first camera, the refinement's reference, is the one whose pose is off: the refinement, refused or done without
a camera about it, is done again about another camera (mocap.stages.rig_refine_reference)."""

import numpy as np
import pytest
from pipeline_synth import synthetic_session
from test_rig_refine_dead_camera import off, turned

from mocap.geometry.rotations import geodesic_deg
from mocap.session import Session
from mocap.stages import rig_refine


@pytest.fixture(scope="module")
def take(tmp_path_factory):
    """(true rig, 2D keypoints) of a short (4 s) synthetic take seen by 4 cameras."""
    s = Session(synthetic_session(tmp_path_factory.mktemp("reference") / "take", frames=120))
    return s.rig(), s.keypoints2d()


def relative_deg(rig, truth, a: str, b: str) -> float:
    """How far (degrees) camera b's rotation relative to camera a's is from the truth's: the rig's shape."""
    return float(geodesic_deg(rig[b].R @ rig[a].R.T, truth[b].R @ truth[a].R.T))


def test_a_first_camera_turned_4_degrees_is_refined_about_another(take):
    """cam01 turned 4°, the others 1° / 40 mm (so none keeps its given pose to anchor on): about cam01 every other
    camera would move too far (refused); about the camera it moved least the rig is refined, cam01 turned back."""
    truth, kp = take
    given = turned(truth, {"cam01": (4.0, 0.0), "cam02": (1.0, 0.04), "cam03": (1.0, 0.04), "cam04": (1.0, 0.04)},
                   seed=1)
    refined, report = rig_refine.run(given, kp)
    assert refined is not None and report["applied"], report["reason"]
    assert report["reference_from"]["first"] == "cam01" and "would move more" in report["reference_from"]["why"]
    ref = report["reference_camera"]
    assert ref != "cam01" and refined.names == truth.names and report["cameras"] == list(truth.names)
    assert off(refined, truth, "cam01")[0] < 1.5  # from 4°: now as far as the reference's own given error
    assert max(relative_deg(refined, truth, ref, n) for n in truth.names) < 0.15  # the shape of the rig recovered
    assert np.allclose(refined[ref].cam_from_world, given[ref].cam_from_world)  # the world: the reference's given pose


def test_a_rig_whose_first_camera_moves_nothing_too_far_is_refined_about_it(take):
    """No camera moved too far about the first: refined about it as before (no second refinement)."""
    truth, kp = take
    refined, report = rig_refine.run(turned(truth, {"cam02": (1.5, 0.05), "cam03": (1.0, 0.04)}), kp)
    assert report["applied"] and report["reference_camera"] == "cam01" and "reference_from" not in report


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_bumped_camera_that_is_not_the_first_keeps_the_world_on_the_first(take, seed):
    """cam03 bumped 7° (kept as given either way), cam02 and cam04 1° off, cam01 right: about another camera only the
    gauge would differ, and the world would follow a camera 1° off; the refinement about cam01 stands."""
    truth, kp = take
    given = turned(truth, {"cam02": (1.0, 0.04), "cam03": (7.0, 0.05), "cam04": (1.0, 0.04)}, seed=seed)
    refined, report = rig_refine.run(given, kp)
    assert report["applied"] and report["reference_camera"] == "cam01" and "reference_from" not in report
    assert list(report["moved_too_far_kept"]) == ["cam03"]
    assert max(off(refined, truth, n)[0] for n in ("cam01", "cam02", "cam04")) < 0.2


def test_syncs_lag_check_takes_the_refinement_about_another_camera(take):
    """The stage refines through sync's lag rounds (mocap.stages.rig_lags), whose candidates keep no camera: once
    the lags are settled the refinement about another camera is the one kept."""
    from mocap.stages import sync
    from mocap.stages.rig_lags import refine_with_lags

    truth, kp = take
    given = turned(truth, {"cam01": (4.0, 0.0), "cam02": (1.0, 0.04), "cam03": (1.0, 0.04), "cam04": (1.0, 0.04)},
                   seed=1)
    refined, report = refine_with_lags(given, kp, rig_refine.Config(), sync.Config())
    assert refined is not None and report["applied"] and report["reference_from"]["first"] == "cam01"
    assert "lags" in report
