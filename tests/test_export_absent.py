"""Where a person is not (before their first fitted frame, after their last), the exports hide them
(``export.absent = "hide"``): FBX and glTF scale the root to 0, TRC and C3D leave the markers empty, BVH holds
the nearest pose; ``"hold"`` holds it everywhere (a statue where nobody stands)."""

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from body_synth import body_motion

from mocap.io.c3d import read_c3d
from mocap.io.fbx import fbx_nodes, write_fbx
from mocap.io.trc import read_trc
from mocap.motion import absent_frames, fill_gaps
from mocap.stages.export import Config, write_motion
from mocap.types import Motion

BEFORE, AFTER, INNER, F = 10, 50, 25, 60  # absent on [0, 10) and [50, 60); one inner gap at 25


@pytest.fixture(scope="module")
def motions():
    m = body_motion(F, fps=30.0)
    q, r = m.rotations.copy(), m.root_positions.copy()
    for a, b in ((0, BEFORE), (AFTER, F), (INNER, INNER + 1)):
        q[a:b], r[a:b] = np.nan, np.nan
    return m, Motion(m.skeleton, q, r, m.fps)


def test_absent_frames_are_the_ends_and_fill_can_leave_them(motions):
    _, m = motions
    absent = absent_frames(m)
    assert np.array_equal(np.flatnonzero(absent), np.r_[0:BEFORE, AFTER:F])  # the inner gap is not absent
    inner, n = fill_gaps(m, ends=False)
    finite = np.isfinite(inner.rotations).all(axis=(1, 2))
    assert n == 1 and np.array_equal(finite, ~absent)  # the inner gap filled, the ends left NaN
    held, n = fill_gaps(m)
    assert n == BEFORE + (F - AFTER) + 1 and np.allclose(held.rotations[:BEFORE], held.rotations[BEFORE])
    never = Motion(m.skeleton, m.rotations * np.nan, m.root_positions * np.nan, m.fps)
    assert absent_frames(never).all() and fill_gaps(never, ends=False)[1] == 0


@pytest.mark.parametrize("fmt", ["trc", "c3d"])
def test_markers_are_empty_where_the_person_is_not(motions, tmp_path, fmt):
    truth, m = motions
    _, p = truth.fk()
    path = write_motion(m, tmp_path / f"take.{fmt}", fmt, units="m", up="z")
    if fmt == "trc":
        xyz, _, _ = read_trc(path, y_up=False)
    else:
        _, xyz, _ = read_c3d(path)
        xyz = xyz[:, -len(truth.skeleton.joint_names):]  # the joint centres (after the keypoints, if any)
    empty = np.isnan(xyz).all(axis=(1, 2))
    assert np.array_equal(np.flatnonzero(empty), np.r_[0:BEFORE, AFTER:F])
    there = ~empty & (np.arange(F) != INNER)
    assert np.abs(xyz[there] - p[there]).max() < 1e-3  # millimetres in the file
    held = write_motion(m, tmp_path / f"held.{fmt}", fmt, units="m", up="z", absent="hold")
    xyz = read_trc(held, y_up=False)[0] if fmt == "trc" else read_c3d(held)[1][:, -len(truth.skeleton.joint_names):]
    assert np.isfinite(xyz).all() and np.abs(xyz[:BEFORE] - p[BEFORE]).max() < 1e-3  # the first pose held


def _scale_curves(nodes):
    """The values of the ``S`` (Lcl Scaling) curves in FBX nodes, and their interpolation flags."""
    objects = next(n for n in nodes if n.name == "Objects")
    links = next(n for n in nodes if n.name == "Connections").children
    s_node = [n.props[0] for n in objects.children if n.name == "AnimationCurveNode" and n.props[1].startswith("S\x00")]
    curves = {n.props[0]: n for n in objects.children if n.name == "AnimationCurve"}
    out = []
    for link in links:
        if link.props[1] in curves and link.props[2] in s_node:  # ("OP", curve, curve node, "d|X")
            c = curves[link.props[1]]
            out.append((next(x.props[0] for x in c.children if x.name == "KeyValueFloat"),
                        int(next(x.props[0] for x in c.children if x.name == "KeyAttrFlags")[0])))
    return s_node, out


