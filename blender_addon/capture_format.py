"""Reading the pipeline's capture file (``.npz``) with numpy only, as Blender ships it.

The writer is ``mocap.io.capture``; both sides check ``kind`` and ``schema_version``."""

from __future__ import annotations

import os
import re
import zipfile
import zlib

import numpy as np

KIND = "mocap-capture"
SCHEMA_VERSION = 1


class CaptureError(ValueError):
    """A file that is not a usable capture; the message says why, for the user."""


REQUIRED = ("kind", "schema_version", "joint_names", "parents", "offsets", "rotations", "root_positions", "fps")
CAMERA_KEYS = ("camera_names", "camera_K", "camera_pose", "camera_size")  # all of them, or none
POINT_KEYS = ("points", "point_names")


def read_capture(path: str) -> dict:
    """The arrays of a capture file, checked: any problem raises :class:`CaptureError` naming the file
    and what is wrong (a missing array, a wrong shape), never a bare KeyError from deep inside."""
    try:
        with open(path, "rb") as fh:
            magic = fh.read(6)
    except OSError as e:
        raise CaptureError(f"{path}: not a capture file ({e})") from None
    if not (magic.startswith(b"PK") or magic == b"\x93NUMPY"):  # numpy would say "pickled data" of any other file
        raise CaptureError(f"{path}: not a capture file (an .npz archive, as mocap writes beside the animation files; "
                           f"this file is not one: a .bvh, .fbx or .glb goes through Blender's own File > Import)")
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise CaptureError(f"{path}: not a capture file ({e})") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise CaptureError(f"{path}: not a capture file (a single array, not an .npz archive)")
    with z:
        if "kind" not in z.files or str(z["kind"]) != KIND:
            raise CaptureError(f"{path}: not a mocap capture file (expected kind {KIND!r})")
        missing = [k for k in REQUIRED if k not in z.files]
        if missing:
            raise CaptureError(f"{path}: the capture file lacks the array(s) {', '.join(missing)}; "
                               "write it again with the pipeline (mocap fit)")
        try:
            cap = {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
            raise CaptureError(f"{path}: damaged capture file ({e})") from None
    try:
        version = int(cap["schema_version"])
    except (TypeError, ValueError):
        raise CaptureError(f"{path}: schema_version is not a number") from None
    if version > SCHEMA_VERSION:
        raise CaptureError(f"{path}: capture schema version {version} is newer than this add-on reads "
                           f"({SCHEMA_VERSION}); update the add-on")
    _check_shapes(path, cap)
    cap["joint_names"] = [str(n) for n in cap["joint_names"]]
    cap["rotations"], cap["root_positions"], absent = _hold_gaps(path, cap["rotations"], cap["root_positions"])
    cap["absent"] = absent  # (F,) bool: before the first fitted frame, after the last: the person not there
    for key in ("point_names", "camera_names", "camera_videos"):
        if key in cap:
            cap[key] = [str(n) for n in cap[key]]
    if "person" in cap:
        cap["person"] = str(cap["person"])
    return cap


PERSON_FILE = re.compile(r"(.+)_person([0-9]+)\.npz")


def person_files(path: str) -> list[str]:
    """The captures of every person of the take ``path`` is one person of: the files
    ``<motion>_person<k>.npz`` beside it, in the order of ``k`` (the pipeline writes one per person when a
    take has several); ``[path]`` for any other file (a one-person take)."""
    folder, name = os.path.split(path)
    m = PERSON_FILE.fullmatch(name)
    if not m:
        return [path]
    found = []
    for other in os.listdir(folder or "."):
        o = PERSON_FILE.fullmatch(other)
        if o and o.group(1) == m.group(1) and os.path.isfile(os.path.join(folder, other)):
            found.append((int(o.group(2)), os.path.join(folder, other)))
    return [f for _, f in sorted(found)] or [path]


def _check_shapes(path: str, cap: dict) -> None:
    def bad(what: str) -> CaptureError:
        return CaptureError(f"{path}: {what}")

    q, names, parents = cap["rotations"], cap["joint_names"], cap["parents"]
    if q.ndim != 3 or q.shape[2] != 4:
        raise bad(f"rotations should be (frames, joints, 4) quaternions, got shape {q.shape}")
    F, J = q.shape[:2]
    if F == 0:
        raise bad("the capture has zero frames")
    if J == 0:
        raise bad("the capture has no joints")
    if names.shape != (J,) or cap["offsets"].shape != (J, 3) or cap["root_positions"].shape != (F, 3) \
            or parents.shape != (J,):
        raise bad(f"inconsistent arrays (joints {J}, names {names.shape}, parents {parents.shape}, "
                  f"offsets {cap['offsets'].shape}, root {cap['root_positions'].shape})")
    if not np.issubdtype(parents.dtype, np.integer) or parents[0] != -1 or \
            any(not 0 <= parents[j] < j for j in range(1, J)):
        raise bad("parents should list each joint's parent before it, -1 for the root")
    fps = cap["fps"]
    if fps.shape != () or not np.issubdtype(fps.dtype, np.number) or not np.isfinite(fps) or float(fps) <= 0:
        raise bad(f"fps should be one positive number, got {fps!r}")
    present = [k for k in CAMERA_KEYS if k in cap]
    if present and len(present) < len(CAMERA_KEYS):
        raise bad(f"camera arrays incomplete: lacks {', '.join(k for k in CAMERA_KEYS if k not in cap)}")
    if present:
        C = len(cap["camera_names"])
        shapes = {"camera_K": (C, 3, 3), "camera_size": (C, 2)}
        for k, shape in shapes.items():
            if cap[k].shape != shape:
                raise bad(f"{k} should have shape {shape}, got {cap[k].shape}")
        if cap["camera_pose"].shape not in ((C, 3, 4), (C, 4, 4)):
            raise bad(f"camera_pose should have shape ({C}, 4, 4), got {cap['camera_pose'].shape}")
        if "camera_videos" in cap and len(cap["camera_videos"]) != C:
            raise bad(f"camera_videos has {len(cap['camera_videos'])} entries for {C} cameras")
    present = [k for k in POINT_KEYS if k in cap]
    if present and len(present) < len(POINT_KEYS):
        raise bad(f"keypoint arrays incomplete: lacks {', '.join(k for k in POINT_KEYS if k not in cap)}")
    if present:
        K = len(cap["point_names"])
        if cap["points"].shape != (F, K, 3):
            raise bad(f"points should have shape ({F}, {K}, 3), got {cap['points'].shape}")


def _hold_gaps(path: str, q: np.ndarray, root: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames with NaN (gaps in the fit) filled as the exports fill them (``mocap.motion.fill_gaps``): rotations
    by nlerp and the root linearly between the nearest valid frames, held before the first and after the last
    (a gap held its last frame, then jumped: 0.5 m in one frame where the exported files moved smoothly); and
    (F,) bool, those before the first and after the last (``mocap.motion.absent_frames``: the person not there,
    hidden by :func:`.builders.build_armature`)."""
    bad = ~(np.isfinite(q).all(axis=(1, 2)) & np.isfinite(root).all(axis=1))
    absent = np.zeros(len(bad), bool)
    if not bad.any():
        return q, root, absent
    good = np.flatnonzero(~bad)
    if good.size == 0:
        raise CaptureError(f"{path}: the capture has no valid frame (every rotation or root position is NaN)")
    t = np.flatnonzero(bad)
    k = np.searchsorted(good, t)
    a, b = good[np.clip(k - 1, 0, len(good) - 1)], good[np.clip(k, 0, len(good) - 1)]
    a, b = np.where(k == 0, b, a), np.where(k == len(good), a, b)  # before the first, after the last: held
    s = np.where(b > a, (t - a) / np.maximum(b - a, 1), 0.0)[:, None]
    q, root = q.copy(), root.copy()
    qa, qb = q[a], q[b]
    qb = np.where(np.sum(qa * qb, axis=-1, keepdims=True) < 0, -qb, qb)
    mix = (1 - s[..., None]) * qa + s[..., None] * qb
    q[t] = mix / np.linalg.norm(mix, axis=-1, keepdims=True)
    root[t] = (1 - s) * root[a] + s * root[b]
    absent[: good[0]] = absent[good[-1] + 1:] = True
    return q, root, absent


def rest_positions(parents: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    p = np.zeros_like(offsets)
    for j in range(1, len(p)):
        p[j] = p[parents[j]] + offsets[j]
    return p


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    R = np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
                  2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
                  2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1)
    return R.reshape(q.shape[:-1] + (3, 3))


def matrix_to_quat(R: np.ndarray) -> np.ndarray:
    """(..., 3, 3) → (..., 4) wxyz, sign-continuous along axis 0."""
    m = R.reshape(-1, 3, 3)
    tr = np.trace(m, axis1=1, axis2=2)
    cand = np.stack([1 + tr, 1 + m[:, 0, 0] - m[:, 1, 1] - m[:, 2, 2], 1 - m[:, 0, 0] + m[:, 1, 1] - m[:, 2, 2],
                     1 - m[:, 0, 0] - m[:, 1, 1] + m[:, 2, 2]], 1)
    k = np.argmax(cand, axis=1)
    s = np.sqrt(np.maximum(cand[np.arange(len(m)), k], 1e-12)) * 2
    a = {"w": m[:, 2, 1] - m[:, 1, 2], "x": m[:, 0, 2] - m[:, 2, 0], "y": m[:, 1, 0] - m[:, 0, 1],
         "xy": m[:, 0, 1] + m[:, 1, 0], "xz": m[:, 0, 2] + m[:, 2, 0], "yz": m[:, 1, 2] + m[:, 2, 1]}
    # the largest of w, x, y, z is computed from the diagonal, the others from sums and differences
    rows = [(s / 4, a["w"] / s, a["x"] / s, a["y"] / s),
            (a["w"] / s, s / 4, a["xy"] / s, a["xz"] / s),
            (a["x"] / s, a["xy"] / s, s / 4, a["yz"] / s),
            (a["y"] / s, a["xz"] / s, a["yz"] / s, s / 4)]
    q = np.zeros((len(m), 4))
    for i, row in enumerate(rows):
        sel = k == i
        q[sel] = np.stack(row, axis=1)[sel]
    q = q.reshape(R.shape[:-2] + (4,))
    for f in range(1, q.shape[0]):
        flip = np.sum(q[f] * q[f - 1], axis=-1) < 0
        q[f][flip] *= -1
    return q
