"""Quality metrics of a processed session (``report/metrics.json``)."""

from __future__ import annotations

import functools
import platform
from importlib import metadata

import numpy as np

from mocap.keypoint_sets import get_keypoint_set
from mocap.report.cameras import camera_table
from mocap.types import Keypoints2D, Points3D, Rig


def reprojection(rig: Rig, kp: Keypoints2D, pts: Points3D, min_score: float = 0.2, person: int = 0) -> np.ndarray:
    """(F, C, J) reprojection error in pixels of the 3D points against the 2D detections (NaN where either
    is missing or the detection is below ``min_score``)."""
    X = pts.xyz[:, person]  # (F, J, 3)
    uv = rig.project(X.reshape(-1, 3)).reshape((len(rig),) + X.shape[:2] + (2,))  # (C, F, J, 2)
    uv = np.moveaxis(uv, 0, 1)
    obs = kp.xy[:, :, person]
    ok = np.isfinite(kp.score[:, :, person]) & (kp.score[:, :, person] >= min_score)
    e = np.linalg.norm(uv - obs, axis=-1)
    return np.where(ok, e, np.nan)


def bone_lengths(pts: Points3D, person: int = 0) -> tuple[list[str], np.ndarray]:
    """Names and (F, B) lengths of the keypoint set's bones."""
    kps = get_keypoint_set(pts.keypoint_set)
    X = pts.xyz[:, person]
    names, L = [], []
    for a, b in kps.bones:
        names.append(f"{kps.joints[a]}–{kps.joints[b]}")
        L.append(np.linalg.norm(X[:, a] - X[:, b], axis=1))
    return names, np.array(L).T


def versions() -> dict[str, str]:
    return dict(_versions())


@functools.cache
def _versions() -> dict[str, str]:  # read once per process (a package's metadata is parsed each time)
    out = {"python": platform.python_version()}
    for pkg in ("mocap", "numpy", "scipy", "opencv-contrib-python", "h5py", "torch", "mediapipe", "bpy", "open3d"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return out


def compute(rig: Rig, kp: Keypoints2D, pts: Points3D, person: int = 0, offsets: dict | None = None,
            camera_flag_ratio: float = 2.5, swaps_repaired: dict | None = None) -> dict:
    """The metrics; ``cameras`` is the per-camera table (:func:`mocap.report.cameras.camera_table`)."""
    err = reprojection(rig, kp, pts, person=person)
    used = np.moveaxis(pts.views[:, person], 2, 1) if pts.views is not None else None  # (F, C, J)
    err_used = np.where(used, err, np.nan) if used is not None and used.shape == err.shape else err
    kps = get_keypoint_set(pts.keypoint_set)
    X = pts.xyz[:, person]
    present = np.isfinite(X).all(axis=2)  # (F, J)
    if pts.xyz.shape[1] > 1:  # one of several people: judged from the frame it enters to the one it leaves
        rows = np.flatnonzero(present.any(axis=1))
        present = present[rows[0]: rows[-1] + 1] if rows.size else present
    names, L = bone_lengths(pts, person)
    cv = np.nanstd(L, axis=0) / np.nanmean(L, axis=0)
    acc = np.diff(X, n=2, axis=0) * pts.fps**2
    acc_norm = np.linalg.norm(acc, axis=2)
    return {
        "frames": int(X.shape[0]), "fps": float(pts.fps),
        "cameras": camera_table(rig, kp, pts, person, offsets, camera_flag_ratio, swaps_repaired),
        "reprojection_px": {
            "median": float(np.nanmedian(err)), "mean": float(np.nanmean(err)),
            "median_views_used": float(np.nanmedian(err_used)),  # over the views the solver kept
            "views_used_share": float(np.isfinite(err_used).sum() / max(np.isfinite(err).sum(), 1)),
            "p95": float(np.nanpercentile(err, 95)) if np.isfinite(err).any() else float("nan"),
            "per_camera_median": {c: float(np.nanmedian(err[:, i])) for i, c in enumerate(rig.names)},
            "per_joint_median": {j: float(np.nanmedian(err[:, :, k])) for k, j in enumerate(kps.joints)},
        },
        "reconstructed": {
            "frames_all_joints": float(present.all(axis=1).mean()),
            "frames_any_joint": float(present.any(axis=1).mean()),
            "points": float(present.mean()),
        },
        "bone_length_cv": {"mean": float(np.nanmean(cv)), "max": float(np.nanmax(cv)),
                           "per_bone": {n: float(c) for n, c in zip(names, cv, strict=True)}},
        "jitter_mean_accel_m_s2": float(np.nanmean(acc_norm)),
        "versions": versions(),
    }


def verdict(m: dict, max_reprojection_px: float, max_bone_length_cv: float, min_points: float) -> dict:
    """Whether the capture looks usable, and each check that failed with its value and threshold
    (a metric that could not be computed, NaN, fails). Each camera flagged in ``m["cameras"]`` fails
    too, named, so that a healthy overall median never hides a broken camera."""
    checks = [("reprojection_px.median", "median reprojection", m["reprojection_px"]["median"], ">",
               max_reprojection_px, "px"),
              ("bone_length_cv.mean", "mean bone-length variation", m["bone_length_cv"]["mean"], ">",
               max_bone_length_cv, "fraction"),
              ("reconstructed.points", "points reconstructed", m["reconstructed"]["points"], "<", min_points,
               "fraction")]
    failed = []
    for metric, label, value, op, threshold, unit in checks:
        value = float(value)
        bad = not np.isfinite(value) or (value > threshold if op == ">" else value < threshold)
        if bad:
            failed.append({"metric": metric, "label": label, "value": value, "comparison": op,
                           "threshold": float(threshold), "unit": unit})
    cameras = m.get("cameras")
    for name, row in (cameras.items() if isinstance(cameras, dict) else ()):
        flag = row.get("flag") if row.get("flagged") else None
        if flag:
            what = "median" if flag["stat"] == "median_px" else "P95"
            failed.append({"metric": f"cameras.{name}.{flag['stat']}", "label": f"camera {name} {what} reprojection",
                           "value": float(flag["value"]), "comparison": ">", "threshold": float(flag["threshold"]),
                           "unit": "px", "note": f"{flag['ratio']:g} × the other cameras' {flag['reference']:.3g} px"})
    return {"usable": not failed, "failed": failed,
            "summary": "PASS" if not failed else "FAIL: " + "; ".join(describe(f) for f in failed)}


def describe(check: dict) -> str:
    """'median reprojection 14.2 px > 8 px' ('points reconstructed 85% < 90%' for shares)."""
    def fmt(x: float) -> str:
        if check["unit"] == "px":
            return f"{x:.3g} px"
        return f"{x:.1%}" if check["metric"].startswith("reconstructed") else f"{x:.2%}"

    if not np.isfinite(check["value"]):
        needed = "at most" if check["comparison"] == ">" else "at least"
        return f"{check['label']} could not be computed (needs {needed} {fmt(check['threshold'])})"
    note = f" ({check['note']})" if check.get("note") else ""
    return f"{check['label']} {fmt(check['value'])} {check['comparison']} {fmt(check['threshold'])}{note}"
