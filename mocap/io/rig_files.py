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
import re
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
        return tomllib.loads(Path(path).read_bytes().decode("utf-8-sig"))  # a byte-order mark (Windows) left out
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: rig file does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not valid TOML: {e}") from None
    except OSError as e:
        raise ValueError(f"{path}: cannot read the rig file: {e}") from None


def check_camera_name(path: Path | str, name, where: str = "") -> str:
    """A camera name that is safe as a file name (camera names become video and keypoint file names)."""
    prefix = f"{path}: {where + ': ' if where else ''}camera name {name!r}"
    if isinstance(name, bool) or not isinstance(name, str | int):
        raise ValueError(f"{prefix} must be a string")
    name = str(name)
    if not name or name.strip() != name:
        raise ValueError(f"{prefix} must be non-empty, without leading or trailing spaces")
    if any(c in name for c in "/\\\0") or ".." in name or name.startswith("."):
        raise ValueError(f"{prefix} is not a safe file name (no '/', '\\', '..', NUL or leading '.')")
    if any(ord(c) < 32 for c in name):
        raise ValueError(f"{prefix} contains control characters")
    return name


def matrix(path: Path | str, where: str, key: str, value, shape: tuple[int, ...], finite: bool = True) -> np.ndarray:
    """``value`` as a (finite) float array of ``shape`` (a row or column vector is accepted for 1-D)."""
    try:
        a = np.asarray(value, dtype=float)
    except (ValueError, TypeError):
        raise ValueError(f"{path}: {where}: {key} must be numbers of shape {shape}, got {value!r}") from None
    if len(shape) == 1 and a.size == shape[0]:
        a = a.reshape(shape)
    if a.shape != shape:
        raise ValueError(f"{path}: {where}: {key} must have shape {shape}, got {a.shape}")
    if finite and not np.all(np.isfinite(a)):
        raise ValueError(f"{path}: {where}: {key} contains NaN or infinity: {a.tolist()}")
    return a


def vector(path: Path | str, where: str, key: str, value) -> np.ndarray:
    """``value`` as a flat finite float array of any length."""
    try:
        a = np.asarray(value, dtype=float).ravel()
    except (ValueError, TypeError):
        raise ValueError(f"{path}: {where}: {key} must be a list of numbers, got {value!r}") from None
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{path}: {where}: {key} contains NaN or infinity: {a.tolist()}")
    return a


MAX_SIZE = 100_000  # px per side: far beyond any camera sensor, and well within an int32


def _size(path: Path, where: str, value) -> tuple[int, int]:
    a = matrix(path, where, "size", value, (2,))
    if np.any(a != np.round(a)) or np.any(a <= 0):
        raise ValueError(f"{path}: {where}: size must be two positive whole numbers (width, height), got {value!r}")
    if np.any(a > MAX_SIZE):
        raise ValueError(f"{path}: {where}: size {value!r} is not a plausible image size "
                         f"(at most {MAX_SIZE} px per side)")
    return int(a[0]), int(a[1])


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
    if any(isinstance(v, dict) and (k.startswith("cam") or set(v) >= CAMERA_KEYS) for k, v in data.items()):
        return read_anipose_toml(path)  # Anipose's [cam_N]; Pose2Sim's tables are named [int_cam01_img]
    raise ValueError(f"{path}: not a rig file (expected format = \"{FORMAT}\", or camera tables with "
                     f"{', '.join(sorted(CAMERA_KEYS))} as Anipose and Pose2Sim write)")


def read_as_millimetres(path: str | Path) -> bool:
    """Whether :func:`read_rig` takes the file's lengths as millimetres by their size (an Anipose / Pose2Sim TOML
    whose cameras stand over 50 units from the origin): a file in centimetres is then a tenth of its size."""
    try:
        if not _is_anipose(Path(path)):
            return False
        return _auto_unit([c.center for c in read_anipose_toml(path, length_unit="m").cameras]) == "mm"
    except (OSError, ValueError):
        return False


def _is_anipose(path: Path) -> bool:
    """A TOML rig of another tool (not this project's ``format``): Anipose, Pose2Sim, FreeMoCap."""
    return path.name.lower().endswith(".toml") and path.is_file() and _read(path).get("format") != FORMAT


def _auto_unit(centres: list[np.ndarray]) -> str:
    """An Anipose-style file's length unit by its size: millimetres when its cameras' centres stand over 50 units
    from the origin on average, else metres."""
    return "mm" if np.mean([np.linalg.norm(c) for c in centres]) > 50 else "m"


def read_rig_as_written(path: str | Path) -> Rig:
    """:func:`read_rig`, but an Anipose / Pose2Sim TOML with its lengths as written (not taken as millimetres when
    its cameras stand over 50 units from the origin): for a conversion that names the file's unit."""
    path = Path(path)
    return read_anipose_toml(path, length_unit="m") if _is_anipose(path) else read_rig(path)


