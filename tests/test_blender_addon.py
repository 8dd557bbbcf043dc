"""The Blender add-on, driven headless through bpy in this process."""

import json
import zipfile

import numpy as np
import pytest
from body_synth import body_motion

bpy = pytest.importorskip("bpy")

import blender_addon  # noqa: E402
from blender_addon.builders import build_armature, joint_world_positions  # noqa: E402
from blender_addon.capture_format import read_capture as addon_read  # noqa: E402
from blender_addon.retarget import RetargetError, preset_maps, retarget_armature  # noqa: E402
from mocap.addon import ADDON_DIR, bone_maps, build_zip  # noqa: E402
from mocap.io.capture import write_capture  # noqa: E402
from mocap.synth import RigSpec, ring_rig  # noqa: E402
from mocap.types import Camera, Rig  # noqa: E402


@pytest.fixture
def addon():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    blender_addon.register()
    yield
    blender_addon.unregister()


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    m = body_motion(60, fps=30.0)
    _, p = m.fk()
    rig = ring_rig(RigSpec(n_cameras=3, size=(640, 480)), p.reshape(-1, 3))
    # principal points off-centre, as real cameras have them
    rig = Rig(tuple(Camera(c.name, c.K + np.array([[0, 0, 7.0 * i], [0, 0, -5.0 * i], [0, 0, 0]]), np.zeros(5),
                           c.cam_from_world, c.size) for i, c in enumerate(rig)))
    path = tmp_path_factory.mktemp("cap") / "take.npz"
    write_capture(path, m, rig, p[:, :5], ["a", "b", "c", "d", "e"])
    return path, m, rig


def test_register_unregister_cleanly():
    for _ in range(2):
        blender_addon.register()
        assert hasattr(bpy.ops.mocap, "import_capture") and hasattr(bpy.types.Scene, "mocap_target")
        blender_addon.unregister()
        assert not hasattr(bpy.types.Scene, "mocap_target")


def test_import_capture_matches_the_pipeline(addon, capture):
    path, m, _ = capture
    assert bpy.ops.mocap.import_capture(filepath=str(path), cameras=True, keypoints=True) == {"FINISHED"}
    arm = bpy.context.scene.mocap_source
    assert arm.type == "ARMATURE" and len(arm.data.bones) == len(m.skeleton.joint_names)
    scene = bpy.context.scene
    assert (scene.frame_start, scene.frame_end) == (1, m.n_frames)
    assert abs(scene.render.fps / scene.render.fps_base - m.fps) < 1e-6
    frames = [1, 17, 42, m.n_frames]
    pos = joint_world_positions(arm, frames)
    _, p = m.fk()
    names = [b.name for b in arm.pose.bones]
    for j in ["Hips", "LeftHand", "RightFoot", "Head", "LeftToeBase"]:
        err = np.abs(pos[:, names.index(j)] - p[np.array(frames) - 1, m.skeleton.index(j)]).max()
        assert err < 1e-3, (j, err)
    assert len([o for o in scene.objects if o.type == "CAMERA"]) == 3
    assert len([o for o in scene.objects if o.type == "EMPTY"]) == 5


def test_blender_cameras_project_like_the_rig(addon, capture):
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    path, m, rig = capture
    bpy.ops.mocap.import_capture(filepath=str(path), cameras=True)
    scene = bpy.context.scene
    _, p = m.fk()
    X = p[::7].reshape(-1, 3)[:40]
    for cam in rig:
        obj = bpy.data.objects[cam.name]
        W, H = cam.size
        uv = cam.project(X)
        for x, (u, v) in zip(X, uv, strict=True):
            n = world_to_camera_view(scene, obj, Vector(x.tolist()))
            ub, vb = n.x * W - 0.5, (1 - n.y) * H - 0.5
            assert abs(ub - u) < 0.5 and abs(vb - v) < 0.5, (cam.name, ub - u, vb - v)


def _mixamo_target(src_motion, scale_object=0.01):
    """A Mixamo-named armature with the source's proportions, in centimetres under a 0.01 object scale."""
    sk = src_motion.skeleton
    inv = {s: t for t, s in preset_maps()["mixamo"].items()}
    cap = {"joint_names": [inv[n] for n in sk.joint_names], "parents": sk.parents, "offsets": sk.offsets * 100,
           "rotations": np.tile([1.0, 0, 0, 0], (1, len(sk.joint_names), 1)), "root_positions": np.zeros((1, 3)),
           "fps": np.array(src_motion.fps)}
    obj = build_armature(cap, "mixamo_rig")
    obj.animation_data_clear()
    obj.scale = (scale_object,) * 3
    return obj


