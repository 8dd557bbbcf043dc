"""Epipolar geometry between two cameras of a rig: essential matrices and point-to-line distances in pixels."""

from __future__ import annotations

import numpy as np

from mocap.geometry.camera import pixels_to_normalised
from mocap.geometry.normal_terms import finite
from mocap.types import Rig


def normalised(rig: Rig, c: int, xy: np.ndarray) -> np.ndarray:
    """Homogeneous undistorted normalised coordinates (..., 3) of camera c's pixels (..., 2)."""
    out = np.full(xy.shape[:-1] + (3,), np.nan)
    ok = finite(xy)  # the missing ones stay NaN: undistorted only where known (the iteration's NaN-aware
    out[ok, :2] = pixels_to_normalised(rig[c], xy[ok])  # maxima cost a copy of every array)
    out[..., 2] = 1.0
    return out


def essential(rig: Rig, i: int, j: int) -> np.ndarray:
    T = rig[j].cam_from_world @ np.linalg.inv(rig[i].cam_from_world)
    R, t = T[:3, :3], T[:3, 3]
    return np.array([[0, -t[2], t[1]], [t[2], 0, -t[0]], [-t[1], t[0], 0]]) @ R


def epipolar_px(E: np.ndarray, ni: np.ndarray, nj: np.ndarray, focal: float) -> np.ndarray:
    line = ni @ E.T
    return np.abs(dot3(nj, line)) / np.hypot(line[..., 0], line[..., 1]) * focal


def dot3(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dot products over the last axis of three entries, written out (a sum over so short an axis costs
    several times as much)."""
    return a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1] + a[..., 2] * b[..., 2]
