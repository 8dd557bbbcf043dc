"""A camera moved mid-take (a bumped tripod): its detections in some frames read back into its rig pose.

A :class:`CameraMove` is a camera's pose in frames ``from_frame`` … ``to_frame`` − 1 (to its next move or the
end when None). The detections of those frames are mapped into the camera's pose in the rig through the plane
``depth_m`` in front of the moved camera (the performer's median depth there): exact for a turn, the usual bump,
and for a shift ``t`` off by about ``|t| · f · |1/z − 1/depth_m|`` px for a point at depth ``z`` (2 cm at 4 m ±
0.5 m, f = 1,000 px: 0.6 px). Every stage after the camera refinement then reads one rig
(:meth:`mocap.session.Session.keypoints2d`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mocap.geometry.camera import pixels_to_normalised
from mocap.types import Camera, Keypoints2D, Rig, _array


@dataclass(frozen=True, eq=False)
class CameraMove:
    """``camera``'s pose in frames ``from_frame`` … ``to_frame`` − 1 (None: to the end): cam_from_world (4, 4);
    ``depth_m``: the plane through which its detections are read back into the rig's pose (metres in front)."""

    camera: str
    from_frame: int
    cam_from_world: np.ndarray
    depth_m: float
    to_frame: int | None = None

    def last_frame(self, frames: int) -> int:
        return (frames if self.to_frame is None else min(frames, self.to_frame)) - 1

    def __post_init__(self) -> None:
        what = f"camera move of {self.camera!r}"
        T = _array(self.cam_from_world, (4, 4), f"{what}: cam_from_world")
        R = T[:3, :3]
        if not np.all(np.isfinite(T)) or not np.allclose(R @ R.T, np.eye(3), atol=1e-6) or np.linalg.det(R) < 0:
            raise ValueError(f"{what}: cam_from_world rotation is not a proper rotation matrix: {R.tolist()}")
        if not np.allclose(T[3], [0, 0, 0, 1]):
            raise ValueError(f"{what}: cam_from_world's last row must be [0, 0, 0, 1], got {T[3].tolist()}")
        for key in ("from_frame", "to_frame"):
            v = getattr(self, key)
            if v is None and key == "to_frame":
                continue
            if not isinstance(v, int | np.integer) or isinstance(v, bool) or v < 0:
                raise ValueError(f"{what}: {key} must be a whole number ≥ 0, got {v!r}")
        if self.to_frame is not None and not self.to_frame > self.from_frame:
            raise ValueError(f"{what}: to_frame ({self.to_frame}) must be after from_frame ({self.from_frame})")
        try:
            depth = float(self.depth_m)
        except (TypeError, ValueError):
            depth = float("nan")
        if not (np.isfinite(depth) and depth > 0):
            raise ValueError(f"{what}: depth_m must be a finite positive number of metres, got {self.depth_m!r}")
        object.__setattr__(self, "cam_from_world", T)
        object.__setattr__(self, "from_frame", int(self.from_frame))
        object.__setattr__(self, "to_frame", None if self.to_frame is None else int(self.to_frame))
        object.__setattr__(self, "depth_m", depth)


def read_back(cam: Camera, moved: np.ndarray, depth_m: float, uv: np.ndarray) -> np.ndarray:
    """Pixels uv (..., 2) seen by ``cam`` at pose ``moved`` (4, 4) → where ``cam`` at its own pose sees the same
    rays' points at ``depth_m`` in front of the moved camera (..., 2); NaN stays NaN."""
    xn = pixels_to_normalised(cam, uv)
    Xc = np.concatenate([xn * depth_m, np.full(xn.shape[:-1] + (1,), depth_m)], axis=-1)
    X = (Xc - moved[:3, 3]) @ moved[:3, :3]  # moved camera → world: Rᵀ (Xc − t), as rows
    return cam.project(X)


