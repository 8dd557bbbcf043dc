"""Association computed once per run: the stages after detection (camera refinement, sync, triangulate)
associate the same keypoints through the same rig more than once in one ``mocap run``; the second call
returns the first one's result.

The key is everything the result depends on: the keypoints' bytes and frame rate (the tracker's coasting and
stitching gaps are in seconds), each camera's intrinsics, distortion, pose and size, ``persons``, the tracking
configuration, the score threshold and ``two_view_birth``. A different rig (the refined one) or keypoints
(after a sync offset) associate again. Two results are kept; callers get copies, so changing a summary does
not change the kept one. Benchmarks call :func:`mocap.multi.track.associate_take` directly
(a cached call would time nothing).
"""

from __future__ import annotations

import copy
import hashlib
import logging
from collections import OrderedDict

import numpy as np

from mocap.multi.track import TWO_VIEW_BIRTH, TrackConfig, associate_take, warn_summary
from mocap.types import Keypoints2D, Rig

log = logging.getLogger(__name__)
KEEP = 2
_kept: OrderedDict[tuple, tuple[np.ndarray, dict]] = OrderedDict()
_warned: set[tuple] = set()  # the kept results whose warnings were given


def _digest(rig: Rig, kp: Keypoints2D) -> str:
    h = hashlib.sha1(np.ascontiguousarray(kp.data).reshape(-1).view(np.uint8))
    h.update(repr((tuple(kp.camera_names), kp.keypoint_set, kp.shape, float(kp.fps))).encode())
    for cam in rig.cameras:
        for a in (cam.K, cam.dist, cam.cam_from_world):
            h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
        h.update(repr((cam.name, tuple(cam.size), cam.model)).encode())
    return h.hexdigest()


def associate_once(rig: Rig, kp: Keypoints2D, persons: int | str = "auto", cfg: TrackConfig | None = None,
                   min_score: float = 0.2, progress: bool = True,
                   two_view_birth: int = TWO_VIEW_BIRTH, quiet: bool = False) -> tuple[np.ndarray, dict]:
    """:func:`mocap.multi.track.associate_take`, computed once for the same inputs (see the module). Its
    warnings are given once, by the first call that is not ``quiet`` (an intermediate use: the camera
    refinement on the given rig), so one run does not repeat them stage after stage."""
    cfg = cfg or TrackConfig()
    key = (_digest(rig, kp), repr(persons), repr(cfg), float(min_score), int(two_view_birth))
    if key in _kept:
        _kept.move_to_end(key)
        log.debug("association reused (same keypoints, rig and settings)")
        if not quiet and key not in _warned:
            warn_summary(_kept[key][1])
    else:
        _kept[key] = associate_take(rig, kp, persons, cfg, min_score, progress, two_view_birth, quiet=quiet)
        while len(_kept) > KEEP:
            _warned.discard(_kept.popitem(last=False)[0])
    if not quiet:
        _warned.add(key)
    slots, summary = _kept[key]
    return slots.copy(), copy.deepcopy(summary)
