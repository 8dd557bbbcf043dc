"""A rig whose world is not Z up (a Y-up tool, an Anipose / OpenCV camera frame): the motion is turned Z up when
the cameras and the performer both say so, and only then."""

import json

import numpy as np
import pytest
from conftest import toy_motion

from mocap.geometry.align import rigid_align, with_similarity
from mocap.geometry.rotations import axis_angle_to_matrix
from mocap.geometry.upright import rotation_to_z, world_turn
from mocap.keypoint_sets import get_keypoint_set
from mocap.synth import RigSpec, ring_rig

COCO = list(get_keypoint_set("coco17").joints)
Z = np.array([0.0, 0.0, 1.0])


def _take():
    X = toy_motion(200)
    return ring_rig(RigSpec(n_cameras=4), X.reshape(-1, 3)), X


def _angle(a, b):
    return np.degrees(np.arccos(np.clip(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b), -1, 1)))


def test_a_z_up_world_is_kept():
    rig, X = _take()
    Q, info = world_turn(rig, X, COCO)
    assert Q is None and info["why"] == "up is Z" and info["performer_tilt_deg"] < 5


def test_a_y_up_world_turns_back_by_exactly_a_right_angle():
    rig, X = _take()
    to_y = axis_angle_to_matrix(np.array([-np.pi / 2, 0.0, 0.0]))  # Z → +Y
    rig_y, X_y = with_similarity(rig, X, 1.0, to_y, np.array([0.5, 1.0, -2.0]))
    Q, info = world_turn(rig_y, X_y, COCO)
    assert Q is not None and info["turned_deg"] == 90.0 and info["up"] == [0.0, 1.0, 0.0]
    assert np.allclose(Q @ to_y, np.eye(3), atol=1e-12)  # snapped to the axis: the given world's turn undone


def test_a_camera_frame_world_turns_to_the_performer_up():
    """Anipose / OpenCV: the world is the first camera's frame (Y down, pitched): up is the performer's, not an
    axis (the camera looks down a few degrees)."""
    rig, X = _take()
    c = rig.cameras[0]
    rig_c, X_c = with_similarity(rig, X, 1.0, c.R, c.cam_from_world[:3, 3])
    Q, info = world_turn(rig_c, X_c, COCO)
    true_up = c.R @ Z
    assert Q is not None and _angle(true_up, -np.array([0, 1.0, 0])) > 3  # pitched: not an axis
    assert _angle(Q @ true_up, Z) < 1.0, info


def test_a_performer_lying_under_upright_cameras_or_cameras_that_disagree_keep_the_world():
    rig, X = _take()
    lying = X @ axis_angle_to_matrix(np.array([np.pi / 2, 0.0, 0.0])).T
    Q, info = world_turn(rig, lying, COCO)
    assert Q is None and "disagree" in info["why"] and info["performer_tilt_deg"] > 80
    rng = np.random.default_rng(0)  # cameras rolled every which way: no up from them
    rolled = type(rig)(tuple(c.with_pose(np.block([[axis_angle_to_matrix(np.array([0, 0, a])) @ c.R,
                                                     (axis_angle_to_matrix(np.array([0, 0, a]))
                                                      @ c.cam_from_world[:3, 3])[:, None]], [np.zeros((1, 3)), 1]]))
                             for c, a in zip(rig.cameras, rng.uniform(-np.pi, np.pi, 4) + [0, 2, 4, 1], strict=True)))
    Q, info = world_turn(rolled, X @ axis_angle_to_matrix(np.array([np.pi / 2, 0, 0])).T, COCO)
    assert Q is None, info
    assert world_turn(rig, X, ["nose"])[1]["why"].startswith("no clear up")  # no shoulders: nothing to say


def test_rotation_to_z():
    for up in ([0, 1.0, 0], [0, -1.0, 0], [1.0, 0, 0], [0, 0, -1.0], [0, 0, 1.0], [0.3, -0.9, 0.2]):
        u = np.asarray(up) / np.linalg.norm(up)
        R = rotation_to_z(u)
        assert np.allclose(R @ u, Z, atol=1e-12) and np.allclose(R @ R.T, np.eye(3)) and np.linalg.det(R) > 0


