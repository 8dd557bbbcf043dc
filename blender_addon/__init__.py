"""Mocap add-on: import captures of the mocap pipeline as animated armatures (with the calibrated
cameras and the 3D keypoints), import its BVH / FBX with the right axes and scale, retarget onto a
rig already in the scene (Mixamo, Rigify metarig, UE5, Unity, CMU or a custom map) and export.

Operators are thin: the work is in :mod:`.builders` and :mod:`.retarget`; errors are reported in
Blender with the reason. Needs nothing beyond what Blender ships (numpy)."""

from __future__ import annotations

import json
import os
import re

import bpy
from bpy.props import BoolProperty, EnumProperty, PointerProperty, StringProperty
from bpy_extras.io_utils import ExportHelper, ImportHelper

from .builders import add_cameras, add_points, build_armature, colour_person, export_animation
from .capture_format import CaptureError, person_files, read_capture
from .retarget import RetargetError, finger_note, preset_maps, retarget_armature

bl_info = {
    "name": "Mocap Importer",
    "author": "mocap developers",
    "version": (0, 1, 0),
    "blender": (4, 2, 0),
    "location": "View3D > Sidebar > Mocap",
    "description": "Import motion captures of the mocap pipeline, retarget onto rigs, export",
    "category": "Animation",
}
CUSTOM_MAP_TEXT = "mocap_bone_map.json"


# what can go wrong in an operator, reported in Blender with the reason rather than a traceback
FAILURES = (CaptureError, RetargetError, RuntimeError, ValueError, KeyError, IndexError, TypeError, OSError)


def _reason(e: BaseException) -> str:
    """One line for the user: the last line of an error (bpy.ops errors carry the callee's traceback)."""
    lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip() and not ln.startswith("Location:")]
    raised = [ln for ln in lines if re.match(r"^[A-Za-z_.]*(Error|Exception)\b", ln)]
    text = (raised or lines or [type(e).__name__])[-1]
    if isinstance(e, KeyError):
        text = f"missing {text}"
    return text.removeprefix("Error: ")


def _failed(op, path: str, what: str, e: BaseException) -> set[str]:
    reason = _reason(e)
    if path and reason.startswith(path):  # the message names the file already
        op.report({"ERROR"}, reason)
    else:
        op.report({"ERROR"}, f"{path}: {what}: {reason}" if path else f"{what}: {reason}")
    return {"CANCELLED"}


def _armature_poll(_self, obj) -> bool:
    return obj.type == "ARMATURE"


PRESET_ITEMS = [(k.upper(), k, f"bone names of the {k} preset") for k in preset_maps()] + [
    ("CUSTOM", "custom", f"the JSON map in the text block {CUSTOM_MAP_TEXT!r}")]


class MOCAP_OT_import_capture(bpy.types.Operator, ImportHelper):
    """Import a capture (.npz written by the mocap pipeline) as an animated armature; in a take of several
    people (motion/<motion>_person<k>.npz), every person as their own armature"""

    bl_idname = "mocap.import_capture"
    bl_label = "Import Capture"
    bl_options = {"REGISTER", "UNDO"}
    filename_ext = ".npz"
    filter_glob: StringProperty(default="*.npz", options={"HIDDEN"})
    cameras: BoolProperty(name="Cameras", description="Add the calibrated cameras", default=True)
    videos: BoolProperty(name="Videos as backgrounds", description="Show each camera's video behind it", default=True)
    keypoints: BoolProperty(name="Keypoints", description="Add the 3D keypoints as empties", default=False)
    persons: BoolProperty(name="Every person", default=True,
                          description="A take of several people: import each person's capture (the "
                                      "<motion>_person<k>.npz files beside this one) as its own armature")
    hide_absent: BoolProperty(name="Hide where absent", default=True,
                              description="Scale the armature to nothing before the person's first fitted frame "
                                          "and after the last (off: the nearest pose held there)")

    def execute(self, context):
        if not os.path.isfile(self.filepath):
            self.report({"ERROR"}, f"{self.filepath}: no such file")
            return {"CANCELLED"}
        paths = person_files(self.filepath) if self.persons else [self.filepath]
        caps = []
        for path in paths:
            try:
                caps.append((path, read_capture(path)))
            except FAILURES as e:
                return _failed(self, path, "cannot read the capture", e)
        name = bpy.path.display_name_from_filepath(self.filepath)
        chosen, n_pts = None, 0
        for path, cap in caps:
            who = cap.get("person") or name  # a person of several is named by the pipeline (person2)
            try:
                obj = build_armature(cap, who, context=context, hide_absent=self.hide_absent)
                if len(caps) > 1 or "person" in cap:
                    colour_person(obj, _person_index(who))  # person k's colour everywhere, whoever was skipped
                n_pts += len(add_points(cap, f"{who} keypoints", context=context)) if self.keypoints else 0
            except FAILURES as e:
                return _failed(self, path, "cannot build the scene from the capture", e)
            if os.path.samefile(path, self.filepath) or chosen is None:
                chosen = obj
        cap = caps[0][1]
        try:
            n_cams = len(add_cameras(cap, f"{name} cameras", context=context, videos=self.videos)) \
                if self.cameras else 0
        except FAILURES as e:
            return _failed(self, self.filepath, "cannot build the scene from the capture", e)
        context.scene.mocap_source = chosen
        people = f"{len(caps)} people ({', '.join(c.get('person', '?') for _, c in caps)}), " if len(caps) > 1 else ""
        self.report({"INFO"}, f"{name}: {people}{len(cap['joint_names'])} joints, {len(cap['rotations'])} frames at "
                              f"{float(cap['fps']):g} fps, {n_cams} cameras, {n_pts} keypoints")
        return {"FINISHED"}


