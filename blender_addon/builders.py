"""Scene builders over bpy: armatures with baked animation, cameras, keypoints, retargeting, export.

Pure functions of a capture dict (see :mod:`.capture_format`) and the current scene; the operators
in ``__init__`` and the pipeline's headless exports both call these. Blender's world is the
pipeline's: metres, Z up. Every joint's rest rotation is the identity in the pipeline; a Blender
bone points from its joint towards a child, so a local rotation R becomes the pose basis Bᵀ R B
(B: the bone's rest matrix in armature space).
"""

from __future__ import annotations

import colorsys
import os
import re
from contextlib import contextmanager
from pathlib import Path

import bpy
import numpy as np
from mathutils import Matrix

from .capture_format import matrix_to_quat, quat_to_matrix, rest_positions

# Blender 4.4+ has layered actions (Action.fcurves is gone in 5.0); 4.2 has the legacy API
try:
    from bpy_extras.anim_utils import action_ensure_channelbag_for_slot, action_get_channelbag_for_slot
except ImportError:  # Blender < 4.4
    action_ensure_channelbag_for_slot = action_get_channelbag_for_slot = None


FINGER_LEAF = re.compile(r"Hand(Thumb|Index|Middle|Ring|Pinky)\d$")


def _bone_tails(names: list[str], parents: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """A tail for each bone: towards the child most in line with the bone's parent (up for the root)."""
    rest = rest_positions(parents, offsets)
    J = len(names)
    direction = np.zeros((J, 3))
    tails = np.zeros((J, 3))
    for j in range(J):
        up = direction[parents[j]] if parents[j] >= 0 else np.array([0.0, 0.0, 1.0])
        kids = [c for c in range(J) if parents[c] == j and np.linalg.norm(offsets[c]) > 1e-6]
        if kids:
            best = max(kids, key=lambda c: float(offsets[c] @ up) / np.linalg.norm(offsets[c]))
            d, length = offsets[best] / np.linalg.norm(offsets[best]), np.linalg.norm(offsets[best])
        else:
            own = np.linalg.norm(offsets[j])
            d = offsets[j] / own if own > 1e-6 else (up if np.linalg.norm(up) > 0 else np.array([0.0, 0.0, 1.0]))
            # a fingertip bone is about as long as the finger segment before it; other leaves at least 5 cm
            length = own if FINGER_LEAF.search(names[j]) else max(0.5 * own, 0.05)
        direction[j] = d
        tails[j] = rest[j] + d * max(length, 0.01)
    return tails


def _fcurves(action, obj):
    if action_ensure_channelbag_for_slot is None:
        obj.animation_data.action = action
        return action.fcurves
    slot = action.slots.new(id_type="OBJECT", name=obj.name)
    obj.animation_data.action = action
    obj.animation_data.action_slot = slot
    return action_ensure_channelbag_for_slot(action, slot).fcurves


def _set_curve(curves, path: str, index: int, frames: np.ndarray, values: np.ndarray, group: str,
               interpolation: int = 1) -> None:
    """One F-curve keyed on ``frames``; ``interpolation``: 1 LINEAR, 0 CONSTANT."""
    fc = curves.new(path, index=index)
    fc.keyframe_points.add(len(frames))
    fc.keyframe_points.foreach_set("co", np.column_stack([frames, values]).astype(np.float32).ravel())
    fc.keyframe_points.foreach_set("interpolation", np.full(len(frames), interpolation, dtype=np.int32))
    fc.update()
    del group


def build_armature(cap: dict, name: str = "mocap", frame_start: int = 1, context=None,
                   hide_absent: bool = True) -> bpy.types.Object:
    """An armature in the T-pose rest with the capture's animation baked on every frame. Where the person is not
    (``cap["absent"]``, :func:`.capture_format.read_capture`: before the first fitted frame, after the last) the
    root bone is scaled to 0 (constant keys; ``hide_absent`` False: the nearest pose held, a statue), which the
    glTF and FBX exports carry; the object's ``mocap_present`` holds the first and last frames it is there, its
    ``mocap_hidden_bone`` the root's name."""
    context = context or bpy.context
    names, parents, offsets = cap["joint_names"], np.asarray(cap["parents"]), np.asarray(cap["offsets"], float)
    long = [n for n in names if len(str(n).encode()) > 63]  # Blender cuts a bone's name there: not found again
    if long:
        raise ValueError(f"joint names {long} are longer than Blender's 63 bytes for a bone's name: rename them")
    rest = rest_positions(parents, offsets)
    tails = _bone_tails(names, parents, offsets)
    arm = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, arm)
    context.scene.collection.objects.link(obj)
    context.view_layer.objects.active = obj
    prev_mode = obj.mode
    bpy.ops.object.mode_set(mode="EDIT")
    bones = []
    for j, n in enumerate(names):
        eb = arm.edit_bones.new(n)
        eb.head, eb.tail, eb.roll = rest[j].tolist(), tails[j].tolist(), 0.0
        eb.use_connect = False
        if parents[j] >= 0:
            eb.parent = bones[parents[j]]
        bones.append(eb)
    bpy.ops.object.mode_set(mode="OBJECT" if prev_mode == "EDIT" else prev_mode)
    B = np.array([np.array(arm.bones[n].matrix_local)[:3, :3] for n in names])  # (J, 3, 3)
    R = quat_to_matrix(np.asarray(cap["rotations"], float))  # (F, J, 3, 3)
    basis = np.swapaxes(B, -1, -2)[None] @ R @ B[None]
    q = matrix_to_quat(basis)
    root_loc = (np.asarray(cap["root_positions"], float) - rest[0]) @ B[0]  # Bᵀ (p − head)
    F = q.shape[0]
    frames = np.arange(frame_start, frame_start + F, dtype=float)
    obj.animation_data_create()
    action = bpy.data.actions.new(f"{name}_action")
    curves = _fcurves(action, obj)
    for j, n in enumerate(names):
        pb = obj.pose.bones[n]
        pb.rotation_mode = "QUATERNION"
        for i in range(4):
            _set_curve(curves, f'pose.bones["{n}"].rotation_quaternion', i, frames, q[:, j, i], n)
    for i in range(3):
        _set_curve(curves, f'pose.bones["{names[0]}"].location', i, frames, root_loc[:, i], names[0])
    absent = np.asarray(cap.get("absent", np.zeros(F, bool)), bool)
    if hide_absent and absent.shape == (F,) and absent.any() and not absent.all():
        size = np.where(absent, 0.0, 1.0)
        for i in range(3):
            _set_curve(curves, f'pose.bones["{names[0]}"].scale', i, frames, size, names[0], interpolation=0)
        there = np.flatnonzero(~absent)
        obj["mocap_present"] = [int(frames[there[0]]), int(frames[there[-1]])]
        obj["mocap_hidden_bone"] = names[0]  # the bone whose scale hides the person (hidden_by_object)
    scene = context.scene
    fps = float(cap["fps"])
    scene.render.fps = max(int(round(fps)), 1)
    scene.render.fps_base = scene.render.fps / fps
    scene.frame_start, scene.frame_end = frame_start, frame_start + F - 1
    obj["mocap_fps"] = fps
    return obj


