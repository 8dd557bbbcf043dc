"""FBX and GLB through Blender's exporters (bpy) in a child process, so bpy's state never touches this
process: an armature with the animation baked on every frame, no leaf bones, frame 1 first.

Starting Blender costs more than an export (about 0.6 s against 0.06 s for a 100-frame take), so every
FBX / GLB file of an export run goes to one child (:func:`blender_export_many`, the exporters'
``write_many``); each file is still moved into place atomically, and only once the child said it is done."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from mocap.io.atomic import atomic_write
from mocap.io.capture import write_capture
from mocap.io.exporters import Options, register
from mocap.types import Motion

DONE = "mocap-export-done"  # the child's line after each file it finished: DONE <index>


def _require_bpy(suffix: str) -> None:
    if importlib.util.find_spec("bpy") is None:
        raise RuntimeError(f"exporting {suffix} needs Blender's Python module: pip install 'mocap[blender]' "
                           "(bpy 5.0.1, Python 3.11)")


def blender_export_many(jobs: list[tuple[Motion, Path, str]]) -> list[Path]:
    """Write every (motion, path, up) through one Blender child; returns the paths. Files the child
    finished are in place even when a later one failed (which then raises, naming the files missing)."""
    if not jobs:
        return []
    for _, path, _ in jobs:
        _require_bpy(Path(path).suffix)
    with tempfile.TemporaryDirectory() as tmp:
        spec = []
        for i, (motion, path, up) in enumerate(jobs):
            cap = write_capture(Path(tmp) / f"motion{i}.npz", motion)
            # exporters insist on the extension; the temporary folder may be on another file system
            spec.append({"capture": str(cap), "out": str(Path(tmp) / f"out{i}{Path(path).suffix}"), "up": up})
        listing = Path(tmp) / "jobs.json"
        listing.write_text(json.dumps(spec))
        r = subprocess.run([sys.executable, "-m", "blender_addon.headless", "export-many", str(listing)],
                           capture_output=True, text=True)
        done = {int(line.split()[1]) for line in r.stdout.splitlines()
                if line.startswith(DONE + " ") and line.split()[1].isdigit()}
        missing = []
        for i, (_, path, _) in enumerate(jobs):
            target = Path(spec[i]["out"])
            if i in done and target.is_file():
                atomic_write(Path(path), lambda part, target=target: shutil.move(target, part))
            else:
                missing.append(Path(path).name)
        if missing:
            raise RuntimeError(f"Blender export of {', '.join(missing)} failed: {r.stderr.strip()[-1500:]}")
    return [Path(path) for _, path, _ in jobs]


def blender_export(motion: Motion, path: Path, up: str = "y") -> Path:
    return blender_export_many([(motion, Path(path), up)])[0]


def write_many(jobs: list[tuple[Motion, dict, Path, Options]]) -> list[Path]:
    """The FBX and GLB files of a run, any mix, in one Blender child."""
    return blender_export_many([(motion, Path(path), opt.up) for motion, _, path, opt in jobs])


@register("fbx", ".fbx", "armature with baked animation (Blender's FBX exporter, no leaf bones)", write_many)
def fbx(motion: Motion, extra: dict, path: Path, opt: Options) -> Path:
    return blender_export(motion, path, opt.up)


@register("glb", ".glb", "glTF binary with the armature and baked animation (Blender's glTF exporter)", write_many)
def glb(motion: Motion, extra: dict, path: Path, opt: Options) -> Path:
    return blender_export(motion, path, opt.up)