def test_retarget_onto_a_mixamo_rig_keeps_end_effectors(addon, capture):
    path, m, _ = capture
    bpy.ops.mocap.import_capture(filepath=str(path), cameras=False)
    scene = bpy.context.scene
    src = scene.mocap_source
    scene.mocap_target = _mixamo_target(m)
    scene.mocap_preset = "MIXAMO"
    assert bpy.ops.mocap.retarget() == {"FINISHED"}
    frames = [1, 20, 45, 60]
    ps = joint_world_positions(src, frames)
    pt = joint_world_positions(scene.mocap_target, frames)
    sn = [b.name for b in src.pose.bones]
    tn = [b.name for b in scene.mocap_target.pose.bones]
    for s in ["LeftHand", "RightHand", "LeftFoot", "RightFoot", "Head"]:
        t = "mixamorig:" + s
        err = np.linalg.norm(pt[:, tn.index(t)] - ps[:, sn.index(s)], axis=1).max()
        assert err < 0.02, (s, err)


def test_bad_inputs_are_reported(addon, capture, tmp_path):
    path, m, _ = capture
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(RuntimeError, match="not a mocap capture file"):
        bpy.ops.mocap.import_capture(filepath=str(tmp_path / "other.npz"))
    z = dict(np.load(path))
    z["schema_version"] = np.array(7)
    np.savez(tmp_path / "new.npz", **z)
    with pytest.raises(RuntimeError, match="schema version 7 is newer than this add-on reads"):
        bpy.ops.mocap.import_capture(filepath=str(tmp_path / "new.npz"))
    z = dict(np.load(path))
    z["rotations"], z["root_positions"] = z["rotations"][:0], z["root_positions"][:0]
    np.savez(tmp_path / "empty.npz", **z)
    with pytest.raises(RuntimeError, match="zero frames"):
        bpy.ops.mocap.import_capture(filepath=str(tmp_path / "empty.npz"))
    bpy.ops.mocap.import_capture(filepath=str(path), cameras=False)
    scene = bpy.context.scene
    target = _mixamo_target(m)
    bpy.ops.object.mode_set(mode="OBJECT")
    arm = target.data
    bpy.context.view_layer.objects.active = target
    bpy.ops.object.mode_set(mode="EDIT")
    arm.edit_bones.remove(arm.edit_bones["mixamorig:LeftHand"])
    bpy.ops.object.mode_set(mode="OBJECT")
    scene.mocap_target = target
    with pytest.raises(RuntimeError, match="missing mapped bones: mixamorig:LeftHand"):
        bpy.ops.mocap.retarget()
    with pytest.raises(RetargetError, match="missing mapped bones"):
        retarget_armature(scene.mocap_source, target, preset_maps()["mixamo"])


def test_addon_zip_and_bone_maps_are_in_sync(tmp_path):
    assert json.loads((ADDON_DIR / "bone_maps.json").read_text()) == bone_maps()
    out = build_zip(tmp_path / "addon.zip")
    names = zipfile.ZipFile(out).namelist()
    for f in ["__init__.py", "builders.py", "retarget.py", "capture_format.py", "bone_maps.json",
              "blender_manifest.toml"]:
        assert f"mocap_importer/{f}" in names
    import re

    code = "".join(zipfile.ZipFile(out).read(n).decode() for n in names if n.endswith(".py"))
    assert not re.search(r"\bpip\b|ensurepip|subprocess", code)  # never installs anything


def test_addon_reader_matches_the_pipeline_writer(capture):
    path, m, _ = capture
    cap = addon_read(str(path))
    assert cap["joint_names"] == list(m.skeleton.joint_names)
    assert np.array_equal(cap["rotations"], m.rotations)


def test_camera_videos_become_backgrounds(addon, capture, tmp_path):
    import cv2

    path, m, rig = capture
    video = tmp_path / "cam.mp4"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (64, 48))
    for _ in range(5):
        w.write(np.zeros((48, 64, 3), np.uint8))
    w.release()
    with_video = tmp_path / "take_video.npz"
    write_capture(with_video, m, rig, videos=[str(video), "", str(tmp_path / "missing.mp4")])
    assert bpy.ops.mocap.import_capture(filepath=str(with_video), cameras=True, videos=True) == {"FINISHED"}
    bgs = [len(bpy.data.objects[c.name].data.background_images) for c in rig]
    assert bgs == [1, 0, 0]  # an absent or missing video is simply not shown
    assert bpy.data.objects[rig[0].name].data.background_images[0].clip.filepath.endswith("cam.mp4")


