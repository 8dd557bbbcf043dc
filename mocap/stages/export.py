"""Stage: animation files from a motion (``export/<session>_<motion>.<ext>``).

BVH is written here (rotation order, units and up axis of the target rig, T-pose in the offsets,
positions on the root only); TRC holds the joint positions; FBX and glTF/GLB are built by Blender
(bpy) in a child process: an armature with the animation baked on every frame, no leaf bones.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mocap.io.atomic import atomic_write
from mocap.io.bvh import write_bvh
from mocap.io.capture import read_capture, write_capture
from mocap.io.trc import write_trc
from mocap.motion import Z_UP_TO_Y_UP, change_axes, fill_gaps, scale_motion
from mocap.retarget import UNITS, load_target_rig
from mocap.session import Session
from mocap.types import Motion

log = logging.getLogger(__name__)
FORMATS = ("bvh", "fbx", "glb", "trc")


@dataclass(frozen=True)
class Config:
    formats: tuple[str, ...] = ("bvh", "fbx")
    motions: tuple[str, ...] = ()  # motion/<name>.npz to export; () = body22 (in mocap run: and the retarget target)
    bvh_order: str = "ZXY"
    units: str | None = None  # m | cm | cmu; None: the rig's preference (m for the fitted skeleton)
    up: str | None = None  # y | z; None: the rig's preference (y for BVH of the fitted skeleton)


def _preferences(name: str) -> tuple[str, str]:
    try:
        rig = load_target_rig(name)
        return rig.units, rig.up
    except ValueError:
        return "m", "y"


def write_motion(motion: Motion, path: Path, fmt: str, units: str = "m", up: str = "y", order: str = "ZXY") -> Path:
    """One animation file. Gaps (NaN frames) are filled by interpolation first."""
    if fmt not in FORMATS:
        raise ValueError(f"export: unknown format {fmt!r} (expected one of {FORMATS})")
    motion, filled = fill_gaps(motion)
    if filled:
        log.warning("%s: %d frames without a fit were interpolated", path.name, filled)
    if fmt == "bvh":
        m = change_axes(motion, Z_UP_TO_Y_UP) if up == "y" else motion
        return write_bvh(scale_motion(m, UNITS[units]), path, order=order)
    if fmt == "trc":
        _, p = motion.fk()
        return write_trc(path, p, motion.skeleton.joint_names, motion.fps, y_up=(up == "y"))
    return blender_export(motion, path, up)


def blender_export(motion: Motion, path: Path, up: str = "y") -> Path:
    """FBX / GLB through bpy in a child process (bpy's state never touches this process)."""
    try:
        import importlib.util

        if importlib.util.find_spec("bpy") is None:
            raise ImportError
    except ImportError:
        raise RuntimeError(f"exporting {path.suffix} needs Blender's Python module: pip install 'mocap[blender]' "
                           "(bpy 5.0.1, Python 3.11)") from None
    with tempfile.TemporaryDirectory() as tmp:
        cap = write_capture(Path(tmp) / "motion.npz", motion)

        def write(part: Path) -> None:
            target = part.with_suffix(path.suffix)  # exporters insist on the extension
            r = subprocess.run([sys.executable, "-m", "blender_addon.headless", "export", str(cap), str(target),
                                "--up", up], capture_output=True, text=True)
            if r.returncode != 0 or not target.is_file():
                raise RuntimeError(f"Blender export of {path.name} failed: {r.stderr.strip()[-1500:]}")
            target.replace(part)

        return atomic_write(path, write)


def outputs(session: Session, cfg: Config) -> list[Path]:
    return [session.export_dir / f"{session.root.name}_{m}.{fmt}" for m in cfg.motions or ("body22",)
            for fmt in cfg.formats]


def main(session: Session | str | Path, cfg: Config = Config(), overwrite: bool = False) -> list[Path]:
    session = session if isinstance(session, Session) else Session(Path(session))
    outs = []
    for name in cfg.motions or ("body22",):
        src = session.motion(name)
        if not src.is_file():
            from mocap.stages import fit, retarget

            src = fit.main(session) if name == "body22" else retarget.main(session, retarget.Config(name))
        units, up = _preferences(name)
        units, up = cfg.units or units, cfg.up or up
        motion = None
        for fmt in cfg.formats:
            out = session.export_dir / f"{session.root.name}_{name}.{fmt}"
            outs.append(out)
            if out.exists() and not overwrite:
                log.info("%s exists, skipping", out)
                continue
            if motion is None:
                motion, _ = read_capture(src)
            write_motion(motion, out, fmt, units, up, cfg.bvh_order)
            log.info("wrote %s", out)
    return outs
