"""Stage: the fitted motion played by a game rig (``motion/<rig>.npz``), feet locked. With several people,
each fitted person's motion: ``motion/<rig>_person2.npz`` from ``motion/<skeleton>_person2.npz``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from mocap.io.capture import read_capture, write_capture
from mocap.retarget import FootLock, load_target_rig, retarget_to_rig
from mocap.session import Session
from mocap.stages import Flag
from mocap.stages.aside import set_aside
from mocap.stages.fit import fitted_persons, remove_stale, skeleton_name
from mocap.types import Motion

log = logging.getLogger(__name__)
NAME = "retarget"
HELP = "fitted motion → game rig (mixamo, ue5, unity, cmu, or a rig TOML), feet locked"


@dataclass(frozen=True)
class Config:
    target: str = "mixamo"  # mixamo | ue5 | unity | cmu | a rig TOML
    foot_lock: bool = True
    lock: FootLock = FootLock()

    def __post_init__(self) -> None:  # when the settings are read, not after the stages before it ran
        from mocap.config_files import preset_names

        if not str(self.target).endswith(".toml") and self.target not in preset_names("rigs"):
            raise ValueError(f"retarget.target: unknown rig {self.target!r}: expected one of {preset_names('rigs')} "
                             "or a rig TOML file")


FLAGS = (Flag("--target", "target", "mixamo | ue5 | unity | cmu | rig.toml", str),
         Flag("--no-foot-lock", "foot_lock", "do not pin planted feet", value=False))


def target_name(settings) -> str:
    """The retargeted motion's name (the target rig's, checked to be a safe file name)."""
    return load_target_rig(settings.retarget.target).name


def inputs(session: Session, settings) -> list[Path]:
    target = Path(settings.retarget.target)
    sk = skeleton_name(settings)
    return [session.person_motion(sk, p) for p in fitted_persons(session, settings)] + \
        ([target] if target.suffix == ".toml" else [])


def outputs(session: Session, settings) -> list[Path]:
    name = target_name(settings)
    return [session.person_motion(name, p) for p in fitted_persons(session, settings)]


def run(motion: Motion, cfg: Config = Config()) -> Motion:
    rig = load_target_rig(cfg.target, motion.skeleton.joint_names)  # its sources must be the motion's joints
    return retarget_to_rig(motion, rig, cfg.lock if cfg.foot_lock else None)


def main(session: Session | str | Path, settings=None, overwrite: bool = False) -> Path:
    """``settings``: the pipeline's Settings, or this stage's Config."""
    from mocap.settings import as_settings

    session = session if isinstance(session, Session) else Session(Path(session))
    settings = as_settings(settings)
    name, outs = target_name(settings), []
    for person in fitted_persons(session, settings):
        out = session.person_motion(name, person)
        outs.append(out)
        if out.exists() and not overwrite:
            log.info("%s exists, skipping retargeting", out)
            continue
        src = session.person_motion(skeleton_name(settings), person)
        if not src.is_file():
            raise FileNotFoundError(f"retarget: {src} is missing; the fit stage makes it (mocap fit {session.root})")
        motion, extra = read_capture(src)
        person_name = str(extra["person"]) if "person" in extra else None
        write_capture(out, run(motion, settings.retarget), person=person_name)
    remove_stale(session.motion_dir, name, (".npz",), outs)
    _set_aside_other_targets(session.motion_dir, name)
    if not outs:
        log.warning("retarget: no person of %s was fitted; nothing to retarget", session.root)
    return outs[0] if outs else session.motion(name)


def _set_aside_other_targets(folder: Path, name: str) -> None:
    """The motions retargeted onto another target rig before (``motion/mixamo.npz`` after ``retarget.target`` became
    ue5) moved to ``motion/previous/``, said: beside the current ones they passed for current."""
    import re

    from mocap.config_files import preset_names

    others = "|".join(re.escape(r) for r in preset_names("rigs") if r != name)
    pattern = re.compile(rf"({others})(_person[0-9]+)?\.npz")
    files = [f for f in sorted(folder.glob("*.npz")) if others and folder.is_dir() and pattern.fullmatch(f.name)]
    set_aside(files, f"retargeted onto another target rig before (retarget.target is {name} now)", log)
