"""The capture file (``.npz``): a motion, optionally with the rig's cameras and the 3D keypoints.

It is what the fit, retarget and export stages pass on, and what the Blender add-on imports with
nothing but numpy (no h5py inside Blender). Arrays only, no pickles:

    kind            "mocap-capture"
    schema_version  int (readers refuse newer files)
    joint_names (J,) str, parents (J,) int, offsets (J, 3) m, rotations (F, J, 4) wxyz local,
    root_positions (F, 3) m, fps ()           Z up, metres, rest = T-pose with identity rotations
    camera_names (C,), camera_K (C, 3, 3), camera_dist (C, 5), camera_pose (C, 4, 4) cam_from_world,
    camera_size (C, 2), camera_videos (C,)    optional (video paths may be empty strings)
    points (F, K, 3), point_names (K,)        optional, NaN = missing
    person ()                                 optional: the person's name (``person2``) in a take of several
    world_from_given (4, 4)                   optional: the motion, cameras and points are in a world turned
                                              from the rig's given one, x ↦ R x + t (``fit.world_up``)
"""

from __future__ import annotations

import io
import zipfile
import zlib
from pathlib import Path

import numpy as np

from mocap.io.atomic import atomic_write
from mocap.types import Motion, Rig, Skeleton

KIND = "mocap-capture"
SCHEMA_VERSION = 1


def write_capture(path: str | Path, motion: Motion, rig: Rig | None = None, points: np.ndarray | None = None,
                  point_names: list[str] | tuple[str, ...] | None = None,
                  videos: list[str] | None = None, person: str | None = None,
                  world_from_given: np.ndarray | None = None) -> Path:
    sk = motion.skeleton
    data = {
        "kind": np.array(KIND), "schema_version": np.array(SCHEMA_VERSION),
        "joint_names": np.array(sk.joint_names, dtype=str), "parents": sk.parents.astype(np.int32),
        "offsets": sk.offsets, "rotations": motion.rotations, "root_positions": motion.root_positions,
        "fps": np.array(float(motion.fps)),
    }
    if rig is not None:
        data |= {
            "camera_names": np.array(rig.names, dtype=str),
            "camera_K": np.stack([c.K for c in rig]),
            "camera_dist": np.stack([np.pad(c.dist[:5], (0, max(0, 5 - len(c.dist[:5])))) for c in rig]),
            "camera_pose": np.stack([c.cam_from_world for c in rig]),
            "camera_size": np.array([c.size for c in rig], dtype=np.int32),
            "camera_videos": np.array(videos if videos is not None else [""] * len(rig), dtype=str),
        }
    if points is not None:
        if point_names is None or np.shape(points)[1] != len(point_names):
            raise ValueError("write_capture: points need one name per keypoint")
        data |= {"points": np.asarray(points, float), "point_names": np.array(point_names, dtype=str)}
    if person is not None:
        data["person"] = np.array(str(person))
    if world_from_given is not None:
        data["world_from_given"] = np.asarray(world_from_given, float).reshape(4, 4)

    def write(tmp: Path) -> None:
        buf = io.BytesIO()
        np.savez_compressed(buf, **data)
        tmp.write_bytes(buf.getvalue())

    return atomic_write(Path(path), write)


OPTIONAL = {"camera_names": (1, "U"), "camera_K": (3, "f"), "camera_dist": (2, "f"), "camera_pose": (3, "f"),
            "camera_size": (2, "f"), "camera_videos": (1, "U"), "points": (3, "f"), "point_names": (1, "U"),
            "person": (0, "U"), "world_from_given": (2, "f")}


def _array(path: Path, z, name: str, ndim: int, kind: str) -> np.ndarray:
    """Array ``name`` of rank ``ndim``: numbers (kind 'f', 'i' integers) or strings ('U')."""
    if name not in z.files:
        raise ValueError(f"{path}: capture file has no array {name!r}")
    try:
        a = z[name]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise ValueError(f"{path}: array {name!r} cannot be read ({type(e).__name__}: {e})") from None
    kinds = {"f": "fiub", "i": "iu", "U": "US"}[kind]
    if a.dtype.kind not in kinds:
        what = {"f": "numbers", "i": "integers", "U": "strings"}[kind]
        raise ValueError(f"{path}: array {name!r} has dtype {a.dtype}, expected {what}")
    if a.ndim != ndim:
        raise ValueError(f"{path}: array {name!r} has shape {a.shape}, expected {ndim} dimensions")
    return a


