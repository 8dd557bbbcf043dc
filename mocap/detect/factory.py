"""The detect stage's detector: the configured body detector (BlazePose scanning for new people with
``persons = auto``), with the hand detector on top when hands are wanted."""

from __future__ import annotations

import logging

from mocap.detect import scan

log = logging.getLogger("mocap.stages.detect")


def wants_hands(settings) -> bool:
    """``detect.hands``, or when unset: whether the fit skeleton has finger joints mapped on ``blazepose33_hands`` and
    the detector is BlazePose (a whole-body ONNX model gives hands by itself, a body-only one cannot)."""
    if settings.detect.hands is not None:
        return settings.detect.hands
    if settings.detect.detector != "blazepose":
        return False
    from mocap.skeletons import load_skeleton

    try:
        skeleton = load_skeleton(settings.fit.solver.skeleton)
    except (FileNotFoundError, ValueError):
        return False  # the fit stage reports a bad skeleton; detection does not need it
    return bool(skeleton.finger_joints) and "blazepose33_hands" in skeleton.mappings


def make_detector(cfg):
    """The configured detector, with the hand detector on top when ``cfg.hands`` and the body model has
    no hands of its own (a whole-body ONNX model already gives ``blazepose33_hands``)."""
    from mocap.detect import get_detector

    options = {"variant": cfg.variant, "model_path": cfg.model_path or None, "num_poses": cfg.slots}
    if scan.scanning(cfg):
        detector = scan.ScanningPose(**options, scan_every=cfg.scan_every)
    else:
        detector = get_detector(cfg.detector, **options)
    if not cfg.hands or detector.keypoint_set == "blazepose33_hands":
        return detector
    from mocap.detect.hands import WithHands

    try:
        return WithHands(detector)
    except ValueError:
        detector.close()
        raise


def check_persons(detector, name: str, persons: int | str) -> None:
    """A detector that finds one person per view (``max_poses`` = 1) cannot fill several: a clear error (with
    ``auto``, the default, a warning: it detects the one person it can)."""
    most = getattr(detector, "max_poses", None)
    if persons == 1 or most is None or (persons != "auto" and persons <= most):
        return
    what = getattr(detector, "description", name)
    if persons == "auto":
        log.warning("detect: the %r detector (%s) finds at most %d person per view: persons = auto detects that many "
                    "(several people: blazepose, or onnx with an RTMO model)", name, what, most)
        return
    raise ValueError(f"detect: the {name!r} detector ({what}) finds at most {most} person per view, but "
                     f"persons = {persons!r}; use a multi-person detector (blazepose, or onnx with an RTMO "
                     f"model) or persons = 1")
