"""A camera that lost frames mid-take (its time offset changes partway): sync finds the parts and reads each at
its own offset (mocap.stages.sync_steps); a synchronised take, even through a wrong camera pose, gets none."""

import json

import numpy as np
import pytest
from body_synth import blazepose_keypoints, body_motion

from mocap.bench.robustness import moved_rig
from mocap.stages import sync
from mocap.synth import CorruptionSpec, RigSpec, corrupt, ring_rig
from mocap.types import Keypoints2D

FRAMES, FPS = 1500, 60.0


def _take(drops: dict[int, int] | None = None, cam: int = 1, seed: int = 0):
    """4 cameras; camera ``cam`` loses ``k`` frames at each frame ``at`` of ``drops`` {at: k}: from there on its
    frame i shows what the others see at i + k (the detections of the lost frames never exist)."""
    X = blazepose_keypoints(body_motion(FRAMES, FPS, seed=seed))
    rig = ring_rig(RigSpec(n_cameras=4), X.reshape(-1, 3))
    data, _ = corrupt(np.moveaxis(rig.project(X), 0, 1), rig, "blazepose33", CorruptionSpec(1.0, 0.02, 0.05, seed=1))
    clean = data.copy()
    for at, k in sorted((drops or {}).items(), reverse=True):
        data[at:-k, cam] = data[at + k:, cam].copy()
        data[-k:, cam] = np.nan
    return rig, Keypoints2D(data, rig.names, "blazepose33", FPS), clean, X


def test_frames_lost_mid_take_are_found_and_each_part_read_at_its_offset():
    rig, kp, clean, _ = _take({700: 5})
    r = sync.run(rig, kp)
    parts = r["steps"]["cam02"]
    assert len(parts) == 2 and parts[0] == [0, 0.0], parts
    assert abs(parts[1][0] - 700) <= 15 and abs(parts[1][1] + 5) < 0.25, parts
    assert set(r["steps"]) == {"cam02"} and r["cameras"]["cam02"]["applied"], r["cameras"]
    assert "frames dropped" in r["cameras"]["cam02"]["reason"]
    aligned = sync.apply_offsets(kp, r["offsets_frames"], r["steps"])
    away = np.r_[0:680, 720:FRAMES - 10]  # away from the change (its lost frames are NaN)
    e = np.abs(aligned.xy[away, 1] - clean[away, 1, ..., :2])
    assert np.nanmedian(e) < 0.5, np.nanmedian(e)
    assert np.isnan(aligned.xy[parts[1][0], 1]).all()  # a lost frame: no offset reads it right
    before = np.abs(kp.xy[away, 1] - clean[away, 1, ..., :2])
    assert np.nanmedian(before) > 5 * np.nanmedian(e)


@pytest.mark.parametrize("seed, at", [(2, 600), (3, 700)])
def test_detections_missing_near_the_change_do_not_move_it(seed, at):
    """The change's frame is the split with the least error either side; a frame one offset could not read (the
    person out of view around the change) counted as no error for it, and pulled the split 10–12 frames late (it
    is now compared on the frames both offsets read; the 5 lost frames themselves are read right by neither)."""
    rig, kp, _, _ = _take({at: 5}, seed=seed)
    data = kp.data.copy()
    rng = np.random.default_rng(seed)
    for s in (at - 25 + rng.integers(0, 10), at + 5 + rng.integers(0, 10)):
        data[s:s + 8, 1] = np.nan
    parts = sync.run(rig, Keypoints2D(data, rig.names, "blazepose33", FPS))["steps"]["cam02"]
    assert len(parts) == 2 and 0 <= parts[1][0] - at <= 5 and abs(parts[1][1] + 5) < 0.25, parts


def test_two_losses_make_three_parts():
    rig, kp, _, _ = _take({500: 3, 1000: 4})
    parts = sync.run(rig, kp)["steps"]["cam02"]
    assert [round(d) for _, d in parts] == [0, -3, -7], parts
    assert abs(parts[1][0] - 500) <= 15 and abs(parts[2][0] - 1000) <= 15, parts


def test_one_offset_per_take_when_switched_off():
    rig, kp, _, _ = _take({700: 5})
    r = sync.run(rig, kp, sync.Config(min_step_s=0))
    assert "steps" not in r and not r["cameras"]["cam02"].get("steps")
    with pytest.raises(ValueError, match="min_step_s"):
        sync.Config(min_step_s=-1)


@pytest.mark.parametrize("seed", [0, 1])
def test_a_synchronised_take_gets_no_step_even_through_a_wrong_camera_pose(seed):
    """A camera-pose error makes the lag that fits best follow what the person does: each part would be tested
    against its neighbour's offset and fail; no step, no offset."""
    rig, kp, _, _ = _take(seed=seed)
    for given in (rig, moved_rig(rig, seed=seed + 3)):
        r = sync.run(given, kp)
        assert "steps" not in r and not any(r["offsets_frames"].values()), r["cameras"]


