"""When the second detection pass (:mod:`mocap.detect.recover`) runs: ``detect.recover``'s modes, whether a
detect config wants it, and whether a finished detection that skipped it would skip it again under other
triangulate settings (the detect stage's cache key, :func:`mocap.stages.detect.unused`)."""

from __future__ import annotations

import logging

log = logging.getLogger("mocap.detect.recover")
MODES = ("auto", "on", "off")


def check_mode(mode: str, detector: str) -> None:
    """``detect.recover`` is one of :data:`MODES`; ``on`` needs BlazePose (its landmark model looks at the boxes)."""
    if mode not in MODES:
        raise ValueError(f"detect: recover must be one of {list(MODES)}, got {mode!r}")
    if mode == "on" and detector != "blazepose":
        raise ValueError(f"detect: recover = 'on' needs the blazepose detector (its landmark model looks at the "
                         f"person boxes), got detector {detector!r}; use recover = 'off'")


def recovering(mode: str, persons: int | str) -> bool:
    """``detect.recover``: ``auto`` is on when several people (or ``auto``) are detected; ``on``, ``off``."""
    if mode not in MODES:
        raise ValueError(f"detect: recover must be one of {list(MODES)}, got {mode!r}")
    return mode == "on" or (mode == "auto" and persons != 1)


def wanted(detect_cfg) -> bool:
    """Whether the detect stage runs the second pass: ``detect.recover`` (``auto``: with several people or
    ``persons = auto``), and only with BlazePose (its landmark model looks at the boxes; with another
    detector ``auto`` skips it, ``on`` is refused by the stage's Config)."""
    if not recovering(detect_cfg.recover, detect_cfg.persons):
        return False
    if detect_cfg.detector != "blazepose":
        log.info("recover: the %r detector has no landmark model for person boxes; no second pass",
                 detect_cfg.detector)
        return False
    return True


def still_skipped(session, triangulate_cfg, two_view_birth: int | None = None) -> bool:
    """Whether the session's finished ``pose2d.h5``, whose second pass was skipped (fewer than 2 people tracked),
    would skip it again under ``triangulate_cfg``: the skip is the association's (its settings, min_score)."""
    from mocap.detect.recover import RecoverConfig
    from mocap.io.hdf5 import read_keypoints2d
    from mocap.io.rig_files import read_rig
    from mocap.multi.track import associate_take

    birth = RecoverConfig.two_view_birth if two_view_birth is None else two_view_birth

    kp = read_keypoints2d(session.pose2d_h5)
    rig = read_rig(session.given_rig_path()).subset(kp.camera_names)
    slots, _ = associate_take(rig, kp, "auto", triangulate_cfg.association, triangulate_cfg.min_score,
                              progress=False, two_view_birth=birth, quiet=True)
    return slots.shape[2] < 2


def skipped_alone(session, triangulate_cfg, again: bool = False) -> bool:
    """Whether the session's finished ``pose2d.h5`` skipped the second pass with one person slot per view (its
    detections then do not depend on the triangulate settings); with ``again``, only while the association under
    ``triangulate_cfg`` would still skip it (:func:`still_skipped`). False for a missing or unreadable file."""
    from mocap.io.hdf5 import FileInUseError, keypoints2d_info, keypoints2d_persons

    path = session.pose2d_h5
    try:
        if not keypoints2d_info(path).get("recover", {}).get("skipped") or keypoints2d_persons(path) != 1:
            return False
        return not again or still_skipped(session, triangulate_cfg)
    except FileInUseError:  # not unreadable: open in another process (said as it is)
        raise
    except (OSError, ValueError, KeyError):
        return False
