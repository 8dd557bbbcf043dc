"""Headless exports and checks with bpy (``python -m blender_addon.headless ...``).

The pipeline runs this in a child process, so bpy's global state never touches the caller:

    export CAPTURE.npz OUT.fbx|OUT.glb [--up y|z]   armature with the animation baked on every frame
    export-many JOBS.json                           the same for each {"capture", "out", "up"} of a JSON
                                                    list, in one process; prints "mocap-export-done I"
                                                    after file I
    positions FILE OUT.npz [--up y|z]               import FILE (npz, fbx, glb, bvh) and write every
                                                    bone head's world position at every frame
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import bpy
import numpy as np

from .builders import _axes, build_armature, export_animation, joint_world_positions
from .capture_format import read_capture


def _empty_scene() -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)


def export(capture: str, out: str, up: str = "y", name: str | None = None) -> None:
    """``name``: the armature's (its action ``<name>_action``); None: the output file's stem."""
    _empty_scene()
    obj = build_armature(read_capture(capture), name or Path(out).stem)
    export_animation(obj, out, up)


def export_many(listing: str) -> None:
    """Every job of a JSON list in this one process (Blender starts once); a line on stdout after each."""
    for i, job in enumerate(json.loads(Path(listing).read_text())):
        export(job["capture"], job["out"], job.get("up", "y"), job.get("name"))
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
        bpy.ops.import_scene.gltf(filepath=path)
    elif suffix == ".bvh":
        bpy.ops.import_anim.bvh(filepath=path, update_scene_fps=True, update_scene_duration=True, **_axes(up))
    else:
        raise ValueError(f"{path}: unknown format {suffix!r}")
    arms = [o for o in bpy.context.scene.objects if o.type == "ARMATURE"]
    if len(arms) != 1:
        raise ValueError(f"{path}: expected one armature after import, found {len(arms)}")
    return arms[0]


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
    m = sub.add_parser("export-many")
    m.add_argument("jobs", help='JSON list of {"capture": NPZ, "out": FBX|GLB, "up": "y"|"z"}')
    p = sub.add_parser("positions")
    p.add_argument("file")
    p.add_argument("out")
    p.add_argument("--up", choices=["y", "z"], default="y")
    p.add_argument("--fps", type=float, default=None, help="frame rate to sample a glTF file at")
    args = ap.parse_args(argv)
    if args.cmd == "export":
        export(args.capture, args.out, args.up)
    elif args.cmd == "export-many":
        export_many(args.jobs)
        sys.stderr.flush()
        os._exit(0)  # every file is written and closed; bpy's teardown would add 0.15 s to each run
    else:
        positions(args.file, args.out, args.up, args.fps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
