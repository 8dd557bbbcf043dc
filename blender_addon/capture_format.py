"""Reading the pipeline's capture file (``.npz``) with numpy only, as Blender ships it.

The writer is ``mocap.io.capture``; both sides check ``kind`` and ``schema_version``."""

from __future__ import annotations

import numpy as np

KIND = "mocap-capture"
SCHEMA_VERSION = 1


class CaptureError(ValueError):
    """A file that is not a usable capture; the message says why, for the user."""


def read_capture(path: str) -> dict:
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise CaptureError(f"{path}: not a capture file ({e})") from None
    with z:
        if "kind" not in z.files or str(z["kind"]) != KIND:
            raise CaptureError(f"{path}: not a mocap capture file (expected kind {KIND!r})")
        version = int(z["schema_version"])
        if version > SCHEMA_VERSION:
            raise CaptureError(f"{path}: capture schema version {version} is newer than this add-on reads "
                               f"({SCHEMA_VERSION}); update the add-on")
        cap = {k: z[k] for k in z.files}
    cap["joint_names"] = [str(n) for n in cap["joint_names"]]
    F, J = cap["rotations"].shape[:2]
    if F == 0:
        raise CaptureError(f"{path}: the capture has zero frames")
    if len(cap["joint_names"]) != J or cap["offsets"].shape != (J, 3) or cap["root_positions"].shape != (F, 3):
        raise CaptureError(f"{path}: inconsistent arrays (joints {J}, names {len(cap['joint_names'])}, "
                           f"offsets {cap['offsets'].shape}, root {cap['root_positions'].shape})")
    cap["rotations"], cap["root_positions"] = _hold_gaps(cap["rotations"], cap["root_positions"])
    if "point_names" in cap:
        cap["point_names"] = [str(n) for n in cap["point_names"]]
    for key in ("camera_names", "camera_videos"):
        if key in cap:
            cap[key] = [str(n) for n in cap[key]]
    return cap


def _hold_gaps(q: np.ndarray, root: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frames with NaN (gaps in the fit) take the previous valid frame (the first valid one at the start)."""
    bad = ~(np.isfinite(q).all(axis=(1, 2)) & np.isfinite(root).all(axis=1))
    if not bad.any():
        return q, root
    good = np.flatnonzero(~bad)
    if good.size == 0:
        raise CaptureError("the capture has no valid frame")
    idx = np.maximum.accumulate(np.where(bad, 0, np.arange(len(q))))
    idx[: good[0]] = good[0]
    return q[idx], root[idx]


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
