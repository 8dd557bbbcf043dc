"""A camera moved mid-take (a bumped tripod): rig_refine finds the move (mocap.stages.rig_moves), every later stage
reads that camera's detections back into its pose before (mocap.geometry.camera_moves); a camera that stayed put
gets no move."""

import dataclasses
import json

import numpy as np
import pytest
from body_synth import blazepose_keypoints, body_motion

from mocap.bench.robustness import moved_rig
from mocap.geometry.camera_moves import CameraMove, apply_moves, as_detected, project_moved, read_back, read_forth
from mocap.geometry.rotations import axis_angle_to_matrix
from mocap.io.camera_moves import moves_json, read_moves
from mocap.io.hdf5 import write_keypoints2d
from mocap.io.rig_files import write_rig
from mocap.report.calibration_html import calibration_html, moves_html
from mocap.session import Session
from mocap.stages import rig_refine
from mocap.stages.rig_moves import look_for_moves, search
from mocap.synth import CorruptionSpec, RigSpec, corrupt, ring_rig
from mocap.types import Camera, Keypoints2D, Rig

FRAMES, FPS, AT = 1200, 60.0, 700


def _take(bump: tuple[float, float] | None = (0.5, 0.01), cam: int = 1, seed: int = 0):
    """4 cameras, σ 1 px, 2 % outliers, 5 % dropouts; camera ``cam`` turned ``bump[0]``° and shifted ``bump[1]`` m
    from frame AT on (its detections there are those of the moved camera). (rig, keypoints, truth, moved pose)."""
    X = blazepose_keypoints(body_motion(FRAMES, FPS, seed=seed))
    rig = ring_rig(RigSpec(n_cameras=4), X.reshape(-1, 3))
    data, _ = corrupt(np.moveaxis(rig.project(X), 0, 1), rig, "blazepose33", CorruptionSpec(1.0, 0.02, 0.05, seed=1))
    pose = None
    if bump:
        moved = moved_rig(rig, seed=11 + seed, deg=(bump[0], bump[0]), metres=(bump[1], bump[1])).cameras[cam]
        data[AT:, cam, ..., :2] += (moved.project(X[AT:]) - rig.cameras[cam].project(X[AT:]))[:, None]
        pose = moved.cam_from_world
    return rig, Keypoints2D(data, rig.names, "blazepose33", FPS), X, pose


def _xy(kp: Keypoints2D) -> np.ndarray:
    return rig_refine._observations(kp, rig_refine.Config())[0]


def find_moves(given, kp):
    """What the stage does: the cameras refined, a move looked for on that rig, refined again without it."""
    cfg = rig_refine.Config()
    refined, report = rig_refine.run(given, kp, cfg)
    return look_for_moves(given, refined, kp, cfg, report, lambda k, r: rig_refine._observations(k, cfg)[0],
                          lambda k: rig_refine.run(given, k, cfg))


def test_a_bumped_camera_is_found_with_its_frame_and_pose():
    rig, kp, _, pose = _take()
    new, moves, report = find_moves(rig, kp)
    found = report["camera_moves"]
    assert [m.camera for m in moves] == ["cam02"], found
    m = moves[0]
    assert abs(m.from_frame - AT) <= 3 and m.to_frame is None, (m.from_frame, m.to_frame)
    assert abs(found["cameras"]["cam02"]["turn_deg"] - 0.5) < 0.1, found["cameras"]["cam02"]
    turn = np.degrees(np.arccos(np.clip((np.trace(m.cam_from_world[:3, :3] @ pose[:3, :3].T) - 1) / 2, -1, 1)))
    assert turn < 0.05, turn
    for c in range(4):  # the true rig (not refined: nothing to gain once the moved part is left out)
        assert np.array_equal(new.cameras[c].cam_from_world, rig.cameras[c].cam_from_world)
    assert report["applied"] and not report["rig_refined"]
    h = found["cameras"]["cam02"]["heldout_px"]
    assert h["own_pose"] < 0.5 * h["rig_pose"], h


