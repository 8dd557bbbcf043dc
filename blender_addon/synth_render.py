"""Headless renders of synthetic captures (``python -m blender_addon.synth_render JOB.json``), run by
``mocap synth`` in a child process.

The job (JSON) names the .blend with the character, the motion to play (a capture .npz of the
pipeline's skeleton), the bone map, the cameras (pinhole K, size, cam_from_world, rendered with a
margin so that lens distortion can be applied afterwards), the frames, and optionally a calibration
board (image, size in metres, one pose per frame). Writes PNG frames per camera and
``groundtruth.npz``: every rig bone's head in the world per frame, and per camera whether it is
hidden behind the body (a ray cast against the posed meshes). With several motions (``motions``: one
capture per person) the character is duplicated (armature and skinned meshes, sharing
materials), each copy plays its motion, and the ground truth has a persons axis after the frames
(``heads`` (F, P, B, 3), ``visible`` (F, P, C, B)); a joint hidden by another person is not visible.
"""

from __future__ import annotations

import fnmatch
import json
import sys
from difflib import SequenceMatcher
from pathlib import Path

import bpy
import numpy as np
from mathutils import Matrix, Vector

from .builders import build_armature
from .capture_format import read_capture
from .retarget import retarget_armature

FACING = {"+x": -np.pi / 2, "-x": np.pi / 2, "+y": np.pi, "-y": 0.0}  # yaw that turns it to face -Y


def rebuild_materials() -> None:
    """Legacy materials → Principled BSDF with the packed image whose name is most alike."""
    images = [i for i in bpy.data.images if i.size[0] > 0]
    for mat in bpy.data.materials:
        if not images:
            break
        best = max(images, key=lambda i: SequenceMatcher(None, mat.name.lower(), i.name.lower()).ratio())
        mat.use_nodes = True
        nt = mat.node_tree
        nt.nodes.clear()
        out = nt.nodes.new("ShaderNodeOutputMaterial")
        bsdf = nt.nodes.new("ShaderNodeBsdfPrincipled")
        tex = nt.nodes.new("ShaderNodeTexImage")
        tex.image = best
        nt.links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
        nt.links.new(bsdf.outputs["BSDF"], out.inputs["Surface"])
        if any(k in mat.name.lower() for k in ("eye", "hair", "lash", "brow")):
            nt.links.new(tex.outputs["Alpha"], bsdf.inputs["Alpha"])
        bsdf.inputs["Roughness"].default_value = 0.8


def drop_unweighted(arm) -> int:
    """Delete the vertices of the meshes skinned to ``arm`` that no deforming bone moves: they stay at
    the rest pose's place (the shared human's t-shirt has a few), which shows as a strip stretched from a
    performer away from the origin back to it. Returns how many were deleted."""
    import bmesh

    bones = {b.name for b in arm.data.bones if b.use_deform}
    n = 0
    for o in bpy.data.objects:
        if o.type != "MESH" or not any(m.type == "ARMATURE" and m.object == arm for m in o.modifiers):
            continue
        deform = {g.index for g in o.vertex_groups if g.name in bones}
        bm = bmesh.new()
        bm.from_mesh(o.data)
        layer = bm.verts.layers.deform.active
        if layer is None:
            bm.free()
            continue
        loose = [v for v in bm.verts if sum(w for g, w in v[layer].items() if g in deform) <= 0.0]
        if loose:
            bmesh.ops.delete(bm, geom=loose, context="VERTS")
            bm.to_mesh(o.data)
            n += len(loose)
        bm.free()
    return n


