"""The association is computed once per run for the same keypoints, rig and settings."""

import numpy as np
from conftest import count_calls
from test_multi_identity import kicker_beside_still

from mocap.multi import memo
from mocap.multi.track import TrackConfig
from mocap.types import Keypoints2D, Rig


def test_same_inputs_associate_once_and_anything_else_again(monkeypatch):
    take = kicker_beside_still(frames=60, dup=False)
    calls = count_calls(monkeypatch, memo, "associate_take")
    monkeypatch.setattr(memo, "_kept", type(memo._kept)())
    slots, summary = memo.associate_once(take.rig, take.keypoints, "auto", progress=False)
    assert slots.shape[2] == 2 and len(calls) == 1
    summary["people"].clear()  # a caller changing its copy
    slots[:] = -1
    again, summary2 = memo.associate_once(take.rig, take.keypoints, "auto", progress=False)
    assert len(calls) == 1 and len(summary2["people"]) == 2 and (again >= 0).any()
    memo.associate_once(take.rig, take.keypoints, "auto", TrackConfig(birth_frames=7), progress=False)
    assert len(calls) == 2  # other settings
    cams = take.rig.cameras
    pose = cams[1].cam_from_world.copy()
    pose[0, 3] += 0.01
    moved = Rig((cams[0], cams[1].with_pose(pose)) + tuple(cams[2:]))
    memo.associate_once(moved, take.keypoints, "auto", progress=False)
    assert len(calls) == 3  # another rig (the refined one)
    data = take.keypoints.data.copy()
    data[5, 0, 0, 0, 0] += 1.0
    shifted = Keypoints2D(data, take.keypoints.camera_names, take.keypoints.keypoint_set, take.keypoints.fps)
    memo.associate_once(take.rig, shifted, "auto", progress=False)
    assert len(calls) == 4  # other keypoints (after a sync offset)
    memo.associate_once(take.rig, take.keypoints, 2, progress=False)
    assert len(calls) == 5 and len(memo._kept) == memo.KEEP
    np.testing.assert_array_equal(memo.associate_once(take.rig, take.keypoints, 2, progress=False)[0],
                                  memo.associate_take(take.rig, take.keypoints, 2, progress=False)[0])


def test_the_same_keypoints_at_another_frame_rate_associate_again(monkeypatch):
    """The tracker's coasting and stitching gaps are in seconds (frames = seconds × fps): the same keypoints' bytes
    at another frame rate are another association, not the kept one."""
    take = kicker_beside_still(frames=60, dup=False)
    calls = []
    real = memo.associate_take

    def spy(rig, kp, *a, **k):
        calls.append(kp.fps)
        return real(rig, kp, *a, **k)

    monkeypatch.setattr(memo, "associate_take", spy)
    monkeypatch.setattr(memo, "_kept", type(memo._kept)())
    kp = take.keypoints
    memo.associate_once(take.rig, kp, "auto", progress=False)
    slow = Keypoints2D(kp.data, kp.camera_names, kp.keypoint_set, kp.fps / 4)
    memo.associate_once(take.rig, slow, "auto", progress=False)
    assert calls == [kp.fps, kp.fps / 4]


def test_the_warnings_of_an_association_are_given_once_per_run(monkeypatch, caplog):
    """More people requested than present: said once by a run (rig_refine, sync and triangulate associate
    the same keypoints; the camera refinement's and the detect stage's second pass's associations are
    intermediate and quiet), not once per stage."""
    import logging

    from test_multiperson import crowd

    from mocap.multi.track import associate_take

    take = crowd(2, 240, enter_leave=False)
    monkeypatch.setattr(memo, "_kept", type(memo._kept)())
    monkeypatch.setattr(memo, "_warned", set(), raising=False)
    said = "3 people requested but 2 found"
    with caplog.at_level(logging.WARNING, logger="mocap.multi.track"):
        associate_take(take.rig, take.keypoints, 3, progress=False, quiet=True)
        assert said not in caplog.text
        memo.associate_once(take.rig, take.keypoints, 3, progress=False, quiet=True)  # the camera refinement
        assert said not in caplog.text
        slots, summary = memo.associate_once(take.rig, take.keypoints, 3, progress=False)  # sync: said now
        assert caplog.text.count(said) == 1 and slots.shape[2] == 2 and summary["persons_found"] == 2
        memo.associate_once(take.rig, take.keypoints, 3, progress=False)  # triangulate: not again
        memo.associate_once(take.rig, take.keypoints, 3, progress=False, quiet=True)
        assert caplog.text.count(said) == 1
        associate_take(take.rig, take.keypoints, 3, progress=False)  # called directly: it warns
        assert caplog.text.count(said) == 2


def test_camera_refinement_on_the_given_rig_is_quiet(monkeypatch, caplog):
    """The camera refinement associates on the given rig, sync and triangulate again on the refined one: only
    the latter's result is the capture's, said once (on the real two-person take with detect.persons=3 a run
    said "3 people requested but 2 found" five times: three in detection's second pass, then rig_refine and
    sync)."""
    import logging

    from test_multiperson import crowd

    from mocap.detect.select import all_people, people_in_time

    take = crowd(2, 240, enter_leave=False)
    monkeypatch.setattr(memo, "_kept", type(memo._kept)())
    monkeypatch.setattr(memo, "_warned", set(), raising=False)
    said = "3 people requested but 2 found"
    with caplog.at_level(logging.WARNING, logger="mocap.multi.track"):
        kp = all_people(take.rig, take.keypoints, 3)
        assert kp.shape[2] == 1 and kp.shape[0] == 2 * take.keypoints.shape[0]
        assert said not in caplog.text
        people_in_time(take.rig, take.keypoints, 3, quiet=True)  # the camera refinement's lag check: quiet
        assert said not in caplog.text
        people_in_time(take.rig, take.keypoints, 3)
        people_in_time(take.rig, take.keypoints, 3)
    assert caplog.text.count(said) == 1