def test_a_bump_is_found_when_the_sampled_frames_fall_every_two_blocks():
    # a long take samples every ceil(F / moves_frames)-th frame: a step of two 0.5 s blocks (F = 9,000 at 60 fps)
    # put every sample in an even block, nothing held out, the move never found; here the same step on 1,200
    rig, kp, _, _ = _take()
    cfg = dataclasses.replace(rig_refine.Config(), moves_frames=FRAMES // 60)  # frames 0, 60, 120, ...
    report = search(rig, _xy(kp), FPS, cfg)
    assert report["best"] == ("cam02", (AT, FRAMES)), report["best"]
    assert report["cameras"]["cam02"]["heldout_px"]["own_pose"] < 2.0, report["cameras"]["cam02"]


@pytest.mark.parametrize("seed", [0, 1])
def test_no_move_on_cameras_that_stayed_put(seed):
    rig, kp, _, _ = _take(None, seed=seed)
    assert find_moves(rig, kp)[1] == []
    given = moved_rig(rig, seed=3 + seed)  # a rig whose cameras are all 1–2° off, refined as the stage does: none
    _, moves, report = find_moves(given, kp)
    assert report["applied"] and moves == [] and report["camera_moves"]["searched"]
    report = {"applied": False, "moved_too_far": ["cam03"]}  # refused (off too far): the errors follow the
    out = look_for_moves(given, None, kp, rig_refine.Config(), report, None, None)  # performer
    assert out[:2] == (None, []) and "off further" in out[2]["camera_moves"]["reason"]


def test_reading_back_puts_the_detections_where_the_rig_pose_sees_them():
    rig, kp, X, _ = _take()
    new, moves, _ = find_moves(rig, kp)
    fixed = apply_moves(kp, new, moves)
    clean = rig.cameras[1].project(X)
    late = np.s_[AT + 10:]
    before = np.nanmedian(np.linalg.norm(kp.xy[late, 1, 0] - clean[late], axis=-1))
    after = np.nanmedian(np.linalg.norm(fixed.xy[late, 1, 0] - clean[late], axis=-1))
    assert before > 5 and after < 1.5, (before, after)
    assert np.array_equal(fixed.data[:AT], kp.data[:AT], equal_nan=True)  # before the move, and every other camera
    assert np.array_equal(fixed.data[:, [0, 2, 3]], kp.data[:, [0, 2, 3]], equal_nan=True)
    assert np.array_equal(np.isnan(fixed.xy), np.isnan(kp.xy))


def test_read_back_is_exact_for_a_turn_and_close_for_a_small_shift():
    cam = Camera("c", [[1000, 0, 960], [0, 1000, 540], [0, 0, 1]], [-0.1, 0.02, 0.001, 0, 0], np.eye(4), (1920, 1080))
    X = np.random.default_rng(0).uniform([-1, -1, 3], [1, 1, 5], (200, 3))
    T = np.eye(4)
    T[:3, :3] = axis_angle_to_matrix(np.radians([0.4, -0.7, 0.3]))
    uv = cam.with_pose(T).project(X)  # turned: every depth reads back exactly
    assert np.abs(read_back(cam, T, 4.0, uv) - cam.project(X)).max() < 1e-6
    T[:3, 3] += [0.02, 0, 0]  # and shifted 2 cm: off by about 2 cm × f × |1/z − 1/4 m| (z in 3–5 m)
    got = read_back(cam, T, 4.0, cam.with_pose(T).project(X))
    err = np.abs(got - cam.project(X)).max()
    assert 0.5 < err < 0.02 * 1000 * (1 / 3 - 1 / 4) * 1.2, err
    uv = cam.with_pose(T).project(X)  # read back and forth again: the pixels as seen, whatever the shift
    assert np.abs(read_forth(cam, T, 4.0, read_back(cam, T, 4.0, uv)) - uv).max() < 1e-6


def test_moves_file_round_trip_and_bad_files(tmp_path):
    m = CameraMove("cam02", 700, np.eye(4), 4.2)
    path = tmp_path / "moves.json"
    path.write_text(moves_json([m]))
    back = read_moves(path)
    assert back[0].camera == "cam02" and back[0].from_frame == 700 and back[0].depth_m == 4.2
    bad = {"format": "mocap-camera-moves", "version": 1,
           "moves": [{"camera": "cam02", "from_frame": -1, "cam_from_world": np.eye(4).tolist(), "depth_m": 4}]}
    path.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="moves\\[0\\].*from_frame must be a whole number ≥ 0"):
        read_moves(path)
    bad["moves"][0] |= {"from_frame": 5, "cam_from_world": (2 * np.eye(4)).tolist()}
    path.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="not a proper rotation"):
        read_moves(path)
    bad["moves"][0] |= {"cam_from_world": np.eye(4).tolist(), "camera": "../x"}
    path.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="not a safe file name"):
        read_moves(path)
    path.write_text('{"moves": []}')
    with pytest.raises(ValueError, match="not a camera moves file"):
        read_moves(path)
    with pytest.raises(ValueError, match="not a camera of the rig"):
        apply_moves(Keypoints2D(np.zeros((2, 1, 1, 33, 3)), ("a",), "blazepose33", 30.0),
                    Rig((Camera("a", np.eye(3), [0] * 5, np.eye(4), (10, 10)),)), [CameraMove("b", 1, np.eye(4), 1)])


