"""Stage: the fitted motion played by a game rig (``motion/<rig>.npz``), feet locked."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from mocap.io.capture import read_capture, write_capture
from mocap.retarget import FootLock, load_target_rig, retarget_to_rig
from mocap.session import Session
from mocap.types import Motion

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config:
    target: str = "mixamo"  # mixamo | ue5 | unity | cmu | a rig TOML
    foot_lock: bool = True
    lock: FootLock = FootLock()
    source: str = "body22"  # the fitted motion (motion/<source>.npz)


def run(motion: Motion, cfg: Config = Config()) -> Motion:
    return retarget_to_rig(motion, load_target_rig(cfg.target), cfg.lock if cfg.foot_lock else None)


def main(session: Session | str | Path, cfg: Config = Config(), overwrite: bool = False) -> Path:
    session = session if isinstance(session, Session) else Session(Path(session))
    rig = load_target_rig(cfg.target)
    out = session.motion(rig.name)
    if out.exists() and not overwrite:
        log.info("%s exists, skipping retargeting", out)
        return out
    src = session.motion(cfg.source)
    if not src.is_file():
        from mocap.stages import fit

        src = fit.main(session)
    motion, extra = read_capture(src)
    return write_capture(out, run(motion, cfg))
