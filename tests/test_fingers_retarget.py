"""Finger animation out (issue 16): body52 motions retargeted onto the Mixamo, UE5 and Unity finger bones, a
body22 motion on those rigs and a body52 motion on a rig without finger bones (one warning each), and the
exported FBX / GLB / BVH files re-imported in Blender with their finger segments pointing as in the motion."""

import logging

import numpy as np
import pytest
from blender_import import blender_positions
from body_synth import body_motion

from mocap.retarget import load_target_rig, retarget_to_rig
from mocap.stages.export import write_motion
from mocap.synth.fingers import add_fingers, finger_curls

FINGERS = ("Thumb", "Index", "Middle", "Ring", "Pinky")
# rig → (side, finger, i) → bone name of body52's finger joint i (1..3) and of the fingertip end (4), if any
BONES = {
    "mixamo": lambda s, f, i: f"mixamorig:{s}Hand{f}{i}",
    "ue5": lambda s, f, i: None if i > 3 else f"{f.lower()}_{i:02d}_{s[0].lower()}",
    "unity": lambda s, f, i: None if i > 3 else f"{s}{'Little' if f == 'Pinky' else f}"
                                                f"{('Proximal', 'Intermediate', 'Distal')[i - 1]}",
}


def _motion52(frames=60, fps=30.0):
    return add_fingers(body_motion(frames, fps), finger_curls(frames, fps, seed=5))


def _segments(names, pos, bone):
    """Finger segment vectors (F, S, 3) of a rig's bones, and the body52 joint pairs they stand for."""
    vec, pairs = [], []
    for s in ("Left", "Right"):
        for f in FINGERS:
            for i in (1, 2):
                a, b = bone(s, f, i), bone(s, f, i + 1)
                if a in names and b in names:
                    vec.append(pos[:, names.index(b)] - pos[:, names.index(a)])
                    pairs.append((f"{s}Hand{f}{i}", f"{s}Hand{f}{i + 1}"))
    return np.stack(vec, axis=1), pairs


def _angles_deg(u, v):
    cos = np.sum(u * v, axis=-1) / np.linalg.norm(u, axis=-1) / np.linalg.norm(v, axis=-1)
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def _truth(m52, pairs):
    _, p = m52.fk()
    idx = m52.skeleton.index
    return np.stack([p[:, idx(b)] - p[:, idx(a)] for a, b in pairs], axis=1)


@pytest.mark.parametrize("rig_name", ["mixamo", "ue5", "unity"])
def test_finger_bones_follow_body52_fingers(rig_name, caplog):
    m52 = _motion52()
    rig = load_target_rig(rig_name, m52.skeleton.joint_names)
    with caplog.at_level(logging.WARNING, logger="mocap.retarget"):
        out = retarget_to_rig(m52, rig, None)
    assert not [r for r in caplog.records if "finger" in r.getMessage()]
    _, p = out.fk()
    vec, pairs = _segments(out.skeleton.joint_names, p, BONES[rig_name])
    assert len(pairs) == 20
    err = _angles_deg(vec, _truth(m52, pairs))
    assert err.max() < 0.5, err.max()
    assert np.ptp(np.linalg.norm(vec, axis=2), axis=0).max() < 1e-9  # rigid bones


@pytest.mark.parametrize("rig_name", ["mixamo", "ue5", "unity"])
def test_body22_motion_on_a_finger_rig_keeps_fingers_at_the_hand_with_one_note(rig_name, caplog):
    """A body-only capture on a rig with finger bones is the everyday case (mocap run's defaults): one
    information line, not a warning on every run."""
    m22 = body_motion(30)
    rig = load_target_rig(rig_name, m22.skeleton.joint_names)
    with caplog.at_level(logging.INFO, logger="mocap.retarget"):
        out = retarget_to_rig(m22, rig, None)
    said = [r for r in caplog.records if "finger" in r.getMessage()]
    assert len(said) == 1 and "the motion has no fingers" in said[0].getMessage(), said
    assert said[0].levelno == logging.INFO
    G, _ = out.fk()
    hand = out.skeleton.index({"mixamo": "mixamorig:LeftHand", "ue5": "hand_l", "unity": "LeftHand"}[rig_name])
    tip = out.skeleton.index(BONES[rig_name]("Left", "Index", 3))
    assert np.allclose(G[:, tip], G[:, hand], atol=1e-9)


