"""The frames each camera repeated (a frozen video, :mod:`mocap.repeated_frames`), and those it gave as black images
(frames its video could not decode, :mod:`mocap.detect.repeats`): for ``metrics.json``'s ``repeated_frames`` and
``blank_frames``, the log and the page."""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger("mocap.report")


def pose2d_info(session) -> dict:
    """``pose2d.h5``'s ``info`` (what detection recorded of each camera's frames), read once for both records; {}
    without the file."""
    from mocap.io.hdf5 import keypoints2d_info

    return keypoints2d_info(session.pose2d_h5) if session.pose2d_h5.is_file() else {}


def repeated_record(session, info: dict, cameras: list[str], frames: int) -> dict:
    """{camera: {"frames", "ranges", "text", "used"}} of the frames each camera repeated
    (:mod:`mocap.repeated_frames`; ``info``: :func:`pose2d_info`); ``used``: too many for a freeze, the detections
    kept."""
    from mocap.io.hdf5 import read_keypoints2d_shared
    from mocap.repeated_frames import detections, ranges, ranges_text, repeated_and_kept

    if not info.get("still_frames"):
        return {}
    kp = read_keypoints2d_shared(session.pose2d_h5, copy=False)  # the session's keypoints read them already
    found = detections(kp)
    names = list(kp.camera_names)
    detected = np.zeros((frames, len(cameras)), bool)  # in the rig's order; frames past the file's: none
    for i, c in enumerate(cameras):
        if c in names:
            detected[:min(frames, len(found)), i] = found[:frames, names.index(c)]
    rep, kept = repeated_and_kept(info, cameras, frames, detected)  # kept: too many, said
    return {c: {"frames": len(f), "ranges": ranges(f), "text": ranges_text(f), "used": c in kept}
            for c, f in rep.items()}


def blank_record(info: dict, cameras: list[str]) -> dict:
    """{camera: {"frames", "ranges", "text"}} of the frames whose image was all black (``info["blank_frames"]``,
    :func:`pose2d_info`): frames the decoder could not read, given as black images, or black footage."""
    from mocap.repeated_frames import ranges, ranges_text

    blank = info.get("blank_frames") or {}
    return {c: {"frames": len(f), "ranges": ranges(f), "text": ranges_text(f)}
            for c in cameras if (f := blank.get(c))}


def log_repeated(metrics: dict) -> None:
    """A warning per camera that repeated frames: not used, or kept where too many for a freeze."""
    for name, rep in (metrics.get("repeated_frames") or {}).items():
        why = ("too many for a freeze: a video at a lower frame rate than the others'? its detections were kept)"
               if rep["used"] else "the video froze, or its recorder filled frames it dropped with copies); their "
               "detections were not used")
        log.warning("camera %s: frames %s repeat the frame before them (%d frames: %s", name, rep["text"],
                    rep["frames"], why)
    for name, blank in (metrics.get("blank_frames") or {}).items():
        log.warning("camera %s: frames %s are black (%d frame(s)): frames its video could not decode (a damaged "
                    "file: re-export or re-encode it), or black footage; no detection there", name, blank["text"],
                    blank["frames"])
