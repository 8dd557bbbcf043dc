"""Headless exports and checks with bpy (``python -m blender_addon.headless ...``).

The pipeline runs this in a child process, so bpy's global state never touches the caller:

    export CAPTURE.npz OUT.fbx|OUT.glb [--up y|z] [--scale S]   armature with the animation baked on every frame
    export-many JOBS.json                           the same for each {"capture", "out", "up", "scale"} of a
                                                    JSON list, in one process; prints "mocap-export-done I"
                                                    after file I
    positions FILE OUT.npz [--up y|z]               import FILE (npz, fbx, glb, bvh) and write every
                                                    bone head's world position at every frame

FBX lengths are in the unit ``scale`` gives (file units per metre: 1 metres, 100 centimetres), declared as the
file's ``UnitScaleFactor`` (100 / scale centimetres per unit), as :mod:`mocap.io.fbx` writes them; glTF is in
metres by its specification. glTF keeps time in seconds: the first frame at 0, frame i at i / fps.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import bpy
import numpy as np

from .builders import (
    _axes,
    _object_fcurves,
    _shift_keys,
    build_armature,
    export_animation,
    first_frame_at_zero,
    hidden_by_object,
    joint_world_positions,
)
from .capture_format import read_capture


def _empty_scene() -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)


def _export_fbx(obj, path: str, up: str, scale: float) -> None:
    """FBX as :func:`.builders.export_animation` writes it, lengths in the unit of ``scale`` (file units per
    metre) with ``UnitScaleFactor`` 100 / scale, as :mod:`mocap.io.fbx` writes them. Blender's exporter, left
    to its defaults, writes centimetres (UnitScaleFactor 1) whatever the unit asked: kept for centimetres (the
    files stay as they were); another unit scales the lengths by ``global_scale`` and names the factor through
    the scene's unit scale length (the exporter's factor is 100 × it; a float32: 5.6444 is 5.64440005)."""
    context = bpy.context
    for o in context.scene.objects:
        o.select_set(o == obj)
    context.view_layer.objects.active = obj
    units = context.scene.unit_settings
    saved = units.system, units.scale_length
    cm = abs(scale - 100.0) < 1e-9
    units.system, units.scale_length = "METRIC", 1.0 if cm else 1.0 / scale
    try:
        with first_frame_at_zero(obj, context), hidden_by_object(obj):
            bpy.ops.export_scene.fbx(
                filepath=path, use_selection=True, object_types={"ARMATURE"}, add_leaf_bones=False, bake_anim=True,
                bake_anim_use_all_bones=True, bake_anim_use_nla_strips=False, bake_anim_use_all_actions=False,
                bake_anim_force_startend_keying=True, bake_anim_step=1.0, bake_anim_simplify_factor=0.0,
                primary_bone_axis="Y", secondary_bone_axis="X", apply_unit_scale=True,
                apply_scale_options="FBX_SCALE_NONE" if cm else "FBX_SCALE_UNITS", global_scale=1.0 if cm else scale,
                **_axes(up))
    finally:
        units.system, units.scale_length = saved


def export(capture: str, out: str, up: str = "y", name: str | None = None, scale: float = 1.0) -> None:
    """``name``: the armature's (its action ``<name>_action``); None: the output file's stem. ``scale``: an
    FBX file's units per metre (1 metres, 100 centimetres; glTF is in metres)."""
    if not (isinstance(scale, (int, float)) and 0 < scale < float("inf")):
        raise ValueError(f"{out}: the unit scale must be a positive number, got {scale!r}")
    _empty_scene()
    obj = build_armature(read_capture(capture), name or Path(out).stem)
    suffix = Path(out).suffix.lower()
    if suffix == ".fbx":
        _export_fbx(obj, out, up, float(scale))
    else:
        export_animation(obj, out, up)  # glTF (its timeline: builders.gltf_timeline), or refuses the suffix


def export_job(job: dict) -> None:
    """One job of an export list: ``{"capture", "out"}`` and optionally ``"up"``, ``"name"``, ``"scale"``."""
    export(job["capture"], job["out"], job.get("up", "y"), job.get("name"), job.get("scale", 1.0))


