"""The Blender add-on keeps numpy-only copies of library code (it runs inside Blender with nothing but
numpy); these tests hold the copies to the library so that they cannot drift apart.

``capture_format.py`` has no bpy import and is loaded from its file; the retargeting comparison needs
bpy and is skipped without it. The root paths agree within 1 mm; the poses too, except where a rule
differs by design (marked ``xfail(strict=True)``, so a change on either side shows).
"""

import importlib.util
import re

import numpy as np
import pytest
from body_synth import body_motion

from mocap.addon import ADDON_DIR
from mocap.fit.bones import rest_positions
from mocap.geometry.rotations import (
    axis_angle_to_matrix,
    matrix_to_quat,
    quat_continuous,
    quat_to_matrix,
    rotation_between,
)
from mocap.io import capture
from mocap.retarget import load_target_rig, retarget
from mocap.skeletons import load_skeleton
from mocap.synth import RigSpec, ring_rig


def _load(name: str):
    """An add-on module without bpy or relative imports, loaded from its file (no ``blender_addon``
    package import, which needs bpy)."""
    spec = importlib.util.spec_from_file_location(f"_addon_{name}", ADDON_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cf = _load("capture_format")


def random_rotations(n: int, seed: int) -> np.ndarray:
    """(n, 3, 3): uniform random rotations, plus the identity and half turns (the branch edge cases)."""
    q = np.random.default_rng(seed).normal(size=(n, 4))
    R = quat_to_matrix(q)
    special = axis_angle_to_matrix(np.array([[0, 0, 0], [np.pi, 0, 0], [0, np.pi, 0], [0, 0, np.pi],
                                             [np.pi / np.sqrt(2), np.pi / np.sqrt(2), 0], [0, 0, np.pi - 1e-7]]))
    return np.concatenate([special, R])


def test_capture_schema_constants_match_the_writer():
    assert (cf.KIND, cf.SCHEMA_VERSION) == (capture.KIND, capture.SCHEMA_VERSION)


def test_addon_reads_only_arrays_the_writer_defines():
    code = "".join(p.read_text() for p in ADDON_DIR.glob("*.py"))
    used = set(re.findall(r'cap\["(\w+)"\]', code)) | set(re.findall(r'cap\.get\("(\w+)"', code))
    used -= {"absent"}  # the frames before the first fitted one and after the last, read_capture derives them
    required = {"kind", "schema_version", "joint_names", "parents", "offsets", "rotations", "root_positions", "fps"}
    assert used, "no capture keys found in the add-on: update this test's pattern"
    assert used <= required | set(capture.OPTIONAL), sorted(used - required - set(capture.OPTIONAL))


def test_addon_reader_agrees_with_the_library_reader(tmp_path):
    m = body_motion(20, fps=30.0)
    _, p = m.fk()
    rig = ring_rig(RigSpec(n_cameras=2, size=(640, 480)), p.reshape(-1, 3))
    path = capture.write_capture(tmp_path / "take.npz", m, rig, p[:, :3], ["a", "b", "c"], ["v.mp4", ""])
    motion, extra = capture.read_capture(path)
    cap = cf.read_capture(str(path))
    assert cap["joint_names"] == list(motion.skeleton.joint_names)
    assert np.array_equal(cap["parents"], motion.skeleton.parents)
    for key, value in (("offsets", motion.skeleton.offsets), ("rotations", motion.rotations),
                       ("root_positions", motion.root_positions), ("fps", motion.fps)):
        assert np.array_equal(cap[key], value), key
    for key, value in extra.items():
        assert np.array_equal(np.asarray(cap[key]), value), key


def test_quaternion_to_matrix_agrees():
    q = np.random.default_rng(1).normal(size=(3000, 4)) * 3  # not unit: both normalise
    assert np.allclose(cf.quat_to_matrix(q), quat_to_matrix(q), atol=1e-12, rtol=0)


def test_matrix_to_quaternion_agrees_up_to_sign():
    R = random_rotations(3000, seed=2)
    qa, ql = cf.matrix_to_quat(R), matrix_to_quat(R)
    sign = np.sign(np.sum(qa * ql, axis=-1, keepdims=True))
    assert np.all(sign != 0)
    assert np.allclose(qa * sign, ql, atol=1e-9, rtol=0)
    assert np.allclose(cf.quat_to_matrix(qa), R, atol=1e-9, rtol=0)


def test_matrix_to_quaternion_is_continuous_like_the_library():
    """The add-on makes quaternions sign-continuous along axis 0 (time), as quat_continuous does."""
    rng = np.random.default_rng(3)
    steps = axis_angle_to_matrix(rng.normal(scale=0.4, size=(500, 4, 3)))  # 4 joints turning ~0.7 rad/frame
    R = np.empty_like(steps)
    R[0] = steps[0]
    for f in range(1, len(R)):
        R[f] = steps[f] @ R[f - 1]
    qa = cf.matrix_to_quat(R)
    ql = quat_continuous(matrix_to_quat(R), axis=0)
    ql = ql * np.sign(np.sum(qa[:1] * ql[:1], axis=-1, keepdims=True))  # same sign at the first frame
    assert np.allclose(qa, ql, atol=1e-9, rtol=0)


@pytest.mark.parametrize("name", ["body22", "mixamo", "ue5"])
def test_rest_positions_agree(name):
    sk = load_skeleton(name).skeleton if name == "body22" else load_target_rig(name).skeleton
    assert np.allclose(cf.rest_positions(sk.parents, sk.offsets), rest_positions(sk), atol=1e-12, rtol=0)


@pytest.fixture(scope="module")
def addon_retarget():
    pytest.importorskip("bpy")
    from blender_addon import retarget as addon

    return addon


def test_rotation_between_agrees(addon_retarget):
    rng = np.random.default_rng(4)
    u, v = rng.normal(size=(200, 3)), rng.normal(size=(200, 3))
    u[:3], v[:3] = [1.0, 0, 0], [[1.0, 0, 0], [-1.0, 0, 0], [0, 0, 1.0]]  # equal, opposite, orthogonal
    for a, b in zip(u, v, strict=True):
        Ra = addon_retarget._between(a, b)
        assert np.allclose(Ra @ (a / np.linalg.norm(a)), b / np.linalg.norm(b), atol=1e-9)
        if a @ b > -0.999 * np.linalg.norm(a) * np.linalg.norm(b):  # half turns: any axis ⟂ u is right
            assert np.allclose(Ra, rotation_between(a, b), atol=1e-9)


@pytest.fixture(scope="module")
def retargeted(addon_retarget, tmp_path_factory):
    """{preset: (add-on target positions, library target positions)} (frames, joints, 3), one clip."""
    import bpy

    from blender_addon.builders import build_armature, joint_world_positions

    m = body_motion(60, fps=30.0)
    path = capture.write_capture(tmp_path_factory.mktemp("drift") / "clip.npz", m)
    frames = list(range(1, m.n_frames + 1, 3))
    out = {}
    for preset in ("mixamo", "ue5", "unity", "cmu"):
        bpy.ops.wm.read_factory_settings(use_empty=True)
        source = build_armature(cf.read_capture(str(path)), "source")
        rig = load_target_rig(preset)
        sk = rig.skeleton
        J = len(sk.joint_names)
        target = build_armature({"joint_names": list(sk.joint_names), "parents": sk.parents, "offsets": sk.offsets,
                                 "rotations": np.tile([1.0, 0, 0, 0], (1, J, 1)), "root_positions": np.zeros((1, 3)),
                                 "fps": np.array(m.fps)}, "target")
        target.animation_data_clear()
        addon_retarget.retarget_armature(source, target, addon_retarget.preset_maps()[preset], 1, m.n_frames)
        pa = joint_world_positions(target, frames)
        order = [sk.joint_names.index(b.name) for b in target.pose.bones]
        _, pl = retarget(m, sk, rig.source).fk()
        out[preset] = pa, pl[np.array(frames) - 1][:, order], [b.name for b in target.pose.bones]
    return out


# by design: a Blender bone is aligned by its own axis, a library joint by the mapped joints below it; they differ where
# a mapped bone has no mapped bone below (mixamo toes: 3.0 cm, ue5 head: 1.2 cm), and the joints hanging from it
LEAF_AXIS = {"mixamo": 0.035, "ue5": 0.015}
LEAF_JOINTS = {"mixamo": {"mixamorig:LeftToe_End", "mixamorig:RightToe_End"}, "ue5": {"neck_02", "head"}}


@pytest.mark.parametrize("preset", ["mixamo", "ue5", "unity", "cmu"])
def test_retargeted_pose_agrees(retargeted, preset):
    """Every target joint relative to the root, add-on vs library, within 1 mm; where a mapped bone has no mapped
    bone below (mixamo, ue5), within the leaf-axis difference, and only there (an xfail hid any error over 1 mm:
    a ue5 shin driven from the thigh, 55 cm off, passed)."""
    pa, pl, names = retargeted[preset]
    err = np.linalg.norm((pa - pa[:, :1]) - (pl - pl[:, :1]), axis=-1).max(axis=0)  # (J,) worst over frames
    over = {n for n, e in zip(names, err, strict=True) if e >= 1e-3}
    if preset not in LEAF_AXIS:
        assert not over, {n: round(float(e), 4) for n, e in zip(names, err, strict=True) if n in over}
        return
    assert err.max() < LEAF_AXIS[preset], err.max()
    assert over == LEAF_JOINTS[preset], sorted(over)


@pytest.mark.parametrize("preset", ["mixamo", "ue5", "unity", "cmu"])
def test_retargeted_root_path_agrees(retargeted, preset):
    pa, pl, _ = retargeted[preset]
    err = np.linalg.norm(pa[:, 0] - pl[:, 0], axis=-1)
    assert err.max() < 1e-3, err.max()


def test_gaps_are_filled_as_the_exports_fill_them():
    """A capture with a gap mid-take (and at its ends): the add-on held the last frame and jumped 0.5 m when the
    motion came back, where every exported file (``mocap.motion.fill_gaps``) moved smoothly through it."""
    from mocap.motion import fill_gaps
    from mocap.types import Motion

    m = body_motion(60, fps=30.0)
    q, root = m.rotations.copy(), m.root_positions.copy()
    for frames in (slice(0, 3), slice(21, 36), slice(57, 60)):
        q[frames], root[frames] = np.nan, np.nan
    filled, _ = fill_gaps(Motion(m.skeleton, q, root, m.fps))
    q_addon, root_addon, _ = cf._hold_gaps("take.npz", q, root)
    assert np.allclose(root_addon, filled.root_positions, atol=1e-9)
    same_sign = np.where(np.sum(q_addon * filled.rotations, axis=-1, keepdims=True) < 0, -q_addon, q_addon)
    assert np.allclose(same_sign, filled.rotations, atol=1e-9)
