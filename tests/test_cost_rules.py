"""Issue 14's cost rules, each against the computation it shortens: sync searches and tests the limb joints
(they move the most), and the camera refinement's polish on all points stops after
``rig_refine.polish_iterations`` steps from its warm start."""

import pytest
from pipeline_synth import synthetic_session
from test_rig_refine import perturbed
from test_sync_significance import take

from mocap.bench.robustness import rig_errors
from mocap.keypoint_sets import get_keypoint_set
from mocap.session import Session
from mocap.stages import rig_refine, sync
from mocap.stages.rig_refine import LIMBS, used_joints


def test_the_limb_joints_are_those_of_the_set_or_all():
    for name in ("blazepose33", "coco17", "halpe26", "blazepose33_hands"):
        names = get_keypoint_set(name).joints
        assert sorted(names[i] for i in used_joints(name, "limbs")) == sorted(LIMBS)
        assert used_joints(name, "all") == list(range(len(names)))


@pytest.mark.parametrize("shift", [0.4, -3.0])
def test_sync_on_the_limbs_finds_what_sync_on_every_joint_finds(shift):
    rig, kp = take({1: shift})
    for cfg in (sync.Config(), sync.Config(joints="all")):
        r = sync.run(rig, kp, cfg)
        assert r["cameras"]["cam02"]["applied"] and abs(r["offsets_frames"]["cam02"] - shift) < 0.1, r["cameras"]
        assert r["offsets_frames"]["cam03"] == r["offsets_frames"]["cam04"] == 0.0, r["offsets_frames"]


def test_two_polish_steps_land_where_the_converged_polish_does(tmp_path):
    s = Session(synthetic_session(tmp_path / "take", frames=240))
    truth, kp = s.rig(), s.keypoints2d()
    bad = perturbed(truth)
    two, r2 = rig_refine.run(bad, kp, rig_refine.Config(warm_points=400))
    full, rf = rig_refine.run(bad, kp, rig_refine.Config(warm_points=400, polish_iterations=40,
                                                          polish_tolerance=1e-9))
    assert r2["applied"] and rf["applied"], (r2["reason"], rf["reason"])
    assert r2["iterations"] <= 2 < rf["iterations"], (r2["iterations"], rf["iterations"])
    centres, rotations = rig_errors(two, full)
    assert centres.max() < 0.5 and rotations.max() < 0.005, (centres, rotations)
    assert abs(r2["error_px"]["heldout_refined"] - rf["error_px"]["heldout_refined"]) < 0.01


def test_bad_cost_settings_say_what_was_expected():
    with pytest.raises(ValueError, match="sync: joints must be limbs or all, got 'face'"):
        sync.Config(joints="face")
    with pytest.raises(ValueError, match="rig_refine: polish_iterations must be ≥ 1, got 0"):
        rig_refine.Config(polish_iterations=0)
