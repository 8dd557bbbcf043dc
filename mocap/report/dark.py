"""A camera whose footage is far darker than the other cameras': said before its other hints.

A camera with its lens cap on, its exposure or iris set for another scene, or lights off on its side gives the
detector nothing: it finds no one (the real demo with cam02's pixels × 0.1 or × 0.13: "saw no one … unplugged,
the wrong video, pointed elsewhere?") or a body in a few frames (× 0.2: flagged, P95 471 px). So a camera that saw
no one, is flagged or loses the person far more often than the others (:mod:`mocap.report.lost`) has a few frames
of every camera's video read (only then) and, when its images' mean brightness is under ``DARK_SHARE`` of the other
cameras' median, its hint starts with it.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

DARK_SHARE = 0.33  # a camera's mean brightness under this share of the other cameras' median: dark footage
SAMPLES = 5  # frames read per video, evenly spread


def brightness(path: Path, frames: int, samples: int = SAMPLES) -> float:
    """The median over ``samples`` evenly spread frames of a video of their mean grey level (0–255); NaN when
    none can be read."""
    from mocap.report.crops import read_video_frames

    picks = np.unique(np.linspace(0, max(frames - 1, 0), samples).astype(int)).tolist()
    try:
        images = read_video_frames(path, picks)
    except ValueError:
        return float("nan")
    levels = [float(cv2.cvtColor(im, cv2.COLOR_BGR2GRAY).mean()) for im in images.values() if im is not None]
    return float(np.median(levels)) if levels else float("nan")


def dark_cameras(tables: list[dict[str, dict]], videos: dict[str, Path], frames: dict[str, int] | None) -> dict:
    """{camera: {"brightness", "others"}} for each camera that saw no one, is flagged or lost the person in one of the
    ``tables`` (each person's camera table) and whose footage is dark beside the others'; those rows' hints are
    prefixed."""
    suspects = {n for t in tables for n, r in t.items() if r.get("unseen") or r.get("flagged") or r.get("lost")}
    suspects &= set(videos)
    if not suspects or len(videos) < 2:
        return {}
    level = {n: brightness(p, (frames or {}).get(n, 1)) for n, p in videos.items()}
    out = {}
    for name in sorted(suspects):
        others = [v for n, v in level.items() if n != name and np.isfinite(v)]
        if not others or not np.isfinite(level[name]) or level[name] >= DARK_SHARE * float(np.median(others)):
            continue
        out[name] = {"brightness": level[name], "others": float(np.median(others))}
        text = (f"footage dark? its images' mean brightness is {level[name]:.0f} of 255 against "
                f"{out[name]['others']:.0f} in the other cameras (lens cap, exposure or iris, lights on its side?): "
                "the detector finds few people or none in it")
        for table in tables:
            row = table.get(name)
            if row is not None and (row.get("unseen") or row.get("flagged") or row.get("lost")):
                row["dark"] = out[name]
                row["hint"] = f"{text}; else: {row['hint']}" if row.get("hint") else text
    return out
