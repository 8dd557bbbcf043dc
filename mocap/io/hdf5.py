"""The project's HDF5 files for 2D keypoints and 3D points.

2D keypoints (``pose2d.h5``)::

    attrs   format="mocap-pose2d", version=1, keypoint_set, fps, joint_names[J], camera_names[C]
    keypoints   float32 (F, C, P, J, 3)  x, y (pixels), score; NaN where missing;
                chunked (≤256 frames, 1 camera, P, J, 3), gzip
    complete    bool (C,)  camera finished (lets an interrupted detection resume)

3D points (``points3d/<stage>.h5``)::

    attrs   format="mocap-points3d", version=1, keypoint_set, fps, joint_names[J],
            camera_names[C], info (JSON: how the points were made)
    xyz         float64 (F, P, J, 3)  metres, world frame (Z up); NaN where unknown
    reproj_err  float32 (F, P, J)     mean reprojection error of the views used (px)
    views       bool    (F, P, J, C)  cameras supporting each point
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from mocap.io.atomic import atomic_write
from mocap.keypoint_sets import get_keypoint_set
from mocap.types import Keypoints2D, Points3D

VERSION = 1


def _open(path: Path, fmt: str) -> h5py.File:
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ValueError(f"{path}: not an HDF5 file ({e})") from None
    found, version = f.attrs.get("format"), int(f.attrs.get("version", 0))
    if found != fmt:
        f.close()
        raise ValueError(f"{path}: not a {fmt} file (format attribute {found!r})")
    if version > VERSION:
        f.close()
        raise ValueError(f"{path}: schema version {version} is newer than this program ({VERSION})")
    return f


def _strings(values) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def write_keypoints2d(kp: Keypoints2D, path: str | Path, complete: np.ndarray | None = None) -> Path:
    F, C, P, J = kp.shape

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            f.attrs.update(format="mocap-pose2d", version=VERSION, keypoint_set=kp.keypoint_set, fps=kp.fps,
                           joint_names=list(get_keypoint_set(kp.keypoint_set).joints),
                           camera_names=list(kp.camera_names))
            f.create_dataset("keypoints", data=kp.data.astype(np.float32), compression="gzip",
                             chunks=(max(1, min(F, 256)), 1, P, J, 3))
            f.create_dataset("complete", data=np.ones(C, bool) if complete is None else complete)

    return atomic_write(Path(path), write)


def read_keypoints2d(path: str | Path) -> Keypoints2D:
    path = Path(path)
    with _open(path, "mocap-pose2d") as f:
        return Keypoints2D(f["keypoints"][()].astype(float), tuple(_strings(f.attrs["camera_names"])),
                           str(f.attrs["keypoint_set"]), float(f.attrs["fps"]))


def write_points3d(points: Points3D, path: str | Path) -> Path:
    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            f.attrs.update(format="mocap-points3d", version=VERSION, keypoint_set=points.keypoint_set,
                           fps=points.fps, joint_names=list(get_keypoint_set(points.keypoint_set).joints),
                           camera_names=list(points.camera_names), info=json.dumps(points.info))
            f.create_dataset("xyz", data=points.xyz, compression="gzip")
            f.create_dataset("reproj_err", data=points.reproj_err.astype(np.float32), compression="gzip")
            f.create_dataset("views", data=points.views, compression="gzip")

    return atomic_write(Path(path), write)


def read_points3d(path: str | Path) -> Points3D:
    path = Path(path)
    with _open(path, "mocap-points3d") as f:
        return Points3D(f["xyz"][()], f["reproj_err"][()].astype(float), f["views"][()],
                        tuple(_strings(f.attrs["camera_names"])), str(f.attrs["keypoint_set"]),
                        float(f.attrs["fps"]), json.loads(f.attrs.get("info", "{}")))


def create_keypoints2d(path: str | Path, frames: int, camera_names: list[str] | tuple[str, ...], persons: int,
                       keypoint_set: str, fps: float, config: dict | None = None) -> Path:
    """An empty (all NaN, no camera complete) 2D file to be filled camera by camera."""
    joints = get_keypoint_set(keypoint_set).joints
    C, J = len(camera_names), len(joints)

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            f.attrs.update(format="mocap-pose2d", version=VERSION, keypoint_set=keypoint_set, fps=fps,
                           joint_names=list(joints), camera_names=list(camera_names),
                           config=json.dumps(config or {}, sort_keys=True))
            f.create_dataset("keypoints", shape=(frames, C, persons, J, 3), dtype=np.float32, fillvalue=np.nan,
                             compression="gzip", chunks=(max(1, min(frames, 256)), 1, persons, J, 3))
            f.create_dataset("complete", data=np.zeros(C, bool))

    return atomic_write(Path(path), write)


def keypoints2d_status(path: str | Path) -> tuple[np.ndarray, dict]:
    """(per-camera completion (C,), the config the file was started with)."""
    with _open(Path(path), "mocap-pose2d") as f:
        return f["complete"][()], json.loads(f.attrs.get("config", "{}"))


def write_camera(path: str | Path, camera: int, data: np.ndarray) -> None:
    """Store one camera's detections (F, P, J, 3), then mark it complete (in that order)."""
    with h5py.File(path, "r+") as f:
        f["keypoints"][:, camera] = data.astype(np.float32)
        f.flush()
        f["complete"][camera] = True
