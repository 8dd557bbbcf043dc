"""Issue 13: every malformed input gives a clear error naming the file (and camera, key or line)."""

import re

import numpy as np
import pytest
from test_bvh import toy_motion

from mocap.io.bvh import read_bvh, write_bvh

# --- BVH --------------------------------------------------------------------------------------------

@pytest.fixture
def bvh_text(tmp_path):
    return write_bvh(toy_motion(frames=5), tmp_path / "ok.bvh").read_text()


def _write(tmp_path, text, name="bad.bvh"):
    path = tmp_path / name
    path.write_bytes(text.encode())
    return path


def _line_of(text, needle):
    return text[: text.index(needle)].count("\n") + 1


def test_bvh_tolerates_crlf_tabs_and_extra_rows(tmp_path, bvh_text, caplog):
    ref = read_bvh(_write(tmp_path, bvh_text, "ref.bvh"))
    crlf = read_bvh(_write(tmp_path, bvh_text.replace("\n", "\r\n").replace(" ", "\t"), "crlf.bvh"))
    assert crlf.skeleton.joint_names == ref.skeleton.joint_names
    assert np.array_equal(crlf.rotations, ref.rotations) and crlf.fps == ref.fps
    last = bvh_text.rstrip("\n").rsplit("\n", 1)[1]
    with caplog.at_level("WARNING"):
        extra = read_bvh(_write(tmp_path, bvh_text + last + "\n\n", "extra.bvh"))
    assert extra.n_frames == 5 and np.array_equal(extra.root_positions, ref.root_positions)
    assert re.search(r"extra\.bvh: 1 data rows after the 5 that Frames: announces .*ignored", caplog.text)
    bom = read_bvh(_write(tmp_path, "\ufeff" + bvh_text.replace("\n", "\r"), "bom.bvh"))
    assert np.array_equal(bom.root_positions, ref.root_positions)


@pytest.mark.parametrize("cut", ["JOINT", "JOINT Spine", "OFFSET", "CHANNELS 3", "End Site", "{"])
def test_bvh_truncated_in_the_hierarchy(tmp_path, bvh_text, cut):
    k = bvh_text.index(cut, bvh_text.index("JOINT")) + len(cut)
    path = _write(tmp_path, bvh_text[:k])
    with pytest.raises(ValueError, match=r"bad\.bvh: line \d+: not a valid BVH file: .*(truncated|file ends)"):
        read_bvh(path)


def test_bvh_truncated_hierarchy_before_motion(tmp_path, bvh_text):
    k = bvh_text.index("JOINT LeftArm")
    path = _write(tmp_path, bvh_text[:k] + bvh_text[bvh_text.index("MOTION"):])
    with pytest.raises(ValueError, match=r"bad\.bvh: line \d+: .*MOTION inside the braces of 'Spine' \(opened on "
                                         r"line \d+\): the hierarchy is truncated"):
        read_bvh(path)


@pytest.mark.parametrize("header,message", [
    ("Frame Time: 0", "Frame Time must be positive"),
    ("Frame Time: -0.03", "Frame Time must be positive"),
    ("Frame Time: nan", "Frame Time must be finite"),
    ("Frame Time: fast", "Frame Time must be a number, got 'fast'"),
])
def test_bvh_bad_frame_time(tmp_path, bvh_text, header, message):
    path = _write(tmp_path, re.sub(r"Frame Time: \S+", header, bvh_text))
    line = _line_of(bvh_text, "Frame Time")
    with pytest.raises(ValueError, match=rf"bad\.bvh: line {line}: not a valid BVH file: {message}"):
        read_bvh(path)


def test_bvh_frame_counts(tmp_path, bvh_text):
    line = _line_of(bvh_text, "Frames:")
    for frames, message in (("0", rf"line {line}: .*Frames: 0: the file holds no motion"),
                            ("-2", "Frames: -2: the file holds no motion"),
                            ("2.5", "Frames must be an integer, got '2.5'"),
                            ("7", r"Frames: says 7 but the file has 5 data rows \(truncated file\?\)")):
        path = _write(tmp_path, re.sub(r"Frames: \d+", f"Frames: {frames}", bvh_text))
        with pytest.raises(ValueError, match=rf"bad\.bvh: .*{message}"):
            read_bvh(path)


