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

    def candidate(rig, kp, cfg, persons, keep_far=True):  # refined on the keypoints as detected, or shifted back
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


def _late(frames: int = 100, late: int = 5) -> Keypoints2D:
    """Two cameras; cam02's video started ``late`` frames after cam01's: as many frames shorter, padded as missing."""
    data = np.random.default_rng(1).uniform(1, 100, (frames, 2, 1, 33, 3))
    data[frames - late:, 1] = np.nan
    return Keypoints2D(data, ("cam01", "cam02"), "blazepose33", 60.0)


def _length_loop(monkeypatch, raw, proven_on_shifted: bool):
    """refine_with_lags where sync on the first refinement finds part of the lag, too weak a gain to try it (the
    real demo, cam03 5 frames late: −2.38, 3 %), and on the rig refined with the shift ``proven_on_shifted``."""
    seen = []

    def candidate(rig, kp, cfg, persons, keep_far=True):
        shifted = not np.array_equal(kp.data, raw.data, equal_nan=True)
        seen.append("shifted" if shifted else "first")
        return seen[-1], {"applied": True, "reason": "held-out frames improve"}

    def check(rig, kp, cfg, audio=None):
        if rig == "shifted" and proven_on_shifted:
            return {"offsets_frames": {"cam01": 0.0, "cam02": -5.05}, "method": "epipolar",
                    "cameras": {"cam02": {"applied": True, "estimate_frames": -5.05}}}
        return _check(-2.38, 0.03)

    monkeypatch.setattr(rig_refine, "candidate", candidate)
    monkeypatch.setattr(sync, "remembered_run", check)
    return seen, refine_with_lags("given", raw, rig_refine.Config(), sync.Config())


def test_a_camera_whose_video_is_shorter_is_tried_at_that_lag_and_stands_when_sync_proves_it(monkeypatch):
    """Sync's estimate on the first refinement (−2.38 frames, 3 % held-out gain) is not tried; cam02's detections
    end 5 frames before cam01's (a video started late is that much shorter): the cameras are refined again on the
    keypoints shifted by −5, sync proves −5.05 on that rig, and it stands."""
    from mocap.stages.rig_lags import length_lags

    raw = _late()
    assert length_lags(raw) == {"cam02": -5.0}
    seen, (refined, report) = _length_loop(monkeypatch, raw, proven_on_shifted=True)
    lags = report["lags"]
    assert refined == "shifted" and lags["applied_frames"] == {"cam02": -5.05}, lags
    assert lags["from_lengths"] == {"cam02": -5.0} and lags["before"][0]["offsets_frames"] == {"cam02": -5.0}


def test_a_shorter_video_whose_lag_sync_does_not_prove_leaves_the_first_refinement(monkeypatch):
    """A camera stopped early (or a person who left its view first) reads alike: the lag tried from the lengths is
    not proven on the rig refined with it, and the first refinement stands with no offset."""
    seen, (refined, report) = _length_loop(monkeypatch, _late(), proven_on_shifted=False)
    assert refined == "first" and report["lags"]["applied_frames"] == {}, report["lags"]
    assert seen[:2] == ["first", "shifted"] and len(seen) < 1 + ROUNDS


def test_no_lag_from_lengths_within_a_frame_or_without_detections():
    from mocap.stages.rig_lags import length_lags

    assert length_lags(_late(late=1)) == {}
    raw = _late(late=0)
    raw.data[:, 0] = np.nan  # the first camera saw nothing
    assert length_lags(raw) == {}


def test_detections_ending_beyond_what_sync_searches_are_not_tried(monkeypatch):
    """A person who left cam02's view 60 frames before the end of a 100-frame take is no lag sync could find (it
    searches a third of the take): not tried, one refinement."""
    seen, (refined, report) = _length_loop(monkeypatch, _late(late=60), proven_on_shifted=True)
    assert seen == ["first"] and report["lags"]["from_lengths"] == {}, (seen, report["lags"])