def colour_person(obj, index: int) -> None:
    """Give the armature of person ``index`` its own colour: the object's (solid viewport, object colour)
    and its bones' (one of Blender's bone colour themes)."""
    golden = (index * 0.618034) % 1.0  # hues spread around the circle, whatever the number of people
    obj.color = (*colorsys.hsv_to_rgb(golden, 0.75, 0.95), 1.0)
    for bone in obj.data.bones:
        if hasattr(bone, "color"):  # Blender 4.0+
            bone.color.palette = f"THEME{index % 15 + 1:02d}"


def joint_world_positions(obj, frames: list[int], context=None) -> np.ndarray:
    """(len(frames), bones, 3) world positions of every bone head (in armature bone order)."""
    scene = (context or bpy.context).scene
    out = []
    for f in frames:
        scene.frame_set(f)
        mw = np.array(obj.matrix_world)
        heads = np.array([np.array(pb.head) for pb in obj.pose.bones])
        out.append(heads @ mw[:3, :3].T + mw[:3, 3])
    return np.array(out)


def add_cameras(cap: dict, collection_name: str = "mocap cameras", context=None, videos: bool = True) -> list:
    """Blender cameras matching the rig: focal and sensor from K, principal point as shift (lens
    distortion is not modelled by Blender cameras); each camera's video as its background."""
    context = context or bpy.context
    if "camera_names" not in cap:
        return []
    coll = bpy.data.collections.new(collection_name)
    context.scene.collection.children.link(coll)
    flip = np.diag([1.0, -1.0, -1.0])  # OpenCV camera (x right, y down, z forward) → Blender (y up, −z forward)
    cams = []
    paths = list(cap.get("camera_videos", [""] * len(cap["camera_names"])))
    for name, K, pose, size, video in zip(cap["camera_names"], cap["camera_K"], cap["camera_pose"],
                                          cap["camera_size"], paths, strict=True):
        w, h = int(size[0]), int(size[1])
        data = bpy.data.cameras.new(name)
        data.sensor_fit = "HORIZONTAL"
        data.sensor_width = 36.0
        data.lens = K[0, 0] / w * data.sensor_width
        data.shift_x = -(K[0, 2] - (w - 1) / 2) / w
        data.shift_y = (K[1, 2] - (h - 1) / 2) / w
        obj = bpy.data.objects.new(name, data)
        R, t = pose[:3, :3], pose[:3, 3]
        M = np.eye(4)
        M[:3, :3] = R.T @ flip
        M[:3, 3] = -R.T @ t
        obj.matrix_world = Matrix(M.tolist())
        coll.objects.link(obj)
        if videos and video and os.path.isfile(str(video)):
            clip = bpy.data.movieclips.load(str(video))
            data.show_background_images = True
            bg = data.background_images.new()
            bg.source, bg.clip = "MOVIE_CLIP", clip
        cams.append(obj)
    scene = context.scene
    scene.render.resolution_x, scene.render.resolution_y = int(cap["camera_size"][0][0]), int(cap["camera_size"][0][1])
    scene.render.pixel_aspect_x = scene.render.pixel_aspect_y = 1.0
    return cams


