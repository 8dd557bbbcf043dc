"""The length unit a rig was calibrated in, from its performer (and its cameras).

The project works in metres. A calibration made elsewhere may be in millimetres or centimetres: Anipose and
FreeMoCap give the board's square in the unit the user chose (often millimetres), and their rigs come out in
it. Read as metres, such a rig gives a performer a kilometre tall: refine runs ten times longer and fails, the fit
fails, and the report speaks of 89 m errors. The performer says which unit it is: shoulders to ankles are
1.0–1.5 m on an adult (0.5–0.8 m shoulders to hips), factors of ten away from the other units' readings.
"""

from __future__ import annotations

import numpy as np

from mocap.geometry.normal_terms import robust_points
from mocap.geometry.triangulation import normalise_observations
from mocap.types import Keypoints2D, Rig

UNITS = {"m": 1.0, "cm": 0.01, "mm": 0.001}  # metres per unit
# (top pair, bottom pair, their distance on an adult in metres)
SPANS = ((("left_shoulder", "right_shoulder"), ("left_ankle", "right_ankle"), 1.25),
         (("left_shoulder", "right_shoulder"), ("left_hip", "right_hip"), 0.55))
MAX_FRAMES = 60  # frames triangulated (evenly spread)


def performer_span(rig: Rig, kp: Keypoints2D, names: list[str], min_score: float = 0.2) -> tuple[float, float] | None:
    """(the median distance in the rig's units between the performer's shoulders and ankles (else hips), the
    same on an adult in metres), from the robust triangulation of up to :data:`MAX_FRAMES` frames of the first
    detection slot (``names``: the keypoints' joint names); None when no span is seen in 5 frames."""
    F, C = kp.shape[:2]
    frames = np.arange(0, F, max(1, F // MAX_FRAMES))
    xy = kp.xy[frames, :, 0]  # (n, C, J, 2)
    s = kp.score[frames, :, 0]
    w = np.where(np.isfinite(s) & (s >= min_score) & np.isfinite(xy).all(-1), 1.0, 0.0)
    for top, bottom, metres in SPANS:
        if not all(n in names for n in top + bottom):
            continue
        idx = [names.index(n) for n in top + bottom]
        uv = np.moveaxis(xy[:, :, idx], 2, 1).reshape(-1, C, 2)  # (n·4, C, 2)
        ww = np.moveaxis(w[:, :, idx], 2, 1).reshape(-1, C)
        X = robust_points(rig, normalise_observations(rig, uv), uv, ww, 15.0)[0].reshape(len(frames), 4, 3)
        d = np.linalg.norm(X[:, :2].mean(1) - X[:, 2:].mean(1), axis=1)
        d = d[np.isfinite(d)]
        if d.size >= 5:
            return float(np.median(d)), metres
    return None


def likely_unit(span: float, metres: float) -> str | None:
    """The unit in which ``span`` rig units is the adult's ``metres`` (within a factor of 3), or None."""
    best = min(UNITS, key=lambda u: abs(np.log10(span * UNITS[u] / metres)))
    return best if abs(np.log10(span * UNITS[best] / metres)) < np.log10(3) else None


def camera_spread(rig: Rig) -> float:
    """RMS distance of the camera centres from their mean, in the rig's units."""
    c = np.stack([cam.center for cam in rig.cameras])
    return float(np.sqrt(((c - c.mean(0)) ** 2).sum(1).mean()))