def test_settings_are_checked():
    for bad in ({"moves_min_part_s": -1}, {"moves_min_gain": 0}, {"moves_frames": 3}):
        with pytest.raises(ValueError, match="moves_min_part_s must be ≥ 0"):
            rig_refine.Config(**bad)
    rig, kp, _, _ = _take()
    report = search(rig, _xy(kp), FPS, rig_refine.Config(moves_min_part_s=0))
    assert report["best"] is None and "switched off" in report["reason"]
    report = search(rig, _xy(kp), FPS, rig_refine.Config(moves_min_part_s=15))
    assert report["best"] is None and "shorter than twice" in report["reason"]


def test_the_stage_writes_the_move_and_later_stages_read_the_camera_back(tmp_path):
    rig, kp, X, _ = _take()
    root = tmp_path / "take"
    (root / "calibration").mkdir(parents=True)
    write_rig(rig, root / "calibration" / "rig.toml")
    write_keypoints2d(kp, root / "pose2d.h5")
    (root / "session.toml").write_text(f"fps = {FPS}\n")
    rig_refine.main(root)
    report = json.loads((root / "calibration" / "refined" / "report.json").read_text())
    assert report["applied"] and "cam02 moved mid-take" in report["reason"], report["reason"]
    assert [m["camera"] for m in report["camera_moves"]["moves"]] == ["cam02"]
    s = Session(root)
    assert s.camera_moves_file() is not None and s.camera_moves_file() in s.keypoint_inputs()
    read = s.keypoints2d()
    clean = rig.cameras[1].project(X[AT + 10:])
    assert np.nanmedian(np.linalg.norm(read.xy[AT + 10:, 1, 0] - clean, axis=-1)) < 1.5
    assert np.allclose(s.keypoints2d(moves=False).data, kp.data, atol=1e-3, equal_nan=True)  # as stored
    # the review videos and crops draw the moved part where the video shows it: the 3D through the moved pose,
    # the detections as detected (not through the rig pose, 10+ px off there)
    moves, cam = s.camera_moves(), s.rig().cameras[1]
    seen = project_moved(cam, moves, X)
    assert np.nanmedian(np.linalg.norm(seen[AT + 10:] - kp.xy[AT + 10:, 1, 0], axis=-1)) < 1.5
    assert np.nanmedian(np.linalg.norm(cam.project(X[AT + 10:]) - kp.xy[AT + 10:, 1, 0], axis=-1)) > 5
    assert np.allclose(seen[:AT - 10], cam.project(X[:AT - 10]))
    for t in (AT - 5, AT, AT + 20):  # one frame at a time, as the crops draw it: the same
        assert np.allclose(project_moved(cam, moves, X[t: t + 1], t)[0], seen[t])
    lag = project_moved(cam, moves, X, 0, 3.0)  # a camera 3 frames late: its move 3 frames earlier in the take
    f0, pose = moves[0].from_frame, moves[0].cam_from_world
    assert np.allclose(lag[f0 - 3], cam.with_pose(pose).project(X[f0 - 3]))
    assert np.allclose(lag[f0 - 4], cam.project(X[f0 - 4]))
    assert np.allclose(as_detected(cam, moves, read.xy[AT:, 1, 0], AT), kp.xy[AT:, 1, 0], atol=1e-3, equal_nan=True)
    html = moves_html(report)
    assert "Camera cam02 moved mid-take: in frames 7" in html and "Check its mount" in html
    assert "&lt;b&gt;" in moves_html({"camera_moves": {"moves": [{"camera": "<b>", "from_frame": 3}]}})


