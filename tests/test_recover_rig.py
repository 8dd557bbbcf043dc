"""The rig the second detection pass looks through (mocap.detect.recover_rig): with a camera a few degrees off in the
given rig, the people placed through the cameras refined from the first pass are found in that view; through the
given rig they fall outside the gate. The stand-in landmark model of tests/test_recover.py (no mediapipe)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from test_recover import HIDDEN_VIEW, F, build_scene, run_pass

from mocap.detect.recover_rig import guided_rig
from mocap.types import Rig


@pytest.fixture(scope="module")
def scene():
    return build_scene()


def turned(rig: Rig, view: int, deg: float) -> Rig:
    """``rig`` with camera ``view`` turned ``deg`` degrees about its own vertical axis (its centre kept)."""
    cams = list(rig.cameras)
    T = cams[view].cam_from_world.copy()
    turn = Rotation.from_rotvec(np.deg2rad(deg) * np.array([0.0, 1.0, 0.0])).as_matrix()
    T[:3] = turn @ T[:3]
    cams[view] = cams[view].with_pose(T)
    return Rig(tuple(cams))


def test_a_camera_turned_in_the_given_rig_is_looked_through_its_refined_pose(scene, monkeypatch):
    """Camera 0 turned 4° in the given rig (2° is enough): through it, person 1 (missed there by the first pass)
    projects outside the gate and is not recovered; through the rig the guide refines (here: the true one), it is,
    in every frame, where it truly is. The guide sees the first pass's detections and the given rig."""
    rig, truth, kp, uv = scene
    given = turned(rig, HIDDEN_VIEW, 4.0)
    seen = []

    def guide(r, k):
        seen.append((r, k.shape))
        return rig, {"moves_deg": {"cam0": 4.0}, "moves_mm": {}, "error_px": {"heldout_given": 30.0,
                                                                               "heldout_refined": 1.0}}

    name = rig.names[HIDDEN_VIEW]
    _, off = run_pass(given, kp, uv, (0, 1), monkeypatch, guide=None)
    assert off["recovered"][name] < F // 3
    assert off["rig"]["through"] == "given rig"
    data, on = run_pass(given, kp, uv, (0, 1), monkeypatch, guide=guide)
    assert seen == [(given, kp.shape)]
    assert on["rig"]["through"] == "cameras refined from the first pass" and on["rig"]["heldout_px"] == [30.0, 1.0]
    assert on["recovered"][name] == F
    got = data[:, HIDDEN_VIEW, 0, :, :2]  # slot 0: the free one (build_scene hides person 1 there)
    assert np.nanmax(np.linalg.norm(got - uv[HIDDEN_VIEW, :, 1], axis=-1)) < 0.1


def test_guided_rig_keeps_the_given_rig_when_the_refinement_is_not_applied_or_fails(scene, caplog):
    rig, truth, kp, uv = scene
    given = turned(rig, 1, 2.0)
    stats: dict = {}
    assert guided_rig(given, kp, None, stats) is given and "rig_refine.enabled = false" in stats["rig"]["why"]
    assert guided_rig(given, kp, lambda r, k: (None, {"reason": "held-out frames do not improve"}), stats) is given
    assert stats["rig"] == {"through": "given rig", "why": "held-out frames do not improve"}

    def fails(r, k):
        raise ValueError("no person is seen by two cameras or more")

    assert guided_rig(given, kp, fails, stats) is given
    assert stats["rig"]["why"] == "no person is seen by two cameras or more"
    assert "could not be refined from the first pass (no person is seen by two cameras or more)" in caplog.text


def test_a_turned_view_that_sees_both_people_is_associated_through_the_refined_rig(scene, monkeypatch):
    """Camera 1 (which sees both people) turned 3° in the given rig: its detections join no person through it, so
    each person gets boxes in camera 1 too (360 looked at); re-associated and projected through the guide's rig,
    only person 1's box in view 0 is looked at, every frame, and found."""
    rig, truth, kp, uv = scene
    given = turned(rig, 1, 3.0)
    _, off = run_pass(given, kp, uv, (0, 1), monkeypatch, guide=None)
    assert sum(off["looked"].values()) > 3 * F
    _, on = run_pass(given, kp, uv, (0, 1), monkeypatch, guide=lambda r, k: (rig, {}))
    assert sum(on["looked"].values()) == F and on["recovered"][rig.names[HIDDEN_VIEW]] == F
    assert on["persons_tracked"] == 2


def test_a_failing_refinement_leaves_the_pass_on_the_given_rig(scene, monkeypatch):
    """Any error of the guide (not only a ValueError) leaves the given rig (else the pass's summary is never written
    and every later run would stop at the same place)."""
    rig, truth, kp, uv = scene

    def broken(r, k):
        raise KeyError("cam09")

    _, stats = run_pass(rig, kp, uv, (0, 1), monkeypatch, guide=broken)
    assert stats["rig"] == {"through": "given rig", "why": "KeyError: 'cam09'"}
    assert stats["recovered"][rig.names[HIDDEN_VIEW]] == F


def test_the_detect_stage_gives_the_pass_the_runs_camera_refinement():
    """The stage's guide: the rig_refine computation with the run's settings, none when it is switched off; its key
    holds the settings it reads (a switched-off refinement's other settings, and the moved-camera search, not)."""
    from mocap.settings import load_config
    from mocap.stages import detect as stage

    def key(*sets):
        return stage.resolved(load_config(sets=["detect.persons=2", *sets])[0])["recover_uses"]["rig_refine"]

    assert callable(stage._guide(load_config()[0]))
    assert stage._guide(load_config(sets=["rig_refine.enabled=false"])[0]) is None
    assert key("rig_refine.enabled=false") == key("rig_refine.enabled=false", "rig_refine.min_heldout_gain=0.1")
    assert key() != key("rig_refine.min_heldout_gain=0.1")
    assert key() == key("rig_refine.moves_frames=300")
