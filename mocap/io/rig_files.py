"""Rig files: the project's own TOML, and the calibration TOML of aniposelib / Anipose /
Pose2Sim / FreeMoCap.

Own format (``format = "mocap-rig"``), human-editable, lossless (floats written with repr)::

    format = "mocap-rig"
    version = 1
    [[cameras]]
    name = "cam01"
    model = "pinhole"            # or "fisheye"
    size = [1920, 1080]          # width, height (px)
    K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]
    dist = [k1, k2, p1, p2, k3]  # fisheye: [k1, k2, k3, k4]
    rotation = [[...], [...], [...]]   # cam_from_world rotation matrix
    translation = [tx, ty, tz]         # cam_from_world translation (m)

Anipose-style: one ``[cam_N]`` table per camera with ``name, size, matrix, distortions,
rotation`` (Rodrigues vector), ``translation`` and ``fisheye``, plus ``[metadata]``. aniposelib
writes translations in the unit of its board (often mm), Pose2Sim in metres: ``length_unit="auto"``
takes millimetres when the cameras sit more than 50 units from the origin on average.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import numpy as np
import tomli_w

from mocap.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from mocap.io.atomic import atomic_write_text
from mocap.types import Camera, Rig

FORMAT = "mocap-rig"
VERSION = 1
UNITS = {"m": 1.0, "mm": 1e-3, "cm": 1e-2}


def _read(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"rig file {path} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path}: not valid TOML: {e}") from None


def _camera(path: Path, where: str, **kw) -> Camera:
    try:
        return Camera(**kw)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{path}: {where}: {e}") from None


def read_rig(path: str | Path) -> Rig:
    """Read a rig from the project TOML, an Anipose-style TOML, a Qualisys .qca.txt or OpenCV YAML."""
    path = Path(path)
    name = path.name.lower()
    if name.endswith((".qca.txt", ".qca")):
        from mocap.io.qualisys import read_qualisys

        return read_qualisys(path)
    if name.endswith((".yml", ".yaml")):
        from mocap.io.opencv_yaml import read_opencv_yaml

        return read_opencv_yaml(path)
    data = _read(path)
    if data.get("format") == FORMAT:
        return _from_own(path, data)
    if any(k.startswith("cam") and isinstance(v, dict) for k, v in data.items()):
        return read_anipose_toml(path)
    raise ValueError(f"{path}: not a rig file (expected format = \"{FORMAT}\" or Anipose [cam_N] tables)")


def _from_own(path: Path, data: dict) -> Rig:
    if data.get("version", VERSION) > VERSION:
        raise ValueError(f"{path}: rig format version {data['version']} is newer than this program ({VERSION})")
    cams = []
    allowed = {"name", "model", "size", "K", "dist", "rotation", "translation"}
    for i, c in enumerate(data.get("cameras", [])):
        where = f"camera {c.get('name', i)!r}"
        unknown = set(c) - allowed
        if unknown:
            raise ValueError(f"{path}: {where}: unknown key {sorted(unknown)[0]!r}")
        missing = allowed - set(c) - {"model"}
        if missing:
            raise ValueError(f"{path}: {where}: missing {sorted(missing)}")
        T = np.eye(4)
        try:
            T[:3, :3], T[:3, 3] = np.asarray(c["rotation"], float), np.asarray(c["translation"], float)
        except ValueError as e:
            raise ValueError(f"{path}: {where}: bad rotation/translation: {e}") from None
        cams.append(_camera(path, where, name=str(c["name"]), K=c["K"], dist=c["dist"], cam_from_world=T,
                            size=tuple(c["size"]), model=c.get("model", "pinhole")))
    if not cams:
        raise ValueError(f"{path}: rig has no [[cameras]]")
    return Rig(tuple(cams))


def _toml(value) -> str:
    """Inline TOML for the scalars and (nested) lists of a rig; floats keep every digit (repr)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return tomli_w.dumps({"v": value})[4:].strip()
    return "[" + ", ".join(_toml(v) for v in value) + "]"


def write_rig(rig: Rig, path: str | Path) -> Path:
    """Write the project's rig TOML (lossless, one camera table each, matrices row by row)."""
    lines = ["# Camera rig: cam_from_world extrinsics (metres), OpenCV intrinsics and distortion.",
             f'format = "{FORMAT}"', f"version = {VERSION}"]
    for c in rig.cameras:
        lines += ["", "[[cameras]]", f"name = {_toml(c.name)}", f"model = {_toml(c.model)}",
                  f"size = {_toml([int(v) for v in c.size])}",
                  "K = [" + ",\n     ".join(_toml(row) for row in c.K.tolist()) + "]",
                  f"dist = {_toml(c.dist.tolist())}",
                  "rotation = [" + ",\n            ".join(_toml(row) for row in c.R.tolist()) + "]",
                  f"translation = {_toml(c.t.tolist())}"]
    return atomic_write_text(Path(path), "\n".join(lines) + "\n")


def read_anipose_toml(path: str | Path, length_unit: str = "auto") -> Rig:
    """Read the calibration TOML written by aniposelib, Anipose, Pose2Sim or FreeMoCap."""
    path = Path(path)
    data = _read(path)
    tables = [(k, v) for k, v in data.items() if k != "metadata" and isinstance(v, dict)]
    if not tables:
        raise ValueError(f"{path}: no camera tables ([cam_0], ...) found")
    raw = []
    for key, c in tables:
        where = f"camera {c.get('name', key)!r} ([{key}])"
        missing = {"matrix", "distortions", "rotation", "translation", "size"} - set(c)
        if missing:
            raise ValueError(f"{path}: {where}: missing {sorted(missing)}")
        raw.append((key, c, where))
    centres = []
    for _, c, _ in raw:
        R = axis_angle_to_matrix(np.asarray(c["rotation"], float))
        centres.append(np.linalg.norm(-R.T @ np.asarray(c["translation"], float)))
    if length_unit == "auto":
        length_unit = "mm" if np.mean(centres) > 50 else "m"
    if length_unit not in UNITS:
        raise ValueError(f"length_unit must be auto or one of {sorted(UNITS)}, got {length_unit!r}")
    scale = UNITS[length_unit]
    cams = []
    for key, c, where in raw:
        T = np.eye(4)
        T[:3, :3] = axis_angle_to_matrix(np.asarray(c["rotation"], float))
        T[:3, 3] = np.asarray(c["translation"], float) * scale
        fisheye = bool(c.get("fisheye", False))
        cams.append(_camera(path, where, name=str(c.get("name", key)), K=c["matrix"], dist=c["distortions"],
                            cam_from_world=T, size=tuple(int(v) for v in c["size"]),
                            model="fisheye" if fisheye else "pinhole"))
    return Rig(tuple(cams))


def write_anipose_toml(rig: Rig, path: str | Path, length_unit: str = "m") -> Path:
    """Write an Anipose / Pose2Sim calibration TOML (translations in ``length_unit``)."""
    scale = 1.0 / UNITS[length_unit]
    data: dict = {}
    for i, c in enumerate(rig.cameras):
        data[f"cam_{i}"] = {
            "name": c.name, "size": [int(v) for v in c.size], "matrix": c.K.tolist(),
            "distortions": c.dist.tolist(), "rotation": matrix_to_axis_angle(c.R).tolist(),
            "translation": (c.t * scale).tolist(), "fisheye": c.model == "fisheye",
        }
    data["metadata"] = {"adjusted": False, "error": 0.0}
    return atomic_write_text(Path(path), tomli_w.dumps(data))
