"""The observations of :mod:`mocap.optim.refine`, kept only where they exist.

A joint missing from a view (a hand the detector did not find, a dropout, a joint out of the image) costs
nothing: the projections, Jacobians and normal-equation terms are computed per camera and block of frames
on the gathered points that the camera observed, and scattered back into the (frames × joints) arrays. Real
takes miss hands in many views (a hand detector finds far fewer hands than there are hand slots), so the
hands' share of refine's time follows how often the hands were seen, not the keypoint count.
"""

from __future__ import annotations

import numpy as np

from mocap.geometry.camera import project


class Observations:
    """Observed pixels ``uv`` (T, C, J, 2) where ``mask`` (T, C, J) holds, stored per camera and block of
    ``chunk`` frames (the temporaries of a block stay in cache): ``blocks`` = [(camera, flat indices into
    the T·J points, their pixels (n, 2))]; a point of a block is observed once, so a scatter by its indices
    never collides."""

    def __init__(self, uv: np.ndarray, mask: np.ndarray, chunk: int):
        T, C, J = mask.shape
        if uv.shape != (T, C, J, 2):
            raise ValueError(f"Observations: uv {uv.shape} does not match the mask {mask.shape} "
                             "(expected (T, C, J, 2))")
        self.shape = (T, C, J)
        per_camera = np.moveaxis(uv, 1, 0).reshape(C, T * J, 2)
        self.blocks: list[tuple[int, np.ndarray, np.ndarray]] = []
        for t0 in range(0, T, chunk):
            for c in range(C):
                idx = t0 * J + np.flatnonzero(mask[t0:t0 + chunk, c])
                if idx.size:
                    self.blocks.append((c, idx, per_camera[c, idx]))

    def weighted(self, weights: np.ndarray) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """The blocks restricted to the observations of positive weight (T, C, J): [(camera, indices, their
        joints, pixels, weights)] (a pass's Jacobians are needed only there)."""
        T, C, J = self.shape
        per_camera = np.moveaxis(weights, 1, 0).reshape(C, T * J)
        out = []
        for c, idx, uv in self.blocks:
            w = per_camera[c, idx]
            use = w > 0
            if not use.all():
                idx, uv, w = idx[use], uv[use], w[use]
            if idx.size:
                out.append((c, idx, idx % J, uv, w))
        return out

    def residuals(self, cameras, X: np.ndarray) -> np.ndarray:
        """Projection of X (T, J, 3) minus the observation, (T, C, J, 2) pixels; NaN where not observed."""
        T, C, J = self.shape
        r = np.full((C, T * J, 2), np.nan)
        Xf = X.reshape(T * J, 3)
        for c, idx, uv in self.blocks:
            r[c, idx] = project(cameras[c], np.take(Xf, idx, axis=0)) - uv
        return np.moveaxis(r.reshape(C, T, J, 2), 0, 1)
