"""The judges of a refined rig: the robust triangulation of observations through a rig (on normal terms,
undistorted once for several rigs of the same intrinsics) and the median reprojection error over every
detection, overall and per camera (used by :mod:`mocap.stages.rig_refine`)."""

from __future__ import annotations

import numpy as np

from mocap.geometry.normal_terms import finite, robust_points
from mocap.geometry.triangulation import normalise_observations, reprojection_errors
from mocap.types import Rig


def heldout_error(rig: Rig, uv: np.ndarray, max_reproj_px: float, xn: np.ndarray | None = None,
                  pairs: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[float, dict[str, float]]:
    """Median reprojection error (px) over every detection of uv (N, C, 2) after robust triangulation
    through ``rig``, and per camera. ``xn``: uv undistorted and normalised by ``rig``'s intrinsics, when
    known (the given and the refined rig share them unless the intrinsics are refined); ``pairs``: the camera
    pairs its consensus search tries (None: all)."""
    return median_error(rig, points3d(rig, uv, max_reproj_px, xn, pairs), uv)


def points3d(rig: Rig, uv: np.ndarray, max_reproj_px: float, xn: np.ndarray | None = None,
              pairs: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """(N, 3) the robust triangulation of uv (N, C, 2) through ``rig``
    (:func:`~mocap.geometry.triangulation.triangulate`'s, on normal terms: ``xn`` undistorted once for
    several rigs of the same intrinsics; its consensus search over ``pairs``, None: every camera pair)."""
    xn = normalise_observations(rig, uv) if xn is None else xn
    return robust_points(rig, xn, uv, finite(uv).astype(float), max_reproj_px, pairs=pairs)[0]


def same_intrinsics(a: Rig, b: Rig) -> bool:
    return all(np.array_equal(x.K, y.K) and np.array_equal(x.dist, y.dist) and x.model == y.model
               for x, y in zip(a.cameras, b.cameras, strict=True))


def median_error(rig: Rig, X: np.ndarray, uv: np.ndarray, e: np.ndarray | None = None
                 ) -> tuple[float, dict[str, float]]:
    """Median reprojection error (px) of points X (N, 3) over every detection of uv (N, C, 2) (a point
    behind a camera counts as 10⁴ px), and per camera. ``e`` (N, C): the reprojection errors when known."""
    seen = finite(uv)
    e = reprojection_errors(rig, X, uv) if e is None else e
    e = np.where(seen & finite(X)[:, None], e, np.nan)
    e = np.where(seen & ~np.isfinite(e) & finite(X)[:, None], 1e4, e)  # behind a camera
    per = {n: float(np.nanmedian(e[:, c])) if np.isfinite(e[:, c]).any() else float("nan")
           for c, n in enumerate(rig.names)}
    return (float(np.nanmedian(e)) if np.isfinite(e).any() else float("nan")), per
