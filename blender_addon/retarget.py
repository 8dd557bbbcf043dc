"""Retargeting onto an armature already in the scene, by bone maps (target bone → source bone).

Works in world space on the evaluated poses: each mapped target bone turns by the same world rotation
(from its rest) as its source bone, after its rest direction is aligned with the source bone's rest
direction (so T-pose and A-pose rigs both work); unmapped bones follow their parent; the root moves
with the source root, its height above the source's floor and its travel from its first position scaled by the
ratio of hip heights (the characters facing the same way at rest). The result is baked as keyframes on every frame.

The library (``mocap.retarget``) scales the root the same way; its rest alignment differs on purpose:
its rigs are joints without axes, so it aims each joint at the mapped joints below it, while a Blender
bone has its own axis, which this module uses (A-pose rigs with helper bones, such as the MakeHuman
character of the rendered takes, need it). tests/test_addon_drift.py holds the two to each other.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import bpy
import numpy as np

from .builders import _fcurves, _set_curve, channel_curves, unhidden
from .capture_format import matrix_to_quat

MAPS_FILE = Path(__file__).with_name("bone_maps.json")
FINGER = re.compile(r"^(Left|Right)Hand(Thumb|Index|Middle|Ring|Pinky)\d$")  # the pipeline's finger joints


class RetargetError(ValueError):
    """Raised with a message for the user (missing bones, wrong objects)."""


def preset_maps() -> dict[str, dict[str, str]]:
    """Preset maps (target bone → pipeline body22 joint), generated from ``configs/rigs``."""
    return json.loads(MAPS_FILE.read_text())


def _rot(m) -> np.ndarray:
    a = np.array(m, float)[:3, :3]
    u, _, vt = np.linalg.svd(a)
    return u @ vt


def _between(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    u, v = u / np.linalg.norm(u), v / np.linalg.norm(v)
    axis, c = np.cross(u, v), float(u @ v)
    s = np.linalg.norm(axis)
    if s < 1e-9:
        if c > 0:
            return np.eye(3)
        axis = np.cross(u, [1.0, 0, 0] if abs(u[0]) < 0.9 else [0, 1.0, 0])
        axis, s, c = axis / np.linalg.norm(axis), 0.0, -1.0
        K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
        return np.eye(3) + 2 * K @ K
    k = axis / s
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + s * K + (1 - c) * K @ K


def finger_note(source, target, bone_map: dict[str, str]) -> str | None:
    """What a map's finger entries cannot do here (a source without fingers, a target without finger
    bones), in one sentence; None when the fingers are retargeted (or the map has none)."""
    fingers = {t: s for t, s in bone_map.items() if FINGER.match(s)}
    if not fingers:
        return None
    if not any(s in source.data.bones for s in fingers.values()):
        return f"{source.name!r} has no finger bones: the target's fingers keep the hand's orientation"
    if not any(t in target.data.bones for t in fingers):
        return f"{target.name!r} has no finger bones of this map: the body is retargeted, the fingers are skipped"
    return None


def check_map(source, target, bone_map: dict[str, str]) -> dict[str, str]:
    """The usable part of a map; raises naming the bones the target lacks (or the source lacks). Finger
    entries are dropped when the source has no finger bones or the target none of the map's (see
    :func:`finger_note`)."""
    if source is None or source.type != "ARMATURE" or target is None or target.type != "ARMATURE":
        raise RetargetError("choose a source and a target armature")
    if source == target:
        raise RetargetError("source and target are the same armature")
    fingers = {t: s for t, s in bone_map.items() if FINGER.match(s)}
    if fingers and finger_note(source, target, bone_map):
        bone_map = {t: s for t, s in bone_map.items() if t not in fingers}
    missing_t = sorted(t for t in bone_map if t not in target.data.bones)
    if missing_t:
        raise RetargetError(f"target armature {target.name!r} is missing mapped bones: {', '.join(missing_t)}")
    missing_s = sorted({s for s in bone_map.values() if s not in source.data.bones})
    if missing_s:
        raise RetargetError(f"source armature {source.name!r} is missing mapped bones: {', '.join(missing_s)}")
    return bone_map


def _scale(obj) -> float:
    return float(np.cbrt(abs(np.linalg.det(np.array(obj.matrix_world)[:3, :3]))))


def _hip_height(obj, root: str) -> float:
    mw = np.array(obj.matrix_world)
    heads = np.array([np.array(b.head_local) for b in obj.data.bones]) @ mw[:3, :3].T + mw[:3, 3]
    r = np.array(obj.data.bones[root].head_local) @ mw[:3, :3].T + mw[:3, 3]
    return float(r[2] - heads[:, 2].min())


def retarget_armature(source, target, bone_map: dict[str, str], frame_start: int | None = None,
                      frame_end: int | None = None, context=None):
    """Bake the source armature's animation onto ``target`` (an action keyed on every frame); where the source is
    hidden (a person not yet in the take, or gone: its root scaled to 0), the target's root is scaled to 0 too, its
    pose there the source's held one."""
    context = context or bpy.context
    with unhidden(source) as hidden:
        action = _retarget(source, target, bone_map, frame_start, frame_end, context)
    if hidden:
        fs, fe = (int(round(v)) for v in action.frame_range)
        frames = np.arange(fs, fe + 1)
        size = np.array([1.0 if hidden[0].evaluate(float(f)) > 0.5 else 0.0 for f in frames])
        root = next(b.name for b in target.data.bones if b.parent is None)
        curves = channel_curves(target)
        for k in range(3):
            _set_curve(curves, f'pose.bones["{root}"].scale', k, frames.astype(float), size, root, interpolation=0)
        there = frames[size > 0]
        if there.size:  # as build_armature marks a hidden armature: its exports move the hiding to the object
            target["mocap_present"] = [int(there[0]), int(there[-1])]
        target["mocap_hidden_bone"] = root
    return action