def add_points(cap: dict, name: str = "mocap keypoints", frame_start: int = 1, context=None) -> list:
    """One animated empty per 3D keypoint (hidden while the keypoint is missing)."""
    context = context or bpy.context
    if "points" not in cap:
        return []
    coll = bpy.data.collections.new(name)
    context.scene.collection.children.link(coll)
    pts = np.asarray(cap["points"], float)
    frames = np.arange(frame_start, frame_start + len(pts), dtype=float)
    out = []
    for k, n in enumerate(cap["point_names"]):
        e = bpy.data.objects.new(n, None)
        e.empty_display_type, e.empty_display_size = "SPHERE", 0.02
        coll.objects.link(e)
        e.animation_data_create()
        curves = _fcurves(bpy.data.actions.new(f"{n}_action"), e)
        xyz = np.where(np.isfinite(pts[:, k]), pts[:, k], np.nan)
        good = np.isfinite(xyz).all(axis=1)
        if not good.any():
            continue
        for i in range(3):
            _set_curve(curves, "location", i, frames[good], xyz[good, i], n)
        out.append(e)
    return out


def _object_fcurves(obj) -> list:
    ad = obj.animation_data
    if ad is None or ad.action is None:
        return []
    if action_get_channelbag_for_slot is None:
        return list(ad.action.fcurves)
    bag = action_get_channelbag_for_slot(ad.action, ad.action_slot)
    return list(bag.fcurves) if bag is not None else []