def _positions(path, tmp_path, fps):
    import subprocess
    import sys

    out = tmp_path / f"{path.name}.positions.npz"
    r = subprocess.run([sys.executable, "-m", "blender_addon.headless", "positions", str(path), str(out),
                        "--fps", str(fps)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    return np.load(out)


@pytest.mark.slow
def test_every_export_starts_at_frame_one(addon, capture, tmp_path):
    """BVH, FBX and GLB, from the pipeline and from the add-on's Export, reimport on one timeline: frame 1."""
    from mocap.stages.export import write_motion

    path, m, _ = capture
    _, p = m.fk()
    bpy.ops.mocap.import_capture(filepath=str(path), cameras=False)
    arm = bpy.context.scene.mocap_source
    bpy.context.view_layer.objects.active = arm
    files = [write_motion(m, tmp_path / f"pipeline.{fmt}", fmt, units="m", up="y") for fmt in ("bvh", "fbx", "glb")]
    files.append(write_motion(m, tmp_path / "pipeline_z.glb", "glb", units="m", up="z"))  # the ue5 rig's up: glTF is
    # Y up whatever is asked (it was written Z up: lying on its back, 2.2 m off)
    for fmt in ("FBX", "GLB"):
        out = tmp_path / f"addon.{fmt.lower()}"
        assert bpy.ops.mocap.export(filepath=str(out), format=fmt) == {"FINISHED"}
        files.append(out)
    scene = bpy.context.scene
    assert (scene.frame_start, scene.frame_end) == (1, m.n_frames)  # the scene is left as it was
    assert np.allclose(joint_world_positions(arm, [1])[0][0], p[0, 0], atol=1e-4)  # and its keys too
    for f in files:
        z = _positions(f, tmp_path, m.fps)
        assert int(z["frame_start"]) == 1, f.name
        names = list(z["names"])
        pos = z["positions"][:, [names.index(n) for n in m.skeleton.joint_names]]
        assert pos.shape[0] == m.n_frames and np.abs(pos - p).max() < 1e-3, f.name


def test_broken_captures_are_reported_not_raised(addon, capture, tmp_path):
    """Every failure of an import is an error report naming the file and the problem, never a traceback."""
    path, _, _ = capture
    full = dict(np.load(path))
    cases = {
        "no_rotations": ({k: v for k, v in full.items() if k != "rotations"}, "lacks the array.*rotations"),
        "no_fps": ({k: v for k, v in full.items() if k not in ("fps", "parents")}, "lacks the array.*parents, fps"),
        "bad_shape": (full | {"rotations": full["rotations"][..., :3]}, "rotations should be"),
        "bad_parents": (full | {"parents": full["parents"][::-1].copy()}, "parents should list"),
        "half_cameras": ({k: v for k, v in full.items() if k != "camera_K"}, "camera arrays incomplete.*camera_K"),
        "bad_points": (full | {"points": np.zeros((2, 1, 3)), "point_names": np.array(["a"])}, "points should"),
        "all_nan": (full | {"rotations": full["rotations"] * np.nan}, "no valid frame"),
    }
    for name, (arrays, message) in cases.items():
        f = tmp_path / f"{name}.npz"
        np.savez(f, **arrays)
        with pytest.raises(RuntimeError) as e:
            bpy.ops.mocap.import_capture(filepath=str(f))
        text = str(e.value)
        assert str(f) in text and "Traceback" not in text and "KeyError" not in text, text
        assert __import__("re").search(message, text), (name, text)
    (tmp_path / "garbage.npz").write_bytes(b"PK\x03\x04 not really a zip")
    np.save(tmp_path / "single.npy", np.zeros(3))
    for f in [tmp_path / "garbage.npz", tmp_path / "missing.npz", tmp_path / "single.npy"]:
        with pytest.raises(RuntimeError, match=f"{f}: (not a capture file|no such file)") as e:
            bpy.ops.mocap.import_capture(filepath=str(f))
        assert "Traceback" not in str(e.value)
    (tmp_path / "take.bvh").write_text("HIERARCHY\nROOT Hips\n")  # an animation file given as a capture
    with pytest.raises(RuntimeError, match="take.bvh: not a capture file .*Blender's own File > Import") as e:
        bpy.ops.mocap.import_capture(filepath=str(tmp_path / "take.bvh"))
    assert "pickled" not in str(e.value)
    (tmp_path / "broken.bvh").write_text("HIERARCHY\nROOT Hips\n{\n  OFFSET 0 0\n")
    for f in [tmp_path / "broken.bvh", tmp_path / "missing.fbx"]:
        with pytest.raises(RuntimeError, match=f"{f}: (no such file|Blender's importer could not read it: "
                                                 "IndexError)") as e:
            bpy.ops.mocap.import_animation(filepath=str(f))
        assert "Traceback" not in str(e.value) and "Location" not in str(e.value), str(e.value)


@pytest.mark.slow
def test_files_written_through_blender_name_the_armature_armature(capture, tmp_path):
    """The armature (and the GLB's animation) took the temporary file's name, out0, out3_action: a name that changed
    with the file's place in the run's list; now "Armature", as the native FBX writer's."""
    import struct
    from pathlib import Path

    from mocap.io import blender

    _, m, _ = capture
    glb = blender.blender_export_many([(m, tmp_path / "take.glb", "y")])[0]
    data = Path(glb).read_bytes()
    (length,) = struct.unpack_from("<I", data, 12)
    gltf = json.loads(data[20:20 + length])
    assert "Armature" in [n.get("name") for n in gltf["nodes"]]
    assert [a.get("name") for a in gltf["animations"]] == ["Armature_action"]


def test_a_bvh_in_cmu_units_is_imported_at_its_size(addon, capture, tmp_path):
    """The cmu rig's BVH is in CMU units (1 / 0.056444 per metre); the add-on offered metres and centimetres only:
    its hips came in at 15.4 m or 0.15 m instead of 0.87 m."""
    from mocap.stages.export import write_motion

    _, m, _ = capture
    _, p = m.fk()
    path = write_motion(m, tmp_path / "take_cmu.bvh", "bvh", units="cmu", up="y")
    assert bpy.ops.mocap.import_animation(filepath=str(path), units="CMU") == {"FINISHED"}
    arm = bpy.context.view_layer.objects.active
    hips = joint_world_positions(arm, [1])[0][0]
    assert np.allclose(hips, p[0, 0], atol=1e-3), (hips, p[0, 0])


def test_a_bvh_is_read_in_its_own_units_and_sets_the_scene_range(addon, capture, tmp_path):
    """BVH does not say its unit: the mixamo rig's file (centimetres) imported with the default metres stood 164 m
    tall. By default (AUTO) the unit is read from the skeleton's size; and the scene's range is the take's (it
    stayed 1-250: 150 held frames after a 100-frame take)."""
    from mocap.stages.export import write_motion

    _, m, _ = capture
    _, p = m.fk()
    for units in ("m", "cm", "cmu"):
        path = write_motion(m, tmp_path / f"take_{units}.bvh", "bvh", units=units, up="y")
        assert bpy.ops.mocap.import_animation(filepath=str(path)) == {"FINISHED"}
        arm = bpy.context.view_layer.objects.active
        hips = joint_world_positions(arm, [1])[0][0]
        assert np.allclose(hips, p[0, 0], atol=1e-3), (units, hips, p[0, 0])
        scene = bpy.context.scene
        assert (scene.frame_start, scene.frame_end) == (1, m.n_frames), (units, scene.frame_start, scene.frame_end)
        scene.frame_end = 250
    fbx = write_motion(m, tmp_path / "take.fbx", "fbx", units="m", up="y")  # the native writer: no Blender child
    assert bpy.ops.mocap.import_animation(filepath=str(fbx)) == {"FINISHED"}
    assert bpy.context.scene.frame_end - bpy.context.scene.frame_start + 1 == m.n_frames, (
        bpy.context.scene.frame_start, bpy.context.scene.frame_end)


def test_a_joint_name_blender_would_cut_is_refused_naming_it(addon, capture):
    """Blender cuts a bone's name at 63 bytes; the bone was then looked up by its full name: KeyError traceback."""
    from blender_addon.capture_format import read_capture as read_addon_capture

    path, _, _ = capture
    cap = read_addon_capture(str(path))
    long = "x" * 60 + "Hips"
    cap["joint_names"] = [long] + list(cap["joint_names"][1:])
    with pytest.raises(ValueError, match=rf"joint names \['{long}'\] are longer than Blender's 63 bytes"):
        build_armature(cap, "take")
