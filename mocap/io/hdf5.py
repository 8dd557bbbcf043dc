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
                (each gzip-compressed when over 256 kB)
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import h5py
import numpy as np

from mocap.io.atomic import atomic_write
from mocap.io.h5lock import FileInUseError, open_h5
from mocap.keypoint_sets import get_keypoint_set
from mocap.types import Keypoints2D, Points3D

VERSION = 1


def _open(path: Path, fmt: str) -> h5py.File:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file does not exist")
    try:
        f = open_h5(path, "r")
    except FileInUseError:
        raise
    except OSError as e:
        raise ValueError(f"{path}: not an HDF5 file ({e})") from None
    try:
        found, version = f.attrs.get("format"), f.attrs.get("version", 0)
        if isinstance(found, bytes):
            found = found.decode(errors="replace")
        if found != fmt:
            raise ValueError(f"{path}: not a {fmt} file (format attribute {found!r})")
        if np.ndim(version) != 0 or not np.issubdtype(np.asarray(version).dtype, np.integer):
            raise ValueError(f"{path}: attribute 'version' must be an integer, got {version!r}")
        if int(version) > VERSION:
            raise ValueError(f"{path}: schema version {int(version)} is newer than this program ({VERSION})")
    except (ValueError, OSError) as e:
        f.close()
        raise ValueError(str(e) if str(e).startswith(str(path)) else f"{path}: unreadable attributes ({e})") from None
    return f


def _dataset(path: Path, f: h5py.File, name: str, ndim: int, kind: str = "f") -> np.ndarray:
    """Dataset ``name`` read whole, checked for rank and dtype kind ('f' numbers, 'b' booleans)."""
    if name not in f or not isinstance(f[name], h5py.Dataset):
        raise ValueError(f"{path}: dataset {name!r} is missing")
    d = f[name]
    ok = d.dtype.kind in ("f", "i", "u") if kind == "f" else d.dtype.kind in ("b", "i", "u")
    if not ok:
        expected = "numbers" if kind == "f" else "booleans"
        raise ValueError(f"{path}: dataset {name!r} has dtype {d.dtype}, expected {expected}")
    if d.ndim != ndim:
        raise ValueError(f"{path}: dataset {name!r} has shape {d.shape}, expected {ndim} dimensions")
    try:
        return d[()]
    except OSError as e:  # a truncated or corrupt file
        raise ValueError(f"{path}: dataset {name!r} cannot be read ({e})") from None


def _attrs(path: Path, f: h5py.File, n_cameras: int, n_joints: int) -> tuple[tuple[str, ...], str, float]:
    """(camera names, keypoint set, fps) from the attributes, checked against the data's sizes."""
    for key in ("camera_names", "keypoint_set", "fps"):
        if key not in f.attrs:
            raise ValueError(f"{path}: attribute {key!r} is missing")
    raw = f.attrs["camera_names"]
    names = tuple(_strings(np.atleast_1d(raw)))
    if len(names) != n_cameras:
        raise ValueError(f"{path}: {len(names)} camera names {list(names)} but the data has {n_cameras} cameras")
    ks = f.attrs["keypoint_set"]
    ks = ks.decode(errors="replace") if isinstance(ks, bytes) else str(ks)
    try:
        joints = get_keypoint_set(ks).joints
    except (ValueError, OSError) as e:
        raise ValueError(f"{path}: attribute keypoint_set: {e}") from None
    if len(joints) != n_joints:
        raise ValueError(f"{path}: keypoint set {ks!r} has {len(joints)} joints but the data has {n_joints}")
    try:
        fps = float(f.attrs["fps"])
    except (TypeError, ValueError):
        raise ValueError(f"{path}: attribute fps must be a number, got {f.attrs['fps']!r}") from None
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"{path}: attribute fps must be positive and finite, got {fps}")
    return names, ks, fps


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
    """Read and check a ``pose2d.h5`` (ValueError naming the file and the dataset when malformed)."""
    path = Path(path)
    with _open(path, "mocap-pose2d") as f:
        data = _dataset(path, f, "keypoints", 5)
        if data.shape[-1] != 3:
            raise ValueError(f"{path}: dataset 'keypoints' has shape {data.shape}, expected "
                             "(frames, cameras, persons, joints, 3)")
        names, ks, fps = _attrs(path, f, data.shape[1], data.shape[3])
        if "complete" in f:
            complete = _dataset(path, f, "complete", 1, "b")
            if complete.shape != (data.shape[1],):
                raise ValueError(f"{path}: dataset 'complete' has shape {complete.shape}, expected ({data.shape[1]},)")
        if data.shape[0] == 0:
            raise ValueError(f"{path}: dataset 'keypoints' has 0 frames")
        if np.isinf(data).any():  # missing is NaN; an infinite coordinate or score is a broken file
            bad = np.argwhere(np.isinf(data))[0]
            raise ValueError(f"{path}: dataset 'keypoints' holds infinite values (first at frame {bad[0]}, "
                             f"camera {names[bad[1]]!r}); missing detections must be NaN")
        return Keypoints2D(data.astype(float), names, ks, fps)


