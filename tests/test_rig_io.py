import re

import numpy as np
import pytest

from mocap.io.opencv_yaml import read_opencv_yaml, write_opencv_yaml
from mocap.io.rig_files import read_anipose_toml, read_rig, write_anipose_toml, write_rig
from mocap.synth import RigSpec, ring_rig
from mocap.types import Camera, Rig


@pytest.fixture
def rig():
    pts = np.random.default_rng(0).uniform(-1, 1, size=(100, 3)) + [0, 0, 1]
    base = ring_rig(RigSpec(n_cameras=3), pts)
    fish = base[2]
    fish = Camera("wide", fish.K, [0.01, -0.002, 0.0003, -0.00004], fish.cam_from_world, fish.size, "fisheye")
    return Rig((base[0], base[1], fish))


def same_projection(a: Rig, b: Rig, atol=1e-9):
    X = np.random.default_rng(1).uniform(-1, 1, size=(50, 3)) + [0, 0, 1]
    return a.names == b.names and np.allclose(a.project(X), b.project(X), atol=atol)


def test_own_format_round_trips_losslessly(rig, tmp_path):
    path = write_rig(rig, tmp_path / "rig.toml")
    back = read_rig(path)
    for a, b in zip(rig, back, strict=True):
        assert a.name == b.name and a.model == b.model and a.size == b.size
        assert np.array_equal(a.K, b.K) and np.array_equal(a.dist, b.dist)
        assert np.array_equal(a.cam_from_world, b.cam_from_world)
    assert path.read_text().startswith("# Camera rig")


@pytest.mark.parametrize("unit", ["m", "mm"])
def test_anipose_toml_round_trips(rig, tmp_path, unit):
    path = write_anipose_toml(rig, tmp_path / "calibration.toml", length_unit=unit)
    assert same_projection(read_rig(path), rig)
    assert same_projection(read_anipose_toml(path, length_unit=unit), rig)


def test_pose2sim_tables_named_after_the_calibration_folders_are_read_with_the_videos_names(rig, tmp_path):
    """Pose2Sim's Calib*.toml names its tables and cameras after the intrinsics folders ([int_cam01_img]): the
    file was refused as "not a rig file"; its cameras are named as their videos (cam01), a byte-order mark and
    Windows line ends are read too."""
    pinhole = Rig(tuple(Camera(f"cam0{k + 1}", c.K, c.dist, c.cam_from_world, c.size) for k, c in
                        enumerate(rig.cameras[:2])))
    text = write_anipose_toml(pinhole, tmp_path / "a.toml").read_text()
    for k in (1, 2):
        text = text.replace(f'name = "cam0{k}"', f'name = "int_cam0{k}_img"')
    text = re.sub(r"\[cam_(\d)\]", lambda m: f"[int_cam0{int(m.group(1)) + 1}_img]", text)
    assert "[int_cam01_img]" in text and "[cam_" not in text
    path = tmp_path / "Calib_scene.toml"
    path.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    back = read_rig(path)
    assert back.names == ("cam01", "cam02") and same_projection(back, pinhole)


def test_anipose_toml_loads_in_aniposelib(rig, tmp_path):
    aniposelib = pytest.importorskip("aniposelib.cameras")
    pinhole = Rig(rig.cameras[:2])
    path = write_anipose_toml(pinhole, tmp_path / "calibration.toml")
    group = aniposelib.CameraGroup.load(str(path))
    X = np.random.default_rng(2).uniform(-1, 1, size=(20, 3)) + [0, 0, 1]
    assert np.allclose(group.project(X), pinhole.project(X), atol=1e-6)


def test_opencv_yaml_round_trips(rig, tmp_path):
    path = write_opencv_yaml(rig, tmp_path / "rig.yml")
    assert same_projection(read_rig(path), rig, atol=1e-6)
    assert read_opencv_yaml(path)[2].model == "fisheye"


def test_a_camera_name_opencv_cannot_key_is_refused_naming_it(rig, tmp_path):
    """A name the rig files take ('Caméra-2') failed inside OpenCV ("Key names may only contain alphanumeric
    characters"), naming neither the camera nor the file; a name with a space or a dash is written and read back."""
    named = Rig(tuple(Camera(n, c.K, c.dist, c.cam_from_world, c.size, c.model)
                      for n, c in zip(("cam 1", "side-2", "Caméra-3"), rig.cameras, strict=True)))
    with pytest.raises(ValueError, match=r"rig.yml: camera names \['Caméra-3'\] cannot be OpenCV YAML keys"):
        write_opencv_yaml(named, tmp_path / "rig.yml")
    assert not (tmp_path / "rig.yml").exists()
    ok = Rig(named.cameras[:2])
    assert read_opencv_yaml(write_opencv_yaml(ok, tmp_path / "ok.yml")).names == ("cam 1", "side-2")