def test_native_fbx_scales_the_root_to_zero_where_absent(motions, tmp_path):
    _, m = motions
    hidden = absent_frames(m)
    s_node, curves = _scale_curves(fbx_nodes(fill_gaps(m)[0], hidden=hidden))
    assert len(s_node) == 1 and len(curves) == 3
    for values, flags in curves:
        assert np.array_equal(values == 0, hidden) and np.all(values[~hidden] == 1) and flags == 0x2  # constant
    assert _scale_curves(fbx_nodes(fill_gaps(m)[0]))[0] == []  # nothing hidden: no scale curve
    write_fbx(m, tmp_path / "take.fbx")  # NaN ends are hidden, not refused
    bad = Motion(m.skeleton, fill_gaps(m)[0].rotations, m.root_positions, m.fps)
    with pytest.raises(ValueError, match=r"hidden should have shape \(60,\), one per frame, got \(3,\)"):
        fbx_nodes(fill_gaps(bad)[0], hidden=np.ones(3, bool))


def test_absent_setting_is_checked_and_said(motions, tmp_path, caplog):
    with pytest.raises(ValueError, match="export: absent must be one of hide, hold, got 'trim'"):
        Config(absent="trim")
    _, m = motions
    with caplog.at_level(logging.WARNING, logger="mocap.stages.export"):
        write_motion(m, tmp_path / "take.trc", "trc")
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "hidden over the 10 frames before the first fitted frame and the 10 after the last" in said
    assert "a BVH, which cannot hide a joint, holds the nearest fitted pose" in said
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="mocap.stages.export"):
        write_motion(m, tmp_path / "held.trc", "trc", absent="hold")
    assert "first fitted pose is held over the 10 frames before it" in " ".join(r.getMessage() for r in caplog.records)


def test_an_exporter_that_does_not_hide_gets_the_pose_held(motions, tmp_path, monkeypatch):
    """NaN frames at a motion's ends go only to writers registered as hiding them; another package's exporter (and
    any writer with export.absent = "hold") gets the motion filled, as before (it never saw NaN frames)."""
    from mocap.io import exporters

    _, m = motions
    seen = {}

    def write(motion, extra, path, opt):
        seen[opt.absent] = np.isfinite(motion.rotations).all()
        Path(path).write_text("x")
        return Path(path)

    monkeypatch.setitem(exporters._REGISTRY, "plain", exporters.Exporter("plain", ".txt", write))
    for absent in ("hide", "hold"):
        exporters.write_files([("plain", m, {}, tmp_path / f"{absent}.txt", exporters.Options(absent=absent))])
    assert seen == {"hide": True, "hold": True}
    held = write_motion(m, tmp_path / "held.trc", "trc", absent="hold")  # a hiding writer, asked to hold
    assert np.isfinite(read_trc(held)[0]).all()


