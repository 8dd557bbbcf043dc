"""2D keypoint detectors behind one small interface.

A detector is created from its name and options (``get_detector``) and is called once per frame
with a BGR image and its timestamp; it returns (persons, joints, 3) = x, y (pixels, centre of the
top-left pixel at (0, 0)), score, NaN where nobody was found.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Detector(Protocol):
    keypoint_set: str
    num_poses: int

    def __call__(self, image_bgr: np.ndarray, timestamp_ms: int) -> np.ndarray: ...

    def close(self) -> None: ...


DETECTORS = ("blazepose", "onnx")


def get_detector(name: str, **options) -> Detector:
    if name == "blazepose":
        from mocap.detect.blazepose import BlazePose

        return BlazePose(**options)
    if name == "onnx":
        from mocap.detect.onnx import OnnxPose

        return OnnxPose(**options)
    raise ValueError(f"unknown detector {name!r}: expected one of {list(DETECTORS)}")