def _rig(path: Path, cams: list[Camera]) -> Rig:
    try:
        return Rig(tuple(cams))
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def _from_own(path: Path, data: dict) -> Rig:
    version = data.get("version", VERSION)
    if isinstance(version, bool) or not isinstance(version, int):
        raise ValueError(f"{path}: version must be a whole number, got {version!r}")
    if version > VERSION:
        raise ValueError(f"{path}: rig format version {version} is newer than this program ({VERSION})")
    unknown = set(data) - {"format", "version", "cameras"}
    if unknown:
        raise ValueError(f"{path}: unknown key {sorted(unknown)[0]!r} (expected format, version, [[cameras]])")
    tables = data.get("cameras", [])
    if not isinstance(tables, list) or not all(isinstance(c, dict) for c in tables):
        raise ValueError(f"{path}: cameras must be an array of tables ([[cameras]]), got {tables!r}")
    cams = []
    allowed = {"name", "model", "size", "K", "dist", "rotation", "translation"}
    for i, c in enumerate(tables):
        given = c.get("name")  # a table without a usable name is named by its place (1-based, as in the file)
        where = f"camera {given!r}" if isinstance(given, str) and given else f"[[cameras]] #{i + 1}"
        unknown = set(c) - allowed
        if unknown:
            raise ValueError(f"{path}: {where}: unknown key {sorted(unknown)[0]!r}")
        missing = allowed - set(c) - {"model"}
        if missing:
            raise ValueError(f"{path}: {where}: missing {sorted(missing)}")
        name = check_camera_name(path, c["name"], f"[[cameras]] #{i + 1}")
        model = c.get("model", "pinhole")
        if not isinstance(model, str):
            raise ValueError(f"{path}: {where}: model must be a string, got {model!r}")
        T = np.eye(4)
        T[:3, :3] = matrix(path, where, "rotation", c["rotation"], (3, 3))
        T[:3, 3] = matrix(path, where, "translation", c["translation"], (3,))
        cams.append(_camera(path, where, name=name, K=matrix(path, where, "K", c["K"], (3, 3), finite=False),
                            dist=vector(path, where, "dist", c["dist"]), cam_from_world=T,
                            size=_size(path, where, c["size"]), model=model))
    if not cams:
        raise ValueError(f"{path}: rig has no [[cameras]]")
    return _rig(path, cams)


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


CAMERA_KEYS = frozenset({"matrix", "distortions", "rotation", "translation"})  # an Anipose / Pose2Sim camera table
POSE2SIM_NAME = re.compile(r"^(?:int|ext)_(.+)_img$")  # Pose2Sim names a camera after its intrinsics folder


def read_anipose_toml(path: str | Path, length_unit: str = "auto") -> Rig:
    """Read the calibration TOML written by aniposelib, Anipose, Pose2Sim or FreeMoCap. A Pose2Sim camera named
    after its calibration folder (``int_cam01_img``) is named as its videos are (``cam01``)."""
    path = Path(path)
    if length_unit != "auto" and length_unit not in UNITS:
        raise ValueError(f"length_unit must be auto or one of {sorted(UNITS)}, got {length_unit!r}")
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
        name = check_camera_name(path, c.get("name", key), f"[{key}]")
        name = m.group(1) if (m := POSE2SIM_NAME.match(name)) else name
        R = _rodrigues(path, where, c["rotation"])
        t = matrix(path, where, "translation", c["translation"], (3,))
        fisheye = c.get("fisheye", False)
        if not isinstance(fisheye, bool):
            raise ValueError(f"{path}: {where}: fisheye must be true or false, got {fisheye!r}")
        raw.append((name, c, where, R, t, fisheye))
    if length_unit == "auto":
        length_unit = _auto_unit([-R.T @ t for _, _, _, R, t, _ in raw])
    scale = UNITS[length_unit]
    cams = []
    for name, c, where, R, t, fisheye in raw:
        T = np.eye(4)
        T[:3, :3], T[:3, 3] = R, t * scale
        cams.append(_camera(path, where, name=name, K=matrix(path, where, "matrix", c["matrix"], (3, 3), finite=False),
                            dist=vector(path, where, "distortions", c["distortions"]),
                            cam_from_world=T, size=_size(path, where, c["size"]),
                            model="fisheye" if fisheye else "pinhole"))
    return _rig(path, cams)


def _rodrigues(path: Path, where: str, value) -> np.ndarray:
    v = vector(path, where, "rotation", value)
    if v.size not in (3, 9):
        raise ValueError(f"{path}: {where}: rotation must be a Rodrigues vector (3 numbers) or a 3x3 matrix, "
                         f"got {v.size} numbers")
    return axis_angle_to_matrix(v) if v.size == 3 else v.reshape(3, 3)


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
