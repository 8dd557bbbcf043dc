"""A camera whose video looks started late while sync applied it no offset.

A camera started N frames after the others has N frames fewer: its detections end N frames before the first
camera's (the run says "cameras differ in length" as it starts). Sync tries that lag (:mod:`mocap.stages.rig_lags`)
but applies only what its test proves, and on a short take, or one where the person it times is seen little, it
may prove nothing: the camera's error then looked like a bad pose, and its hint said "calibration?" or "bumped?
recalibrate" (a reviewer, Pose2Sim's two-person demo with cam03's video 12 frames late: following that advice
changed nothing). So such a camera is named at the end of the run, and a flagged one's hint starts with it.
"""

from __future__ import annotations

from mocap.stages.rig_lags import length_lags
from mocap.types import Keypoints2D


def late_cameras(kp: Keypoints2D, offsets: dict[str, float], tables: list[dict[str, dict]],
                 video_frames: dict[str, int] | None) -> dict[str, dict]:
    """{camera: {"frames": its lag from the lengths (sync's sign), "text": what to tell}} for the cameras whose
    detections ``kp`` end 2 or more frames before or after the first camera's, whose video (``video_frames``:
    camera → frames; None: no videos, nothing said) is shorter or longer alike (not a person who left one view
    first) and whose offset in ``offsets`` (sync's, applied) is 0; each person's camera table in ``tables`` gets
    ``late`` on that camera's row, and a flagged row (not explained by mirrored or exchanged footage) its hint
    prefixed."""
    out = {}
    ref = kp.camera_names[0] if kp.camera_names else ""
    for name, lag in length_lags(kp).items():
        shorter = (video_frames or {}).get(name, 0) - (video_frames or {}).get(ref, 0)
        if offsets.get(name) or not video_frames or shorter * lag <= 0 or abs(shorter) < 2:
            continue
        n = abs(int(round(lag)))
        where = "the other cameras' videos" if lag < 0 else f"{name}'s video"
        text = (f"{name}'s detections end {n} frames {'before' if lag < 0 else 'after'} {ref}'s: its video started "
                f"{n} frames {'late' if lag < 0 else 'early'}? sync applied it no offset (none proven on this take); "
                f"if so, cut {n} frames from the start of {where} and run again")
        out[name] = {"frames": lag, "text": text}
        for table in tables:
            row = table.get(name)
            if row is None:
                continue
            row["late"] = lag
            if row.get("flagged") and not (row.get("turned") or row.get("swapped_with") or row.get("same_as")):
                row["hint"] = f"sync? {text}; else: {row['hint']}"
    return out