def test_bvh_bad_data_rows(tmp_path, bvh_text):
    lines = bvh_text.split("\n")
    first = _line_of(bvh_text, "Frame Time") + 1  # 1-based line of the first data row
    n = len(lines[first - 1].split())
    short = lines.copy()
    short[first + 1] = " ".join(short[first + 1].split()[:-1])
    with pytest.raises(ValueError, match=rf"bad\.bvh: line {first + 2}: expected {n} values \(one per channel\), "
                                         rf"got {n - 1}"):
        read_bvh(_write(tmp_path, "\n".join(short)))
    word = lines.copy()
    word[first] = word[first].replace(word[first].split()[3], "abc", 1)
    with pytest.raises(ValueError, match=rf"bad\.bvh: line {first + 1}: value 'abc' is not a number"):
        read_bvh(_write(tmp_path, "\n".join(word)))
    inf = lines.copy()
    inf[first] = inf[first].replace(inf[first].split()[0], "inf", 1)
    with pytest.raises(ValueError, match=rf"bad\.bvh: line {first + 1}: value 'inf' is not a finite number"):
        read_bvh(_write(tmp_path, "\n".join(inf)))


@pytest.mark.parametrize("old,new,message", [
    ("HIERARCHY", "HIERARCHIE", "expected HIERARCHY, got 'HIERARCHIE'"),
    ("CHANNELS 3", "CHANNELS three", "CHANNELS count of 'Spine' must be an integer"),
    ("CHANNELS 3", "CHANNELS 9", "CHANNELS count must be 0 to 6"),
    ("Zrotation", "Wrotation", "unknown channel 'Wrotation'"),
    ("OFFSET 0.000000", "OFFSET x", "OFFSET value of 'Hips' must be a number, got 'x'"),
    ("JOINT Spine", "JOINT Hips", "joint name 'Hips' is used twice"),
    ("End Site", "End Point", "expected 'End Site', got 'End Point'"),
    ("MOTION", "", "unexpected 'Frames:'"),
])
def test_bvh_bad_hierarchy(tmp_path, bvh_text, old, new, message):
    path = _write(tmp_path, bvh_text.replace(old, new, 1))
    with pytest.raises(ValueError, match=rf"bad\.bvh: line \d+: not a valid BVH file: .*{re.escape(message)}"):
        read_bvh(path)


def test_bvh_unreadable_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.bvh: no such BVH file"):
        read_bvh(tmp_path / "missing.bvh")
    with pytest.raises(ValueError, match=r"empty\.bvh: empty file"):
        read_bvh(_write(tmp_path, "  \n", "empty.bvh"))
    (tmp_path / "bin.bvh").write_bytes(b"\x00\x01\x02HIERARCHY")
    with pytest.raises(ValueError, match=r"bin\.bvh: not a BVH file \(binary data\)"):
        read_bvh(tmp_path / "bin.bvh")


# --- capture .npz -----------------------------------------------------------------------------------

@pytest.fixture
def capture(tmp_path):
    from mocap.io.capture import write_capture

    m = toy_motion(frames=4)
    return write_capture(tmp_path / "body22.npz", m, points=np.zeros((4, 2, 3)), point_names=["a", "b"])


def _resave(tmp_path, capture, name="bad.npz", drop=(), **changes):
    z = dict(np.load(capture))
    for k in drop:
        del z[k]
    z.update(changes)
    np.savez(tmp_path / name, **z)
    return tmp_path / name


@pytest.mark.parametrize("change,message", [
    ({"drop": ["rotations"]}, "capture file has no array 'rotations'"),
    ({"fps": np.array(0.0)}, "array 'fps' must be positive and finite, got 0.0"),
    ({"fps": np.array(-30.0)}, "array 'fps' must be positive and finite"),
    ({"fps": np.array(np.nan)}, "array 'fps' must be positive and finite, got nan"),
    ({"fps": np.array("fast")}, "array 'fps' has dtype <U4, expected numbers"),
    ({"rotations": np.zeros((4, 3, 4))}, r"array 'rotations' has shape \(4, 3, 4\), expected \(4, 7, 4\)"),
    ({"rotations": np.zeros((4, 7))}, r"array 'rotations' has shape \(4, 7\), expected 3 dimensions"),
    ({"root_positions": np.zeros((5, 3))}, r"array 'root_positions' has shape \(5, 3\), expected \(4, 3\)"),
    ({"parents": np.array([0, 0, 1, 2, 1, 4, 5])}, "skeleton: joint 0 must be the only root"),
    ({"offsets": np.full((7, 3), np.nan)}, "array 'offsets' contains NaN"),
    ({"points": np.zeros((4, 3, 3))}, r"array 'points' has shape \(4, 3, 3\), expected \(4, 2, 3\)"),
    ({"camera_K": np.zeros((2, 3, 3))}, r"camera arrays \['camera_K'\] without 'camera_names'"),
    ({"joint_names": np.array([1, 2])}, "array 'joint_names' has dtype int64, expected strings"),
])
def test_malformed_capture_is_named(tmp_path, capture, change, message):
    from mocap.io.capture import read_capture

    path = _resave(tmp_path, capture, **change)
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: {message}"):
        read_capture(path)


