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
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from mocap.io.atomic import atomic_write
from mocap.types import Motion, Rig, Skeleton

KIND = "mocap-capture"
SCHEMA_VERSION = 1


def write_capture(path: str | Path, motion: Motion, rig: Rig | None = None, points: np.ndarray | None = None,
                  point_names: list[str] | tuple[str, ...] | None = None,
                  videos: list[str] | None = None) -> Path:
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

    def write(tmp: Path) -> None:
        buf = io.BytesIO()
        np.savez_compressed(buf, **data)
        tmp.write_bytes(buf.getvalue())

    return atomic_write(Path(path), write)


def read_capture(path: str | Path) -> tuple[Motion, dict]:
    """The motion and a dict of the optional parts (``camera_*``, ``points``, ``point_names``)."""
    path = Path(path)
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a capture file ({e})") from None
    with z:
        if "kind" not in z.files or str(z["kind"]) != KIND:
            raise ValueError(f"{path}: not a capture file (no kind={KIND!r})")
        version = int(z["schema_version"])
        if version > SCHEMA_VERSION:
            raise ValueError(f"{path}: capture schema version {version} is newer than this mocap reads "
                             f"({SCHEMA_VERSION}); update mocap")
        sk = Skeleton(tuple(str(n) for n in z["joint_names"]), z["parents"], z["offsets"])
        motion = Motion(sk, z["rotations"], z["root_positions"], float(z["fps"]))
        extra = {k: z[k] for k in z.files if k.startswith("camera_") or k.startswith("point")}
    return motion, extra