def test_bad_focal_length_in_file_names_file_and_camera(rig, tmp_path):
    path = write_rig(rig, tmp_path / "rig.toml")
    text = path.read_text()
    first_fx = repr(float(rig[0].K[0, 0]))
    path.write_text(text.replace(first_fx, "nan", 1))
    with pytest.raises(ValueError, match=r"rig\.toml: camera 'cam01'.*focal length must be positive and finite"):
        read_rig(path)
    path.write_text(text.replace(first_fx, "-1.0", 1))
    with pytest.raises(ValueError, match=r"rig\.toml: camera 'cam01'.*focal length must be positive"):
        read_rig(path)


def test_unknown_and_missing_keys_are_named(rig, tmp_path):
    path = write_rig(rig, tmp_path / "rig.toml")
    path.write_text(path.read_text().replace('model = "pinhole"', 'model = "pinhole"\nlens = 3', 1))
    with pytest.raises(ValueError, match="camera 'cam01': unknown key 'lens'"):
        read_rig(path)
    (tmp_path / "other.toml").write_text("a = 1\n")
    with pytest.raises(ValueError, match="other.toml: not a rig file"):
        read_rig(tmp_path / "other.toml")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_rig(tmp_path / "missing.toml")


@pytest.mark.shared_data
def test_qualisys_demo_calibration_faces_the_volume(shared_data):
    rig = read_rig(shared_data / "pose2sim_demo" / "calibration" / "Calib.qca.txt")
    assert rig.names == ("cam01", "cam02", "cam03", "cam04")
    for cam in rig:
        assert cam.size in ((1088, 1920),)
        assert 1600 < cam.K[0, 0] < 1750  # 9.3 mm lens on the sensor: ~1680 px
        for point in ([0, 0, 0], [0, 0, 1.0]):
            u, v = cam.project(np.array(point, float))
            assert 0 <= u < cam.size[0] and 0 <= v < cam.size[1], (cam.name, point, u, v)
        # Z is up: a point above the origin appears higher in the image
        assert cam.project(np.array([0, 0, 1.0]))[1] < cam.project(np.zeros(3))[1]
        assert 2.0 < np.linalg.norm(cam.center) < 6.0


@pytest.mark.shared_data
def test_qualisys_marker_cameras_beside_video_cameras_are_left_out(shared_data, tmp_path):
    """A QTM export lists a system's marker (IR) cameras with its video cameras: they record no video and were
    read as rig cameras (detection then stopped: no video for them)."""
    text = (shared_data / "pose2sim_demo" / "calibration" / "Calib.qca.txt").read_text()
    assert text.count('model="none"') == 4
    text = text.replace('model="none"', 'model="Miqus M3"', 1).replace('model="none"', 'model="Miqus Video"', 1)
    path = tmp_path / "mixed.qca.txt"
    path.write_text(text)
    assert read_rig(path).names == ("cam02", "cam03", "cam04")
    markers = text.replace('model="Miqus Video"', 'model="Miqus M3"').replace('model="none"', 'model="Arqus A12"')
    path.write_text(markers)
    assert read_rig(path).names == ("cam01", "cam02", "cam03", "cam04")  # no video model named: all kept


@pytest.mark.shared_data
def test_qualisys_inactive_cameras_are_left_out(shared_data, tmp_path, caplog):
    """A camera the Qualisys calibration did not use (active="0") was read as a rig camera: detection then stopped,
    no video for it. Left out now, said; a file whose cameras are all inactive keeps them (nothing else to read)."""
    import logging

    text = (shared_data / "pose2sim_demo" / "calibration" / "Calib.qca.txt").read_text()
    path = tmp_path / "Calib.qca.txt"
    path.write_text(text.replace('active="1" avg-residual="0.450323"', 'active="0" avg-residual="0.450323"'))
    with caplog.at_level(logging.INFO, logger="mocap.io.qualisys"):
        rig = read_rig(path)
    assert rig.names == ("cam01", "cam02", "cam04") and 'inactive cameras left out (active="0"): cam03' in caplog.text
    assert np.allclose(rig["cam04"].K, read_rig(shared_data / "pose2sim_demo" / "calibration" / "Calib.qca.txt")
                       ["cam04"].K)
    path.write_text(text.replace('active="1"', 'active="0"'))
    assert len(read_rig(path)) == 4


@pytest.mark.shared_data
def test_qualisys_rig_round_trips_through_every_format(shared_data, tmp_path):
    rig = read_rig(shared_data / "pose2sim_demo" / "calibration" / "Calib.qca.txt")
    for path in (write_rig(rig, tmp_path / "rig.toml"), write_anipose_toml(rig, tmp_path / "anipose.toml"),
                 write_opencv_yaml(rig, tmp_path / "intri.yml")):
        assert same_projection(read_rig(path), rig, atol=1e-6)


