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
