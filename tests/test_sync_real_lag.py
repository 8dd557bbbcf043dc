"""A camera 3 frames late on a take with two people, one almost still (Pose2Sim's two-person demo, cam02's video
started 3 frames late: its woman moved 0.04 of her size per quarter second, its man 0.10; timed on her, sync
estimated -3.00 frames and could not prove it): sync times the cameras on every person who moves, each against
their own points in the other views, and a stretch of one person's detections with left and right exchanged in
the late camera does not hide it."""

import numpy as np
from body_synth import blazepose_keypoints, body_motion

from mocap.detect.select import people_in_time
from mocap.geometry.epipolar import normalised
from mocap.keypoint_sets import get_keypoint_set
from mocap.multi.slots import STILL_SHARE, image_motion
from mocap.settings import Settings
from mocap.stages import sync
from mocap.stages.rig_refine import used_joints
from mocap.synth import CorruptionSpec, RigSpec, corrupt, ring_rig
from mocap.types import Keypoints2D

F, FPS, LAG = 100, 60.0, -3.0
SWAP = (45, 61)  # frames of camera 2 with the walker's left and right exchanged (the demo's: 16 frames)


def two_people(swap: tuple[int, int] | None = None, seed: int = 0, noise: tuple[float, float] = (5.0, 3.0)):
    """(rig, (F, 4, 2, 33, 3) keypoints): person 0 almost still (swaying at a quarter of a walk's motion), seen by
    every camera in every frame; person 1 walking, lost by cameras 2-4 in a fifth of the frames each; camera 2
    (index 1) 3 frames late (its frame t shows the others' t + 3: offset -3); ``swap``: frames of camera 2 where
    person 1's left and right are exchanged. ``noise``: each one's detector noise (px)."""
    walk = blazepose_keypoints(body_motion(F, FPS, seed=seed))
    sway = blazepose_keypoints(body_motion(F, FPS, seed=seed + 1))
    still = sway[0] + 0.25 * (sway - sway[:1]) + np.array([2.2, 0.0, 0.0])
    X = np.stack([still, walk], axis=1)  # (F, 2, 33, 3)
    rig = ring_rig(RigSpec(n_cameras=4), X.reshape(-1, 3))
    data = []
    for p in range(2):
        uv = np.moveaxis(rig.project(X[:, p]), 0, 1)
        data.append(corrupt(uv, rig, "blazepose33", CorruptionSpec(noise[p], 0.02, 0.05, seed=seed + p))[0][:, :, 0])
    data = np.stack(data, axis=2)  # (F, C, 2, 33, 3)
    lost = np.random.default_rng(seed).random((F, 3)) < 0.2
    data[:, 1:, 1][lost] = np.nan
    if swap is not None:
        data[swap[0]:swap[1], 1, 1] = data[swap[0]:swap[1], 1, 1][:, _flip()]
    data[:, 1] = sync.shift_tracks(data[:, 1], -LAG)
    return rig, data


def _flip() -> np.ndarray:
    flip = np.arange(33)
    for a, b in get_keypoint_set("blazepose33").pairs:
        flip[a], flip[b] = b, a
    return flip


def _person(data: np.ndarray, p: int, rig) -> Keypoints2D:
    return Keypoints2D(data[:, :, p:p + 1], rig.names, "blazepose33", FPS)


def test_sync_times_the_cameras_on_every_person_who_moves():
    rig, data = two_people()
    kp = Keypoints2D(data, rig.names, "blazepose33", FPS)
    motion = image_motion(kp)
    assert STILL_SHARE * motion[1] < motion[0] < 0.5 * motion[1], motion  # moving a little: not a still body
    # what the sync stage works on with several people: both associated people, each in its own slot
    s = Settings()
    both = people_in_time(rig, kp, "auto", s.triangulate.association, s.triangulate.min_score)
    assert both.shape[2] == 2
    order = [int(np.nanargmin([np.nanmean(np.abs(both.data[:, :, q, :, :2] - data[:, :, p, :, :2])) for p in range(2)]))
             for q in range(2)]
    assert sorted(order) == [0, 1]
    assert all(np.nanmean(np.abs(both.data[:, :, q, :, :2] - data[:, :, p, :, :2])) < 1e-9 for q, p in enumerate(order))
    r = sync.run(rig, both)
    assert r["cameras"]["cam02"]["applied"] and abs(r["offsets_frames"]["cam02"] - LAG) < 0.25, r["cameras"]["cam02"]
    assert r["offsets_frames"]["cam03"] == r["offsets_frames"]["cam04"] == 0.0, r["offsets_frames"]
    still = sync.run(rig, _person(data, 0, rig))["cameras"]["cam02"]  # on the one barely moving alone: not proven
    assert not still["applied"], still
    # the people's evidence together: at least as strong as the walker's alone
    walker = sync.run(rig, _person(data, 1, rig))["cameras"]["cam02"]
    assert r["cameras"]["cam02"]["p_value"] <= walker["p_value"], (r["cameras"]["cam02"], walker)