def test_malformed_qualisys_file_is_reported(tmp_path):
    bad = tmp_path / "Calib.qca.txt"
    bad.write_text("<calibration><cameras><camera serial='c1'></camera></cameras></calibration>")
    with pytest.raises(ValueError, match=r"camera 'c1': needs <transform>"):
        read_rig(bad)
    bad.write_text("not xml")
    with pytest.raises(ValueError, match="not a Qualisys calibration"):
        read_rig(bad)


# --- malformed rig files (issue 13): ValueError naming the file and the key or camera --------------

def _edit(path, old, new, count=1):
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, count))
    return path


@pytest.mark.parametrize("old,new,message", [
    ("version = 1", 'version = "one"', "version must be a whole number, got 'one'"),
    ("version = 1", "version = 7", "rig format version 7 is newer"),
    ("version = 1", "version = 1\nunits = 'mm'", "unknown key 'units'"),
    ('name = "cam01"', "name = 3.5", r"camera name 3\.5 must be a string"),
    ("translation = [", "translation = [1.0, ", r"camera 'cam01': translation must have shape \(3,\), got \(4,\)"),
    ("rotation = [", "rotation = [[1.0, 0.0, 0.0], ", r"'cam01': rotation must have shape \(3, 3\), got \(4, 3\)"),
    ("K = [[", "K = [[1.0, ", r"camera 'cam01': K must be numbers of shape \(3, 3\)"),
    ("size = [1920", 'size = ["wide"', r"camera 'cam01': size must be numbers of shape \(2,\)"),
    ("size = [1920", "size = [-5", r"camera 'cam01': size must be two positive whole numbers"),
    ("size = [1920", "size = [1920.5", r"camera 'cam01': size must be two positive whole numbers"),
    ('model = "pinhole"', "model = 4", "camera 'cam01': model must be a string"),
    ('model = "pinhole"', 'model = "orthographic"', "camera 'cam01': unknown model 'orthographic'"),
    ("dist = [", 'dist = ["k1", ', "camera 'cam01': dist must be a list of numbers"),
    ("dist = [", "dist = [nan, ", "camera 'cam01': dist contains NaN"),
    ('name = "cam02"', 'name = "cam01"', "camera names must be unique, repeated: \\['cam01'\\]"),
])
def test_malformed_own_rig_is_named(rig, tmp_path, old, new, message):
    path = _edit(write_rig(rig, tmp_path / "rig.toml"), old, new)
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: .*{message}"):
        read_rig(path)


def test_missing_rotation_and_zero_focal(rig, tmp_path):
    path = tmp_path / "rig.toml"
    path.write_text('format = "mocap-rig"\nversion = 1\ncameras = 5\n')
    with pytest.raises(ValueError, match=r"rig\.toml: cameras must be an array of tables \(\[\[cameras\]\]\), got 5"):
        read_rig(path)
    path = write_rig(rig, tmp_path / "rig.toml")
    text = path.read_text()
    start = text.index("rotation = [")
    path.write_text(text[:start] + text[text.index("translation", start):])
    with pytest.raises(ValueError, match=r"rig\.toml: camera 'cam01': missing \['rotation'\]"):
        read_rig(path)
    third = text.index("[[cameras]]", text.index("[[cameras]]", text.index("[[cameras]]") + 1) + 1)
    start = text.index("name = ", third)
    path.write_text(text[:start] + text[text.index("\n", start) + 1:])  # the third camera's name left out
    with pytest.raises(ValueError, match=r"rig\.toml: \[\[cameras\]\] #3: missing \['name'\]"):
        read_rig(path)
    path.write_text(text.replace(repr(float(rig[0].K[0, 0])), "0.0", 1))
    with pytest.raises(ValueError, match=r"rig\.toml: camera 'cam01': .*focal length must be positive"):
        read_rig(path)


@pytest.mark.parametrize("bad", ["", "../evil", "a/b", "a\\\\b", ".hidden", "x..y", "nul\\u0000", " padded"])
def test_unsafe_camera_names_are_refused(rig, tmp_path, bad):
    path = _edit(write_rig(rig, tmp_path / "rig.toml"), 'name = "cam02"', f'name = "{bad}"')
    with pytest.raises(ValueError, match=r"rig\.toml: \[\[cameras\]\] #2: camera name .* (not a safe file name|"
                                         r"must be non-empty)"):
        read_rig(path)
    anipose = write_anipose_toml(rig, tmp_path / "calibration.toml")
    _edit(anipose, 'name = "cam02"', f'name = "{bad}"')
    with pytest.raises(ValueError, match=r"calibration\.toml: \[cam_1\]: camera name"):
        read_rig(anipose)