def channel_curves(obj):
    """The F-curve collection of ``obj``'s action (its slot's channel bag on layered actions): curves can be added."""
    ad = obj.animation_data
    if action_get_channelbag_for_slot is None:
        return ad.action.fcurves
    return action_get_channelbag_for_slot(ad.action, ad.action_slot).fcurves


def _shift_keys(curves: list, delta: float) -> None:
    for fc in curves:
        n = len(fc.keyframe_points)
        for prop in ("co", "handle_left", "handle_right"):
            v = np.empty(2 * n, dtype=np.float32)
            fc.keyframe_points.foreach_get(prop, v)
            v[0::2] += delta
            fc.keyframe_points.foreach_set(prop, v)
        fc.update()


@contextmanager
def unhidden(obj):
    """While inside, the person is shown on every frame: the root bone's scale keys (0 where the person is not,
    :func:`build_armature`) muted and its scale 1 (a muted curve leaves the value it last set). What reads the pose
    frame by frame sees the nearest pose held there, not a skeleton scaled to nothing (the retarget read each bone's
    orientation from a zero matrix: a character in a random pose where the source was hidden). Yields the scale
    keys muted (``[]``: the armature hides nothing); the frame is evaluated again after."""
    root = obj.get("mocap_hidden_bone")
    path = f'pose.bones["{root}"].scale'
    bone = [fc for fc in _object_fcurves(obj) if root and fc.data_path == path and not fc.mute]
    for fc in bone:
        fc.mute = True
    if bone:
        obj.pose.bones[root].scale = (1.0, 1.0, 1.0)
    try:
        yield bone
    finally:
        for fc in bone:
            fc.mute = False
        if bone:
            bpy.context.scene.frame_set(bpy.context.scene.frame_current)


@contextmanager
def hidden_by_object(obj):
    """While inside, the root bone's scale keys (0 where the person is not, :func:`build_armature`) are muted
    (:func:`unhidden`) and the armature object scaled instead: Blender's FBX exporter bakes each bone relative to its
    parent's inverse, and a root scaled to 0 made NaN keys (read back NaN on every later frame); glTF's exporter
    takes the armature object's scale at rest from a frame of the take (0: Blender's importer divides by it), hence
    the bone there. The root bone's scale at 1 meanwhile matters: the exporter takes the rest transforms from it (0,
    at a frame where the person was not, wrote the add-on's FBX export at scale 0 on every frame). The object's own
    scale (a character's 0.01, kept or keyed) multiplies the hiding meanwhile and is as it was after."""
    with unhidden(obj) as bone:
        if not bone:
            yield
            return
        curves, saved = channel_curves(obj), tuple(obj.scale)
        own = {fc.array_index: fc for fc in curves if fc.data_path == "scale"}
        made = []
        try:
            for fc in own.values():  # its keys set aside under another name: one curve per channel
                fc.data_path = "mocap_own_scale"
            for fc in bone:
                co = np.zeros(2 * len(fc.keyframe_points), np.float32)
                fc.keyframe_points.foreach_get("co", co)
                i = fc.array_index
                base = [own[i].evaluate(float(f)) for f in co[0::2]] if i in own else saved[i]
                co[1::2] *= np.asarray(base, np.float32)
                new = curves.new("scale", index=i)
                made.append(new)
                new.keyframe_points.add(len(fc.keyframe_points))
                new.keyframe_points.foreach_set("co", co)
                new.keyframe_points.foreach_set("interpolation", np.zeros(len(fc.keyframe_points), np.int32))
                new.update()
            yield
        finally:
            for fc in made:
                curves.remove(fc)
            for fc in own.values():
                fc.data_path = "scale"
            obj.scale = saved


