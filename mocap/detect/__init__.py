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


# name → "module:class"; a detector class is made with the detect stage's options (variant, model_path,
# num_poses). Another package adds one through the ``mocap.detectors`` entry point (name = "module:class").
DETECTORS: dict[str, str] = {
    "blazepose": "mocap.detect.blazepose:BlazePose",
    "onnx": "mocap.detect.onnx:OnnxPose",
}


def register_detector(name: str, target: str) -> None:
    """Add a detector: ``target`` is ``"package.module:Class"``, imported when first used."""
    DETECTORS[name] = target


_scanned: list[bool] = []  # the entry points were read (once per process: a scan costs ~3 ms, paid per Config)


def detector_names() -> tuple[str, ...]:
    """The registered detectors' names: the built-in ones, those added with :func:`register_detector`, and
    the installed packages' ``mocap.detectors`` entry points (read on the first call)."""
    if not _scanned:
        from importlib.metadata import entry_points

        for ep in entry_points(group="mocap.detectors"):
            DETECTORS.setdefault(ep.name, ep.value)
        _scanned.append(True)
    return tuple(DETECTORS)


def get_detector(name: str, **options) -> Detector:
    import importlib

    if name not in detector_names():
        raise ValueError(f"unknown detector {name!r}: expected one of {list(DETECTORS)}")
    module, cls = DETECTORS[name].split(":")
    return getattr(importlib.import_module(module), cls)(**options)
