"""C3D (biomechanics: Vicon, Visual3D, OpenSim via its tools, Pose2Sim) through ezc3d.

The file holds the 3D keypoints (when the motion is a fit: the refined keypoints the skeleton was
fitted to) followed by the fitted joint centres, labelled by name (joint centres prefixed ``J_``), in
millimetres, Z up as in the world frame, at the motion's frame rate; missing points have residual -1
and coordinates NaN. Frame 1 is the first frame, as in every other export.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mocap.io.atomic import atomic_write
from mocap.io.exporters import Options, register
from mocap.motion import fill_gaps
from mocap.types import Motion

MAX_FRAMES = 65535  # frames a C3D file holds (its header counts them in 16 bits)
MM = 1000.0


def c3d_points(motion: Motion, extra: dict) -> tuple[list[str], np.ndarray]:
    """Labels and (F, N, 3) positions in metres: keypoints (if any), then joint centres (none where the person
    is not: the motion's NaN frames before its first fitted frame and after its last)."""
    _, joints = fill_gaps(motion, ends=False)[0].fk()
    labels = [f"J_{n}" for n in motion.skeleton.joint_names]
    points = [joints]
    kp, names = extra.get("points"), extra.get("point_names")
    if kp is not None and names is not None and len(kp) == len(joints):
        labels = [str(n) for n in names] + labels
        points.insert(0, np.asarray(kp, float))
    return labels, np.concatenate(points, axis=1)


def write_c3d(path: str | Path, labels: list[str], xyz: np.ndarray, fps: float) -> Path:
    """xyz: (F, N, 3) metres → ``path`` in millimetres."""
    try:
        import ezc3d
    except ImportError:
        raise RuntimeError("writing C3D needs ezc3d: pip install ezc3d") from None
    xyz = np.asarray(xyz, float)
    if xyz.ndim != 3 or xyz.shape[1:] != (len(labels), 3):
        raise ValueError(f"C3D {path}: expected (frames, {len(labels)}, 3) points, got {xyz.shape}")
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"C3D {path}: frame rate must be positive, got {fps}")
    if len(xyz) > MAX_FRAMES:  # the header's frame count is 16 bits: readers cut the rest, with no error
        raise ValueError(f"C3D {path}: {len(xyz)} frames, more than C3D's {MAX_FRAMES} "
                         f"({MAX_FRAMES / fps / 60:.1f} min at {fps:g} fps): export a shorter part (or BVH / FBX)")
    c = ezc3d.c3d()
    c["parameters"]["POINT"]["RATE"]["value"] = [float(fps)]
    c["parameters"]["POINT"]["LABELS"]["value"] = tuple(labels)
    c["parameters"]["POINT"]["UNITS"]["value"] = ["mm"]
    data = np.ones((4, len(labels), len(xyz)))
    data[:3] = np.transpose(xyz, (2, 1, 0)) * MM
    c["data"]["points"] = data
    seen = np.all(np.isfinite(xyz), axis=-1).T  # (N, F)
    c["data"]["meta_points"]["residuals"] = np.where(seen, 0.0, -1.0)[None]
    c.add_parameter("POINT", "DESCRIPTIONS", ["keypoint" if not n.startswith("J_") else "fitted joint centre"
                                              for n in labels])
    c.add_parameter("MANUFACTURER", "SOFTWARE", ["mocap"])

    def write(part: Path) -> None:
        named = part.with_name(part.name + ".c3d")  # ezc3d appends .c3d to a name without it
        try:
            c.write(str(named))
            os.replace(named, part)
        finally:
            named.unlink(missing_ok=True)

    return atomic_write(Path(path), write)


def read_c3d(path: str | Path) -> tuple[list[str], np.ndarray, float]:
    """(labels, (F, N, 3) metres with NaN where the residual is negative, fps)."""
    import ezc3d

    try:
        c = ezc3d.c3d(str(path))
    except (RuntimeError, OSError, ValueError) as e:
        raise ValueError(f"{path}: not a readable C3D file ({e})") from None
    labels = list(c["parameters"]["POINT"]["LABELS"]["value"])
    unit = c["parameters"]["POINT"]["UNITS"]["value"][0].strip().lower()
    scale = {"mm": 1e-3, "cm": 1e-2, "m": 1.0}.get(unit)
    if scale is None:
        raise ValueError(f"{path}: unknown POINT:UNITS {unit!r}")
    xyz = np.transpose(c["data"]["points"][:3], (2, 1, 0)) * scale
    res = c["data"]["meta_points"]["residuals"][0].T
    xyz[res < 0] = np.nan
    return labels, xyz, float(c["parameters"]["POINT"]["RATE"]["value"][0])


@register("c3d", ".c3d", "3D keypoints and fitted joint centres, mm, Z up (ezc3d)", takes_absent=True)
def c3d(motion: Motion, extra: dict, path: Path, opt: Options) -> Path:
    labels, xyz = c3d_points(motion, extra)
    return write_c3d(path, labels, xyz, motion.fps)