def test_body52_motion_on_a_rig_without_finger_bones_is_retargeted_with_one_warning(caplog):
    m52 = _motion52(30)
    rig = load_target_rig("cmu", m52.skeleton.joint_names)
    with caplog.at_level(logging.WARNING, logger="mocap.retarget"):
        out = retarget_to_rig(m52, rig, None)
    said = [r.getMessage() for r in caplog.records if "finger" in r.getMessage()]
    assert said == ["retarget: the target has no finger bones: the body is retargeted, the motion's fingers are "
                    "skipped"]
    body = retarget_to_rig(body_motion(30, 30.0), rig, None)  # the same body without fingers
    assert np.allclose(out.fk()[1], body.fk()[1], atol=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("rig_name,fmt", [("mixamo", "fbx"), ("ue5", "fbx"), ("mixamo", "glb"), ("body52", "bvh"),
                                          ("body52", "fbx")])
def test_reimported_finger_segments_point_as_in_the_body52_motion(rig_name, fmt, tmp_path):
    """The exported file, in the rig's units and up axis, re-imported in Blender: finger segment
    directions within 3° (median) of the body52 motion's."""
    pytest.importorskip("bpy")
    m52 = _motion52()
    if rig_name == "body52":
        motion, units, up, bone = m52, "m", "y", (lambda s, f, i: f"{s}Hand{f}{i}" if i <= 3 else None)
    else:
        rig = load_target_rig(rig_name, m52.skeleton.joint_names)
        motion, units, up, bone = retarget_to_rig(m52, rig, None), rig.units, rig.up, BONES[rig_name]
    path = write_motion(motion, tmp_path / f"take.{fmt}", fmt, units=units, up=up)
    names, pos, _ = blender_positions(path, tmp_path, motion.fps, up)
    assert pos.shape[0] == motion.n_frames
    vec, pairs = _segments(names, pos, bone)
    assert len(pairs) == 20
    err = _angles_deg(vec, _truth(m52, pairs))
    assert np.median(err) < 3.0 and np.percentile(err, 95) < 5.0, (np.median(err), err.max())


@pytest.mark.slow
@pytest.mark.parametrize("rig_name", ["mixamo", "ue5"])
def test_addon_retargets_fingers_like_the_library(rig_name, tmp_path):
    """The Blender add-on's retargeting of a body52 capture (its preset maps carry the finger bones) puts
    every finger bone where the library does; a body22 capture on the same rig is retargeted, fingers
    left at the hand, with the add-on's one-line note."""
    pytest.importorskip("bpy")
    import bpy

    from blender_addon import retarget as addon
    from blender_addon.builders import build_armature, joint_world_positions
    from blender_addon.capture_format import read_capture
    from mocap.io.capture import write_capture
    from mocap.retarget import retarget

    rig = load_target_rig(rig_name)
    sk = rig.skeleton
    J = len(sk.joint_names)
    for m in (_motion52(30), body_motion(30, 30.0)):
        path = write_capture(tmp_path / f"{len(m.skeleton.joint_names)}.npz", m)
        bpy.ops.wm.read_factory_settings(use_empty=True)
        source = build_armature(read_capture(str(path)), "source")
        target = build_armature({"joint_names": list(sk.joint_names), "parents": sk.parents, "offsets": sk.offsets,
                                 "rotations": np.tile([1.0, 0, 0, 0], (1, J, 1)), "root_positions": np.zeros((1, 3)),
                                 "fps": np.array(m.fps)}, "target")
        target.animation_data_clear()
        maps = addon.preset_maps()[rig_name]
        note = addon.finger_note(source, target, maps)
        assert (note is None) == (m.skeleton.joint_names[-1] == "RightHandPinky3"), note
        addon.retarget_armature(source, target, maps, 1, m.n_frames)
        frames = list(range(1, m.n_frames + 1, 3))
        pa = joint_world_positions(target, frames)
        order = [sk.joint_names.index(b.name) for b in target.pose.bones]
        _, pl = retarget(m, sk, rig.source).fk()
        pl = pl[np.array(frames) - 1][:, order]
        names = [b.name for b in target.pose.bones]
        fingers = [i for i, n in enumerate(names) if any(f.lower() in n.lower() for f in FINGERS)]
        assert len(fingers) >= 30
        err = np.linalg.norm((pa - pa[:, :1]) - (pl - pl[:, :1]), axis=-1)[:, fingers]
        hand = names.index({"mixamo": "mixamorig:LeftHand", "ue5": "hand_l"}[rig_name])
        rel = np.linalg.norm((pa[:, fingers] - pa[:, hand:hand + 1]) - (pl[:, fingers] - pl[:, hand:hand + 1]), axis=-1)
        assert rel.max() < 1e-3 or err.max() < 1e-3, (rel.max(), err.max())


def test_bvh_fingers_end_at_their_tips(tmp_path):
    from mocap.io.bvh import read_bvh
    from mocap.synth.fingers import hand_keypoints

    m52 = _motion52(10)
    path = write_motion(m52, tmp_path / "take.bvh", "bvh", units="cm", up="z")
    back = read_bvh(path)
    assert "LeftHandIndex3_end" in back.skeleton.joint_names
    _, p = back.fk()
    tip = p[:, back.skeleton.index("LeftHandIndex3_end")] / 100
    assert np.abs(tip - hand_keypoints(m52)[:, 8]).max() < 1e-4  # the index fingertip


def _bends(P):
    """(F, 8) angles (degrees) between consecutive segments: PIP and DIP of index, middle, pinky; thumb MCP, IP
    of a hand's 21 keypoints (F, 21, 3)."""
    out = []
    for chain in ((5, 6, 7, 8), (9, 10, 11, 12), (17, 18, 19, 20), (1, 2, 3, 4)):
        a, b, c, d = (P[:, k] for k in chain)
        out += [_angles_deg(b - a, c - b), _angles_deg(c - b, d - c)]
    return np.stack(out, axis=1)


@pytest.mark.slow
@pytest.mark.shared_data
def test_rendered_character_curls_its_fingers_like_the_body52_motion(shared_data, tmp_path):
    """``mocap synth render --hands``: the MakeHuman character's finger bones play the procedural curls, and its
    ground truth holds the 42 hand keypoints (bends equal to the motion's)."""
    pytest.importorskip("bpy")
    from mocap.io.hdf5 import read_points3d
    from mocap.synth.fingers import hand_keypoints
    from mocap.synth.render import RenderSpec, body_motion_from_bvh, render_session

    spec = RenderSpec(str(shared_data / "bvh" / "cmu_01_03.bvh"), start_s=2.0, seconds=0.6, fps=10.0, cameras=1,
                      size=(96, 72), samples=1, board_frames=1, hands=True)
    out = render_session(spec, tmp_path / "take")
    gt = read_points3d(out / "groundtruth" / "points3d.h5")
    assert gt.keypoint_set == "blazepose33_hands" and np.isfinite(gt.xyz[:, 0, 33:]).all()
    motion = add_fingers(body_motion_from_bvh(spec), finger_curls(6, 10.0, spec.seed))
    truth = hand_keypoints(motion)
    for s in (slice(0, 21), slice(21, 42)):
        assert np.abs(_bends(gt.xyz[:, 0, 33:][:, s]) - _bends(truth[:, s])).max() < 1.0
