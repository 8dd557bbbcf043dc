"""FBX and GLB through Blender's exporters (bpy) in a child process, so bpy's state never touches this
process: an armature with the animation baked on every frame, no leaf bones, frame 1 first."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from mocap.io.atomic import atomic_write
from mocap.io.capture import write_capture
from mocap.io.exporters import Options, register
from mocap.types import Motion


def blender_export(motion: Motion, path: Path, up: str = "y") -> Path:
    if importlib.util.find_spec("bpy") is None:
        raise RuntimeError(f"exporting {path.suffix} needs Blender's Python module: pip install 'mocap[blender]' "
                           "(bpy 5.0.1, Python 3.11)")
    with tempfile.TemporaryDirectory() as tmp:
        cap = write_capture(Path(tmp) / "motion.npz", motion)

        def write(part: Path) -> None:
            target = Path(tmp) / f"out{path.suffix}"  # exporters insist on the extension
            r = subprocess.run([sys.executable, "-m", "blender_addon.headless", "export", str(cap), str(target),
                                "--up", up], capture_output=True, text=True)
            if r.returncode != 0 or not target.is_file():
                raise RuntimeError(f"Blender export of {path.name} failed: {r.stderr.strip()[-1500:]}")
            shutil.move(target, part)  # the temporary folder may be on another file system

        return atomic_write(path, write)


@register("fbx", ".fbx", "armature with baked animation (Blender's FBX exporter, no leaf bones)")
def fbx(motion: Motion, extra: dict, path: Path, opt: Options) -> Path:
    return blender_export(motion, path, opt.up)


@register("glb", ".glb", "glTF binary with the armature and baked animation (Blender's glTF exporter)")
def glb(motion: Motion, extra: dict, path: Path, opt: Options) -> Path:
    return blender_export(motion, path, opt.up)
