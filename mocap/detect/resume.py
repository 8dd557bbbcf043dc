"""A detection resumed camera by camera: the partial file (``.mocap/pose2d.partial.h5``, or a finished
``pose2d.h5`` resumed in place) records each camera's video as it was detected (:func:`mocap.io.video.fingerprint`,
in its ``info["videos"]``); a resumed run keeps the cameras whose video is still that one and detects the others
again. A take where one video was cut short or damaged keeps the other cameras' detections (:mod:`mocap.detect
.collect`): once that file is replaced or re-encoded, the next run detects only its camera."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger("mocap.stages.detect")


def identities(videos: dict[str, Path]) -> dict[str, str]:
    """camera → its video's fingerprint."""
    from mocap.io.video import fingerprint

    return {c: fingerprint(p) for c, p in videos.items()}


def still_valid(work: Path, videos: dict[str, str], frames: int, complete: np.ndarray,
                in_place: bool = False) -> np.ndarray | None:
    """The cameras of ``work`` (complete (C,)) that stay complete now that its ``videos`` (camera → fingerprint,
    in the file's camera order) are these: those whose video is the one they were detected from (a file without
    that record: none). The others are marked incomplete in the file, under the new record. None when nothing of
    it can be resumed: it holds other cameras or another number of frames; or a camera's video changed and the file
    is a finished ``pose2d.h5`` (``in_place``: redone in a partial file, the last good 2D kept until then) or its
    second pass ran (its recoveries were made with the old detections)."""
    from mocap.io.hdf5 import keypoints2d_cameras, keypoints2d_info, reopen_cameras

    header = keypoints2d_cameras(work)
    try:
        (F, _, _, _), names, _, _ = next(header)
    finally:
        header.close()
    if list(names) != list(videos) or frames != F:
        log.info("%s was started for other cameras or frames (%s, %d frames): detected again from the start", work,
                 list(names), F)
        return None
    info = keypoints2d_info(work)
    before = info.get("videos") or {}
    changed = [k for k, c in enumerate(videos) if before.get(c) != videos[c]]
    if changed and (in_place or "recover" in info):
        log.info("%s: camera(s) %s changed since %s: detected again from the start", work,
                 ", ".join(list(videos)[k] for k in changed), "it was finished" if in_place else "its second pass")
        return None
    if changed:
        again = [list(videos)[k] for k in changed if complete[k]]
        if again:
            log.info("camera(s) %s: the video changed since it was detected: detected again", ", ".join(again))
        reopen_cameras(work, changed, videos=videos)
        complete = complete.copy()
        complete[changed] = False
    return complete
