"""OpenCV FileStorage YAML rigs in the EasyMocap layout.

``intri.yml``: ``names`` (list of camera names), ``K_<name>`` (3×3), ``dist_<name>`` (1×5),
optional ``size_<name>`` ([width, height]) and ``model_<name>``. ``extri.yml``: ``R_<name>``
(Rodrigues 3×1), ``Rot_<name>`` (3×3), ``T_<name>`` (3×1, metres), cam_from_world. Both can live in
one file; when reading ``intri.yml`` an ``extri.yml`` beside it is read too.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from mocap.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from mocap.io.atomic import atomic_write
from mocap.types import Camera, Rig


def _open(path: Path) -> cv2.FileStorage:
    if not path.is_file():
        raise FileNotFoundError(f"calibration file {path} does not exist")
    try:
        fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    except cv2.error as e:
        raise ValueError(f"{path}: not an OpenCV YAML file: {e}") from None
    if not fs.isOpened():
        raise ValueError(f"{path}: not an OpenCV YAML file")
    return fs


def _names(fs: cv2.FileStorage) -> list[str]:
    node = fs.getNode("names")
    return [node.at(i).string() for i in range(node.size())] if not node.empty() else []


def read_opencv_yaml(path: str | Path, extri: str | Path | None = None) -> Rig:
    path = Path(path)
    fs = _open(path)
    names = _names(fs)
    if not names:
        raise ValueError(f"{path}: no 'names' list of cameras")
    other = Path(extri) if extri else path.with_name("extri.yml")
    fs_ext = _open(other) if (extri or (path.name == "intri.yml" and other.is_file())) else fs
    cams = []
    for n in names:
        def mat(store, key):
            m = store.getNode(key).mat()
            return None if m is None else np.asarray(m, float)

        K, dist = mat(fs, f"K_{n}"), mat(fs, f"dist_{n}")
        if K is None:
            raise ValueError(f"{path}: camera {n!r}: missing K_{n}")
        R = mat(fs_ext, f"Rot_{n}")
        if R is None:
            rvec = mat(fs_ext, f"R_{n}")
            if rvec is None:
                raise ValueError(f"{path}: camera {n!r}: missing R_{n} / Rot_{n} extrinsics")
            R = axis_angle_to_matrix(rvec.ravel())
        t = mat(fs_ext, f"T_{n}")
        if t is None:
            raise ValueError(f"{path}: camera {n!r}: missing T_{n}")
        size = mat(fs, f"size_{n}")
        if size is None:  # EasyMocap omits it: assume the principal point is the image centre
            size = np.round(2 * K[:2, 2] + 1)
        model = fs.getNode(f"model_{n}").string() or "pinhole"
        T = np.eye(4)
        T[:3, :3], T[:3, 3] = R, t.ravel()
        try:
            cams.append(Camera(n, K, np.zeros(5) if dist is None else dist.ravel(), T,
                               tuple(int(v) for v in size.ravel()[:2]), model))
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None
    return Rig(tuple(cams))


def write_opencv_yaml(rig: Rig, path: str | Path) -> Path:
    """Write intrinsics and extrinsics of every camera into one OpenCV YAML file."""

    def write(tmp: Path) -> None:
        fs = cv2.FileStorage(str(tmp), cv2.FILE_STORAGE_WRITE | cv2.FILE_STORAGE_FORMAT_YAML)
        fs.startWriteStruct("names", cv2.FileNode_SEQ)
        for c in rig.cameras:
            fs.write("", c.name)
        fs.endWriteStruct()
        for c in rig.cameras:
            fs.write(f"K_{c.name}", c.K)
            fs.write(f"dist_{c.name}", c.dist.reshape(1, -1))
            fs.write(f"size_{c.name}", np.asarray(c.size, float).reshape(1, 2))
            fs.write(f"model_{c.name}", c.model)
            fs.write(f"R_{c.name}", matrix_to_axis_angle(c.R).reshape(3, 1))
            fs.write(f"Rot_{c.name}", c.R)
            fs.write(f"T_{c.name}", c.t.reshape(3, 1))
        fs.release()

    return atomic_write(Path(path), write)
