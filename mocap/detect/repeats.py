"""Frames a camera repeats: a video that froze, or a recorder that filled the frames it dropped with copies.

A repeated frame shows an earlier instant, so its detections are stale: measured at the wrong time. Pose2Sim's real
demo with cam03 frozen for 14 frames (frames 41-54 made copies of frame 40, the video's length unchanged) passed
silently with cam03's P95 39 → 48 px and the take's median 7.79 → 7.97 px.

While detection decodes a video, each frame's *change* is measured: the mean absolute difference of every 16th
pixel (each channel) from the frame before (NaN for a chunk's first frame). A live camera's consecutive frames
differ by its sensor noise at least; a copy differs only by the encoder's residual: on Pose2Sim's demo videos
consecutive frames change by 0.36-1.5 × their camera's median, copies re-encoded into the video by 0.00-0.19 ×. A
frame whose change is under :data:`RATIO` × its camera's median is *still*, one under :data:`QUIET` × the median
*quiet* (``pose2d.h5``'s ``info["still_frames"]`` and ``info["quiet_frames"]``, per camera: written when the
camera's detection is complete). A still frame is *repeated* when fewer than half of the other cameras are quiet at
that frame: where the scene stands still (the performer pausing, nobody moving in a noise-free render) a clean
camera's frames can change as little as a copy, but the other cameras are quiet too, and nothing is repeated. A
frame is compared with the frame decoded before it (``detect.stride`` apart); the detection's frames are compared
across cameras as they are, before any sync offset. The local pool and the Dask path (``--scheduler``) record the
same; detections made before this record existed have none (nothing is repeated there). The detections of repeated
frames are not used (:func:`mocap.repeated_frames.mask_repeated`, applied where a session's keypoints are read: the
stages after detection depend on that module, not on detection's); the report names them.

A frame whose compared pixels are all black is *blank* (its change :data:`BLANK`): not still (two black frames in a
row changed by nothing and read as a frozen camera), but quiet (it shows nothing of the scene moving, so another
camera still there is not called repeated on its account). Frames the decoder could not read are given as black
images (:func:`mocap.io.video.read_frames`), and a damaged file in the middle of a take then read in the report as
a camera that lost the performer ("footage dark?"); ``info["blank_frames"]``, per camera, names them for the
report.
"""

from __future__ import annotations

import numpy as np

STEP = 16  # every STEP-th pixel of each row and column is compared
RATIO = 0.25  # a frame changing less than this share of its camera's median change is still
QUIET = 0.6  # ... less than this share, quiet (the demos' live frames: 0.36-1.5, their quiet stretches 0.36-0.5)
BLANK = -1.0  # the change recorded for a frame whose compared pixels are all black (no change is negative)


def thumbnail(image: np.ndarray) -> np.ndarray:
    """The pixels compared: every :data:`STEP`-th of each row and column, as int16."""
    return np.asarray(image)[::STEP, ::STEP].astype(np.int16)


def change(previous: np.ndarray | None, current: np.ndarray) -> float:
    """Mean absolute difference of two :func:`thumbnail` s (NaN without a previous one of the same shape)."""
    if previous is None or previous.shape != current.shape:
        return float("nan")
    return float(np.mean(np.abs(current - previous)))


class Changes:
    """Each frame's :func:`change` from the one before, as frames are added in order (``values``)."""

    def __init__(self):
        self.values: list[float] = []
        self._last: np.ndarray | None = None

    def add(self, image: np.ndarray) -> None:
        thumb = thumbnail(image)
        self.values.append(BLANK if not thumb.any() else change(self._last, thumb))
        self._last = thumb


def blank_frames(changes: np.ndarray) -> list[int]:
    """Indices of the :data:`BLANK` frames of per-frame ``changes``."""
    return np.flatnonzero(np.asarray(changes, float) == BLANK).astype(int).tolist()


def still_frames(changes: np.ndarray, ratio: float = RATIO) -> list[int]:
    """Indices of the frames whose change is under ``ratio`` × the median change (none when the median is 0: a
    video with no change anywhere tells nothing). :data:`QUIET` as ``ratio``: the quiet frames."""
    c = np.where(np.asarray(changes, float) == BLANK, np.nan, np.asarray(changes, float))  # a blank frame: no change
    if not np.isfinite(c).any():
        return []
    med = float(np.nanmedian(c))
    if not med > 0:
        return []
    with np.errstate(invalid="ignore"):
        return np.flatnonzero(c < ratio * med).astype(int).tolist()