def test_malformed_anipose_toml_is_named(rig, tmp_path):
    path = write_anipose_toml(rig, tmp_path / "calibration.toml")
    text = path.read_text()
    for old, new, message in (("fisheye = false", 'fisheye = "no"', "fisheye must be true or false"),
                              ("rotation = [", "rotation = [1.0, ", "rotation must be a Rodrigues vector"),
                              ("translation = [", 'translation = ["x", ', r"translation must be numbers of shape"),
                              ("matrix = [", "matrix = [[1.0], ", r"matrix must be numbers of shape \(3, 3\)"),
                              ("size = [", "size = [0, ", r"size must have shape \(2,\), got \(3,\)")):
        path.write_text(text.replace(old, new, 1))
        with pytest.raises(ValueError, match=rf"calibration\.toml: camera 'cam01' \(\[cam_0\]\): {message}"):
            read_rig(path)
    path.write_bytes(b"\xff\xfe garbage \x00")
    with pytest.raises(ValueError, match=r"calibration\.toml: not valid TOML"):
        read_rig(path)
    (tmp_path / "folder.toml").mkdir()
    with pytest.raises(ValueError, match=r"folder\.toml: cannot read the rig file"):
        read_rig(tmp_path / "folder.toml")


def test_malformed_opencv_yaml_is_named(rig, tmp_path):
    path = write_opencv_yaml(rig, tmp_path / "intri.yml")
    text = path.read_text()
    path.write_text("names: [1, 2\nK: :\n")
    with pytest.raises(ValueError, match=r"intri\.yml: not an OpenCV YAML file"):
        read_rig(path)
    path.write_text(text.replace('- "cam02"', '- "../cam02"').replace("- cam02", "- ../cam02"))
    with pytest.raises(ValueError, match=r"intri\.yml: names\[1\]: camera name '\.\./cam02' is not a safe file name"):
        read_rig(path)
    path.write_text(text[: text.index("T_cam01")] + "T_cam01: [1.0, 2.0]\n" + text[text.index("K_cam02"):])
    with pytest.raises(ValueError, match=r"intri\.yml: camera 'cam01': T_cam01 must have 3 numbers"):
        read_rig(path)
    with pytest.raises(FileNotFoundError, match=r"nothere\.yml: calibration file does not exist"):
        read_rig(tmp_path / "nothere.yml")


@pytest.mark.shared_data
def test_malformed_qualisys_values_are_named(shared_data, tmp_path):
    src = (shared_data / "pose2sim_demo" / "calibration" / "Calib.qca.txt").read_text()
    bad = tmp_path / "Calib.qca.txt"
    first = re.search(r'focalLengthU="([^"]+)"', src).group(1)
    bad.write_text(src.replace(f'focalLengthU="{first}"', 'focalLengthU="wide"', 1))
    with pytest.raises(ValueError, match=r"Calib\.qca\.txt: camera '.*': <intrinsic> focalLengthU='wide' is not a"):
        read_rig(bad)
    bad.write_text(src.replace(f'focalLengthU="{first}"', 'focalLengthU="nan"', 1))
    with pytest.raises(ValueError, match=r"Calib\.qca\.txt: camera '.*': focal length must be positive and finite"):
        read_rig(bad)
    serial = re.search(r'serial="([^"]+)"', src).group(1)
    bad.write_text(src.replace(f'serial="{serial}"', 'serial="../x"', 1))
    with pytest.raises(ValueError, match=r"Calib\.qca\.txt: <camera> #1 serial: camera name '\.\./x' is not a safe"):
        read_rig(bad)


def test_opencv_yaml_with_eight_distortion_coefficients(rig, tmp_path):
    """OpenCV writes 8 coefficients with CALIB_RATIONAL_MODEL (or some tools always): refused as a whole before
    (a camera takes 5); read when k4 and later are 0, a clear error naming the flags when they are not."""
    cams = Rig(rig.cameras[:2])
    text = write_opencv_yaml(cams, tmp_path / "rig.yml").read_text()
    name = cams.names[0]
    head, rest = text.split(f"dist_{name}:", 1)
    block, tail = rest.split("data:", 1)
    values, after = tail.split("]", 1)
    eight = values.rstrip() + ", 0., 0., 0. "
    path = tmp_path / "eight.yml"
    path.write_text(head + f"dist_{name}:" + block.replace("cols: 5", "cols: 8") + "data:" + eight + "]" + after)
    assert same_projection(read_rig(path), cams, atol=1e-6)
    path.write_text(head + f"dist_{name}:" + block.replace("cols: 5", "cols: 8") + "data:" + values.rstrip()
                    + ", 0.5, 0., 0. ]" + after)
    with pytest.raises(ValueError, match=r"8 coefficients with k4 and later not 0 .* CALIB_RATIONAL_MODEL"):
        read_rig(path)