def test_garbage_and_truncated_capture(tmp_path, capture):
    from mocap.io.capture import read_capture

    data = capture.read_bytes()
    for name, content in (("trunc.npz", data[: len(data) // 2]), ("junk.npz", b"not a zip at all"),
                          ("empty.npz", b"")):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError, match=rf"{re.escape(name)}: (not a capture file|array .* cannot be read)"):
            read_capture(tmp_path / name)
    (tmp_path / "take.bvh").write_text("HIERARCHY\nROOT Hips\n")  # not numpy's "pickled data": what it is not
    with pytest.raises(ValueError, match=r"take\.bvh: not a capture file \(an \.npz archive.*a \.bvh or \.fbx\?"):
        read_capture(tmp_path / "take.bvh")
    np.save(tmp_path / "one.npy", np.zeros(3))
    with pytest.raises(ValueError, match=r"one\.npy: not a capture file \(a single \.npy array"):
        read_capture(tmp_path / "one.npy")
    obj = _resave(tmp_path, capture, "obj.npz", rotations=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match=r"obj\.npz: array 'rotations' cannot be read \(ValueError: Object arrays"):
        read_capture(obj)  # never unpickled
    with pytest.raises(FileNotFoundError, match=r"none\.npz: capture file does not exist"):
        read_capture(tmp_path / "none.npz")


# --- pose2d.h5 / points3d .h5 -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def take():
    from conftest import toy_take

    return toy_take(frames=6, seed=2)


def _h5_edit(src, dst, fn):
    import shutil

    import h5py

    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        fn(f)
    return dst


def _replace(name, value):
    def fn(f):
        del f[name]
        f[name] = value
    return fn


def test_malformed_pose2d_h5_fails_at_read_time(tmp_path, take):
    from mocap.io.hdf5 import read_keypoints2d, write_keypoints2d

    _, kp, _, _ = take
    good = write_keypoints2d(kp, tmp_path / "good.h5")
    F, C, P, J = kp.shape
    cases = [
        (lambda f: f.__delitem__("keypoints"), "dataset 'keypoints' is missing"),
        (_replace("keypoints", np.zeros((F, C, J, 3))), r"dataset 'keypoints' has shape .*expected 5 dimensions"),
        (_replace("keypoints", np.zeros((F, C, P, J, 2))), r"dataset 'keypoints' has shape .*\(frames, cameras"),
        (_replace("keypoints", np.zeros((F, C, P, J + 1, 3))), f"keypoint set 'coco17' has 17 joints but the data "
                                                               f"has {J + 1}"),
        (_replace("keypoints", np.array([b"x"] * 3)), "dataset 'keypoints' has dtype |S1, expected numbers"),
        (lambda f: f.attrs.__setitem__("camera_names", ["a", "b"]), f"2 camera names .* but the data has {C}"),
        (lambda f: f.attrs.__setitem__("fps", -1.0), "attribute fps must be positive and finite"),
        (lambda f: f.attrs.__delitem__("keypoint_set"), "attribute 'keypoint_set' is missing"),
        (lambda f: f.attrs.__setitem__("keypoint_set", "body99"), "attribute keypoint_set: unknown keypoint set"),
        (lambda f: f.attrs.__setitem__("version", "two"), "attribute 'version' must be an integer"),
        (_replace("complete", np.ones(C + 1, bool)), r"dataset 'complete' has shape \(5,\), expected \(4,\)"),
    ]
    for k, (fn, message) in enumerate(cases):
        path = _h5_edit(good, tmp_path / f"pose2d_{k}.h5", fn)
        with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: {message}"):
            read_keypoints2d(path)
    (tmp_path / "garbage.h5").write_bytes(b"\x89HDF\r\n garbage")
    with pytest.raises(ValueError, match=r"garbage\.h5: not an HDF5 file"):
        read_keypoints2d(tmp_path / "garbage.h5")
    with pytest.raises(FileNotFoundError, match=r"absent\.h5: file does not exist"):
        read_keypoints2d(tmp_path / "absent.h5")


def test_malformed_points3d_h5_fails_at_read_time(tmp_path, take):
    from mocap.io.hdf5 import read_points3d, write_points3d
    from mocap.types import Points3D

    rig, kp, truth, _ = take
    F, J = truth.shape[:2]
    pts = Points3D(truth[:, None], np.zeros((F, 1, J)), np.ones((F, 1, J, 4), bool), rig.names, "coco17", kp.fps)
    good = write_points3d(pts, tmp_path / "good.h5")
    cases = [
        (lambda f: f.__delitem__("views"), "dataset 'views' is missing"),
        (_replace("xyz", np.zeros((F, J, 3))), "dataset 'xyz' has shape .*expected 4 dimensions"),
        (_replace("reproj_err", np.zeros((F, 1, J + 1))), rf"dataset 'reproj_err' has shape \({F}, 1, {J + 1}\)"),
        (_replace("views", np.ones((F, 1, J, 3), bool)), "3 camera names .* but the data has 3 cameras|4 camera names"),
        (_replace("views", np.full((F, 1, J, 4), 0.5)), "dataset 'views' has dtype float64, expected booleans"),
        (lambda f: f.attrs.__setitem__("info", "{not json"), "attribute info is not JSON"),
    ]
    for k, (fn, message) in enumerate(cases):
        path = _h5_edit(good, tmp_path / f"p3_{k}.h5", fn)
        with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: {message}"):
            read_points3d(path)


# --- calibration board TOML -------------------------------------------------------------------------

@pytest.mark.parametrize("line,message", [
    ('dictionary = "CharucoBoard"', r"unknown ArUco dictionary 'CharucoBoard'; expected one of \[.*'DICT_4X4_50'"),
    ('dictionary = "DICT_9X9_9"', "unknown ArUco dictionary 'DICT_9X9_9'"),
    ("dictionary = 4", "dictionary must be a string, got 4"),
    ("square_size = -0.04", "square_size must be positive, got -0.04"),
    ("square_size = 0", "square_size must be positive, got 0"),
    ('square_size = "4cm"', r"square_size must be a number \(metres\), got '4cm'"),
    ("squares_x = 5.5", "squares_x must be a whole number, got 5.5"),
    ("squares_x = true", "squares_x must be a whole number, got True"),
    ("marker_size = 0.05", "board 'board': marker_size must be between 0 and square_size"),
    ('legacy = "yes"', "legacy must be true or false"),
    ("squares_x = 100000000", r"squares_x = 100000000 is not a plausible board \(at most 1000\)"),
    ("squares_y = 1001", r"squares_y = 1001 is not a plausible board"),
    ("square_size = 50.0", r"square_size = 50.0 is not a plausible board \(at most 2 m\)"),
    ("squares_x = 15", r"board 'board': 15 x 7 squares need 52 markers, DICT_4X4_50 holds 50: a larger dictionary"),
])
def test_malformed_board_toml_is_named(tmp_path, line, message):
    from calibration.boards import load_board

    table = {"type": '"charuco"', "dictionary": '"DICT_4X4_50"', "squares_x": "5", "squares_y": "7",
             "square_size": "0.04", "marker_size": "0.03"}
    key = line.split(" = ")[0]
    table[key] = line.split(" = ", 1)[1]
    path = tmp_path / "board.toml"
    path.write_text("".join(f"{k} = {v}\n" for k, v in table.items()))
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: {message}"):
        load_board(str(path))


def test_malformed_checkerboard_toml_is_named(tmp_path):
    from calibration.boards import load_board

    path = tmp_path / "checker.toml"
    path.write_text('type = "checkerboard"\ncorners_x = [9]\ncorners_y = 6\nsquare_size = 0.025\n')
    with pytest.raises(ValueError, match=r"checker\.toml: corners_x must be a whole number, got \[9\]"):
        load_board(str(path))
    path.write_bytes(b'type = "checkerboard\n\xff')
    with pytest.raises(ValueError, match=r"checker\.toml: (not valid TOML|cannot read)"):
        load_board(str(path))


def test_huge_checkerboard_is_refused(tmp_path):
    from calibration.boards import load_board

    path = tmp_path / "checker.toml"
    path.write_text('type = "checkerboard"\ncorners_x = 9\ncorners_y = 1000\nsquare_size = 0.025\n')
    with pytest.raises(ValueError, match=r"checker\.toml: corners_y = 1000 is not a plausible board \(at most 999\)"):
        load_board(str(path))


# --- rig TOML: image sizes ----------------------------------------------------------------------------

@pytest.mark.parametrize("size", ["[9223372036854775807, 9223372036854775807]", "[1280, 100001]", "[1e30, 720]"])
def test_absurd_rig_image_size_is_named(tmp_path, size):
    from mocap.io.rig_files import read_rig, write_rig
    from mocap.types import Camera, Rig

    K = np.array([[1000.0, 0, 640], [0, 1000.0, 360], [0, 0, 1]])
    T = np.eye(4)
    T[2, 3] = 3.0
    path = write_rig(Rig((Camera("cam01", K, np.zeros(5), T, (1280, 720), "pinhole"),)), tmp_path / "rig.toml")
    path.write_text(path.read_text().replace("size = [1280, 720]", f"size = {size}"))
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: camera 'cam01': size .* is not a plausible "
                                         r"image size \(at most 100000 px per side\)"):
        read_rig(path)