def file_key(path: str | Path) -> tuple | None:
    """What identifies a file's content: its resolved path, inode, size, modification and change times (ns)
    and a digest of its bytes (SHA-256: about 0.5 ms a MB, against 5-10 for reading the keypoints through
    HDF5); None when it is not a file. A file rewritten in place or replaced (atomic writes rename a new file
    over it) gets another key, even within the file system's time resolution."""
    path = Path(path)
    try:
        st = path.stat()
        if not path.is_file():
            return None
        h = hashlib.sha256()  # with the CPU's SHA extensions (x86 since 2017, ARMv8): about twice BLAKE2b's rate
        with path.open("rb") as f:  # by blocks: the digest of the whole file without a copy of it in memory
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        digest = h.hexdigest()
    except OSError:
        return None
    return str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, digest


_KEYPOINTS_MEMO: dict[str, tuple[tuple, Keypoints2D]] = {}  # resolved path → (file_key, keypoints read)
MEMO_FILES = 2  # pose2d.h5 files kept read (a run reads one, up to six times)


def read_keypoints2d_shared(path: str | Path, copy: bool = True) -> Keypoints2D:
    """:func:`read_keypoints2d`, read once per content of the file in this process: the stages of one
    ``mocap run`` each read the session's ``pose2d.h5`` (rig_refine, sync, triangulate, refine, the report
    twice); later calls, while :func:`file_key` is unchanged, get a copy of what was read (theirs to change), or
    with ``copy=False`` what was read itself (to read only: a long take's keypoints are not copied again)."""
    kp, _ = read_once(_KEYPOINTS_MEMO, MEMO_FILES, path, read_keypoints2d)
    if copy:
        return Keypoints2D(kp.data.copy(), kp.camera_names, kp.keypoint_set, kp.fps)
    view = kp.data.view()  # the memo's values, not writable through this view
    view.setflags(write=False)
    return Keypoints2D(view, kp.camera_names, kp.keypoint_set, kp.fps)


def read_once(memo: dict, limit: int, path: str | Path, read):
    """(what ``read(path)`` gives, whether it is the memo's own, not to be changed): kept in ``memo`` by the
    file's resolved path while :func:`file_key` is unchanged, at most ``limit`` files (the oldest let go);
    a file that changed while it was read is not kept."""
    key = file_key(path)
    hit = memo.get(key[0]) if key is not None else None
    if hit is None or hit[0] != key:
        value = read(path)
        if key is None or file_key(path) != key:
            return value, False
        memo.pop(key[0], None)
        while len(memo) >= limit:
            memo.pop(next(iter(memo)))
        memo[key[0]] = hit = (key, value)
    return hit[1], True


COMPRESS_ABOVE = 1 << 18  # datasets of more bytes than this are gzip-compressed