def test_not_looked_for_when_sync_reads_a_camera_in_parts_and_the_page_says_what_was_refined():
    rig, kp, _, _ = _take()
    report = {"applied": False, "lags": {"applied_frames": {"cam02": 4.0}, "refined_on_parts": ["cam02"]}}
    out = look_for_moves(rig, None, kp, rig_refine.Config(), report, None, None)
    assert out[:2] == (None, []) and "different time offsets" in out[2]["camera_moves"]["reason"]
    _, _, report = find_moves(rig, kp)  # a move on a rig the refinement left as given: "not applied" is said of
    html = calibration_html(report | {"world_from": ["cam01", "cam03"]})  # the refinement, and its world frame
    assert "Camera refinement from the performer: not applied" in html and "would follow" in html
    assert "Camera cam02 moved mid-take" in html


def test_the_stage_writes_no_moves_on_a_take_without_one_and_removes_a_stale_file(tmp_path):
    rig, kp, _, _ = _take(None)
    root = tmp_path / "take"
    (root / "calibration" / "refined").mkdir(parents=True)
    write_rig(rig, root / "calibration" / "rig.toml")
    write_keypoints2d(kp, root / "pose2d.h5")
    (root / "session.toml").write_text(f"fps = {FPS}\n")
    stale = root / "calibration" / "refined" / "moves.json"
    stale.write_text(moves_json([CameraMove("cam02", 5, np.eye(4), 4.0)]))
    rig_refine.main(root, overwrite=True)
    assert not stale.exists() and Session(root).camera_moves_file() is None


def test_a_bumped_camera_among_several_people_is_fitted_to_the_same_peoples_points(tmp_path):
    """Two people, slots shuffled in every view, cam02 bumped 1° / 20 mm from frame AT: the moved part's pose comes
    from each person's detections against that person's points. The association decides who is in which slot; with
    cam02's moved part hidden, associated anew, it chose otherwise (when one person was followed: A loses more
    detections to the hiding than B, B is out of cam02's view there), and cam02's pose was fitted to the other
    person's points (119° / 10 m on a four-person take)."""
    rng = np.random.default_rng(5)
    A = blazepose_keypoints(body_motion(FRAMES, FPS, seed=0))
    B = blazepose_keypoints(body_motion(FRAMES, FPS, seed=1)) + np.array([2.5, 0.0, 0.0])
    X = np.stack([A, B], axis=1)  # (F, 2, J, 3)
    rig = ring_rig(RigSpec(n_cameras=4), X.reshape(-1, 3))
    moved = moved_rig(rig, seed=11, deg=(1.0, 1.0), metres=(0.02, 0.02)).cameras[1]
    data = np.empty((FRAMES, 4, 2, 33, 3))
    for p in range(2):
        uv = np.moveaxis(rig.project(X[:, p]), 0, 1)  # (F, C, J, 2)
        uv[AT:, 1] = moved.project(X[AT:, p])
        data[:, :, p] = corrupt(uv, rig, "blazepose33", CorruptionSpec(1.0, 0.0, 0.02, seed=p))[0][:, :, 0]
    data[AT:, 1, 1] = np.nan  # B out of cam02's view while it is bumped
    data[:100, 0, 0] = np.nan  # A hidden from cam01 for a while: A has more detections than B, fewer once cam02's
    order = rng.permuted(np.tile([0, 1], (FRAMES, 4, 1)), axis=2)  # moved part is hidden; slots in any order
    data = np.take_along_axis(data, order[..., None, None], axis=2)
    root = tmp_path / "two"
    (root / "calibration").mkdir(parents=True)
    write_rig(rig, root / "calibration" / "rig.toml")
    write_keypoints2d(Keypoints2D(data, rig.names, "blazepose33", FPS), root / "pose2d.h5")
    (root / "session.toml").write_text(f"fps = {FPS}\n")
    (root / "mocap.toml").write_text("[detect]\npersons = 2\n")
    rig_refine.main(root)
    report = json.loads((root / "calibration" / "refined" / "report.json").read_text())
    found = report["camera_moves"]
    assert [m["camera"] for m in found["moves"]] == ["cam02"], found
    move = found["moves"][0]
    assert abs(move["from_frame"] - AT) <= 3
    assert abs(move["turn_deg"] - 1.0) < 0.15 and abs(move["shift_mm"] - 20) < 15, move


