"""Sync's shortcut for a synchronised camera (sync.null_tolerance): when the sub-frame estimate next to the
null offset is within a tenth of a frame of it at a sharp minimum of the epipolar error, the lag search and
the held-out test are skipped. It must give the offsets of the full search and test, and never hold for a
camera whose lag is elsewhere or for a take without motion."""

import numpy as np
import pytest
from test_sync_significance import take

from mocap.stages import sync
from mocap.stages.sync_search import EpipolarPair
from mocap.types import Keypoints2D

HOLDS = "the null offset holds"


@pytest.mark.parametrize("shift", [0.0, 0.4, -1.0, 3.0, 25.0])
def test_the_shortcut_gives_the_offsets_of_the_full_search(shift):
    rig, kp = take({1: shift} if shift else {}, frames=360)
    quick, full = sync.run(rig, kp), sync.run(rig, kp, sync.Config(null_tolerance=0))
    for n in rig.names[1:]:
        assert abs(quick["offsets_frames"][n] - full["offsets_frames"][n]) < 0.05, (quick, full)
    assert abs(quick["offsets_frames"]["cam02"] - shift) < 0.1
    shifted = quick["cameras"]["cam02"]
    assert (HOLDS in shifted["reason"]) == (shift == 0), shifted  # a shifted camera is searched and tested
    assert all(HOLDS in quick["cameras"][n]["reason"] for n in ("cam03", "cam04")), quick["cameras"]
    assert all(c["reason"] != "significant" or c["applied"] for c in quick["cameras"].values())


def test_a_take_without_motion_is_searched():
    rig, kp = take({}, frames=120)
    still = Keypoints2D(np.repeat(kp.data[:1], 120, axis=0), kp.camera_names, kp.keypoint_set, kp.fps)
    xy = np.where(still.score[..., None] >= 0.2, still.xy, np.nan)[:, :, 0]
    pair = EpipolarPair(rig, xy, 1)
    assert sync.null_holds(pair, 0.0, sync.Config(), 120) is None  # the error is as low 3 frames away
    moving = EpipolarPair(rig, sync.smooth_tracks(np.where(kp.score[..., None] >= 0.2, kp.xy, np.nan)[:, :, 0]), 1)
    assert HOLDS in sync.null_holds(moving, 0.0, sync.Config(), 120)["reason"]
    assert sync.null_holds(moving, 0.0, sync.Config(null_tolerance=0), 120) is None  # switched off


def test_bad_shortcut_settings_say_what_was_expected():
    with pytest.raises(ValueError, match="null_tolerance must be ≥ 0 frames, null_sharpness in"):
        sync.Config(null_sharpness=0)
    with pytest.raises(ValueError, match="got -1"):
        sync.Config(null_tolerance=-1)


def test_whole_frame_sync_keeps_the_null_only_where_it_is_the_best_whole_lag():
    """With sync.subframe = false the estimate next to the null is a whole lag: a camera 0.7 frame late is 1
    frame late (the full search applies 1), so the null does not hold there (it kept 0 and said "the estimate
    +0.00 frames" without estimating); a synchronised camera still keeps it."""
    rig, kp = take({1: 0.7}, frames=360)
    cfg = sync.Config(subframe=False)
    quick, full = sync.run(rig, kp, cfg), sync.run(rig, kp, sync.Config(subframe=False, null_tolerance=0))
    assert full["offsets_frames"]["cam02"] == 1.0 and full["cameras"]["cam02"]["applied"], full["cameras"]
    assert HOLDS not in quick["cameras"]["cam02"]["reason"], quick["cameras"]["cam02"]
    assert quick["offsets_frames"] == full["offsets_frames"]
    assert all(HOLDS in quick["cameras"][n]["reason"] for n in ("cam03", "cam04")), quick["cameras"]
