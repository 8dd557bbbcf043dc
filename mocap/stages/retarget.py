"""Stage: the fitted motion played by a game rig (``motion/<rig>.npz``), feet locked."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from mocap.io.capture import read_capture, write_capture
from mocap.retarget import FootLock, load_target_rig, retarget_to_rig
from mocap.session import Session
from mocap.stages import Flag
from mocap.stages.fit import skeleton_name
from mocap.types import Motion

log = logging.getLogger(__name__)
NAME = "retarget"
HELP = "fitted motion → game rig (mixamo, ue5, unity, cmu, or a rig TOML), feet locked"


@dataclass(frozen=True)
class Config:
    target: str = "mixamo"  # mixamo | ue5 | unity | cmu | a rig TOML
    foot_lock: bool = True
    lock: FootLock = FootLock()


FLAGS = (Flag("--target", "target", "mixamo | ue5 | unity | cmu | rig.toml", str),
         Flag("--no-foot-lock", "foot_lock", "do not pin planted feet", value=False))


def target_name(settings) -> str:
    """The retargeted motion's name (the target rig's, checked to be a safe file name)."""
    return load_target_rig(settings.retarget.target).name


def inputs(session: Session, settings) -> list[Path]:
    target = Path(settings.retarget.target)
    return [session.motion(skeleton_name(settings))] + ([target] if target.suffix == ".toml" else [])


def outputs(session: Session, settings) -> list[Path]:
    return [session.motion(target_name(settings))]


def run(motion: Motion, cfg: Config = Config()) -> Motion:
    rig = load_target_rig(cfg.target, motion.skeleton.joint_names)  # its sources must be the motion's joints
    return retarget_to_rig(motion, rig, cfg.lock if cfg.foot_lock else None)


def main(session: Session | str | Path, settings=None, overwrite: bool = False) -> Path:
    """``settings``: the pipeline's Settings, or this stage's Config."""
    from mocap.settings import as_settings

    session = session if isinstance(session, Session) else Session(Path(session))
    settings = as_settings(settings)
    out = session.motion(target_name(settings))
    if out.exists() and not overwrite:
        log.info("%s exists, skipping retargeting", out)
        return out
    src = session.motion(skeleton_name(settings))
    if not src.is_file():
        raise FileNotFoundError(f"retarget: {src} is missing; the fit stage makes it (mocap fit {session.root})")
    motion, _ = read_capture(src)
    return write_capture(out, run(motion, settings.retarget))
