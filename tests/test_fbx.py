"""FBX written natively (mocap/io/fbx.py, mocap/io/fbx_binary.py; issue 17 item 2): the binary container
decoded by an independent reader (tests/fbx_reader.py), the armature's joints evaluated from the file alone
at the motion's FK, Euler curves without jumps, refusals of bad input, no Blender child for a native FBX;
and (slow) the files re-imported by Blender's FBX importer at every frame within 0.1 mm."""

import datetime
import struct
import zlib

import numpy as np
import pytest
from blender_import import blender_positions
from body_synth import body_motion
from fbx_reader import armature_positions, read_fbx

from mocap.geometry.rotations import matrix_to_euler, matrix_to_quat, quat_to_matrix
from mocap.io import blender, exporters
from mocap.io.fbx import KTIME, continuous_euler_deg, write_fbx
from mocap.io.fbx_binary import FOOTER_ID, FOOTER_MAGIC, Int64, Node, Raw, encode
from mocap.motion import Z_UP_TO_Y_UP
from mocap.retarget import load_target_rig, retarget_to_rig
from mocap.types import Motion

WHEN = datetime.datetime(2026, 11, 30, 12, 0, 0, tzinfo=datetime.UTC)


@pytest.mark.parametrize("version", [7400, 7500])
def test_encoded_node_tree_decodes_to_what_was_written(version):
    big = np.arange(100, dtype=np.float64) / 7  # 800 bytes: compressed
    tree = [Node("Top", 7, Int64(-(2 ** 40)), 2.5, "name\x00\x01Model", Raw(b"\x00\xff"), True, children=[
        Node("Leaf", np.array([1, -2], np.int32), np.array([3], np.int64), np.array([0.5], np.float32), big,
             np.array([True, False])),
        Node("Empty")]), Node("Second", "é")]
    data = encode(tree, version)
    v, nodes, footer = read_fbx(data)
    assert v == version and [n.name for n in nodes] == ["Top", "Second"]
    top = nodes[0]
    assert top.props[:6] == [7, -(2 ** 40), 2.5, "name\x00\x01Model", b"\x00\xff", 1]
    leaf, empty = top.children
    assert leaf.name == "Leaf" and empty.name == "Empty" and empty.props == [] and empty.children == []
    for got, want in zip(leaf.props, tree[0].children[0].props, strict=True):
        assert got.dtype.kind == want.dtype.kind and np.array_equal(got, want)
    assert nodes[1].props == ["é"]
    assert struct.pack("<3I", 100, 1, len(zlib.compress(big.tobytes(), 1))) in data  # the array compressed
    # the footer: its id, then padding to a multiple of 16, the version, 120 zero bytes and the closing magic
    assert data[footer:footer + 16] == FOOTER_ID and data.endswith(FOOTER_MAGIC)
    tail = data[-(16 + 120 + 4):]
    assert struct.unpack("<I", tail[:4])[0] == version and tail[4:124] == bytes(120)
    assert (len(data) - 140) % 16 == 0


def test_encoder_refuses_what_it_cannot_write():
    with pytest.raises(TypeError, match="cannot write a property of type dict"):
        encode([Node("A", {})])
    with pytest.raises(TypeError, match="arrays must be 1-D"):
        encode([Node("A", np.zeros((2, 2)))])
    with pytest.raises(ValueError, match="node name must be 1-255 bytes"):
        Node("")
    with pytest.raises(ValueError, match="binary versions 7100-7700"):
        encode([], 6100)


def _file_positions_m(path, up):
    """Joint names and world positions in metres in the pipeline's axes (Z up), from the file alone."""
    _, nodes, _ = read_fbx(path.read_bytes())
    names, pos, settings = armature_positions(nodes)
    pos = pos * settings["UnitScaleFactor"][0] / 100.0
    return names, (pos @ Z_UP_TO_Y_UP if up == "y" else pos), settings


