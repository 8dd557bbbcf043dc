"""Export problems left open by earlier reviews: GLB key times at fractional frame rates (first key at 0),
``--units`` with ``--fbx-writer blender``, BVH End Sites whose names clash on reading back."""

import json
import struct
import subprocess
import sys

import numpy as np
import pytest
from blender_import import blender_positions
from body_synth import body_motion
from fbx_reader import read_fbx

from mocap.geometry.rotations import axis_angle_to_matrix, matrix_to_quat
from mocap.io.bvh import read_bvh, write_bvh
from mocap.stages.export import write_motion
from mocap.types import Motion, Skeleton

# Blender imports files in a child; every bone's world position at every frame of the imported action
_IMPORT = """
import json, sys
import bpy
import numpy as np
from blender_addon.builders import joint_world_positions
from blender_addon.headless import import_file
for path, out, up in json.loads(sys.argv[1]):
    obj = import_file(path, up, 30.0)
    start, end = (int(round(v)) for v in obj.animation_data.action.frame_range)
    pos = joint_world_positions(obj, list(range(start, end + 1)))
    np.savez(out, names=np.array([b.name for b in obj.pose.bones], dtype=str), positions=pos)
"""


def _blender_import(paths, tmp_path, up="z"):
    """[path] → [(bone names, (F, J, 3) positions)] as Blender imports them (30 fps), one Blender child for all."""
    spec = [(str(p), str(tmp_path / f"{p.name}.{i}.npz"), up) for i, p in enumerate(paths)]
    r = subprocess.run([sys.executable, "-c", _IMPORT, json.dumps(spec)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    out = []
    for _, npz, _ in spec:
        z = np.load(npz)
        out.append((list(z["names"]), z["positions"]))
    return out


def _glb_key_times(path):
    """Every animation sampler's input (key times in seconds) of a GLB, read from its JSON and binary chunks."""
    data = path.read_bytes()
    assert data[:4] == b"glTF"
    chunks, pos = {}, 12
    while pos < len(data):
        length, kind = struct.unpack_from("<I4s", data, pos)
        chunks[kind] = data[pos + 8: pos + 8 + length]
        pos += 8 + length
    gltf, binary = json.loads(chunks[b"JSON"]), chunks[b"BIN\x00"]
    times = []
    for anim in gltf["animations"]:
        for sampler in anim["samplers"]:
            acc = gltf["accessors"][sampler["input"]]
            view = gltf["bufferViews"][acc["bufferView"]]
            start = view.get("byteOffset", 0) + acc.get("byteOffset", 0)
            times.append(np.frombuffer(binary, np.float32, acc["count"], start).astype(float))
    return times


@pytest.mark.slow
def test_glb_keys_are_at_i_over_fps_from_zero_at_fractional_rates(tmp_path):
    """Blender's glTF exporter wrote frame f at f / (fps · fps_base): 29.97 fps (30 / 1.001 in Blender) at
    30.03 fps, 27.5 at 28.5; and the first frame (frame 1) at 1 / fps instead of 0."""
    pytest.importorskip("bpy")
    from mocap.io import blender

    rates = (30.0, 29.97, 30000 / 1001, 27.5, 12.5)
    motions = [body_motion(25, fps=fps) for fps in rates]
    paths = blender.blender_export_many([(m, tmp_path / f"take{i}.glb", "y") for i, m in enumerate(motions)])
    for fps, m, path in zip(rates, motions, paths, strict=True):
        times = _glb_key_times(path)
        assert max(len(t) for t in times) == m.n_frames, path.name  # sampled on every frame (constant
        for t in times:  # channels keep fewer keys), each key on a frame i at i / fps, the first at 0
            frames = t * fps
            assert t[0] == 0.0 and np.abs(frames - np.round(frames)).max() < 1e-4, (fps, t[:3])
            if len(t) == m.n_frames:
                assert np.abs(t - np.arange(m.n_frames) / fps).max() < 1e-6, (fps, t[:3])
    names, pos, start = blender_positions(paths[1], tmp_path, rates[1], "y")  # Blender re-imports it on time
    _, fk = motions[1].fk()
    assert start == 1 and pos.shape[0] == motions[1].n_frames
    assert np.abs(pos[:, [names.index(n) for n in motions[1].skeleton.joint_names]] - fk).max() < 1e-4


def _fbx_lengths(path):
    """(UnitScaleFactor, the length of every LimbNode's translation as the file holds it, scaled by the
    armature object's own scale): the numbers a reader of the file sees, in the file's unit."""
    _, nodes, _ = read_fbx(path.read_bytes())
    top = {n.name: n for n in nodes}
    models = {}
    for o in top["Objects"].all("Model"):
        models[o.props[1].split("\x00\x01")[0]] = o
    arm = np.array(models["Armature"].properties70().get("Lcl Scaling", [1.0, 1.0, 1.0]), float)
    lengths = {name: float(np.linalg.norm(o.properties70()["Lcl Translation"]) * arm[0])
               for name, o in models.items() if o.props[2] == "LimbNode" and name != "Hips"}
    return top["GlobalSettings"].properties70()["UnitScaleFactor"][0], lengths


@pytest.mark.slow
def test_units_are_honoured_by_blenders_fbx_writer_as_by_the_native_one(tmp_path):
    """``--units`` with ``--fbx-writer blender``: the file was in centimetres (UnitScaleFactor 1) whatever the
    unit asked. Now the same numbers as the native writer's file (UnitScaleFactor, bone lengths scaled by the
    armature object's scale), and Blender re-imports each at the motion's size."""
    pytest.importorskip("bpy")
    m = body_motion(20, fps=30.0)
    files = {(w, u): write_motion(m, tmp_path / f"{w}_{u}.fbx", "fbx", units=u, up="y", fbx_writer=w)
             for u in ("m", "cm", "cmu") for w in ("native", "blender")}
    for u in ("m", "cm", "cmu"):
        usf_native, len_native = _fbx_lengths(files["native", u])
        usf, lengths = _fbx_lengths(files["blender", u])
        assert usf == pytest.approx(usf_native, rel=1e-6), u
        for name, length in len_native.items():
            assert lengths[name] == pytest.approx(length, rel=1e-5, abs=1e-6), (u, name)
    # Blender's importer converts by UnitScaleFactor: each file at the motion's size in metres (the numbers
    # and their unit agree), the frame rate and up axis aside
    got = _blender_import([files["blender", u] for u in ("m", "cm", "cmu")], tmp_path, up="y")
    _, fk = m.fk()
    for names, pos in got:
        assert np.abs(pos[:, [names.index(n) for n in m.skeleton.joint_names]] - fk).max() < 1e-4


def _motion(names, parents, offsets, still=()):
    F, J = 12, len(names)
    rng = np.random.default_rng(3)
    t = np.linspace(0, 2, F)[:, None]
    aa = 0.5 * np.sin(t * rng.uniform(1, 3, (1, J * 3)) + rng.uniform(0, 6, (1, J * 3))).reshape(F, J, 3)
    aa[:, list(still)] = 0
    root = np.concatenate([np.sin(t), np.cos(t), 0.9 + 0 * t], axis=1)
    return Motion(Skeleton(tuple(names), np.array(parents), np.array(offsets, float)),
                  matrix_to_quat(axis_angle_to_matrix(aa)), root, 30.0)


CLASHES = {
    # a leaf named like an End Site but not its parent's ("Tip_end" under "Hand"): read back as "Hand_end"
    "end_of_another_name": (["Hips", "Spine", "Hand", "Tip_end"], [-1, 0, 1, 2],
                            [[0, 0, 0], [0, 0, .3], [.3, 0, .2], [.1, 0, 0]]),
    # two leaves named like End Sites under one joint: two End Sites, read back as two joints "Hand_end"
    "two_end_sites": (["Hips", "Spine", "Hand", "Hand_end", "Thumb_end"], [-1, 0, 1, 2, 2],
                      [[0, 0, 0], [0, 0, .3], [.3, 0, .2], [.1, 0, 0], [0, .1, .05]]),
    # a leaf "Hand" (its End Site read back as "Hand_end") and a joint named "Hand_end": the file was refused
    "joint_named_like_an_end_site": (["Hips", "Spine", "Hand", "Hand_end", "Head"], [-1, 0, 1, 1, 3],
                                     [[0, 0, 0], [0, 0, .3], [.3, 0, .2], [0, 0, .2], [0, 0, .1]]),
}


@pytest.mark.parametrize("case", sorted(CLASHES))
def test_bvh_end_sites_read_back_as_the_same_joints(case, tmp_path):
    m = _motion(*CLASHES[case])
    path = write_bvh(m, tmp_path / f"{case}.bvh")
    back = read_bvh(path)
    names = back.skeleton.joint_names
    assert len(set(names)) == len(names) and set(m.skeleton.joint_names) <= set(names), names
    extra = set(names) - set(m.skeleton.joint_names)  # End Sites of leaves: "<leaf>_end", nothing else
    assert all(n.endswith("_end") and n[:-4] in m.skeleton.joint_names for n in extra), extra
    _, p0 = m.fk()
    _, p1 = back.fk()
    idx = [names.index(n) for n in m.skeleton.joint_names]
    assert np.abs(p1[:, idx] - p0).max() < 1e-5
    assert write_bvh(back, tmp_path / "again.bvh").read_bytes() == path.read_bytes()


@pytest.mark.slow
def test_blender_imports_the_clashing_skeletons_with_their_joints(tmp_path):
    """Blender makes no bone of an End Site: every joint but those written as End Sites ("<parent>_end"
    leaves) is a bone, at the motion's positions."""
    pytest.importorskip("bpy")
    motions = {case: _motion(*spec) for case, spec in CLASHES.items()}
    paths = [write_bvh(m, tmp_path / f"{case}.bvh") for case, m in motions.items()]
    for (names, pos), m in zip(_blender_import(paths, tmp_path), motions.values(), strict=True):
        sk = m.skeleton
        sites = {n for j, n in enumerate(sk.joint_names) if j and n == f"{sk.joint_names[sk.parents[j]]}_end"
                 and not np.any(sk.parents == j)}
        assert set(names) == set(sk.joint_names) - sites, names
        _, fk = m.fk()
        kept = [n for n in sk.joint_names if n not in sites]
        err = np.abs(pos[:, [names.index(n) for n in kept]] - fk[:, [sk.joint_names.index(n) for n in kept]])
        assert err.max() < 1e-4


def test_bvh_reader_names_two_end_sites_of_one_joint_apart(tmp_path):
    """A file (not one of ours) with two End Sites in one joint: two joints, not two of one name."""
    site = "\t\tEnd Site\n\t\t{\n\t\t\tOFFSET %s\n\t\t}\n"
    text = ("HIERARCHY\nROOT Hips\n{\n\tOFFSET 0 0 0\n\tCHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation "
            "Yrotation\n\tJOINT Hand\n\t{\n\t\tOFFSET 0 0 1\n\t\tCHANNELS 3 Zrotation Xrotation Yrotation\n"
            + site % "1 0 0" + site % "0 1 0" + "\t}\n}\nMOTION\nFrames: 1\nFrame Time: 0.033333\n0 0 0 0 0 0 0 0 0\n")
    (tmp_path / "two.bvh").write_text(text)
    m = read_bvh(tmp_path / "two.bvh")
    assert m.skeleton.joint_names == ("Hips", "Hand", "Hand_end", "Hand_end2")
    assert np.allclose(m.fk()[1][0, 2:], [[1, 0, 1], [0, 1, 1]])
