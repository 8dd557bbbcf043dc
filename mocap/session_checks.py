"""What reading a session's 2D keypoints checks against its rig and its ``session.toml`` (:mod:`mocap.session`)."""

from __future__ import annotations

import logging
from pathlib import Path

from mocap.types import Keypoints2D, Rig

log = logging.getLogger("mocap.session")

_said: set[str] = set()


def forget_said() -> None:
    """Each run says its warnings once (:func:`mocap.pipeline.run` calls this first)."""
    _said.clear()


def say_once(text: str, logger: logging.Logger = log) -> None:
    """A warning about a session's inputs, once per process (every stage reads the keypoints)."""
    if text not in _said:
        _said.add(text)
        logger.warning(text)


def check_cameras(kp: Keypoints2D, rig: Rig, source: Path | str, rig_source: Path | str) -> None:
    """Raise when the keypoints' cameras are not the rig's, naming both files and the cameras, or when the rig has
    fewer than two cameras (nothing after detection can place a point in 3D from one view)."""
    if len(rig) < 2:
        raise ValueError(f"{rig_source}: the rig has {len(rig)} camera{'s' if len(rig) != 1 else ''} "
                         f"{list(rig.names)}: 3D needs two cameras or more (a point is where two views' rays meet); "
                         "add the other cameras' calibration and keypoints")
    if tuple(kp.camera_names) != tuple(rig.names):
        missing = [c for c in kp.camera_names if c not in rig.names]
        unused = [c for c in rig.names if c not in kp.camera_names]
        raise ValueError(
            f"{source}: keypoint cameras {list(kp.camera_names)} do not match rig {rig_source} cameras "
            f"{list(rig.names)}" + (f"; not in the rig: {missing}" if missing else "")
            + (f"; no keypoints for: {unused}" if unused else ""))