def test_the_stages_read_the_parts(tmp_path):
    """sync.json keeps the parts; triangulate reads each camera's detections at its parts' offsets."""
    from mocap.stages import triangulate
    from mocap.synth.groundtruth import SyntheticTake, write_session

    rig, kp, _, X = _take({700: 5})
    session = write_session(SyntheticTake(rig, kp, X, {}), tmp_path / "s", json_2d=False)
    r = json.loads(sync.main(session).read_text())
    assert [round(d) for _, d in r["steps"]["cam02"]] == [0, -5]
    assert sync.read_steps(triangulate.Session(session)) == r["steps"]
    pts = triangulate.run(rig, triangulate.session_keypoints(triangulate.Session(session), rig))
    err = np.linalg.norm(pts.xyz[:, 0] - X, axis=-1)
    raw = triangulate.run(rig, kp)
    err_raw = np.linalg.norm(raw.xyz[:, 0] - X, axis=-1)
    late = slice(760, FRAMES - 10)
    assert np.nanmedian(err[late]) < 0.6 * np.nanmedian(err_raw[late]), (np.nanmedian(err[late]),
                                                                         np.nanmedian(err_raw[late]))


def test_a_long_take_is_searched_block_by_block():
    """5 minutes at 30 fps: the whole take's lag search scores ~150 frames, one or none in a block; the blocks
    get a denser search of their own, else no block had a lag and no change was ever found."""
    X = blazepose_keypoints(body_motion(9000, 30.0))
    rig = ring_rig(RigSpec(n_cameras=4), X.reshape(-1, 3))
    data, _ = corrupt(np.moveaxis(rig.project(X), 0, 1), rig, "blazepose33", CorruptionSpec(1.0, 0.02, 0.05, seed=1))
    data[4500:-5, 1] = data[4505:, 1].copy()
    data[-5:, 1] = np.nan
    parts = sync.run(rig, Keypoints2D(data, rig.names, "blazepose33", 30.0))["steps"]["cam02"]
    assert [round(d) for _, d in parts] == [0, -5] and abs(parts[1][0] - 4500) <= 15, parts


def test_the_cameras_are_refined_on_the_parts_read_right():
    """The camera refinement runs sync's test on its rig; when a camera lost frames, the cameras are refined
    again on each part read at its offset (not on the later part misread by the lost frames)."""
    from mocap.bench.robustness import rig_errors
    from mocap.stages import rig_refine
    from mocap.stages.rig_lags import refine_with_lags

    rig, kp, _, _ = _take({700: 5})
    given = moved_rig(rig, seed=3)
    sync.forget_remembered()
    refined, report = refine_with_lags(given, kp, rig_refine.Config(), sync.Config())
    assert refined is not None and report["lags"]["refined_on_parts"] == ["cam02"], report.get("lags")
    clean = refine_with_lags(given, _take()[1], rig_refine.Config(), sync.Config())[0]
    (c, r), (c0, r0) = rig_errors(refined, rig), rig_errors(clean, rig)
    assert np.max(c) <= 1.5 * np.max(c0) + 0.5 and np.max(r) <= 1.5 * np.max(r0) + 0.005, (c, r, c0, r0)


@pytest.mark.shared_data
def test_a_cameras_pose_error_is_not_read_as_frames_lost(shared_data, tmp_path):
    """A synchronised take, the rig's cameras turned 3° and moved 15 cm: sync cut cam04 in two parts at +96 and −117
    frames (214 frames "lost" mid-take, beyond the ±120 searched), which fitted the pose error; on the true rig those
    parts took its error from 1.0 to 64.7 px. A change beyond the search range is no frames lost."""
    from scipy.spatial.transform import Rotation

    from mocap.cli import main as cli
    from mocap.session import Session
    from mocap.types import Rig

    out = tmp_path / "take"
    assert cli(["synth", "keypoints", str(out), "--bvh", str(shared_data / "bvh" / "cmu_01_01.bvh"), "--frames",
                "1200", "--cameras", "4", "--noise-px", "1", "--hdf5"]) == 0
    s = Session(out)
    rig = s.rig()
    kp = s.keypoints2d(rig)
    rng = np.random.default_rng(0)
    cams = [rig.cameras[0]]
    for c in rig.cameras[1:]:  # each camera but the first 3° and 15 cm off
        T = c.cam_from_world.copy()
        axis, t = rng.normal(size=3), rng.normal(size=3)
        R = Rotation.from_rotvec(np.radians(3) * axis / np.linalg.norm(axis)).as_matrix()
        T[:3, :3], T[:3, 3] = R @ T[:3, :3], R @ T[:3, 3] + 0.15 * t / np.linalg.norm(t)
        cams.append(c.with_pose(T))
    r = sync.run(Rig(tuple(cams)), kp)
    assert not r.get("steps") and not any(r["offsets_frames"].values()), (r["offsets_frames"], r.get("steps"))