def read_forth(cam: Camera, moved: np.ndarray, depth_m: float, uv: np.ndarray) -> np.ndarray:
    """:func:`read_back`'s inverse: pixels uv (..., 2) of ``cam`` at its own pose → where ``cam`` at pose ``moved``
    saw them (the same rays' points on the plane ``depth_m`` in front of the moved camera) (..., 2)."""
    xn = pixels_to_normalised(cam, uv)
    d = np.concatenate([xn, np.ones(xn.shape[:-1] + (1,))], axis=-1) @ cam.R  # ray directions in the world: Rᵀ x
    Rm, tm = moved[:3, :3], moved[:3, 3]
    C = cam.center
    with np.errstate(divide="ignore", invalid="ignore"):
        s = (depth_m - (Rm[2] @ C + tm[2])) / (d @ Rm[2])
    return cam.with_pose(moved).project(C + s[..., None] * d)


def spans(moves, name: str, frames: int) -> list[tuple[int, int, CameraMove]]:
    """Camera ``name``'s moves as (first frame, end frame, move), in order, each to the next one or its end."""
    own = sorted((m for m in moves if m.camera == name), key=lambda m: m.from_frame)
    out = []
    for m, nxt in zip(own, own[1:] + [None], strict=False):  # none: no spans
        end = min(m.last_frame(frames) + 1, frames if nxt is None else nxt.from_frame)
        if m.from_frame < end:
            out.append((m.from_frame, end, m))
    return out


def _local(moves, name: str, first: int, n: int, offset: float) -> list[tuple[int, int, CameraMove]]:
    """:func:`spans` of camera ``name`` as rows 0 … n − 1 of frames first … first + n − 1 of the take's timeline,
    where the camera's own frame is the take's + ``offset`` (its sync offset, rounded: the moves are found on its
    own frames, before sync)."""
    shift = first + int(round(offset))
    out = []
    for a, b, m in spans(moves, name, shift + n + 1):
        lo, hi = max(a - shift, 0), min(b - shift, n)
        if lo < hi:
            out.append((lo, hi, m))
    return out


def project_moved(cam: Camera, moves, X: np.ndarray, first: int = 0, offset: float = 0.0) -> np.ndarray:
    """Points X (n, ..., 3) of frames first … first + n − 1 in the pixels ``cam`` saw them in: through its pose in
    the rig, and in the frames of each of its moves through that move's pose (what the video shows) (n, ..., 2);
    ``offset``: the camera's sync offset (frames)."""
    uv = cam.project(X)
    for lo, hi, m in _local(moves, cam.name, first, X.shape[0], offset):
        uv[lo:hi] = cam.with_pose(m.cam_from_world).project(X[lo:hi])
    return uv


def as_detected(cam: Camera, moves, uv: np.ndarray, first: int = 0, offset: float = 0.0) -> np.ndarray:
    """Detections uv (n, ..., 2) of frames first … first + n − 1 read back into ``cam``'s rig pose
    (:func:`apply_moves`) → where the video shows them (:func:`read_forth` in its moves' frames); ``offset``: the
    camera's sync offset (frames)."""
    out = np.array(uv, dtype=float)
    for lo, hi, m in _local(moves, cam.name, first, out.shape[0], offset):
        out[lo:hi] = read_forth(cam, m.cam_from_world, m.depth_m, out[lo:hi])
    return out


def apply_moves(kp: Keypoints2D, rig: Rig, moves: tuple[CameraMove, ...] | list[CameraMove]) -> Keypoints2D:
    """``kp`` with each moved camera's detections from its moves' frames on read back into its pose in ``rig``
    (scores unchanged)."""
    if not moves:
        return kp
    data = np.array(kp.data, dtype=float)
    F = data.shape[0]
    for name in sorted({m.camera for m in moves}):
        c = rig.names.index(name) if name in rig.names else -1
        if c < 0:
            raise ValueError(f"camera moves: {name!r} is not a camera of the rig {list(rig.names)}")
        for a, b, m in spans(moves, name, F):
            data[a:b, c, ..., :2] = read_back(rig.cameras[c], m.cam_from_world, m.depth_m, data[a:b, c, ..., :2])
    return Keypoints2D(data, kp.camera_names, kp.keypoint_set, kp.fps)