def _compression(data: np.ndarray) -> dict:
    """gzip for a dataset over :data:`COMPRESS_ABOVE` bytes; a smaller one is stored as it is (compressing the
    3D points of a 100-frame take, 70 kB, takes longer than writing the whole file uncompressed)."""
    return {"compression": "gzip"} if data.nbytes > COMPRESS_ABOVE else {}


def write_points3d(points: Points3D, path: str | Path) -> Path:
    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            f.attrs.update(format="mocap-points3d", version=VERSION, keypoint_set=points.keypoint_set,
                           fps=points.fps, joint_names=list(get_keypoint_set(points.keypoint_set).joints),
                           camera_names=list(points.camera_names), info=json.dumps(points.info))
            for name, data in (("xyz", points.xyz), ("reproj_err", points.reproj_err.astype(np.float32)),
                               ("views", points.views)):
                f.create_dataset(name, data=data, **_compression(data))

    return atomic_write(Path(path), write)


_POINTS_MEMO: dict[str, tuple[tuple, Points3D]] = {}  # resolved path → (file_key, points read)
MEMO_POINTS = 4  # points3d files kept read (a run reads triangulated.h5 four times, refined.h5 three)


def read_points3d(path: str | Path) -> Points3D:
    """Read and check a ``points3d/*.h5`` (ValueError naming the file and the dataset when malformed); read
    once per content of the file in this process (:func:`file_key`: a file rewritten or replaced is read
    again), each caller getting its own copy."""
    pts, shared = read_once(_POINTS_MEMO, MEMO_POINTS, path, _read_points3d)
    if not shared:
        return pts
    return Points3D(pts.xyz.copy(), pts.reproj_err.copy(), pts.views.copy(), pts.camera_names, pts.keypoint_set,
                    pts.fps, json.loads(json.dumps(pts.info)))


def read_points3d_info(path: str | Path) -> dict:
    """The ``info`` of a ``points3d/*.h5`` alone (its settings, association, repairs), as
    ``read_points3d(path).info`` is, without reading (or copying) its arrays: from the points already read
    when the file is unchanged, else from the file's attribute."""
    key = file_key(path)
    hit = _POINTS_MEMO.get(key[0]) if key is not None else None
    if hit is not None and hit[0] == key:
        return json.loads(json.dumps(hit[1].info))
    path = Path(path)
    with _open(path, "mocap-points3d") as f:
        return _info(path, f)


def _info(path: Path, f) -> dict:
    try:
        info = json.loads(f.attrs.get("info", "{}"))
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: attribute info is not JSON ({e})") from None
    if not isinstance(info, dict):
        raise ValueError(f"{path}: attribute info must be a JSON object")
    return info


def _read_points3d(path: str | Path) -> Points3D:
    path = Path(path)
    with _open(path, "mocap-points3d") as f:
        xyz = _dataset(path, f, "xyz", 4)
        if xyz.shape[-1] != 3:
            raise ValueError(f"{path}: dataset 'xyz' has shape {xyz.shape}, expected (frames, persons, joints, 3)")
        err = _dataset(path, f, "reproj_err", 3)
        views = _dataset(path, f, "views", 4, "b")
        if err.shape != xyz.shape[:3]:
            raise ValueError(f"{path}: dataset 'reproj_err' has shape {err.shape}, expected {xyz.shape[:3]}")
        if views.shape[:3] != xyz.shape[:3]:
            raise ValueError(f"{path}: dataset 'views' has shape {views.shape}, expected {xyz.shape[:3]} + (cameras,)")
        names, ks, fps = _attrs(path, f, views.shape[3], xyz.shape[2])
        info = _info(path, f)
        return Points3D(xyz.astype(float), err.astype(float), views.astype(bool), names, ks, fps, info)


