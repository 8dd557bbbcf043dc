"""The camera refinement's lag loop (mocap.stages.rig_lags.refine_with_lags) when the lag it tries is no longer
proposed on the rig refined with it (Pose2Sim's two-person demo, cam02 3 frames late: sync estimated -3.00 frames on
both rigs, unproven with a 10 % held-out gain on the first, a 3.7 % gain on the second, below what a lag needs to be
tried): the loop has converged, the first refinement stands, and it is not refined 5 times over between two rigs."""

import logging

import numpy as np

from mocap.stages import rig_refine, sync
from mocap.stages.rig_lags import ROUNDS, refine_with_lags
from mocap.types import Keypoints2D


def _check(estimate: float, gain: float) -> dict:
    """sync's result for cam02, estimated but not applied (not significant)."""
    cam = {"estimate_frames": estimate, "halves_frames": [estimate, estimate], "null_frames": 0.0,
           "heldout_gain": gain, "p_value": 0.3, "blocks": 11, "applied": False, "reason": "not significant"}
    return {"offsets_frames": {"cam01": 0.0, "cam02": 0.0}, "cameras": {"cam02": cam}, "method": "epipolar"}


def test_a_lag_no_longer_proposed_on_the_rig_refined_with_it_ends_the_loop(monkeypatch, caplog):
    rng = np.random.default_rng(0)
    raw = Keypoints2D(rng.uniform(0, 100, (60, 2, 1, 33, 3)), ("cam01", "cam02"), "blazepose33", 60.0)
    refinements = []

    def candidate(rig, kp, cfg, persons):  # the rig refined on the keypoints as detected, or shifted back
        name = "first" if np.array_equal(kp.data, raw.data, equal_nan=True) else "shifted"
        refinements.append(name)
        return name, {"applied": True, "reason": "held-out frames improve"}

    def check(rig, kp, cfg, audio=None):  # sync's test on each: -3 frames both times, the gain 10 % then 3.7 %
        return _check(-3.0, 0.10 if rig == "first" else 0.037)

    monkeypatch.setattr(rig_refine, "candidate", candidate)
    monkeypatch.setattr(sync, "remembered_run", check)
    with caplog.at_level(logging.INFO, logger="mocap.stages.rig_lags"):
        refined, report = refine_with_lags("given", raw, rig_refine.Config(), sync.Config())
    assert refinements == ["first", "shifted"], refinements  # not 1 + ROUNDS refinements, alternating
    assert len(refinements) < 1 + ROUNDS
    lags = report["lags"]
    assert refined == "first" and lags["offsets_frames"] == {} and lags["refined_again"] == 1, lags
    assert lags["tried_unproven"] and lags["before"][0]["unproven"] == ["cam02"]
    messages = [r.getMessage() for r in caplog.records]
    assert not any("( frames)" in m for m in messages), messages  # no empty proposal taken for a change
    assert any("the first refinement is kept" in m for m in messages), messages