def test_a_move_further_than_a_bump_is_not_read_back(caplog):
    """A part fitted to a pose further from the rig's than rig_refine.max_move_deg / max_move_m is not a bump (a
    camera re-placed, or a fit gone wrong): its detections are not read back, and the log and report say so."""
    import dataclasses

    rig, kp, _, _ = _take(bump=(1.0, 0.01))
    cfg = dataclasses.replace(rig_refine.Config(), max_move_deg=0.6)
    refined, report = rig_refine.run(rig, kp, cfg)
    with caplog.at_level("WARNING", logger="mocap.stages.rig_moves"):
        new, moves, out = look_for_moves(rig, refined, kp, cfg, report,
                                         lambda k, r: rig_refine._observations(k, cfg)[0],
                                         lambda k: rig_refine.run(rig, k, cfg))
    assert moves == [] and new is refined
    why = out["camera_moves"]["rejected"]["cam02"]["rejected"]
    assert "more than a bump (rig_refine.max_move_deg = 0.6°" in why, why
    assert "cam02 seems to change pose in frames 7" in caplog.text and "not read back" in caplog.text
    html = moves_html(out)  # and the report page says it
    assert "Camera cam02 seems to change pose in frames 7" in html and "were not read back" in html, html
    assert "max_move_deg = 0.6°" in html and "moved mid-take" not in html
    assert "&lt;i&gt;" in moves_html({"camera_moves": {"rejected": {"<i>": {"span": [3, 9], "rejected": "x"}}}})


def test_a_bumped_camera_is_found_when_another_camera_lags():
    """cam02 bumped at frame AT and cam03 3 frames late (a rig not hardware-synchronised): the cameras are refined on
    keypoints shifted back by sync's offset, and the move is looked for there too (it was not looked for at all:
    10–20 mm on a take of 5 mm). A lagging camera's own move is told in its frames as detected."""
    from mocap.stages import sync
    from mocap.stages.rig_lags import refine_with_lags
    from mocap.stages.rig_moves import _as_detected

    rig, kp, X, pose = _take(bump=(1.0, 0.01), cam=1)
    data = kp.data.copy()
    data[:, 2] = sync.shift_tracks(data[:, 2], -3.0)  # cam03 sees at t + 3 what the others see at t
    kp = Keypoints2D(data, kp.camera_names, kp.keypoint_set, kp.fps)
    cfg = rig_refine.Config()
    refined, report = refine_with_lags(rig, kp, cfg, sync.Config())
    assert abs(report["lags"]["applied_frames"].get("cam03", 0) - 3.0) < 0.2, report["lags"]
    _, moves, out = look_for_moves(rig, refined, kp, cfg, report, lambda k, r: rig_refine._observations(k, cfg)[0],
                                   lambda k: rig_refine.run(rig, k, cfg))
    assert [m.camera for m in moves] == ["cam02"], out["camera_moves"]
    assert abs(moves[0].from_frame - AT) <= 3, moves[0].from_frame
    turn = np.degrees(np.arccos(np.clip((np.trace(moves[0].cam_from_world[:3, :3] @ pose[:3, :3].T) - 1) / 2, -1, 1)))
    assert turn < 0.1, turn
    m = CameraMove("cam03", 700, np.eye(4), 3.0, 900)  # found at the others' frame 700: the camera's own 703
    assert (_as_detected(m, 2.6, FRAMES).from_frame, _as_detected(m, 2.6, FRAMES).to_frame) == (703, 903)
    assert _as_detected(m, -800.0, FRAMES).from_frame == 0 and _as_detected(m, 0.0, FRAMES) is m