@pytest.mark.parametrize("units,up", [("m", "y"), ("cm", "z"), ("cmu", "y")])
def test_joints_evaluated_from_the_file_follow_the_motion(units, up, tmp_path):
    m = body_motion(45, fps=30.0)
    path = write_fbx(m, tmp_path / "a.fbx", units, up)
    names, pos, settings = _file_positions_m(path, up)
    assert names == list(m.skeleton.joint_names)
    _, fk = m.fk()
    assert pos.shape == fk.shape and np.abs(pos - fk).max() < 2e-5
    assert settings["UpAxis"][0] == (1 if up == "y" else 2) and settings["TimeMode"][0] == 6  # 30 fps
    assert settings["UnitScaleFactor"][0] == pytest.approx({"m": 100.0, "cm": 1.0, "cmu": 5.6444}[units])
    _, nodes, _ = read_fbx(path.read_bytes())
    curves = [o for o in next(n for n in nodes if n.name == "Objects").children if o.name == "AnimationCurve"]
    times = curves[0].find("KeyTime").props[0]
    assert np.array_equal(times, np.arange(45) * (KTIME // 30))  # frame 1 at time 0
    assert settings["TimeSpanStop"][0] == times[-1]


def test_retargeted_rig_keeps_its_bone_names_and_an_odd_frame_rate(tmp_path):
    m = retarget_to_rig(body_motion(20, fps=27.5), load_target_rig("mixamo"))
    path = write_fbx(m, tmp_path / "mixamo.fbx", "cm", "y")
    names, pos, settings = _file_positions_m(path, "y")
    assert names[0] == "mixamorig:Hips" and names == list(m.skeleton.joint_names)
    assert np.abs(pos - m.fk()[1]).max() < 2e-5
    assert settings["TimeMode"][0] == 14 and settings["CustomFrameRate"][0] == 27.5  # custom rate


@pytest.mark.parametrize("fps,mode,rate", [
    (30000 / 1001, 9, 30000 / 1001), (29.97, 9, 30000 / 1001), (24000 / 1001, 13, 24000 / 1001),
    (60000 / 1001, 17, 60000 / 1001), (120000 / 1001, 18, 120000 / 1001), (30.0, 6, 30.0), (24.0, 11, 24.0),
    (15.0, 14, 15.0), (7.0, 14, 7.0), (30.02, 14, 30.02)])
def test_frame_rate_is_declared_as_is_and_keys_lie_on_its_frames(fps, mode, rate, tmp_path):
    """NTSC rates (29.97 = 30000/1001, 1e-3 below 30) are not declared as the integer rate next to them, nor a
    custom rate near a standard one as that one: a reader would place every key on another frame (29.97 fps
    read as 30 drifts a frame every 33 s). Keys lie on the frames of the declared rate."""
    m = body_motion(1000, fps=fps)
    _, nodes, _ = read_fbx(write_fbx(m, tmp_path / "a.fbx").read_bytes())
    settings = armature_positions(nodes)[2]
    assert settings["TimeMode"][0] == mode
    if mode == 14:
        assert settings["CustomFrameRate"][0] == pytest.approx(rate, rel=1e-12)
    curves = [o for o in next(n for n in nodes if n.name == "Objects").children if o.name == "AnimationCurve"]
    frames = curves[0].find("KeyTime").props[0] / KTIME * rate
    assert np.abs(frames - np.arange(1000)).max() < 1e-6  # every key on its frame of the declared rate


def test_euler_curves_have_no_jumps_through_full_turns_and_gimbal_lock():
    F = 400
    t = np.linspace(0, 1, F)
    # about x: two whole turns; about y: through ±90° (where XYZ angles switch branch), plus a wobble
    angles = np.stack([4 * np.pi * t, 1.2 * np.pi * np.sin(2 * np.pi * t), 0.3 * np.sin(6 * np.pi * t)], -1)
    c, s = np.cos(angles), np.sin(angles)
    Rx = np.stack([np.ones(F), 0 * t, 0 * t, 0 * t, c[:, 0], -s[:, 0], 0 * t, s[:, 0], c[:, 0]], -1).reshape(F, 3, 3)
    Ry = np.stack([c[:, 1], 0 * t, s[:, 1], 0 * t, np.ones(F), 0 * t, -s[:, 1], 0 * t, c[:, 1]], -1).reshape(F, 3, 3)
    Rz = np.stack([c[:, 2], -s[:, 2], 0 * t, s[:, 2], c[:, 2], 0 * t, 0 * t, 0 * t, np.ones(F)], -1).reshape(F, 3, 3)
    R = (Ry @ Rx @ Rz)[:, None]  # another order than the file's: every XYZ angle moves
    deg = continuous_euler_deg(R)
    raw = np.degrees(matrix_to_euler(R, "ZYX"))  # one angle triple per rotation, each in (−180°, 180°]
    assert np.abs(np.diff(raw, axis=0)).max() > 170  # wraps and branch switches to remove
    step = np.abs(np.diff(deg, axis=0)).max()
    assert step < 30.0, step  # the rotation moves ≤ 4° a frame; an angle up to ~5× that next to gimbal lock
    x, y, z = np.radians(deg[..., 0]), np.radians(deg[..., 1]), np.radians(deg[..., 2])
    back = quat_to_matrix(matrix_to_quat(R))
    from fbx_reader import _euler_xyz_deg

    assert np.abs(_euler_xyz_deg(deg) - back).max() < 1e-9 and np.isfinite(x + y + z).all()


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_euler_curves_keep_x_through_frames_exactly_at_gimbal_lock(sign):
    """y exactly ±90° at some frames (a sampled sweep through it; a run at the start): matrix_to_euler puts
    x = 0 and all the turn in z there, a 40° spike in x and z for a reader to interpolate through; x is held
    instead and z takes the rest, the same rotations."""
    from fbx_reader import _euler_xyz_deg

    from mocap.geometry.rotations import euler_to_matrix

    F = 61
    sweep = np.radians(np.linspace(60, 120, F))  # 90° exactly at frame 30
    start = np.radians(np.r_[np.full(5, 90.0), np.linspace(90, 60, F - 5)])  # 90° at the first five frames
    x, z = np.radians(np.full(F, 40.0)), np.radians(np.linspace(10, 20, F))
    R = np.stack([euler_to_matrix(np.stack([z, sign * y, x], -1), "ZYX") for y in (sweep, start)], axis=1)
    deg = continuous_euler_deg(R)
    assert np.abs(np.diff(deg, axis=0)).max() < 1.01  # the motion's own steps: 1° in y, 1/6° in z
    assert np.abs(deg[:, :, 0] - 40.0).max() < 1e-9
    assert np.abs(_euler_xyz_deg(deg) - R).max() < 1e-9


def test_bytes_depend_only_on_the_motion_but_for_the_creation_time(tmp_path):
    from mocap.io.fbx import fbx_nodes

    m = body_motion(10, fps=30.0)
    a = encode(fbx_nodes(m, "m", "y", WHEN))
    assert a == encode(fbx_nodes(m, "m", "y", WHEN))
    b = encode(fbx_nodes(m, "m", "y", WHEN + datetime.timedelta(days=3, seconds=7)))
    assert len(a) == len(b) and a != b
    diff = [i for i in range(len(a)) if a[i] != b[i]]
    start = a.index(b"CreationTimeStamp")
    assert start < diff[0] and diff[-1] < a.index(b"Creator", start)


def test_bad_motions_are_refused_with_the_joint_and_frame(tmp_path):
    m = body_motion(10, fps=30.0)
    rot = m.rotations.copy()
    rot[4, 3] = np.nan
    bad = Motion(m.skeleton, rot, m.root_positions, m.fps)
    name = m.skeleton.joint_names[3]
    with pytest.raises(ValueError, match=rf"non-finite rotations \(joint '{name}' at frame 5 first\); fill the gaps"):
        write_fbx(bad, tmp_path / "bad.fbx")
    root = m.root_positions.copy()
    root[2, 1] = np.inf
    with pytest.raises(ValueError, match="non-finite root positions"):
        write_fbx(Motion(m.skeleton, m.rotations, root, m.fps), tmp_path / "bad.fbx")
    rot = m.rotations.copy()
    rot[0, 0] = 0.0
    with pytest.raises(ValueError, match="a zero quaternion is no rotation"):
        write_fbx(Motion(m.skeleton, rot, m.root_positions, m.fps), tmp_path / "bad.fbx")
    with pytest.raises(ValueError, match="frame rate must be positive"):
        write_fbx(Motion(m.skeleton, m.rotations, m.root_positions, 0.0), tmp_path / "bad.fbx")
    with pytest.raises(ValueError, match="units must be one of m, cm, cmu, got 'mm'"):
        write_fbx(m, tmp_path / "bad.fbx", units="mm")
    sk = m.skeleton
    named = type(sk)(("Hips\x00\x01Model",) + sk.joint_names[1:], sk.parents, sk.offsets)
    with pytest.raises(ValueError, match="joint names must be unique, not empty and without NUL"):
        write_fbx(Motion(named, m.rotations, m.root_positions, m.fps), tmp_path / "bad.fbx")
    assert not list(tmp_path.iterdir())  # nothing written, no part left


def test_native_fbx_starts_no_blender_and_the_setting_is_checked(tmp_path, monkeypatch):
    from mocap.stages.export import Config, write_motion

    def no_blender(*a, **k):
        raise AssertionError("Blender was asked for a native FBX")

    monkeypatch.setattr(blender, "blender_export_many", no_blender)
    monkeypatch.setattr(blender, "warm", no_blender)
    m = body_motion(8, fps=30.0)
    jobs = [("fbx", m, {}, tmp_path / "a.fbx", exporters.Options()), ("bvh", m, {}, tmp_path / "a.bvh",
                                                                      exporters.Options())]
    assert exporters.write_files(jobs) == [tmp_path / "a.fbx", tmp_path / "a.bvh"]
    assert read_fbx((tmp_path / "a.fbx").read_bytes())[0] == 7400
    assert not blender.needs_blender(["bvh", "fbx"]) and blender.needs_blender(["bvh", "fbx"], "blender")
    assert blender.needs_blender(["glb"])
    with pytest.raises(ValueError, match="export: fbx_writer must be one of native, blender, got 'maya'"):
        Config(fbx_writer="maya")
    with pytest.raises(ValueError, match="fbx: fbx_writer must be one of native, blender, got 'x'"):
        write_motion(m, tmp_path / "b.fbx", "fbx", fbx_writer="x")


def test_a_long_take_is_compressed(tmp_path):
    m = body_motion(2000, fps=60.0)
    path = write_fbx(m, tmp_path / "long.fbx")
    curves = 3 * (len(m.skeleton.joint_names) + 1)
    raw = curves * m.n_frames * (8 + 4)  # key times and values, uncompressed
    # zlib makes the 64-bit key times 40 % smaller (float32 values of a smooth motion barely shrink): ~0.7
    assert path.stat().st_size < 0.8 * raw, (path.stat().st_size, raw)


# ----- Blender's FBX importer (slow: each case starts Blender) --------------------------------------------------


def _motion(kind):
    if kind == "body22":
        return body_motion(60, fps=30.0)
    from mocap.synth.fingers import add_fingers, finger_curls

    m52 = add_fingers(body_motion(60, 30.0), finger_curls(60, 30.0, seed=5))
    return m52 if kind == "body52" else retarget_to_rig(m52, load_target_rig(kind, m52.skeleton.joint_names), None)


@pytest.mark.slow
@pytest.mark.parametrize("kind,units,up", [("body22", "m", "y"), ("body22", "cm", "z"), ("body22", "m", "z"),
                                           ("mixamo", "cm", "y"), ("ue5", "cm", "z"), ("body52", "m", "y")])
def test_blender_reimports_native_fbx_at_the_motions_fk(kind, units, up, tmp_path):
    pytest.importorskip("bpy")
    m = _motion(kind)
    path = write_fbx(m, tmp_path / f"{kind}.fbx", units, up)
    names, pos, start = blender_positions(path, tmp_path, m.fps, up)
    assert sorted(names) == sorted(m.skeleton.joint_names) and start == 1  # no leaf bones, frame 1 first
    assert pos.shape[0] == m.n_frames
    _, fk = m.fk()
    err = np.abs(pos[:, [names.index(n) for n in m.skeleton.joint_names]] - fk).max()
    assert err < 1e-4, err  # 0.1 mm
    if kind != "body22":
        assert sum("Index" in n or "index" in n for n in names) >= 6  # the finger bones are there
