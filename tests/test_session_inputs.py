"""A session's keypoints read against its rig and session.toml: one camera is a clear error, a frame rate assumed or
overruled is said (from the new-user helper: a one-camera take crashed in numpy; OpenPose JSON ran at 30 fps unsaid;
session.toml's fps = 60 was ignored unsaid)."""

import numpy as np
import pytest
from conftest import toy_take

from mocap.cli import main as cli
from mocap.io.hdf5 import write_keypoints2d
from mocap.io.openpose import write_openpose
from mocap.io.rig_files import write_rig
from mocap.session import Session
from mocap.session_checks import _said
from mocap.synth import RigSpec
from mocap.types import Keypoints2D, Rig


def _session(tmp_path, cameras=3, fps=30.0, h5=True, toml=None):
    rig, kp, _, _ = toy_take(frames=40, rig_spec=RigSpec(n_cameras=cameras), fps=fps)
    root = tmp_path / "take"
    write_rig(rig, root / "calibration" / "rig.toml")
    if h5:
        write_keypoints2d(kp, root / "pose2d.h5")
    else:
        write_openpose(kp, root / "pose2d")
    if toml is not None:
        (root / "session.toml").write_text(toml)
    _said.clear()
    return Session(root), kp


def test_a_rig_of_one_camera_is_a_clear_error(tmp_path):
    session, kp = _session(tmp_path)
    one = Rig(session.rig().cameras[:1])
    write_rig(one, session.rig_path())
    write_keypoints2d(Keypoints2D(kp.data[:, :1], kp.camera_names[:1], kp.keypoint_set, kp.fps), session.pose2d_h5)
    with pytest.raises(ValueError, match=r"rig.toml: the rig has 1 camera \['cam01'\]: 3D needs two cameras or more"):
        session.keypoints2d()


def test_synth_refuses_one_camera(tmp_path):
    with pytest.raises(SystemExit, match="--cameras 1: a take needs two cameras or more"):
        cli(["synth", "keypoints", str(tmp_path / "one"), "--bvh", "unused.bvh", "--cameras", "1"])


def test_openpose_json_without_a_frame_rate_is_read_at_30_fps_and_says_so(tmp_path, caplog):
    session, _ = _session(tmp_path, fps=60.0, h5=False)
    with caplog.at_level("WARNING"):
        kp = session.keypoints2d()
        session.keypoints2d()  # every stage reads them: said once
    assert kp.fps == 30.0
    assert caplog.text.count("OpenPose JSON holds no frame rate and") == 1
    assert "give the cameras' rate as fps = ... in" in caplog.text
    caplog.clear()
    (session.root / "session.toml").write_text("fps = 60.0\n")
    with caplog.at_level("WARNING"):
        assert session.keypoints2d().fps == 60.0
    assert "frame rate" not in caplog.text


def test_a_frame_rate_that_differs_from_session_toml_is_said(tmp_path, caplog):
    session, _ = _session(tmp_path, fps=30.0, toml="fps = 60.0\n")
    with caplog.at_level("WARNING"):
        assert session.keypoints2d().fps == 30.0
    assert "its frame rate 30 fps differs from" in caplog.text
    assert "fps = 60: the keypoints are read at 30" in caplog.text
    caplog.clear()
    session, _ = _session(tmp_path / "b", fps=29.97, toml="fps = 30.0\n")  # within 1 %: the same rate, rounded
    with caplog.at_level("WARNING"):
        assert np.isclose(session.keypoints2d().fps, 29.97)
    assert "frame rate" not in caplog.text


def test_more_views_asked_per_point_than_the_rig_has_cameras_is_a_clear_error():
    from mocap.stages import triangulate

    rig, kp, _, _ = toy_take(frames=20, rig_spec=RigSpec(n_cameras=4))
    with pytest.raises(ValueError, match="triangulate.min_views = 5 but the rig has 4 cameras: no point is seen"):
        triangulate.run(rig, kp, triangulate.Config(min_views=5))


def test_each_run_says_its_input_warnings_again(tmp_path, caplog):
    """Said once per process, a batch worker's second session (or a second run in one Python) lost the warning from
    its own log: each run of the pipeline says them again."""
    from mocap.session_checks import forget_said

    session, _ = _session(tmp_path, fps=60.0, h5=False)
    with caplog.at_level("WARNING"):
        session.keypoints2d()
        session.keypoints2d()
        forget_said()  # what mocap.pipeline.run does first
        session.keypoints2d()
    assert caplog.text.count("OpenPose JSON holds no frame rate and") == 2
