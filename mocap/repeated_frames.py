"""Frames a camera repeated (a frozen video): which they are, from detection's record of each camera's still frames
(:mod:`mocap.detect.repeats`, ``pose2d.h5``'s ``info["still_frames"]``), and the keypoints without their stale
detections."""

from __future__ import annotations

import dataclasses

import numpy as np


def repeated_frames(still: dict[str, list[int]], cameras: list[str], frames: int) -> dict[str, list[int]]:
    """{camera: frames} where a camera is still and fewer than half of the other cameras (those with a record)
    are; ``still``: ``info["still_frames"]``. Needs two cameras with a record."""
    known = [c for c in cameras if c in still]
    if len(known) < 2:
        return {}
    S = np.zeros((len(known), frames), bool)
    for k, c in enumerate(known):
        f = np.asarray([i for i in still[c] if 0 <= i < frames], int)
        S[k, f] = True
    out = {}
    for k, c in enumerate(known):
        others = (S.sum(axis=0) - S[k]) / (len(known) - 1)
        rep = np.flatnonzero(S[k] & (others < 0.5))
        if rep.size:
            out[c] = rep.tolist()
    return out


def ranges(frames: list[int]) -> list[list[int]]:
    """Consecutive frames as half-open [start, stop) ranges."""
    out: list[list[int]] = []
    for f in frames:
        if out and out[-1][1] == f:
            out[-1][1] = f + 1
        else:
            out.append([f, f + 1])
    return out


def ranges_text(frames: list[int]) -> str:
    """``41-54, 70`` for the frames (inclusive, as a user reads them)."""
    return ", ".join(f"{a}-{b - 1}" if b - a > 1 else f"{a}" for a, b in ranges(frames))


def mask_repeated(kp, info: dict):
    """``kp`` (a :class:`~mocap.types.Keypoints2D`) with the detections of repeated frames removed (NaN), and
    {camera: frames} removed; ``info``: the ``pose2d.h5`` info (no ``still_frames``: unchanged)."""
    rep = repeated_frames(info.get("still_frames") or {}, list(kp.camera_names), kp.shape[0])
    if not rep:
        return kp, {}
    data = np.array(kp.data, copy=True)
    for c, frames in rep.items():
        data[frames, list(kp.camera_names).index(c)] = np.nan
    return dataclasses.replace(kp, data=data), rep
