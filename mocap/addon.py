"""Packaging the Blender add-on: its bone maps (generated from ``configs/rigs``) and the zip."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from mocap.config_files import preset_names
from mocap.retarget import load_target_rig

ADDON_DIR = Path(__file__).resolve().parents[1] / "blender_addon"
ADDON_FILES = ("__init__.py", "builders.py", "capture_format.py", "retarget.py", "bone_maps.json",
               "blender_manifest.toml")

# Rigify's human metarig (retarget before "Generate Rig", or map the generated FK controls by hand)
RIGIFY = {
    "spine": "Hips", "spine.001": "Spine", "spine.002": "Spine1", "spine.003": "Spine2", "spine.004": "Neck",
    "spine.006": "Head",
    **{f"{r}.{s}": f"{side}{b}" for s, side in (("L", "Left"), ("R", "Right")) for r, b in (
        ("shoulder", "Shoulder"), ("upper_arm", "Arm"), ("forearm", "ForeArm"), ("hand", "Hand"),
        ("thigh", "UpLeg"), ("shin", "Leg"), ("foot", "Foot"), ("toe", "ToeBase"))},
    **{f"{r}.0{i}.{s}": f"{side}Hand{f}{i}" for s, side in (("L", "Left"), ("R", "Right")) for r, f in (
        ("thumb", "Thumb"), ("f_index", "Index"), ("f_middle", "Middle"), ("f_ring", "Ring"), ("f_pinky", "Pinky"))
       for i in (1, 2, 3)},
}


def bone_maps() -> dict[str, dict[str, str]]:
    """{preset: {target bone: body22 / body52 joint}} for every rig in configs/rigs, plus Rigify."""
    maps = {name: dict(load_target_rig(name).source) for name in preset_names("rigs")}
    maps["rigify"] = RIGIFY
    return dict(sorted(maps.items()))


def write_bone_maps(path: Path = ADDON_DIR / "bone_maps.json") -> Path:
    path.write_text(json.dumps(bone_maps(), indent=1) + "\n")
    return path


def build_zip(out: str | Path) -> Path:
    """An installable add-on zip (Blender 4.2+ extension manifest and legacy bl_info both present)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    maps = json.dumps(bone_maps(), indent=1) + "\n"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name in ADDON_FILES:
            arc = f"mocap_importer/{name}"
            if name == "bone_maps.json":
                z.writestr(arc, maps)
            else:
                z.write(ADDON_DIR / name, arc)
    return out