@contextmanager
def first_frame_at_zero(obj, context=None):
    """While inside, the scene range and ``obj``'s keys are shifted so that the scene's first frame is
    frame 0. Blender's FBX exporter writes frame f at time f / fps, and FBX readers (Blender's importer
    included, which adds its one-frame offset) take time 0 as the first frame: exported from frame 1,
    an FBX would start at frame 2 where the BVH and glTF start at frame 1."""
    scene = (context or bpy.context).scene
    start, end = scene.frame_start, scene.frame_end
    curves = _object_fcurves(obj)
    delta = -float(start)
    if delta:
        _shift_keys(curves, delta)
        scene.frame_start, scene.frame_end = 0, end - start
    try:
        yield
    finally:
        if delta:
            _shift_keys(curves, -delta)
            scene.frame_end, scene.frame_start = end, start


@contextmanager
def gltf_timeline(obj, context=None):
    """While inside, Blender's glTF exporter writes frame i of the scene range at i / fps seconds from 0.
    It writes frame f at f / (fps · fps_base) where Blender's rate is fps / fps_base (29.97 fps, 30 / 1.001,
    came out at 30.03 fps; 27.5 as 28.5), and from frame 0 where the range starts at 1 (the first key at
    1 / fps): the keys are shifted to start at frame 0 and fps_base set so that its product is the rate."""
    scene = (context or bpy.context).scene
    base = scene.render.fps_base
    rate = scene.render.fps / base
    with first_frame_at_zero(obj, context):
        scene.render.fps_base = rate / scene.render.fps
        try:
            yield
        finally:
            scene.render.fps_base = base


def _action_name(obj) -> str:
    ad = obj.animation_data
    return ad.action.name if ad is not None and ad.action is not None else "Animation"


def _axes(up: str) -> dict:
    return {"axis_forward": "-Z", "axis_up": "Y"} if up == "y" else {"axis_forward": "Y", "axis_up": "Z"}


def export_animation(obj, path: str, up: str = "y", context=None) -> str:
    """Export ``obj`` (an armature) with its animation baked on every frame of the scene range: FBX
    without leaf bones, or glTF (GLB); the first frame of the scene is the first frame of the file
    (FBX and glTF time 0, frame i at i / fps), so every export reimports on one timeline from frame 1.
    ``up``: the FBX's up axis; glTF is Y up by its specification, whatever ``up`` says."""
    context = context or bpy.context
    for o in context.scene.objects:
        o.select_set(o == obj)
    context.view_layer.objects.active = obj
    suffix = Path(path).suffix.lower()
    if suffix == ".fbx":
        with first_frame_at_zero(obj, context), hidden_by_object(obj):
            bpy.ops.export_scene.fbx(
                filepath=path, use_selection=True, object_types={"ARMATURE"}, add_leaf_bones=False, bake_anim=True,
                bake_anim_use_all_bones=True, bake_anim_use_nla_strips=False, bake_anim_use_all_actions=False,
                bake_anim_force_startend_keying=True, bake_anim_step=1.0, bake_anim_simplify_factor=0.0,
                primary_bone_axis="Y", secondary_bone_axis="X", **_axes(up))
    elif suffix in (".glb", ".gltf"):
        with gltf_timeline(obj, context):  # the first frame at 0 s, frame i at i / fps
            # the selected armature's own action only (by default every action of the file went in: in a take of
            # several people each person's GLB held them all, and a reader played the first, another person's)
            bpy.ops.export_scene.gltf(filepath=path, export_format="GLB" if suffix == ".glb" else "GLTF_SEPARATE",
                                      use_selection=True, export_animations=True, export_force_sampling=True,
                                      export_animation_mode="ACTIVE_ACTIONS",  # named as the action, not "Animation"
                                      export_nla_strips_merged_animation_name=_action_name(obj),
                                      export_yup=True)  # glTF is Y up whatever `up` says (Z up: lying on its back)
    else:
        raise ValueError(f"{path}: can export .fbx or .glb, not {suffix!r}")
    return path