# --- OpenPose JSON ------------------------------------------------------------------------------------

def test_malformed_openpose_json_names_the_file(tmp_path, take):
    from mocap.io.openpose import read_openpose, write_openpose

    rig, kp, _, _ = take
    root = tmp_path / "pose2d"
    bad = root / "cam02" / "cam02_000000000003_keypoints.json"
    for content, message in (('{"people": {"a": 1}}', "malformed OpenPose JSON: TypeError: 'people' must be a list"),
                             ('{"peeple": []}', "malformed OpenPose JSON: KeyError"),
                             ('{"people": [{"pose_keypoints_2d": [1, 2]}]}', "pose_keypoints_2d length 2 is not a"),
                             ('{"people": [{"pose_keypoints_2d": [1, 2, 0.9]}]}', "1 keypoints per person, but "),
                             ('{"people": [{"pose_keypoints_2d": ["a", 2, 3]}]}', "malformed OpenPose JSON"),
                             ("\x00\x01", "malformed OpenPose JSON")):
        write_openpose(kp, root)
        bad.write_text(content)
        with pytest.raises(ValueError, match=rf"^{re.escape(str(bad))}: camera 'cam02': {message}"):
            read_openpose(root, rig.names, kp.fps)
    for f in root.glob("*/*.json"):
        f.write_text('{"people": [{"pose_keypoints_2d": [1, 2, 0.9, 3, 4, 0.9]}]}')
    with pytest.raises(ValueError, match=r"cam01_000000000000_keypoints\.json: no known keypoint set has 2 joints"):
        read_openpose(root, rig.names, kp.fps)


# --- TRC ------------------------------------------------------------------------------------------------

def test_malformed_trc_names_file_and_line(tmp_path):
    from mocap.io.trc import read_trc, write_trc

    path = write_trc(tmp_path / "a.trc", np.zeros((3, 2, 3)), ["a", "b"], 30.0)
    text = path.read_text()
    lines = text.split("\n")
    lines[6] = "1\t0.0\tx\t0\t0\t0\t0\t0"
    path.write_text("\n".join(lines))
    with pytest.raises(ValueError, match=r"a\.trc: line 7: could not convert string to float: 'x'"):
        read_trc(path)
    lines[6] = "1\t0.0\t1.0"
    path.write_text("\n".join(lines))
    with pytest.raises(ValueError, match=r"a\.trc: line 7: expected 6 coordinates, got 1"):
        read_trc(path)
    path.write_text(text.replace("\tm\t", "\tfeet\t", 1))
    with pytest.raises(ValueError, match=r"a\.trc: line 3: Units must be m or mm, got 'feet'"):
        read_trc(path)
    path.write_text("junk")
    with pytest.raises(ValueError, match=r"a\.trc: not a TRC file"):
        read_trc(path)