def test_a_still_body_beside_the_performer_does_not_hide_a_lag():
    """A body standing still (detector noise only), seen all take long, and a performer seen in the last half: the
    still body's points, the same at every lag, are left out (pooled with the performer's, the lag was unproven)."""
    walk = blazepose_keypoints(body_motion(200, FPS, seed=0))
    still = np.broadcast_to(walk[:1] + np.array([2.2, 0.0, 0.0]), walk.shape)
    X = np.stack([still, walk], axis=1)
    rig = ring_rig(RigSpec(n_cameras=4), X.reshape(-1, 3))
    data = np.stack([corrupt(np.moveaxis(rig.project(X[:, p]), 0, 1), rig, "blazepose33",
                             CorruptionSpec(4.0, 0.02, 0.05, seed=p))[0][:, :, 0] for p in range(2)], axis=2)
    data[:100, :, 1] = np.nan
    data[:, 1] = sync.shift_tracks(data[:, 1], -LAG)
    kp = Keypoints2D(data, rig.names, "blazepose33", FPS)
    s = Settings()
    moving = people_in_time(rig, kp, "auto", s.triangulate.association, s.triangulate.min_score)
    assert moving.shape[2] == 1
    r = sync.run(rig, moving)["cameras"]["cam02"]
    assert r["applied"] and abs(r["estimate_frames"] - LAG) < 0.25, r


def test_a_left_right_swap_in_the_late_camera_is_read_back_and_does_not_hide_the_lag():
    rig, data = two_people(swap=SWAP)
    r = sync.run(rig, _person(data, 1, rig))
    assert r["cameras"]["cam02"]["applied"] and abs(r["offsets_frames"]["cam02"] - LAG) < 0.25, r["cameras"]["cam02"]
    # the pair sync tests camera 2 on: its swapped frames read back, as near the lines as the others
    from mocap.stages.sync_search import EpipolarPair, smoothed
    from mocap.stages.sync_swaps import mirrors, pairs

    joints = used_joints("blazepose33", "limbs")
    raw = [normalised(rig, c, data[:, c, 1][:, joints, :2]) for c in range(4)]
    smooth = smoothed(raw, [cam.K[0, 0] for cam in rig.cameras])
    given = EpipolarPair(rig, None, 1, 0, normals=(smooth[0], smooth[1])).per_frame(LAG)
    read_back = pairs(rig, raw, smooth, 1, 0, mirrors("blazepose33", joints))(LAG).per_frame(LAG)
    swapped = np.arange(SWAP[0] + 3, SWAP[1] - 3)  # the reference frames of the swap (its edges apart)
    rest = np.nanmedian(np.delete(read_back, np.arange(SWAP[0] - 10, SWAP[1] + 10)))
    assert np.nanmedian(given[swapped]) > 5 * rest and np.nanmedian(read_back[swapped]) < 2 * rest, (
        np.nanmedian(given[swapped]), np.nanmedian(read_back[swapped]), rest)


def test_a_whole_lag_both_halves_find_but_not_applied_is_said(caplog):
    """Unproven (here: a held-out gain asked for beyond reach), a lag of a whole 3 frames that both halves find is
    said at WARNING and recorded (a camera possibly out of time); a synchronised take says nothing."""
    rig, data = two_people()
    cfg = sync.Config(min_heldout_gain=0.99)
    r = sync.run(rig, _person(data, 1, rig), cfg)
    assert not r["cameras"]["cam02"]["applied"] and r["possibly_out_of_time"] == {"cam02": -3}, r["cameras"]["cam02"]
    with caplog.at_level("INFO", logger="mocap.stages.sync"):
        sync.log_result(r)
    said = [rec for rec in caplog.records if rec.getMessage().startswith("sync cam02:")]
    assert said[0].levelname == "WARNING" and "may be out of time" in said[0].getMessage(), said[0].getMessage()
    caplog.clear()
    synced = data.copy()
    synced[:, 1] = sync.shift_tracks(data[:, 1], LAG)  # camera 2 back in time
    r = sync.run(rig, _person(synced, 1, rig), cfg)
    assert "possibly_out_of_time" not in r and not any(r["offsets_frames"].values()), r["cameras"]
    with caplog.at_level("INFO", logger="mocap.stages.sync"):
        sync.log_result(r)
    assert not [rec for rec in caplog.records if rec.levelname == "WARNING"], caplog.records


def test_a_whole_lag_is_said_only_where_both_halves_find_it():
    """Pose2Sim's two-person take with the woman leaving part of cam04's view (in sync): halves −0.00 / +2.00, the
    whole take +2.00, was said as "both halves find +2 frames: the camera may be out of time"; each half must be
    within a frame of the lag (a true 5-frame lag on a short take read −4.50 / −5.40: still said)."""
    from mocap.stages.sync_steps import whole_lag

    assert whole_lag(2.0, -0.0, 2.0, 0.0, sync.WHOLE_FRAME) is None
    assert whole_lag(-3.0, -2.95, -3.1, 0.0, sync.WHOLE_FRAME) == -3
    assert whole_lag(-5.0, -4.5, -5.4, 0.0, sync.WHOLE_FRAME) == -5
    assert whole_lag(4.0, 3.9, 4.1, 1.0, sync.WHOLE_FRAME) == 3  # from the audio's null
    assert whole_lag(2.4, 2.4, 2.4, 0.0, sync.WHOLE_FRAME) is None  # not near a whole lag
    assert whole_lag(1.0, 1.0, 1.0, 0.0, sync.WHOLE_FRAME) is None  # one frame: not said