def _shape(path: Path, name: str, a: np.ndarray, expected: tuple) -> None:
    if a.shape != expected:
        raise ValueError(f"{path}: array {name!r} has shape {a.shape}, expected {expected}")


def read_capture(path: str | Path) -> tuple[Motion, dict]:
    """The motion and a dict of the optional parts (``camera_*``, ``points``, ``point_names``, ``person``).

    A malformed file raises ValueError naming the file and the array (no pickles are ever loaded)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: capture file does not exist")
    try:
        with open(path, "rb") as fh:
            magic = fh.read(6)
    except OSError as e:
        raise ValueError(f"{path}: not a capture file ({e})") from None
    if not (magic.startswith(b"PK") or magic == b"\x93NUMPY"):  # numpy would say "pickled data" of any other file
        raise ValueError(f"{path}: not a capture file (an .npz archive, as mocap writes beside the animation files; "
                         f"this file is not one: a .bvh or .fbx?)")
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise ValueError(f"{path}: not a capture file ({e})") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise ValueError(f"{path}: not a capture file (a single .npy array, not an .npz archive)")
    with z:
        if "kind" not in z.files or str(_array(path, z, "kind", 0, "U")) != KIND:
            raise ValueError(f"{path}: not a capture file (no kind={KIND!r})")
        version = int(_array(path, z, "schema_version", 0, "i"))
        if version > SCHEMA_VERSION:
            raise ValueError(f"{path}: capture schema version {version} is newer than this mocap reads "
                             f"({SCHEMA_VERSION}); update mocap")
        names = _array(path, z, "joint_names", 1, "U")
        J = len(names)
        parents = _array(path, z, "parents", 1, "i")
        offsets = _array(path, z, "offsets", 2, "f")
        rotations = _array(path, z, "rotations", 3, "f")
        root = _array(path, z, "root_positions", 2, "f")
        fps = float(_array(path, z, "fps", 0, "f"))
        _shape(path, "parents", parents, (J,))
        _shape(path, "offsets", offsets, (J, 3))
        F = rotations.shape[0]
        _shape(path, "rotations", rotations, (F, J, 4))
        _shape(path, "root_positions", root, (F, 3))
        if not (np.isfinite(fps) and fps > 0):
            raise ValueError(f"{path}: array 'fps' must be positive and finite, got {fps}")
        if not np.all(np.isfinite(offsets)):
            raise ValueError(f"{path}: array 'offsets' contains NaN or infinity")
        try:
            sk = Skeleton(tuple(str(n) for n in names), parents, offsets)
            motion = Motion(sk, rotations, root, fps)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None
        extra = {k: _array(path, z, k, *OPTIONAL[k]) for k in z.files if k in OPTIONAL}
    _check_extra(path, extra, F)
    return motion, extra


def _check_extra(path: Path, extra: dict, F: int) -> None:
    cams = [k for k in extra if k.startswith("camera_")]
    if cams:
        if "camera_names" not in extra:
            raise ValueError(f"{path}: camera arrays {cams} without 'camera_names'")
        C = len(extra["camera_names"])
        for key, shape in (("camera_K", (C, 3, 3)), ("camera_dist", (C, 5)), ("camera_pose", (C, 4, 4)),
                           ("camera_size", (C, 2)), ("camera_videos", (C,))):
            if key in extra:
                _shape(path, key, extra[key], shape)
    if "world_from_given" in extra:
        _shape(path, "world_from_given", extra["world_from_given"], (4, 4))
    if ("points" in extra) != ("point_names" in extra):
        raise ValueError(f"{path}: 'points' and 'point_names' come together")
    if "points" in extra:
        _shape(path, "points", extra["points"], (F, len(extra["point_names"]), 3))