def test_the_fit_turns_a_y_up_rig_and_the_motion_is_the_z_up_one(tmp_path):
    from pipeline_synth import synthetic_session

    from mocap.io.capture import read_capture
    from mocap.io.rig_files import read_rig, write_rig
    from mocap.motion import turn_world
    from mocap.pipeline import run_stages
    from mocap.session import Session
    from mocap.stages import fit

    ref = synthetic_session(tmp_path / "z", frames=60)
    turned = synthetic_session(tmp_path / "y", frames=60)
    to_y = axis_angle_to_matrix(np.array([-np.pi / 2, 0.0, 0.0]))
    path = Session(turned).rig_path()
    write_rig(with_similarity(read_rig(path), np.zeros((0, 3)), 1.0, to_y, np.array([0.3, 1.2, 4.0]))[0], path)
    for s in (ref, turned):
        run_stages(s, settings=None, only=["sync", "triangulate", "refine", "fit"], progress=False)
    a, _ = read_capture(Session(ref).motion("body22"))
    b, _ = read_capture(Session(turned).motion("body22"))
    pa, pb = a.fk()[1], b.fk()[1]
    world = json.loads((Session(turned).motion_dir / "body22.gaps.json").read_text())["world_up"]
    kept = json.loads((Session(ref).motion_dir / "body22.gaps.json").read_text())["world_up"]
    assert kept["why"] == "up is Z" and world["why"] == "the cameras and the performer agree that up is not Z"
    # the same motion, turned rigidly: the performer's up in the Z-up world (this synthetic body leans 9°, a
    # real walk ~1°: what the turn cannot know) is Z in the turned one
    R, t = rigid_align(pa.reshape(-1, 3), pb.reshape(-1, 3))
    d = np.linalg.norm(pa.reshape(-1, 3) @ R.T + t - pb.reshape(-1, 3), axis=1)
    assert np.median(d) < 1e-4 and d.max() < 0.02  # not exactly invariant to a turn: median 0.02, max 11.7 mm
    assert np.degrees(np.arccos(np.clip(R @ kept["performer_up"] @ Z, -1, 1))) < 0.1
    assert np.degrees(np.arccos(np.clip(world["performer_up"] @ Z, -1, 1))) > 80 and world["turned_deg"] > 80
    assert abs(np.nanpercentile(pb[..., 2].min(1), 2)) < 0.005  # the floor at 0 (set from the keypoints)
    # the capture keeps the turn: undone, the motion is in the given (Y-up) world, as the rig and the points
    T = read_capture(Session(turned).motion("body22"))[1]["world_from_given"]
    back = turn_world(b, T[:3, :3].T, -T[:3, :3].T @ T[:3, 3]).fk()[1]
    d = np.linalg.norm(back - (pa @ to_y.T + np.array([0.3, 1.2, 4.0])), axis=-1)
    assert np.median(d) < 1e-4 and d.max() < 0.02
    assert "world_from_given" not in read_capture(Session(ref).motion("body22"))[1]
    run_stages(turned, settings=None, only=["fit"], progress=False)  # nothing changed: not redone
    assert read_capture(Session(turned).motion("body22"))[0].fk()[1] == pytest.approx(pb)
    with pytest.raises(ValueError, match="fit.world_up must be auto or z, got 'y'"):
        fit.Config(world_up="y")


def test_turn_world_moves_the_root_and_keeps_the_skeleton():
    from body_synth import body_motion

    from mocap.motion import turn_world

    m = body_motion(30)
    Q, t = axis_angle_to_matrix(np.array([0.4, -1.1, 0.3])), np.array([1.0, -2.0, 0.5])
    turned = turn_world(m, Q, t)
    assert np.allclose(turned.fk()[1], m.fk()[1] @ Q.T + t, atol=1e-12)
    assert np.array_equal(turned.skeleton.offsets, m.skeleton.offsets)
    assert np.array_equal(turned.rotations[:, 1:], m.rotations[:, 1:])
    with pytest.raises(ValueError, match="expected a 3x3 rotation"):
        turn_world(m, 2 * np.eye(3), t)