def _retarget(source, target, bone_map: dict[str, str], frame_start: int | None, frame_end: int | None, context):
    scene = context.scene
    bone_map = check_map(source, target, bone_map)
    fs, fe = scene.frame_start, scene.frame_end
    ad = source.animation_data
    if ad is not None and ad.action is not None:  # the source's own range, whatever the scene says
        fs, fe = (int(round(v)) for v in ad.action.frame_range)
    fs = fs if frame_start is None else frame_start
    fe = fe if frame_end is None else frame_end
    if fe < fs:
        raise RetargetError("the frame range is empty")
    tb = target.data.bones
    order = [b.name for b in tb]  # parents come before children in Blender's bone list
    tw, sw = _rot(target.matrix_world), _rot(source.matrix_world)
    t_rest = {n: tw @ _rot(tb[n].matrix_local) for n in order}  # world rest orientation of each bone
    s_rest = {n: sw @ _rot(source.data.bones[n].matrix_local) for n in set(bone_map.values())}
    # rest alignment: turn the target bone's rest direction (its Y axis) onto the source bone's; a bone
    # shorter than 5 mm has no direction and takes the alignment of its nearest aligned ancestor
    align = {}
    for t in order:
        if t not in bone_map:
            continue
        if tb[t].length * _scale(target) >= 0.005:
            align[t] = _between(t_rest[t][:, 1], s_rest[bone_map[t]][:, 1])
            continue
        a = tb[t].parent
        while a is not None and a.name not in align:
            a = a.parent
        align[t] = align[a.name] if a is not None else np.eye(3)
    roots = [n for n in order if tb[n].parent is None]
    root = roots[0]
    src_root = bone_map.get(root)
    if src_root is None:
        raise RetargetError(f"the target's root bone {root!r} must be mapped")
    scale = _hip_height(target, root) / max(_hip_height(source, src_root), 1e-6)  # as mocap.retarget
    t_mw_inv = np.linalg.inv(np.array(target.matrix_world))
    s_mw = np.array(source.matrix_world)
    t_root_rest = np.array(tb[root].head_local)
    frames = np.arange(fs, fe + 1)
    quats = {n: np.zeros((len(frames), 3, 3)) for n in order}
    loc, heads, lows = np.zeros((len(frames), 3)), np.zeros((len(frames), 3)), np.zeros(len(frames))
    for i, f in enumerate(frames):
        scene.frame_set(int(f))
        pose = {}
        for n in order:
            b = tb[n]
            if n in bone_map:
                sp = source.pose.bones[bone_map[n]]
                world = sw @ _rot(sp.matrix) @ _rot(source.data.bones[bone_map[n]].matrix_local).T @ sw.T
                pose[n] = world @ align[n] @ t_rest[n]
            elif b.parent is not None:
                pose[n] = pose[b.parent.name] @ t_rest[b.parent.name].T @ t_rest[n]
            else:
                pose[n] = t_rest[n]
            if b.parent is None:
                basis = t_rest[n].T @ pose[n]
            else:
                local_rest = t_rest[b.parent.name].T @ t_rest[n]
                basis = local_rest.T @ pose[b.parent.name].T @ pose[n]
            quats[n][i] = basis
        heads[i] = s_mw[:3, :3] @ np.array(source.pose.bones[src_root].head) + s_mw[:3, 3]
        lows[i] = min((s_mw[:3, :3] @ np.array(b.head) + s_mw[:3, 3])[2] for b in source.pose.bones)
    # as mocap.retarget.scaled_path: the root's height above the floor (the source's lowest joint, 2nd percentile)
    # and its travel from its first position scale by hip height, the floor and that position kept
    floor = float(np.percentile(lows, 2))
    want = heads.copy()
    want[:, :2] = heads[0, :2] + (heads[:, :2] - heads[0, :2]) * scale
    want[:, 2] = floor + (heads[:, 2] - floor) * scale
    for i in range(len(frames)):
        loc[i] = _rot(tb[root].matrix_local).T @ (t_mw_inv[:3, :3] @ want[i] + t_mw_inv[:3, 3] - t_root_rest)
    if target.animation_data is None:
        target.animation_data_create()
    action = bpy.data.actions.new(f"{target.name}_retargeted")
    curves = _fcurves(action, target)
    fl = frames.astype(float)
    for n in order:
        q = matrix_to_quat(quats[n])
        target.pose.bones[n].rotation_mode = "QUATERNION"
        for k in range(4):
            _set_curve(curves, f'pose.bones["{n}"].rotation_quaternion', k, fl, q[:, k], n)
    for k in range(3):
        _set_curve(curves, f'pose.bones["{root}"].location', k, fl, loc[:, k], root)
    return action