def export_many(listing: str) -> None:
    """Every job of a JSON list in this one process (Blender starts once); a line on stdout after each."""
    for i, job in enumerate(json.loads(Path(listing).read_text())):
        export_job(job)
        sys.stdout.write(f"mocap-export-done {i}\n")  # the caller moves file i into place
        sys.stdout.flush()


def import_file(path: str, up: str = "y", fps: float | None = None):
    """Import a capture (npz) or an FBX / GLB / BVH file; returns the armature object. glTF keeps time
    in seconds and its importer samples at the scene's frame rate: pass ``fps`` to get every frame."""
    _empty_scene()
    if fps:
        scene = bpy.context.scene
        scene.render.fps = max(int(round(fps)), 1)
        scene.render.fps_base = scene.render.fps / fps
    suffix = Path(path).suffix.lower()
    if suffix == ".npz":
        return build_armature(read_capture(path))
    if suffix == ".fbx":
        bpy.ops.import_scene.fbx(filepath=path, automatic_bone_orientation=False, ignore_leaf_bones=False, **_axes(up))
    elif suffix in (".glb", ".gltf"):
        _import_gltf(path, fps)
    elif suffix == ".bvh":
        bpy.ops.import_anim.bvh(filepath=path, update_scene_fps=True, update_scene_duration=True, **_axes(up))
    else:
        raise ValueError(f"{path}: unknown format {suffix!r}")
    arms = [o for o in bpy.context.scene.objects if o.type == "ARMATURE"]
    if len(arms) != 1:
        raise ValueError(f"{path}: expected one armature after import, found {len(arms)}")
    return arms[0]


def _import_gltf(path: str, fps: float | None) -> None:
    """Blender's glTF importer places time t at frame t · fps · fps_base (the exporter's mistake, see
    :func:`.builders.gltf_timeline`), from frame 0: with ``fps``, it is given fps · fps_base = fps while it
    reads; the keys are then moved one frame on, so that time 0 is frame 1 as in the FBX and BVH re-imports."""
    scene = bpy.context.scene
    base = scene.render.fps_base
    if fps:
        scene.render.fps_base = fps / scene.render.fps
    try:
        bpy.ops.import_scene.gltf(filepath=path)
    finally:
        scene.render.fps_base = base
    for obj in scene.objects:
        _shift_keys(_object_fcurves(obj), 1.0)


def positions(path: str, out: str, up: str = "y", fps: float | None = None) -> None:
    obj = import_file(path, up, fps)
    scene = bpy.context.scene
    start, end = scene.frame_start, scene.frame_end
    if obj.animation_data and obj.animation_data.action:  # importers do not all set the scene range
        start, end = (int(round(v)) for v in obj.animation_data.action.frame_range)
    frames = list(range(start, end + 1))
    pos = joint_world_positions(obj, frames)
    np.savez(out, names=np.array([pb.name for pb in obj.pose.bones], dtype=str), positions=pos,
             frame_start=start, fps=scene.render.fps / scene.render.fps_base)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m blender_addon.headless")
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export")
    e.add_argument("capture")
    e.add_argument("out")
    e.add_argument("--up", choices=["y", "z"], default="y")
    e.add_argument("--scale", type=float, default=1.0, help="FBX units per metre (1: metres, 100: centimetres)")
    m = sub.add_parser("export-many")
    m.add_argument("jobs", help='JSON list of {"capture": NPZ, "out": FBX|GLB, "up": "y"|"z", "scale": S}')
    p = sub.add_parser("positions")
    p.add_argument("file")
    p.add_argument("out")
    p.add_argument("--up", choices=["y", "z"], default="y")
    p.add_argument("--fps", type=float, default=None, help="frame rate to sample a glTF file at")
    args = ap.parse_args(argv)
    if args.cmd == "export":
        export(args.capture, args.out, args.up, scale=args.scale)
    elif args.cmd == "export-many":
        export_many(args.jobs)
        sys.stderr.flush()
        os._exit(0)  # every file is written and closed; bpy's teardown would add 0.15 s to each run
    else:
        positions(args.file, args.out, args.up, args.fps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
