import json

import numpy as np
import pytest
from conftest import toy_take

from mocap.io.hdf5 import read_keypoints2d, read_points3d, write_keypoints2d, write_points3d
from mocap.io.openpose import read_openpose, write_openpose
from mocap.io.rig_files import write_rig
from mocap.io.trc import read_trc, write_trc
from mocap.keypoint_sets import get_keypoint_set, keypoint_set_for_count
from mocap.session import Session
from mocap.stages import triangulate
from mocap.types import Keypoints2D


@pytest.fixture(scope="module")
def take():
    return toy_take(frames=20, seed=1)


def test_keypoint_sets_are_consistent():
    for name, n in (("blazepose33", 33), ("coco17", 17), ("halpe26", 26)):
        ks = get_keypoint_set(name)
        assert len(ks.joints) == n and keypoint_set_for_count(n) == name
        assert ks.bones and ks.limbs
        perm = ks.flip_permutation
        assert np.array_equal(perm[perm], np.arange(n))
        for a, b in ks.pairs:
            assert ks.joints[a].replace("left", "right") == ks.joints[b]
    assert get_keypoint_set("blazepose33").index("mouth_left") in dict(get_keypoint_set("blazepose33").pairs)
    with pytest.raises(ValueError, match="unknown keypoint set 'body_99'.*blazepose33"):
        get_keypoint_set("body_99")


def test_openpose_json_round_trip(take, tmp_path):
    rig, kp, _, _ = take
    write_openpose(kp, tmp_path / "pose2d")
    files = sorted((tmp_path / "pose2d" / "cam01").iterdir())
    assert len(files) == 20 and files[3].name == "cam01_000000000003_keypoints.json"
    back = read_openpose(tmp_path / "pose2d", rig.names, kp.fps)
    assert back.keypoint_set == "coco17" and back.shape == kp.shape
    assert np.array_equal(np.isnan(back.data), np.isnan(kp.data))
    assert np.allclose(back.data, kp.data, atol=1e-4, equal_nan=True)


def test_openpose_json_errors_name_camera_and_file(take, tmp_path):
    rig, kp, _, _ = take
    root = tmp_path / "pose2d"
    with pytest.raises(FileNotFoundError, match="camera 'cam01': no keypoint folder"):
        read_openpose(root, rig.names, kp.fps)
    write_openpose(kp, root)
    for f in (root / "cam02").iterdir():
        f.unlink()
    with pytest.raises(ValueError, match="camera 'cam02': folder .*cam02 holds no .json files"):
        read_openpose(root, rig.names, kp.fps)
    write_openpose(kp, root)
    (root / "cam03" / "cam03_000000000005_keypoints.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"cam03_000000000005_keypoints\.json: camera 'cam03': malformed"):
        read_openpose(root, rig.names, kp.fps)
    write_openpose(kp, root)
    (root / "cam04" / "cam04_000000000019_keypoints.json").unlink()
    with pytest.raises(ValueError, match=r"different frame counts: .*'cam04': 19"):
        read_openpose(root, rig.names, kp.fps)
    write_openpose(kp, root)
    with pytest.raises(ValueError, match="files have 17 keypoints but keypoint set 'blazepose33' has 33"):
        read_openpose(root, rig.names, kp.fps, keypoint_set="blazepose33")
    with pytest.raises(ValueError, match="unknown keypoint set 'openpose_99'"):
        read_openpose(root, rig.names, kp.fps, keypoint_set="openpose_99")


def test_missing_keypoints_are_nan_not_zero(tmp_path):
    folder = tmp_path / "pose2d" / "c1"
    folder.mkdir(parents=True)
    kps = [0.0] * 51
    kps[:3] = [10.0, 20.0, 0.9]
    (folder / "f_0.json").write_text(json.dumps({"people": [{"pose_keypoints_2d": kps}]}))
    (folder / "f_1.json").write_text(json.dumps({"people": []}))
    kp = read_openpose(tmp_path / "pose2d", ["c1"], 30.0)
    assert kp.shape == (2, 1, 1, 17)
    assert np.allclose(kp.data[0, 0, 0, 0], [10, 20, 0.9])
    assert np.all(np.isnan(kp.data[0, 0, 0, 1:])) and np.all(np.isnan(kp.data[1]))


def test_hdf5_round_trips(take, tmp_path):
    rig, kp, truth, _ = take
    back = read_keypoints2d(write_keypoints2d(kp, tmp_path / "pose2d.h5"))
    assert back.camera_names == kp.camera_names and back.fps == kp.fps
    assert np.allclose(back.data, kp.data, atol=1e-3, equal_nan=True)
    pts = triangulate.run(rig, kp)
    back3 = read_points3d(write_points3d(pts, tmp_path / "p.h5"))
    assert np.array_equal(back3.xyz, pts.xyz, equal_nan=True) and np.array_equal(back3.views, pts.views)
    assert back3.info["stage"] == "triangulated"
    with pytest.raises(ValueError, match="not a mocap-pose2d file"):
        read_keypoints2d(tmp_path / "p.h5")
    (tmp_path / "junk.h5").write_text("junk")
    with pytest.raises(ValueError, match="junk.h5: not an HDF5 file"):
        read_points3d(tmp_path / "junk.h5")


def test_trc_round_trip(take, tmp_path):
    _, kp, truth, _ = take
    X = truth.copy()
    X[3, 2] = np.nan
    names = get_keypoint_set("coco17").joints
    path = write_trc(tmp_path / "a.trc", X, names, kp.fps)
    back, back_names, fps = read_trc(path)
    assert list(back_names) == list(names) and fps == kp.fps
    assert np.allclose(back, X, atol=1e-6, equal_nan=True)
    lines = path.read_text().splitlines()
    assert lines[0].startswith("PathFileType\t4") and lines[3].startswith("Frame#\tTime\tnose")


def test_keypoint_shapes_and_camera_mismatch(take, tmp_path):
    rig, kp, _, _ = take
    with pytest.raises(ValueError, match=r"expected shape \(frames, cameras, persons, joints, 3\)"):
        Keypoints2D(np.zeros((2, 3, 4)), ("a",), "coco17", 30.0)
    with pytest.raises(ValueError, match="4 cameras in the data but 3 camera names"):
        Keypoints2D(kp.data, kp.camera_names[:3], "coco17", 30.0)
    session = tmp_path / "s"
    write_rig(rig.subset(["cam01", "cam02", "cam03"]), session / "calibration" / "rig.toml")
    write_openpose(kp, session / "pose2d")
    with pytest.raises(ValueError, match=r"camera folders .* do not match rig .*rig.toml.*not in the rig: \['cam04'\]"):
        Session(session).keypoints2d()
    write_keypoints2d(kp, session / "pose2d.h5")
    with pytest.raises(ValueError, match=r"pose2d.h5: keypoint cameras .* do not match rig .*in the rig: \['cam04'"):
        Session(session).keypoints2d()


def test_session_finds_peer_calibrations(take, tmp_path):
    from mocap.io.rig_files import write_anipose_toml

    rig = take[0]
    calib = tmp_path / "calibration"
    calib.mkdir()
    (calib / "board.toml").write_text('type = "checkerboard"\ncorners_x = 9\ncorners_y = 6\nsquare_size = 0.025\n')
    write_anipose_toml(rig, calib / "Calib_scene.toml")
    assert Session(tmp_path).rig_path().name == "Calib_scene.toml"
    assert Session(tmp_path).rig().names == rig.names
    write_rig(rig, calib / "rig.toml")
    assert Session(tmp_path).rig_path().name == "rig.toml"
