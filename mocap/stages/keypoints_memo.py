"""The session's 2D keypoints as the stages after detection read them (aligned by ``sync.json``, the
performer selected or the people associated, the left/right swaps repaired: see
:func:`mocap.stages.triangulate.read_session_keypoints`), made once per run and shared: the refine stage and
the report each read them the same way (20-40 ms on the 100-frame demo, more on long takes).

Never stale: the key covers everything the result depends on: the ``pose2d.h5`` file (:func:`file_key`:
inode, size, modification and change times), the session's metadata file, the rig's parameters, the time
offsets read from ``sync.json``, the triangulate settings given (or, when none is given, the key of
``points3d/triangulated.h5``, whose recorded settings, repairs and association are then applied), and the
reader's arguments. Keypoints that do not come from ``pose2d.h5`` (OpenPose folders) are not kept. Every
caller gets its own copy."""

from __future__ import annotations

import copy
import hashlib
import logging

import numpy as np

from mocap.io.hdf5 import file_key
from mocap.types import Keypoints2D, Rig

log = logging.getLogger(__name__)
KEEP = 4  # results kept (a run makes two: with and without the swap repair)
_MEMO: dict[tuple, tuple[Keypoints2D, dict]] = {}


def array_digest(a: np.ndarray, *also) -> str:
    """A digest of an array's shape and values (SHA-256 of its own buffer, no copy of it when it is C-contiguous
    float64) and of ``also`` (their repr)."""
    a = np.ascontiguousarray(a, dtype=float)
    h = hashlib.sha256(repr((a.shape, *also)).encode())
    h.update(a)
    return h.hexdigest()


def rig_digest(rig: Rig) -> str:
    """A digest of every camera's name, model, image size and parameters (equal rigs read from two files
    share it)."""
    h = hashlib.sha256()
    for c in rig.cameras:
        h.update(repr((c.name, c.model, tuple(int(v) for v in c.size))).encode())
        for a in (c.K, c.dist, c.cam_from_world):
            h.update(np.ascontiguousarray(a, dtype=float).tobytes())
    return h.hexdigest()


def key(session, rig: Rig, offsets: dict[str, float], cfg, args: tuple) -> tuple | None:
    """The memo's key for these inputs, or None when they cannot be keyed (no ``pose2d.h5``)."""
    raw = file_key(session.pose2d_h5)
    if raw is None:
        return None
    settings = repr(cfg) if cfg is not None else ("recorded", file_key(session.points3d("triangulated")))
    return (raw, file_key(session.metadata_file), rig_digest(rig), tuple(sorted(offsets.items())), settings, args)


def get(k: tuple | None) -> tuple[Keypoints2D, dict] | None:
    hit = _MEMO.get(k) if k is not None else None
    return None if hit is None else _copy(hit)


def take(k: tuple | None) -> tuple[Keypoints2D, dict] | None:
    """What :func:`get` gives, handed over to its last reader: the memo's own entry, no longer kept (no copy)."""
    return _MEMO.pop(k, None) if k is not None else None


def put(k: tuple | None, value: tuple[Keypoints2D, dict]) -> None:
    if k is None:
        return
    _MEMO.pop(k, None)
    while len(_MEMO) >= KEEP:
        _MEMO.pop(next(iter(_MEMO)))
    _MEMO[k] = _copy(value)


def clear() -> None:
    _MEMO.clear()


def _copy(value: tuple[Keypoints2D, dict]) -> tuple[Keypoints2D, dict]:
    kp, extra = value
    return Keypoints2D(kp.data.copy(), kp.camera_names, kp.keypoint_set, kp.fps), copy.deepcopy(extra)