@pytest.mark.slow
def test_every_format_hides_the_person_where_absent_in_blender(motions, tmp_path):
    """Read back by Blender's importers: FBX (native and Blender's), GLB collapse the skeleton to a point where
    the person is not and match the motion to the micrometre where they are; BVH holds the nearest pose."""
    pytest.importorskip("bpy")
    truth, m = motions
    _, p = truth.fk()
    there = np.ones(F, bool)
    there[:BEFORE] = there[AFTER:] = there[INNER] = False
    files = [write_motion(m, tmp_path / f"{w}.{fmt}", fmt, units="m", up="y", fbx_writer=w)
             for fmt, w in (("bvh", "native"), ("fbx", "native"), ("fbx", "blender"), ("glb", "native"))]
    for path in files:
        out = tmp_path / f"{path.name}.npz"
        r = subprocess.run([sys.executable, "-m", "blender_addon.headless", "positions", str(path), str(out),
                            "--fps", "30"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[-2000:]
        z = np.load(out)
        names = list(z["names"])
        pos = z["positions"][:, [names.index(n) for n in truth.skeleton.joint_names]]
        assert pos.shape == p.shape and np.isfinite(pos).all(), path.name
        assert np.abs(pos[there] - p[there]).max() < 1e-4, path.name
        size = np.ptp(pos, axis=1).max(axis=1)  # (F,) the skeleton's extent
        if path.suffix == ".bvh":
            assert np.abs(pos[:BEFORE] - p[BEFORE]).max() < 1e-4 and np.abs(pos[AFTER:] - p[AFTER - 1]).max() < 1e-4
        else:
            assert np.array_equal(size < 1e-6, ~there & (np.arange(F) != INNER)), path.name


@pytest.mark.slow
def test_addon_import_hides_where_absent_unless_asked_not_to(motions, tmp_path):
    bpy = pytest.importorskip("bpy")
    import blender_addon
    from blender_addon.builders import joint_world_positions
    from mocap.io.capture import write_capture

    truth, m = motions
    _, p = truth.fk()
    path = write_capture(tmp_path / "take.npz", m)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    blender_addon.register()
    try:
        for hide in (True, False):
            assert bpy.ops.mocap.import_capture(filepath=str(path), cameras=False, hide_absent=hide) == {"FINISHED"}
            obj = bpy.context.view_layer.objects.active
            order = [b.name for b in obj.pose.bones]  # the armature's bone order
            pos = joint_world_positions(obj, list(range(1, F + 1)))
            pos = pos[:, [order.index(n) for n in truth.skeleton.joint_names]]
            size = np.ptp(pos, axis=1).max(axis=1)
            there = np.r_[BEFORE:INNER, INNER + 1:AFTER]
            assert np.abs(pos[there] - p[there]).max() < 1e-4
            if hide:
                assert np.array_equal(np.flatnonzero(size < 1e-6), np.r_[0:BEFORE, AFTER:F])
                assert list(obj["mocap_present"]) == [BEFORE + 1, AFTER]  # Blender frames, from 1
                # the add-on's own exports keep it hidden, and exact where there, from a frame where it is hidden
                for fmt in ("FBX", "GLB"):
                    assert bpy.ops.mocap.export(filepath=str(tmp_path / f"addon.{fmt.lower()}"), format=fmt) \
                        == {"FINISHED"}
            else:
                assert (size > 0.5).all() and "mocap_present" not in obj
            bpy.data.objects.remove(obj)
    finally:
        blender_addon.unregister()
    for fmt in ("fbx", "glb"):
        r = subprocess.run([sys.executable, "-m", "blender_addon.headless", "positions", str(tmp_path / f"addon.{fmt}"),
                            str(tmp_path / "a.npz"), "--fps", "30"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[-2000:]
        z = np.load(tmp_path / "a.npz")
        pos = z["positions"][:, [list(z["names"]).index(n) for n in truth.skeleton.joint_names]]
        size = np.ptp(pos, axis=1).max(axis=1)
        there = np.r_[BEFORE:INNER, INNER + 1:AFTER]
        assert np.isfinite(pos).all() and np.abs(pos[there] - p[there]).max() < 1e-4, fmt
        assert np.array_equal(np.flatnonzero(size < 1e-6), np.r_[0:BEFORE, AFTER:F]), fmt


@pytest.mark.slow
def test_a_retarget_of_a_hidden_person_is_hidden_where_the_source_is(motions, tmp_path):
    """The add-on's retarget read each source bone's orientation from its pose matrix: scaled to 0 where the person is
    not, a random pose there on the character. Now the character's root is scaled to 0 there, and where the person
    is the pose is the one a retarget of the same capture without hiding gives."""
    bpy = pytest.importorskip("bpy")
    from blender_addon.builders import build_armature, joint_world_positions
    from blender_addon.capture_format import read_capture
    from blender_addon.retarget import preset_maps, retarget_armature
    from mocap.io.capture import write_capture

    truth, m = motions
    path = write_capture(tmp_path / "take.npz", m)
    sk = truth.skeleton
    inv = {s: t for t, s in preset_maps()["mixamo"].items()}
    rest = {"joint_names": [inv[n] for n in sk.joint_names], "parents": sk.parents, "offsets": sk.offsets * 100,
            "rotations": np.tile([1.0, 0, 0, 0], (1, len(sk.joint_names), 1)), "root_positions": np.zeros((1, 3)),
            "fps": np.array(truth.fps)}
    out = {}
    for hide in (True, False):
        bpy.ops.wm.read_factory_settings(use_empty=True)
        source = build_armature(read_capture(str(path)), "source", hide_absent=hide)
        target = build_armature(rest, "mixamo_rig")
        target.animation_data_clear()
        target.scale = (0.01,) * 3
        retarget_armature(source, target, preset_maps()["mixamo"], 1, F)
        out[hide] = joint_world_positions(target, list(range(1, F + 1)))
        if hide:  # the source is left hidden as it was
            assert np.ptp(joint_world_positions(source, [1])[0], axis=0).max() < 1e-6
        if hide:  # the character exported by the add-on (its root bone's hiding moved onto its 0.01 scale, keyed
            # here as a user's character may be), read back: hidden where the person is not, and its scale kept
            target.keyframe_insert("scale", frame=1)
            bpy.context.view_layer.objects.active = target
            bpy.context.scene.frame_start, bpy.context.scene.frame_end = 1, F  # the rest pose's build set 1–1
            import blender_addon

            blender_addon.register()
            try:
                assert bpy.ops.mocap.export(filepath=str(tmp_path / "character.fbx"), format="FBX") == {"FINISHED"}
            finally:
                blender_addon.unregister()
            assert tuple(target.scale) == pytest.approx((0.01,) * 3)
            assert np.abs(joint_world_positions(target, list(range(1, F + 1))) - out[True]).max() < 1e-6
    size = np.ptp(out[True], axis=1).max(axis=1)
    assert np.array_equal(np.flatnonzero(size < 1e-6), np.r_[0:BEFORE, AFTER:F])
    there = np.r_[BEFORE:AFTER]
    assert np.isfinite(out[True]).all() and np.abs(out[True][there] - out[False][there]).max() < 1e-5
    r = subprocess.run([sys.executable, "-m", "blender_addon.headless", "positions", str(tmp_path / "character.fbx"),
                        str(tmp_path / "c.npz"), "--fps", "30"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    z = np.load(tmp_path / "c.npz")
    back = z["positions"]
    size = np.ptp(back, axis=1).max(axis=1)
    assert np.isfinite(back).all() and np.array_equal(np.flatnonzero(size < 1e-6), np.r_[0:BEFORE, AFTER:F])
    assert 1.0 < np.median(size[BEFORE:AFTER]) < 2.5  # a person's size in metres: the 0.01 of centimetres kept


@pytest.mark.slow
def test_the_addons_glb_of_one_person_holds_that_persons_motion_only(motions, tmp_path):
    """In a scene with several people the add-on's GLB export held every action of the file, and a reader played
    the first (another person's: 1.3–2.3 m off, hidden frames lost). Now the selected armature's own action."""
    bpy = pytest.importorskip("bpy")
    import blender_addon
    from mocap.io.capture import write_capture

    truth, m = motions
    other = Motion(m.skeleton, truth.rotations, truth.root_positions + [1.5, 0.0, 0.0], m.fps)  # someone else
    write_capture(tmp_path / "body22_person1.npz", other, person="person1")
    write_capture(tmp_path / "body22_person2.npz", m, person="person2")
    bpy.ops.wm.read_factory_settings(use_empty=True)
    blender_addon.register()
    try:
        assert bpy.ops.mocap.import_capture(filepath=str(tmp_path / "body22_person1.npz"), cameras=False) \
            == {"FINISHED"}
        second = bpy.data.objects["person2"]
        for o in bpy.context.scene.objects:
            o.select_set(o == second)
        bpy.context.view_layer.objects.active = second
        assert bpy.ops.mocap.export(filepath=str(tmp_path / "p2.glb"), format="GLB") == {"FINISHED"}
    finally:
        blender_addon.unregister()
    r = subprocess.run([sys.executable, "-m", "blender_addon.headless", "positions", str(tmp_path / "p2.glb"),
                        str(tmp_path / "p2.npz"), "--fps", "30"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    z = np.load(tmp_path / "p2.npz")
    pos = z["positions"][:, [list(z["names"]).index(n) for n in truth.skeleton.joint_names]]
    _, p = truth.fk()
    there = np.r_[BEFORE:INNER, INNER + 1:AFTER]
    assert np.abs(pos[there] - p[there]).max() < 1e-4
    assert np.array_equal(np.flatnonzero(np.ptp(pos, axis=1).max(axis=1) < 1e-6), np.r_[0:BEFORE, AFTER:F])
