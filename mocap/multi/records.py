"""Per person of a take of several: what the triangulate stage records of each (``info["persons"]`` of
``points3d/triangulated.h5``), and whether its reconstruction is usable (mixed identities are not)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from mocap.persons import person_name
from mocap.types import Keypoints2D, Points3D, Rig

if TYPE_CHECKING:
    from mocap.stages.triangulate import Config

log = logging.getLogger("mocap.stages.triangulate")


def person_records(points: Points3D, kp: Keypoints2D, rig: Rig, association: dict, cfg: Config) -> list[dict]:
    """Per person: name, frames present, first/last frame, and the quality of its reconstruction.

    ``reproj_median_px``: the median reprojection error of its triangulated joints; ``outliers``: the
    share of the person's detected keypoints farther than ``max_reproj_px`` from its reconstruction.
    ``usable`` is false when either is far above what one person's detections give (half the threshold;
    a quarter of them): the detections of several people mixed into one identity. The downstream stages
    read ``usable``."""
    from mocap.stages.triangulate import observation_weights

    limit = 0.5 * (cfg.max_reproj_px or 15.0)
    available = observation_weights(kp, cfg.min_score) > 0  # (F, C, P, J)
    out = []
    people = association.get("people", [])
    for p in range(points.xyz.shape[1]):
        seen = np.isfinite(points.xyz[:, p]).all(axis=-1)
        frames = np.flatnonzero(seen.any(axis=1))
        err = points.reproj_err[:, p][seen]
        med = float(np.median(err)) if err.size else None
        uv = np.moveaxis(rig.project(points.xyz[:, p]), 0, 1)  # (F, C, J, 2)
        d = np.linalg.norm(uv - kp.xy[:, :, p], axis=-1)
        judged = available[:, :, p] & np.isfinite(d)
        outliers = float(np.mean(d[judged] > (cfg.max_reproj_px or 15.0))) if judged.any() else 1.0
        rec = {"name": person_name(p), "frames_present": int(len(frames)),
               "first": int(frames[0]) if len(frames) else None, "last": int(frames[-1]) if len(frames) else None,
               "reproj_median_px": med, "outliers": outliers,
               "usable": bool(med is not None and med <= limit and outliers <= 0.25)}
        if p < len(people):
            rec["association"] = people[p]
        if not rec["usable"]:
            log.warning("%s: median reprojection error %s px (limit %.1f px), %.0f%% of its keypoints far from it: "
                        "identities may be mixed, not usable", rec["name"], "n/a" if med is None else f"{med:.1f}",
                        limit, 100 * outliers)
        out.append(rec)
    return out
