"""Which camera anchors the refined rig, and where the refined rig is put in the world.

The adjustment (:mod:`mocap.optim.rig_refine`) keeps one camera's given pose (its gauge) and holds the others
near theirs (its prior). When that camera is the one that was bumped, every other camera is refined into its
wrong frame: on a 6-camera take whose first camera was turned 1.4° and moved 8 cm, the joints came out 155 mm
from where the given rig's other five cameras put them. So the reference is chosen from the cameras: those
that kept their given poses relative to one another (:func:`mocap.geometry.align.consistent_cameras`, each
within ``tol_deg`` and ``tol_m`` once the whole rig's frame is matched) are taken as right, and the
refined rig is put in the world by the similarity placing them on their given poses (rotation from their
orientations, scale and position from their centres). When no two cameras agree (every camera moved, or a
2-camera rig that disagrees), the camera the adjustment held (the first, as before) keeps its given pose and the
scale comes from every camera's mean distance to it (:func:`mocap.geometry.align.mean_distance_scale`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mocap.geometry.align import (
    consistent_cameras,
    mean_distance_scale,
    scaled_about_first,
    similarity_errors,
    similarity_onto,
    with_similarity,
)
from mocap.geometry.units import camera_spread
from mocap.optim.rig_refine import RigRefineConfig, RigRefineSummary, refine_rig
from mocap.types import Rig


def _order(rig: Rig, order: list[int]) -> Rig:
    return type(rig)(tuple(rig.cameras[k] for k in order))


def refine_rig_about(ref: int, rig: Rig, uv: np.ndarray, X0: np.ndarray, cfg: RigRefineConfig,
                     start: Rig | None = None) -> tuple[Rig, np.ndarray, RigRefineSummary]:
    """:func:`~mocap.optim.rig_refine.refine_rig` with camera ``ref`` as the reference (its given pose kept)
    instead of the first: the cameras are put in that order for the solve and back after it."""
    if ref == 0:
        return refine_rig(rig, uv, X0, cfg, start)
    order = [ref] + [k for k in range(len(rig.cameras)) if k != ref]
    back = np.argsort(order)
    refined, X, summary = refine_rig(_order(rig, order), np.asarray(uv)[:, order], X0, cfg,
                                     None if start is None else _order(start, order))
    res = summary.residuals_px
    return _order(refined, list(back)), X, dataclasses.replace(summary, residuals_px=None if res is None
                                                               else res[:, back])


def anchor(rig: Rig, given: Rig, tol_deg: float, tol_m: float) -> tuple[np.ndarray, int]:
    """(the cameras that agree with their given poses (indices; empty when no two do), the reference camera for
    the adjustment: among them, the one nearest its given pose (0 when none agree or when the first does))."""
    agree = consistent_cameras(rig, given, tol_deg, tol_m)
    if agree.size == 0 or 0 in agree:
        return agree, 0
    deg, m = similarity_errors(rig, given, *similarity_onto(rig, given, agree))
    return agree, int(agree[np.argmin(deg[agree] / tol_deg + m[agree] / tol_m)])


def placed(rig: Rig, X: np.ndarray, given: Rig, agree: np.ndarray, held: int = 0) -> tuple[Rig, np.ndarray]:
    """``rig`` and its points in the world: the similarity placing the cameras ``agree`` on their given poses
    (two or more), else scaled about camera ``held`` (the adjustment's reference: its given pose kept) to the
    given rig's mean distance to it. Where the agreeing cameras stand close together (their spread under half
    the rig's: two on one stand), their few centres would set the scale on a short baseline: it comes from every
    camera's mean distance to the rig's centre instead."""
    if agree.size >= 2:
        s, Q, t = similarity_onto(rig, given, agree)
        if camera_spread(given.subset([given.names[k] for k in agree])) < 0.5 * camera_spread(given):
            c, g = (np.stack([cam.center for cam in r.cameras]) for r in (rig, given))
            s = float(np.linalg.norm(g - g.mean(0), axis=1).mean() / np.linalg.norm(c - c.mean(0), axis=1).mean())
            t = g[agree].mean(0) - s * Q @ c[agree].mean(0)
        return with_similarity(rig, X, s, Q, t)
    return scaled_about_first(rig, X, mean_distance_scale(rig, given, held), held)
