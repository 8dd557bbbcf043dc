"""A camera whose video looks started late while sync applied it no offset.

A camera started N frames after the others has N frames fewer: its detections end N frames before the first
camera's (the run says "cameras differ in length" as it starts). Sync tries that lag (:mod:`mocap.stages.rig_lags`)
but applies only what its test proves, and on a short take, or one where the person it times is seen little, it
may prove nothing: the camera's error then looked like a bad pose, and its hint said "calibration?" or "bumped?
recalibrate" (a reviewer, Pose2Sim's two-person demo with cam03's video 12 frames late: following that advice
changed nothing). So such a camera is named at the end of the run, and a flagged one's hint starts with it.
Frames dropped mid-take shorten a video as much; sync's halves tell them apart: the first half in time (nearer 0
than the lag), the second off (nearer the lag) — the single-person demo with 3 frames of cam03 dropped at frame
50: halves −0.73 / −2.00, told "started 3 frames late? cut 3 frames from the start of the other cameras' videos",
which moved the misalignment into the first half and silenced the report.
"""

from __future__ import annotations

import numpy as np

from mocap.stages.rig_lags import length_lags
from mocap.types import Keypoints2D


def late_cameras(kp: Keypoints2D, offsets: dict[str, float], tables: list[dict[str, dict]],
                 video_frames: dict[str, int] | None, stride: int = 1,
                 halves: dict[str, list[float]] | None = None) -> dict[str, dict]:
    """{camera: {"frames": its lag (sync's sign), "text": what to tell}} for the cameras whose detections ``kp``
    end 2 or more frames before or after the first camera's, whose video (``video_frames``: camera → frames, keypoint
    frame t being video frame t × ``stride``; None: no videos, nothing said) is as much shorter or longer, within a
    frame (not a person who left one view first, on videos a frame or two apart), and whose offset in ``offsets``
    (sync's, applied) is 0. When every other camera reads the first one's video as shorter by the same frames, the
    first camera is the late one. Each person's camera table in ``tables`` gets ``late`` on that camera's row, and a
    flagged row (not explained by mirrored or exchanged footage) its hint prefixed. ``halves``: sync's estimate on
    each half of the take, {camera: [first, second]}: a camera whose first half is in time and second off lost (or
    repeated) frames mid-take instead (``"mid_take": True``); one whose halves are both in time stopped early (or
    late): not said. A mid-take camera's rows get ``mid_take`` (frames, dropped or repeated, its second half's
    offset): the report's verdict fails on it (its detections after the drop are out of time: the real demo with 6
    frames of cam03 dropped at frame 50 passed at 7.94 px while its P95 went 39 → 89 px and the 3D after the drop
    was 17 mm off, wrists 41 mm)."""
    if not video_frames or not kp.camera_names:
        return {}
    names = list(kp.camera_names)
    ref = names[0]
    lags = {}
    for name, lag in length_lags(kp).items():
        shorter = (video_frames.get(name, 0) - video_frames.get(ref, 0)) / stride
        if not offsets.get(name) and name in video_frames and abs(shorter - lag) <= 1:
            lags[name] = lag
    if len(names) > 2 and set(lags) == set(names[1:]) and min(lags.values()) > 0 and \
            max(lags.values()) - min(lags.values()) <= 1:  # the first camera started late: every other reads it
        lags = {ref: -float(np.median(list(lags.values())))}
    out = {}
    for name, lag in lags.items():
        n = abs(int(round(lag)))
        than = "the other cameras'" if name == ref else f"{ref}'s"
        d_a, d_b = (halves or {}).get(name, (np.nan, np.nan))
        first = name != ref and abs(d_a) < abs(d_a - lag)  # sync's first half in time (nearer 0 than the lag)
        if first and abs(d_b) < abs(d_b - lag):
            continue  # both halves in time: its video stopped early (or late), no start to cut
        mid = first and abs(d_b - lag) < abs(d_b)  # in time, then off
        if mid:
            what = ("shorter", "early", "dropped") if lag < 0 else ("longer", "late", "repeated")
            fix = (f"check its frame timestamps: re-encoded at a constant frame rate from them (ffmpeg -i {name}.mp4 "
                   f"-fps_mode cfr -r {kp.fps * stride:g} …) a dropped frame is repeated and the camera stays in time"
                   if lag < 0 else "look for frames shown twice in it and remove them")
            fix += ("; if its file holds no timestamps to mend it by, leave the camera out of the rig (Qualisys: "
                    'active="0" on its <camera>; other rig files: remove it) and run again: its detections from there '
                    "on are measured at the wrong instants")
            text = (f"{name}'s video is {n} frames {what[0]} than {than} and its detections end as {what[1]}, but its "
                    f"first half is in time ({d_a:+.2f} frames) and its second off ({d_b:+.2f}): {n} frames {what[2]} "
                    f"mid-take? sync applied it no offset (none proven on this take); {fix}")
        elif lag < 0:
            text = (f"{name}'s video is {n} frames shorter than {than} and its detections end as early: it started "
                    f"{n} frames late? sync applied it no offset (none proven on this take); if so, cut {n} frames "
                    "from the start of the other cameras' videos and run again")
        else:
            text = (f"{name}'s video is {n} frames longer than {than} and its detections end as late: it started "
                    f"{n} frames early? sync applied it no offset (none proven on this take); if so, cut {n} frames "
                    f"from the start of {name}'s video and run again")
        out[name] = {"frames": lag, "text": text} | ({"mid_take": True} if mid else {})
        for table in tables:
            row = table.get(name)
            if row is None:
                continue
            row["late"] = lag
            if mid:  # out of time over the take's second half: the verdict fails it (mocap.report.verdict.verdict)
                row["mid_take"] = {"frames": n, "kind": what[2], "second_half_frames": float(d_b)}
            if row.get("flagged") and not (row.get("turned") or row.get("swapped_with") or row.get("same_as")):
                row["hint"] = f"sync? {text}; else: {row['hint']}"
    return out


def mid_take_check(name: str, mid: dict) -> dict:
    """The verdict's failed check for a camera whose video lost (or repeated) frames mid-take (``mid_take``)."""
    return {"metric": f"cameras.{name}.mid_take", "label": f"camera {name} out of time mid-take",
            "value": float(mid["second_half_frames"]), "comparison": "off", "threshold": 0.0, "unit": "frames",
            "text": f"camera {name}: {mid['frames']} frames {mid['kind']} mid-take? its second half is "
                    f"{mid['second_half_frames']:+.2f} frames out of time (see its warning)"}
