"""OpenPose-style JSON: one folder per camera, one file per frame.

Each file holds ``{"people": [{"pose_keypoints_2d": [x0, y0, c0, x1, ...]}, ...]}``. OpenPose
marks a missing keypoint with ``0, 0, 0``; it is read as NaN and NaN is written as zeros. Files
are ordered by the frame number in their name (``cam01_000000000042_keypoints.json``); a camera's
folder is ``<root>/<camera>`` or ``<root>/<camera>_json`` (Pose2Sim).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from mocap.io.atomic import atomic_write_text
from mocap.keypoint_sets import get_keypoint_set, keypoint_set_for_count
from mocap.types import Keypoints2D

_NUMBER = re.compile(r"(\d+)(?!.*\d)")


def camera_folder(root: Path, camera: str) -> Path:
    for cand in (root / camera, root / f"{camera}_json"):
        if cand.is_dir():
            return cand
    raise FileNotFoundError(f"camera {camera!r}: no keypoint folder {root / camera} (or {camera}_json)")


def _frame_files(folder: Path, camera: str) -> list[Path]:
    files = [p for p in folder.iterdir() if p.suffix == ".json"]
    if not files:
        raise ValueError(f"camera {camera!r}: folder {folder} holds no .json files")

    def key(p: Path):
        m = _NUMBER.search(p.stem)
        return (int(m.group(1)) if m else -1, p.name)

    return sorted(files, key=key)


def _read_people(path: Path, camera: str) -> list[np.ndarray]:
    try:
        data = json.loads(path.read_text())
        people = data["people"]
        if not isinstance(people, list):
            raise TypeError(f"'people' must be a list, got {type(people).__name__}")
        arrays = [np.asarray(p["pose_keypoints_2d"], float) for p in people]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError, OSError) as e:
        raise ValueError(f"{path}: camera {camera!r}: malformed OpenPose JSON: {type(e).__name__}: {e}") from None
    for a in arrays:
        if a.ndim != 1 or a.size % 3:
            raise ValueError(f"{path}: camera {camera!r}: pose_keypoints_2d length {a.size} is not a multiple of 3")
        if np.isinf(a).any() or np.isnan(a).any():
            raise ValueError(f"{path}: camera {camera!r}: pose_keypoints_2d holds non-finite numbers")
    return [a for a in arrays if a.size]  # an empty list: a person without body keypoints


def read_openpose(root: str | Path, camera_names: list[str] | tuple[str, ...], fps: float,
                  keypoint_set: str | None = None, max_persons: int | None = None) -> Keypoints2D:
    """Read per-camera JSON folders under ``root`` into (F, C, P, J, 3) keypoints."""
    root = Path(root)
    per_cam = {c: _frame_files(camera_folder(root, c), c) for c in camera_names}
    counts = {c: len(f) for c, f in per_cam.items()}
    if len(set(counts.values())) > 1:
        raise ValueError(f"{root}: cameras have different frame counts: {counts}")
    frames = {c: [_read_people(p, c) for p in files] for c, files in per_cam.items()}
    found = [(a.size // 3, per_cam[c][f], c) for c, fr in frames.items() for f, people in enumerate(fr)
             for a in people]
    if not found:
        raise ValueError(f"{root}: no person detected in any frame of any camera")
    J, first, _ = found[0]
    odd = next(((n, p, c) for n, p, c in found if n != J), None)
    if odd is not None:
        raise ValueError(f"{odd[1]}: camera {odd[2]!r}: {odd[0]} keypoints per person, but {first} has {J}")
    try:
        name = keypoint_set or keypoint_set_for_count(J)
        expected = len(get_keypoint_set(name).joints)
    except ValueError as e:
        raise ValueError(f"{first}: {e}") from None
    if expected != J:
        raise ValueError(f"{root}: files have {J} keypoints but keypoint set {name!r} has {expected} "
                         f"(e.g. {first})")
    P = max(len(people) for fr in frames.values() for people in fr)
    P = min(P, max_persons) if max_persons else P
    F = next(iter(counts.values()))
    data = np.full((F, len(camera_names), P, J, 3), np.nan)
    for c, cam in enumerate(camera_names):
        for f, people in enumerate(frames[cam]):
            for p, arr in enumerate(people[:P]):
                data[f, c, p] = arr.reshape(J, 3)
    missing = ~(data[..., 2] > 0)
    data[missing] = np.nan
    return Keypoints2D(data, tuple(camera_names), name, fps)


def write_openpose(kp: Keypoints2D, root: str | Path) -> Path:
    """Write one folder per camera, one JSON file per frame (NaN written as 0, 0, 0)."""
    root = Path(root)
    F, C, P, J = kp.shape
    clean = np.where(np.isnan(kp.data), 0.0, kp.data)
    for c, cam in enumerate(kp.camera_names):
        folder = root / cam
        folder.mkdir(parents=True, exist_ok=True)
        for f in range(F):
            people = [{"person_id": [-1], "pose_keypoints_2d": [round(v, 4) for v in clean[f, c, p].ravel().tolist()]}
                      for p in range(P) if np.any(kp.data[f, c, p, :, 2] > 0)]
            atomic_write_text(folder / f"{cam}_{f:012d}_keypoints.json",
                              json.dumps({"version": 1.3, "people": people}, separators=(",", ":")))
    return root
