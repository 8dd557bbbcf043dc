"""Every camera's view of several people: the detections a perfect detector would give (tests of mocap.multi)."""

from __future__ import annotations

import numpy as np

from mocap.types import Rig


def people_views(rig: Rig, truth: np.ndarray, score: float = 0.9) -> np.ndarray:
    """truth (F, N, J, 3) world keypoints of N people → detections (F, C, N, J, 3): pixels and ``score``
    (NaN pixels where a point is behind a camera)."""
    F, N, J, _ = truth.shape
    uv = np.moveaxis(rig.project(truth.reshape(F, N * J, 3)).reshape(len(rig), F, N, J, 2), 0, 1)
    return np.concatenate([uv, np.full(uv.shape[:-1] + (1,), score)], axis=-1)
