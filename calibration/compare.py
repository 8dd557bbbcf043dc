"""Errors of an estimated rig against the truth, after the rigid alignment that fits them best
(no scale: the scale is the board's)."""

from __future__ import annotations

import numpy as np

from mocap.types import Rig


def _marker_points(rig: Rig) -> np.ndarray:
    """Each camera's centre and a point 1 m along its optical axis: (2C, 3)."""
    pts = []
    for c in rig:
        pts += [c.center, c.center + c.R[2]]
    return np.array(pts)


def rig_errors(est: Rig, truth: Rig) -> dict[str, np.ndarray]:
    """Per camera: centre error (mm), rotation error (deg), focal error (%), after aligning ``est``."""
    if est.names != truth.names:
        raise ValueError(f"rigs have different cameras: {est.names} vs {truth.names}")
    A, B = _marker_points(est), _marker_points(truth)
    ca, cb = A.mean(0), B.mean(0)
    U, _, Vt = np.linalg.svd((A - ca).T @ (B - cb))
    R = (U @ np.diag([1, 1, np.linalg.det(U @ Vt)]) @ Vt).T  # truth ≈ R est + t
    t = cb - R @ ca
    centre, rot, focal = [], [], []
    for e, g in zip(est, truth, strict=True):
        centre.append(np.linalg.norm(R @ e.center + t - g.center) * 1000)
        dR = g.R @ (e.R @ R.T).T
        rot.append(np.degrees(np.arccos(np.clip((np.trace(dR) - 1) / 2, -1, 1))))
        focal.append(100 * abs(e.K[0, 0] / g.K[0, 0] - 1))
    return {"centre_mm": np.array(centre), "rotation_deg": np.array(rot), "focal_pct": np.array(focal)}