def setup_scene(job: dict):
    bpy.ops.wm.open_mainfile(filepath=job["blend"])
    for o in list(bpy.data.objects):
        if any(fnmatch.fnmatch(o.name, pat) for pat in job.get("remove", [])):
            bpy.data.objects.remove(o, do_unlink=True)
    rebuild_materials()
    arm = bpy.data.objects[job["armature"]]
    top = arm
    while top.parent is not None:
        top = top.parent
    top.rotation_euler.z += FACING[job.get("facing", "-y")]  # face -Y, as the pipeline's skeletons do
    drop_unweighted(arm)
    bpy.context.view_layer.update()
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = int(job.get("samples", 16))
    scene.cycles.use_denoising = True
    scene.render.use_persistent_data = True
    scene.render.film_transparent = False
    world = bpy.data.worlds.new("studio")
    world.use_nodes = True
    bg = world.node_tree.nodes["Background"]
    bg.inputs["Color"].default_value = (*job.get("background", [0.45, 0.45, 0.45]), 1.0)
    bg.inputs["Strength"].default_value = float(job.get("ambient", 0.8))
    scene.world = world
    sun = bpy.data.objects.new("sun", bpy.data.lights.new("sun", "SUN"))
    sun.data.energy = float(job.get("sun", 3.0))
    sun.rotation_euler = job.get("sun_rotation", [0.6, 0.2, 0.8])
    scene.collection.objects.link(sun)
    floor = job.get("floor")
    if floor:
        bpy.ops.mesh.primitive_plane_add(size=20.0, location=(0, 0, 0))
        mat = bpy.data.materials.new("floor")
        mat.use_nodes = True
        mat.node_tree.nodes["Principled BSDF"].inputs["Base Color"].default_value = (*floor, 1.0)
        bpy.context.active_object.data.materials.append(mat)
    return scene, arm


def add_camera(scene, cam: dict):
    K = np.array(cam["K"], float)
    w, h = cam["size"]
    data = bpy.data.cameras.new(cam["name"])
    data.sensor_fit = "HORIZONTAL"
    data.sensor_width = 36.0
    data.lens = K[0, 0] / w * 36.0
    data.shift_x = -(K[0, 2] - (w - 1) / 2) / w
    data.shift_y = (K[1, 2] - (h - 1) / 2) / w
    data.clip_start, data.clip_end = 0.05, 100.0
    obj = bpy.data.objects.new(cam["name"], data)
    T = np.array(cam["cam_from_world"], float)
    M = np.eye(4)
    M[:3, :3] = T[:3, :3].T @ np.diag([1.0, -1.0, -1.0])
    M[:3, 3] = -T[:3, :3].T @ T[:3, 3]
    obj.matrix_world = Matrix(M.tolist())
    scene.collection.objects.link(obj)
    return obj


def add_board(scene, board: dict):
    img = bpy.data.images.load(board["image"])
    w, h = board["size_m"]
    bpy.ops.mesh.primitive_plane_add(size=1.0)
    plane = bpy.context.active_object
    plane.name = "board"
    plane.data.transform(Matrix.Diagonal((w, h, 1.0, 1.0)))  # centred, facing +Z
    mat = bpy.data.materials.new("board")
    mat.use_nodes = True
    nt = mat.node_tree
    tex = nt.nodes.new("ShaderNodeTexImage")
    tex.image = img
    tex.interpolation = "Closest"
    bsdf = nt.nodes["Principled BSDF"]
    nt.links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
    bsdf.inputs["Roughness"].default_value = 0.9
    plane.data.materials.append(mat)
    return plane


def duplicate_character(scene, arm):
    """A second copy of the character (its top object and everything under it): objects copied, sharing
    their materials (each has its own mesh data), parents and armature modifiers pointing at the copies. Returns the
    copied armature."""
    top = arm
    while top.parent is not None:
        top = top.parent
    objs = [top, *top.children_recursive]
    copies = {o.name: o.copy() for o in objs}
    for c in copies.values():  # own data: a deformed mesh shared by two objects renders stretched between them
        if c.data is not None:
            c.data = c.data.copy()
    for o in objs:
        c = copies[o.name]
        scene.collection.objects.link(c)
        if o.parent is not None and o.parent.name in copies:
            c.parent = copies[o.parent.name]
            c.matrix_parent_inverse = o.matrix_parent_inverse.copy()
        for m in c.modifiers:
            if m.type == "ARMATURE" and m.object is not None and m.object.name in copies:
                m.object = copies[m.object.name]
        if c.animation_data is not None:
            c.animation_data_clear()
    bpy.context.view_layer.update()
    return copies[arm.name]