def create_keypoints2d(path: str | Path, frames: int, camera_names: list[str] | tuple[str, ...], persons: int,
                       keypoint_set: str, fps: float, config: dict | None = None, info: dict | None = None) -> Path:
    """An empty (all NaN, no camera complete) 2D file to be filled camera by camera; ``info``: its info attribute
    from the start (:func:`keypoints2d_info`)."""
    joints = get_keypoint_set(keypoint_set).joints
    C, J = len(camera_names), len(joints)

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            f.attrs.update(format="mocap-pose2d", version=VERSION, keypoint_set=keypoint_set, fps=fps,
                           joint_names=list(joints), camera_names=list(camera_names),
                           config=json.dumps(config or {}, sort_keys=True))
            if info:
                f.attrs["info"] = json.dumps(info, sort_keys=True)
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
    with open_h5(path, "r+") as f:
        f["keypoints"][:, camera] = data.astype(np.float32)
        f.flush()
        f["complete"][camera] = True


def reopen_cameras(path: str | Path, cameras: list[int], **info) -> None:
    """Mark ``cameras`` (indices) not complete, to be detected again, and add or replace ``info`` keys, in one
    opening of the file for writing (an interruption between the two would keep old detections under a new
    record)."""
    path = Path(path)
    merged = keypoints2d_info(path) | info
    with open_h5(path, "r+") as f:
        for c in cameras:
            f["complete"][c] = False
        f.attrs["info"] = json.dumps(merged, sort_keys=True)


def points3d_persons(path: str | Path) -> int:
    """The number of people (P) of a ``points3d/*.h5`` from its header, without reading the points."""
    path = Path(path)
    with _open(path, "mocap-points3d") as f:
        if "xyz" not in f or not isinstance(f["xyz"], h5py.Dataset) or f["xyz"].ndim != 4:
            raise ValueError(f"{path}: dataset 'xyz' is missing or not (frames, persons, joints, 3)")
        return int(f["xyz"].shape[1])


def _keypoints(path: Path, f: h5py.File) -> h5py.Dataset:
    """A ``pose2d.h5``'s keypoints dataset, unread, checked for its shape (frames, cameras, persons, joints, 3)."""
    d = f.get("keypoints")
    if not isinstance(d, h5py.Dataset) or d.ndim != 5 or d.shape[-1] != 3:
        raise ValueError(f"{path}: dataset 'keypoints' is missing or not (frames, cameras, persons, joints, 3)")
    return d


def keypoints2d_persons(path: str | Path) -> int:
    """The person slots per view (P) of a ``pose2d.h5`` from its header, without reading the keypoints."""
    path = Path(path)
    with _open(path, "mocap-pose2d") as f:
        return int(_keypoints(path, f).shape[2])


def keypoints2d_cameras(path: str | Path):
    """A finished or partial ``pose2d.h5`` one camera at a time: yields (the header: shape (F, C, P, J), camera
    names, keypoint set, fps), then each camera's detections (F, P, J, 3) float32 — never the whole file in memory
    (a take of persons = auto holds up to 10 person slots per view)."""
    path = Path(path)
    with _open(path, "mocap-pose2d") as f:
        d = _keypoints(path, f)
        names, ks, fps = _attrs(path, f, d.shape[1], d.shape[3])
        yield d.shape[:4], names, ks, fps
        for c in range(d.shape[1]):
            yield d[:, c]


def keypoints2d_info(path: str | Path) -> dict:
    """The ``info`` attribute of a ``pose2d.h5`` (JSON: what was done to the detections after the first
    pass, e.g. ``info["recover"]``, see :mod:`mocap.detect.recover`); {} when absent."""
    with _open(Path(path), "mocap-pose2d") as f:
        return json.loads(f.attrs.get("info", "{}"))


def update_keypoints2d_info(path: str | Path, **items) -> None:
    """Add or replace keys of a ``pose2d.h5``'s ``info`` attribute."""
    path = Path(path)
    info = keypoints2d_info(path) | items
    with open_h5(path, "r+") as f:
        f.attrs["info"] = json.dumps(info, sort_keys=True)
