"""Which way is up in a rig's world, from its cameras and from the performer.

The project's world is Z up (the fit's rest pose, the retarget's floor, the exports' axis change all take it so),
and a calibration made by the project is. One made elsewhere may not be: Anipose and OpenCV put the world in the
first camera's frame (Y down, Z into the scene), game engines and OpenSim use Y up. Two independent witnesses
say where up is: the cameras (mounted upright, each image's up, −y of the camera, points roughly up in the world:
:func:`cameras_up`) and the performer (standing most of a take, shoulders above ankles: :func:`performer_up`).
:func:`world_turn` turns the world only when both agree that up is far from Z; a performer lying down under
upright cameras, or cameras that disagree among themselves, leave it as given.
"""

from __future__ import annotations

import numpy as np

from mocap.types import Rig

TOP = ("left_shoulder", "right_shoulder")
BOTTOMS = (("left_ankle", "right_ankle"), ("left_knee", "right_knee"), ("left_hip", "right_hip"))
AXES = np.array([[1.0, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]])


def _unit_mean(v: np.ndarray) -> tuple[np.ndarray | None, float]:
    """The normalised mean of unit vectors (N, 3) and how well they agree (|mean|: 1 all alike, 0 none)."""
    v = v[np.isfinite(v).all(axis=1)]
    n = np.linalg.norm(v, axis=1)
    v = v[n > 1e-9] / n[n > 1e-9, None]
    if not len(v):
        return None, 0.0
    m = v.mean(axis=0)
    k = float(np.linalg.norm(m))
    return (m / k if k > 1e-9 else None), k


def cameras_up(rig: Rig) -> tuple[np.ndarray | None, float]:
    """(the world direction the cameras' images call up, their agreement 0–1): the mean of each camera's −y axis."""
    return _unit_mean(np.stack([-c.R[1] for c in rig.cameras]))


def performer_up(xyz: np.ndarray, joints: list[str]) -> tuple[np.ndarray | None, float, int]:
    """(the direction from the performer's ankles (else knees, else hips) to their shoulders, averaged over the
    frames that have both, the agreement 0–1 over those frames, how many). xyz: (F, K, 3) or (F, P, K, 3)."""
    xyz = np.asarray(xyz, float)
    xyz = xyz.reshape(-1, *xyz.shape[-2:])
    if not all(n in joints for n in TOP):
        return None, 0.0, 0
    top = xyz[:, [joints.index(n) for n in TOP]].mean(axis=1)
    for pair in BOTTOMS:
        if all(n in joints for n in pair):
            v = top - xyz[:, [joints.index(n) for n in pair]].mean(axis=1)
            ok = np.isfinite(v).all(axis=1)
            if ok.sum() >= 10:
                up, agree = _unit_mean(v[ok])
                return up, agree, int(ok.sum())
    return None, 0.0, 0


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip(np.dot(a, b), -1.0, 1.0))))


def rotation_to_z(up: np.ndarray) -> np.ndarray:
    """(3, 3) the smallest rotation taking the unit vector ``up`` to +Z (about X by 180° when up is −Z)."""
    z = np.array([0.0, 0.0, 1.0])
    axis = np.cross(up, z)
    s, c = float(np.linalg.norm(axis)), float(np.dot(up, z))
    if s < 1e-12:
        return np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])
    k = axis / s
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + s * K + (1 - c) * K @ K


def floor_height(xyz: np.ndarray) -> float | None:
    """The floor's height under points (F, ..., 3), Z up: the 2nd percentile over the frames of each frame's lowest
    point (None without a finite one). The fit's floor (a turned world shifted to it) and the retarget's (the root
    scaled about it)."""
    z = np.asarray(xyz, float)[..., 2].reshape(len(xyz), -1)
    low = np.min(np.where(np.isfinite(z), z, np.inf), axis=1)
    low = low[np.isfinite(low)]
    return float(np.percentile(low, 2)) if low.size else None


def world_turn(rig: Rig, xyz: np.ndarray, joints: list[str], max_tilt_deg: float = 45.0,
               snap_deg: float = 2.0) -> tuple[np.ndarray | None, dict]:
    """(Q, what was seen): the rotation to apply to the world (x ↦ Q x) so that up is +Z, or None to keep it.
    Turned only when the cameras agree on an up (agreement ≥ 0.5), the performer's up is consistent over the
    take (≥ 0.5), the two are within ``max_tilt_deg`` of each other and both more than ``max_tilt_deg`` from +Z.
    Up is then the performer's (their posture's lean included: 1.3° on CMU 01_01's walk), or the world axis
    within ``snap_deg`` of it (calibration tools' conventions are axis-aligned: a Y-up world turns by exactly
    90°)."""
    cam, cam_agree = cameras_up(rig)
    per, per_agree, frames = performer_up(xyz, joints)
    z = np.array([0.0, 0.0, 1.0])
    info = {"cameras_up": None if cam is None else cam.round(4).tolist(), "cameras_agree": round(cam_agree, 3),
            "performer_up": None if per is None else per.round(4).tolist(), "performer_agree": round(per_agree, 3),
            "performer_frames": frames, "turned_deg": 0.0}
    if cam is None or per is None or cam_agree < 0.5 or per_agree < 0.5:
        info["why"] = "no clear up from the cameras or the performer: the world is kept"
        return None, info
    tilt_cam, tilt_per, between = _angle(cam, z), _angle(per, z), _angle(cam, per)
    info |= {"cameras_tilt_deg": round(tilt_cam, 2), "performer_tilt_deg": round(tilt_per, 2)}
    if tilt_per <= max_tilt_deg or tilt_cam <= max_tilt_deg or between > max_tilt_deg:
        info["why"] = ("up is Z" if tilt_per <= max_tilt_deg and tilt_cam <= max_tilt_deg else
                       "the cameras and the performer disagree on up: the world is kept")
        return None, info
    snapped = [a for a in AXES if _angle(a, per) <= snap_deg]
    up = snapped[0] if snapped else per
    info["up_from"] = "the performer's body" + (", snapped to an axis" if snapped else "")
    Q = rotation_to_z(up)
    info |= {"up": up.round(4).tolist(), "turned_deg": round(_angle(up, z), 2),
             "why": "the cameras and the performer agree that up is not Z"}
    return Q, info