def render_frames(scene, cameras: list, frames: list[int], out: Path, on_frame=None) -> None:
    for i, f in enumerate(frames):
        scene.frame_set(f)
        if on_frame:
            on_frame(i, f)
        for cam in cameras:
            scene.camera = cam
            scene.render.filepath = str(out / cam.name / f"{i:05d}.png")
            bpy.ops.render.render(write_still=True)


def visibility(scene, cam_obj, points: np.ndarray, tol: float = 0.04) -> np.ndarray:
    """(N,) True where the segment from the camera to the point meets no surface before it."""
    depsgraph = bpy.context.evaluated_depsgraph_get()
    origin = cam_obj.matrix_world.translation
    vis = np.ones(len(points), bool)
    for k, p in enumerate(points):
        d = Vector(p.tolist()) - origin
        dist = d.length
        hit, loc, *_ = scene.ray_cast(depsgraph, origin, d.normalized(), distance=dist - tol)
        vis[k] = not hit
    return vis


def run(job: dict) -> None:
    out = Path(job["out"])
    scene, arm = setup_scene(job)
    w, h = job["render_size"]
    scene.render.resolution_x, scene.render.resolution_y = int(w), int(h)
    scene.render.resolution_percentage = 100
    cameras = [add_camera(scene, c) for c in job["cameras"]]
    frames = list(range(1, int(job["frames"]) + 1))
    if job.get("board"):  # calibration take: the board alone, moving through the volume
        for o in list(bpy.data.objects):
            if o.type in ("MESH", "ARMATURE", "EMPTY"):
                o.hide_render = True
        plane = add_board(scene, job["board"])
        poses = np.array(job["board"]["poses"], float)  # world_from_board (board centre, normal +Z)

        def place(i, f):
            plane.matrix_world = Matrix(poses[i].tolist())

        render_frames(scene, cameras, frames, out, place)
        return
    motions = job.get("motions") or [job["motion"]]
    arms = [arm] + [duplicate_character(scene, arm) for _ in motions[1:]]
    scene.frame_start, scene.frame_end = 1, int(job["frames"])
    for k, (path, a) in enumerate(zip(motions, arms, strict=True)):
        cap = read_capture(path)
        src = build_armature(cap, f"source{k}")
        src.hide_render = True
        retarget_armature(src, a, job["bone_map"], 1, len(cap["rotations"]))
    names = [b.name for b in arm.pose.bones]
    P = len(arms)
    heads = np.zeros((len(frames), P, len(names), 3))
    tails = np.zeros((len(frames), P, len(names), 3))
    vis = np.zeros((len(frames), P, len(cameras), len(names)), bool)

    def record(i, f):
        for p, a in enumerate(arms):
            mw = np.array(a.matrix_world)
            hp = np.array([np.array(a.pose.bones[n].head) for n in names])
            heads[i, p] = hp @ mw[:3, :3].T + mw[:3, 3]
            tails[i, p] = np.array([np.array(a.pose.bones[n].tail) for n in names]) @ mw[:3, :3].T + mw[:3, 3]
            for c, cam in enumerate(cameras):
                vis[i, p, c] = visibility(scene, cam, heads[i, p])

    render_frames(scene, cameras, frames, out, record)
    np.savez(out / "groundtruth.npz", names=np.array(names, dtype=str), heads=heads, tails=tails, visible=vis)


if __name__ == "__main__":
    run(json.loads(Path(sys.argv[1]).read_text()))
