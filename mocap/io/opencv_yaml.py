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
from mocap.io.rig_files import check_camera_name
from mocap.types import Camera, Rig


def _open(path: Path) -> cv2.FileStorage:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: calibration file does not exist")
    try:
        fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    except cv2.error as e:
        raise ValueError(f"{path}: not an OpenCV YAML file: {e}") from None
    except SystemError:  # how OpenCV's parser reports some malformed files
        raise ValueError(f"{path}: not an OpenCV YAML file (OpenCV cannot parse it)") from None
    if not fs.isOpened():
        raise ValueError(f"{path}: not an OpenCV YAML file")
    return fs


def _names(path: Path, fs: cv2.FileStorage) -> list[str]:
    node = fs.getNode("names")
    if node.empty() or node.isNone():
        return []
    if not node.isSeq():
        raise ValueError(f"{path}: 'names' must be a list of camera names")
    names = []
    for i in range(node.size()):
        item = node.at(i)
        if not item.isString():
            raise ValueError(f"{path}: 'names' entry {i + 1} is not a string")
        names.append(check_camera_name(path, item.string(), f"names[{i}]"))
    return names


def _mat(path: Path, store: cv2.FileStorage, key: str, where: str, sizes: tuple[int, ...]) -> np.ndarray | None:
    """The matrix stored under ``key`` (None when absent), flat, with one of ``sizes`` numbers, finite."""
    node = store.getNode(key)
    if node.empty() or node.isNone():
        return None
    if node.isSeq():
        items = [node.at(i) for i in range(node.size())]
        m = np.asarray([v.real() if v.isReal() or v.isInt() else np.nan for v in items], float)
    else:
        m = node.mat()
        if m is None:
            raise ValueError(f"{path}: {where}: {key} is not a matrix")
        m = np.asarray(m, float)
    if m.size not in sizes:
        raise ValueError(f"{path}: {where}: {key} must have {' or '.join(map(str, sizes))} numbers, got shape "
                         f"{m.shape}")
    if not np.all(np.isfinite(m)):
        raise ValueError(f"{path}: {where}: {key} contains NaN or infinity: {m.ravel().tolist()}")
    return m.ravel()


def read_opencv_yaml(path: str | Path, extri: str | Path | None = None) -> Rig:
    path = Path(path)
    fs = _open(path)
    names = _names(path, fs)
    if not names:
        raise ValueError(f"{path}: no 'names' list of cameras")
    other = Path(extri) if extri else path.with_name("extri.yml")
    ext_path = other if (extri or (path.name == "intri.yml" and other.is_file())) else path
    fs_ext = _open(other) if ext_path != path else fs
    cams = []
    for n in names:
        where = f"camera {n!r}"
        K = _mat(path, fs, f"K_{n}", where, (9,))
        if K is None:
            raise ValueError(f"{path}: {where}: missing K_{n}")
        dist = _mat(path, fs, f"dist_{n}", where, (4, 5, 8, 12, 14))
        if dist is not None and dist.size > 5:  # OpenCV's rational and thin-prism terms (k4..k6, s1..s4, τx, τy)
            if np.any(dist[5:] != 0):
                raise ValueError(f"{path}: {where}: dist_{n} has {dist.size} coefficients with k4 and later not 0 "
                                 f"({dist[5:].tolist()}): only k1, k2, p1, p2, k3 (the Brown-Conrady model) are "
                                 "supported; calibrate without CALIB_RATIONAL_MODEL / CALIB_THIN_PRISM_MODEL")
            dist = dist[:5]
        R = _mat(ext_path, fs_ext, f"Rot_{n}", where, (9,))
        if R is None:
            rvec = _mat(ext_path, fs_ext, f"R_{n}", where, (3,))
            if rvec is None:
                raise ValueError(f"{ext_path}: {where}: missing R_{n} / Rot_{n} extrinsics")
            R = axis_angle_to_matrix(rvec).ravel()
        t = _mat(ext_path, fs_ext, f"T_{n}", where, (3,))
        if t is None:
            raise ValueError(f"{ext_path}: {where}: missing T_{n}")
        K = K.reshape(3, 3)
        size = _mat(path, fs, f"size_{n}", where, (2,))
        if size is None:  # EasyMocap omits it: assume the principal point is the image centre
            size = np.round(2 * K[:2, 2] + 1)
        if np.any(size <= 0) or np.any(size != np.round(size)):
            raise ValueError(f"{path}: {where}: size_{n} must be two positive whole numbers, got {size.tolist()}")
        model_node = fs.getNode(f"model_{n}")
        model = (model_node.string() if model_node.isString() else "") or "pinhole"
        T = np.eye(4)
        T[:3, :3], T[:3, 3] = R.reshape(3, 3), t
        try:
            cams.append(Camera(n, K, np.zeros(5) if dist is None else dist, T, (int(size[0]), int(size[1])), model))
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None
    try:
        return Rig(tuple(cams))
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def write_opencv_yaml(rig: Rig, path: str | Path) -> Path:
    """Write intrinsics and extrinsics of every camera into one OpenCV YAML file. Its keys hold the camera names
    (K_<name>, ...): OpenCV takes ASCII letters, digits, '_', '-' and spaces there; another name is refused here,
    naming it (OpenCV's own error named neither the camera nor the rule's cause)."""
    import re

    odd = [c.name for c in rig.cameras if not re.fullmatch(r"[A-Za-z0-9_\- ]+", c.name)]
    if odd:
        raise ValueError(f"{path}: camera names {odd} cannot be OpenCV YAML keys (K_<name>, ...): only ASCII letters, "
                         "digits, '_', '-' and spaces; rename them in the rig, or write Anipose's calibration.toml")

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
