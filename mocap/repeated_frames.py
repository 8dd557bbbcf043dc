"""Frames a camera repeated (a frozen video): which they are, from detection's record of each camera's still frames
(:mod:`mocap.detect.repeats`, ``pose2d.h5``'s ``info["still_frames"]``), and the keypoints without their stale
detections."""

from __future__ import annotations

import dataclasses

import numpy as np

MAX_SHARE = 0.2  # a camera repeating more of its frames is not masked (a lower frame rate? said instead)


def repeated_frames(info: dict, cameras: list[str], frames: int) -> dict[str, list[int]]:
    """{camera: frames} where a camera is still and fewer than half of the other cameras with a record are quiet
    (their still frames where they have no quiet record); ``info``: the ``pose2d.h5`` info. Needs two cameras with
    a record."""
    still, quiet = info.get("still_frames") or {}, info.get("quiet_frames") or {}
    known = [c for c in cameras if c in still]
    if len(known) < 2:
        return {}

    def rows(record: dict) -> np.ndarray:
        out = np.zeros((len(known), frames), bool)
        for k, c in enumerate(known):
            out[k, [i for i in record.get(c, still[c]) if 0 <= i < frames]] = True
        return out

    S, Q = rows(still), rows(quiet)
    Q |= S
    out = {}
    for k, c in enumerate(known):
        others = (Q.sum(axis=0) - Q[k]) / (len(known) - 1)
        rep = np.flatnonzero(S[k] & (others < 0.5))
        if rep.size:
            out[c] = rep.tolist()
    return out


def frequent(rep: dict[str, list[int]], frames: int) -> set[str]:
    """The cameras of ``rep`` repeating more than :data:`MAX_SHARE` of the ``frames``: not a freeze (a camera
    recording at half the others' frame rate repeats every other frame); their detections are kept."""
    return {c for c, f in rep.items() if len(f) > MAX_SHARE * frames}


def repeated_and_kept(info: dict, cameras: list[str], frames: int) -> tuple[dict[str, list[int]], set[str]]:
    """:func:`repeated_frames` and the cameras among them whose detections are kept (:func:`frequent`): the one rule
    the keypoints' masking and the report both read."""
    rep = repeated_frames(info, cameras, frames)
    return rep, frequent(rep, frames)


def ranges(frames: list[int]) -> list[list[int]]:
    """Consecutive frames as half-open [start, stop) ranges."""
    out: list[list[int]] = []
    for f in frames:
        if out and out[-1][1] == f:
            out[-1][1] = f + 1
        else:
            out.append([f, f + 1])
    return out


def ranges_text(frames: list[int], most: int = 8) -> str:
    """``41-54, 70`` for the frames (inclusive, as a user reads them); past ``most`` ranges, ``… (N ranges)``."""
    r = ranges(frames)
    text = ", ".join(f"{a}-{b - 1}" if b - a > 1 else f"{a}" for a, b in r[:most])
    return text + (f", … ({len(r)} ranges)" if len(r) > most else "")


def mask_repeated(kp, info: dict):
    """``kp`` (a :class:`~mocap.types.Keypoints2D`) with the detections of repeated frames removed (NaN), and
    {camera: frames} removed; ``info``: the ``pose2d.h5`` info (no ``still_frames``: unchanged). A camera that
    repeats too many (:func:`frequent`) keeps its detections."""
    rep, kept = repeated_and_kept(info, list(kp.camera_names), kp.shape[0])
    rep = {c: f for c, f in rep.items() if c not in kept}
    if not rep:
        return kp, {}
    data = np.array(kp.data, copy=True)
    for c, frames in rep.items():
        data[frames, list(kp.camera_names).index(c)] = np.nan
    return dataclasses.replace(kp, data=data), rep
