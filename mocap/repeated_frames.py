"""Frames a camera repeated (a frozen video): which they are, from detection's record of each camera's still frames
(:mod:`mocap.detect.repeats`, ``pose2d.h5``'s ``info["still_frames"]``), and the keypoints without their stale
detections."""

from __future__ import annotations

import dataclasses

import numpy as np

MAX_SHARE = 0.2  # a camera repeating more of its frames is not masked (a lower frame rate? said instead)


def repeated_frames(info: dict, cameras: list[str], frames: int,
                    detected: np.ndarray | None = None) -> dict[str, list[int]]:
    """{camera: frames} where a camera is still and fewer than half of the other cameras with a record are quiet
    (their still frames where they have no quiet record); ``info``: the ``pose2d.h5`` info. Needs two cameras with
    a record. ``detected`` (frames, cameras): where each camera detected someone; a still frame where it detected
    no one has no stale detection and is no copy that matters: an empty or covered view (the real demo's cam02 with
    its performer blacked out for 30 frames was said to repeat 27 frames, "a video at a lower frame rate?")."""
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
        rep = S[k] & (others < 0.5)
        if detected is not None:
            rep &= np.asarray(detected, bool)[:frames, list(cameras).index(c)]
        rep = np.flatnonzero(rep)
        if rep.size:
            out[c] = rep.tolist()
    return out


def frequent(rep: dict[str, list[int]], frames: int | dict[str, int]) -> set[str]:
    """The cameras of ``rep`` repeating more than :data:`MAX_SHARE` of the ``frames`` (a number, or per camera: the
    frames it detected someone in): not a freeze (a camera recording at half the others' frame rate repeats every
    other frame); their detections are kept."""
    of = frames if isinstance(frames, dict) else dict.fromkeys(rep, frames)
    return {c for c, f in rep.items() if len(f) > MAX_SHARE * of.get(c, 0)}


def repeated_and_kept(info: dict, cameras: list[str], frames: int,
                      detected: np.ndarray | None = None) -> tuple[dict[str, list[int]], set[str]]:
    """:func:`repeated_frames` and the cameras among them whose detections are kept (:func:`frequent`): the one rule
    the keypoints' masking and the report both read (``detected``: see :func:`detections`)."""
    rep = repeated_frames(info, cameras, frames, detected)
    if detected is None:
        return rep, frequent(rep, frames)
    # the repeats counted among the frames with a detection: against those (a half-rate camera seeing the performer
    # a quarter of the take repeats every other one of them, not a fifth of the take)
    counts = np.asarray(detected, bool)[:frames].sum(axis=0)
    return rep, frequent(rep, {c: int(counts[list(cameras).index(c)]) for c in rep})


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


def detections(kp) -> np.ndarray:
    """(frames, cameras) bool: where each camera of ``kp`` (a :class:`~mocap.types.Keypoints2D`) detected anyone."""
    return np.isfinite(kp.xy).all(axis=-1).any(axis=(2, 3))


def mask_repeated(kp, info: dict):
    """``kp`` (a :class:`~mocap.types.Keypoints2D`) with the detections of repeated frames removed (NaN), and
    {camera: frames} removed; ``info``: the ``pose2d.h5`` info (no ``still_frames``: unchanged). A camera that
    repeats too many (:func:`frequent`) keeps its detections."""
    rep, kept = repeated_and_kept(info, list(kp.camera_names), kp.shape[0], detections(kp))
    rep = {c: f for c, f in rep.items() if c not in kept}
    if not rep:
        return kp, {}
    data = np.array(kp.data, copy=True)
    for c, frames in rep.items():
        data[frames, list(kp.camera_names).index(c)] = np.nan
    return dataclasses.replace(kp, data=data), rep