def _person_index(name: str) -> int:
    """0 for ``person1``: the colour of a person imported alone is the one it has among the others."""
    digits = name.removeprefix("person")
    return int(digits) - 1 if digits.isdigit() and int(digits) > 0 else 0


class MOCAP_OT_import_animation(bpy.types.Operator, ImportHelper):
    """Import a BVH or FBX written by the mocap pipeline with its axes and units"""

    bl_idname = "mocap.import_animation"
    bl_label = "Import BVH / FBX"
    bl_options = {"REGISTER", "UNDO"}
    filter_glob: StringProperty(default="*.bvh;*.fbx", options={"HIDDEN"})
    up: EnumProperty(name="Up axis", items=[("Y", "Y up", "BVH / FBX default"), ("Z", "Z up", "UE5 preset")],
                     default="Y")
    units: EnumProperty(name="BVH units", items=[("AUTO", "from the skeleton's size", "metres, centimetres or CMU "
                                                 "units, whichever makes the longest bone human-sized"),
                                                 ("M", "metres", ""), ("CM", "centimetres", ""),
                                                 ("CMU", "CMU (× 0.056444)", "the cmu rig's BVH")], default="AUTO")

    def execute(self, context):
        axes = {"axis_forward": "-Z", "axis_up": "Y"} if self.up == "Y" else {"axis_forward": "Y", "axis_up": "Z"}
        path = self.filepath.lower()
        if not os.path.isfile(self.filepath):
            self.report({"ERROR"}, f"{self.filepath}: no such file")
            return {"CANCELLED"}
        try:
            if path.endswith(".bvh"):
                units = bvh_units(self.filepath) if self.units == "AUTO" else self.units
                scale = BVH_SCALE[units]  # metres per file unit
                bpy.ops.import_anim.bvh(filepath=self.filepath, global_scale=scale,
                                        update_scene_fps=True, update_scene_duration=True, **axes)
                if self.units == "AUTO":
                    self.report({"INFO"}, f"{os.path.basename(self.filepath)}: read in {units.lower()} units")
            elif path.endswith(".fbx"):
                bpy.ops.import_scene.fbx(filepath=self.filepath, automatic_bone_orientation=False,
                                         ignore_leaf_bones=False, **axes)
            else:
                self.report({"ERROR"}, f"{self.filepath}: expected a .bvh or .fbx file")
                return {"CANCELLED"}
        except FAILURES as e:
            return _failed(self, self.filepath, "Blender's importer could not read it", e)
        _scene_range_of(context.scene, [context.active_object, *context.selected_objects])
        return {"FINISHED"}


BVH_SCALE = {"M": 1.0, "CM": 0.01, "CMU": 0.056444}  # metres per file unit


def bvh_units(path: str) -> str:
    """A BVH's length unit from its skeleton (the file does not say it): the longest OFFSET of its hierarchy is
    a human's longest bone (a thigh or a shin, 0.35-0.5 m): under 2 it is in metres, under 15 in CMU units (0.4 m
    is 7 of them), else centimetres (the mixamo rig's BVH, 40 for a thigh)."""
    longest = 0.0
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            words = line.split()
            if words and words[0] == "MOTION":
                break
            if len(words) == 4 and words[0] == "OFFSET":
                try:
                    longest = max(longest, sum(float(v) ** 2 for v in words[1:]) ** 0.5)
                except ValueError:
                    continue
    return "M" if longest < 2.0 else "CMU" if longest < 15.0 else "CM"


def _scene_range_of(scene, objects) -> None:
    """The scene's frame range set to the imported animation's (Blender's BVH importer only ever extends it, the
    FBX one leaves it: a 100-frame take played 150 held frames more in the default 1-250): the first of
    ``objects`` (the importer's active, then selected objects) that holds an action."""
    for obj in objects:
        action = getattr(getattr(obj, "animation_data", None), "action", None)
        if action is None:
            continue
        first, last = (int(round(v)) for v in action.frame_range)
        if last > first:
            scene.frame_start, scene.frame_end = first, last
        return


def _bone_map(context, preset: str) -> dict[str, str]:
    if preset != "CUSTOM":
        return preset_maps()[preset.lower()]
    text = bpy.data.texts.get(CUSTOM_MAP_TEXT)
    if text is None:
        raise RetargetError(f"no text block {CUSTOM_MAP_TEXT!r}: use 'Edit Map' to create one")
    try:
        m = json.loads(text.as_string())
    except json.JSONDecodeError as e:
        raise RetargetError(f"{CUSTOM_MAP_TEXT}: not valid JSON ({e})") from None
    if not isinstance(m, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in m.items()):
        raise RetargetError(f"{CUSTOM_MAP_TEXT}: expected {{\"target bone\": \"source bone\", ...}}")
    return m


class MOCAP_OT_retarget(bpy.types.Operator):
    """Bake the source armature's motion onto the target rig, bone by bone through the map"""

    bl_idname = "mocap.retarget"
    bl_label = "Retarget"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        scene = context.scene
        try:
            bone_map = _bone_map(context, scene.mocap_preset)
            action = retarget_armature(scene.mocap_source, scene.mocap_target, bone_map, context=context)
        except RetargetError as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        except FAILURES as e:
            return _failed(self, "", "retargeting failed", e)
        first, last = (int(round(v)) for v in action.frame_range)
        note = finger_note(scene.mocap_source, scene.mocap_target, bone_map)
        if note:
            self.report({"WARNING"}, note)
        self.report({"INFO"}, f"baked {action.name} (frames {first}–{last})")
        return {"FINISHED"}


class MOCAP_OT_edit_map(bpy.types.Operator):
    """Copy the chosen preset into the text block of the custom map, to edit it in the Text Editor"""

    bl_idname = "mocap.edit_map"
    bl_label = "Edit Map"

    def execute(self, context):
        preset = context.scene.mocap_preset
        base = {} if preset == "CUSTOM" else preset_maps()[preset.lower()]
        text = bpy.data.texts.get(CUSTOM_MAP_TEXT) or bpy.data.texts.new(CUSTOM_MAP_TEXT)
        if base or not text.as_string().strip():
            text.from_string(json.dumps(base, indent=1))
        context.scene.mocap_preset = "CUSTOM"
        self.report({"INFO"}, f"edit the text block {CUSTOM_MAP_TEXT!r}, then Retarget")
        return {"FINISHED"}


class MOCAP_OT_export(bpy.types.Operator, ExportHelper):
    """Export the selected armature's animation (FBX without leaf bones, or GLB), every frame baked"""

    bl_idname = "mocap.export"
    bl_label = "Export Animation"
    filename_ext = ".fbx"
    filter_glob: StringProperty(default="*.fbx;*.glb", options={"HIDDEN"})
    format: EnumProperty(name="Format", items=[("FBX", "FBX", ""), ("GLB", "glTF binary", "")], default="FBX")

    def execute(self, context):
        obj = context.active_object
        if obj is None or obj.type != "ARMATURE":
            self.report({"ERROR"}, "select the armature to export")
            return {"CANCELLED"}
        path = bpy.path.ensure_ext(self.filepath, ".fbx" if self.format == "FBX" else ".glb")
        try:
            export_animation(obj, path, context=context)
        except FAILURES as e:
            return _failed(self, path, "export failed", e)
        self.report({"INFO"}, f"wrote {path}")
        return {"FINISHED"}


class MOCAP_PT_panel(bpy.types.Panel):
    bl_label = "Mocap"
    bl_idname = "MOCAP_PT_panel"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Mocap"

    def draw(self, context):
        layout, scene = self.layout, context.scene
        col = layout.column(align=True)
        col.label(text="Import")
        col.operator(MOCAP_OT_import_capture.bl_idname, icon="ARMATURE_DATA")
        col.operator(MOCAP_OT_import_animation.bl_idname, icon="IMPORT")
        col = layout.column(align=True)
        col.label(text="Retarget")
        col.prop(scene, "mocap_source", text="Source")
        col.prop(scene, "mocap_target", text="Target")
        row = col.row(align=True)
        row.prop(scene, "mocap_preset", text="Map")
        row.operator(MOCAP_OT_edit_map.bl_idname, text="", icon="TEXT")
        col.operator(MOCAP_OT_retarget.bl_idname, icon="CON_ARMATURE")
        layout.operator(MOCAP_OT_export.bl_idname, icon="EXPORT")


CLASSES = (MOCAP_OT_import_capture, MOCAP_OT_import_animation, MOCAP_OT_retarget, MOCAP_OT_edit_map,
           MOCAP_OT_export, MOCAP_PT_panel)


def _menu_import(self, _context):
    self.layout.operator(MOCAP_OT_import_capture.bl_idname, text="Mocap capture (.npz)")


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.mocap_source = PointerProperty(type=bpy.types.Object, poll=_armature_poll, name="Source")
    bpy.types.Scene.mocap_target = PointerProperty(type=bpy.types.Object, poll=_armature_poll, name="Target")
    bpy.types.Scene.mocap_preset = EnumProperty(items=PRESET_ITEMS, name="Bone map", default="MIXAMO")
    bpy.types.TOPBAR_MT_file_import.append(_menu_import)


def unregister():
    bpy.types.TOPBAR_MT_file_import.remove(_menu_import)
    for name in ("mocap_source", "mocap_target", "mocap_preset"):
        delattr(bpy.types.Scene, name)
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
