"""The observations of :mod:`mocap.optim.refine`, kept only where they exist.

A joint missing from a view (a hand the detector did not find, a dropout, a joint out of the image) costs
nothing: the projections, Jacobians and normal-equation terms are computed per camera and block of frames
on the gathered points that the camera observed, and scattered back into the (frames × joints) arrays. Real
takes miss hands in many views (a hand detector finds far fewer hands than there are hand slots), so the
hands' share of refine's time follows how often the hands were seen, not the keypoint count.
"""

from __future__ import annotations

import numpy as np

from mocap.geometry.camera import project, project_rows

LOWER = ((0, 0), (1, 1), (2, 2), (1, 0), (2, 1), (2, 0))  # a symmetric 3×3 block's entries the band holds


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


def rho_loss(s2: np.ndarray, loss: str, c: float) -> tuple[np.ndarray, np.ndarray]:
    """Loss value and derivative (IRLS weight) of squared normalised residuals."""
    if loss == "l2":
        return s2, np.ones_like(s2)
    c2 = c * c
    if loss == "cauchy":
        return c2 * np.log1p(s2 / c2), 1.0 / (1.0 + s2 / c2)
    s = np.sqrt(s2)
    big = s > c
    return np.where(big, 2 * c * s - c2, s2), np.where(big, c / np.maximum(s, 1e-300), 1.0)


def data_cost(cameras, blocks, X: np.ndarray, inv_var: np.ndarray, loss: str, c: float) -> float:
    """Σ w · ρ(|r|² / σ²) over the observations of ``blocks`` (:meth:`Observations.weighted`) at X (T, J, 3);
    ``inv_var`` (C, J): 1/σ² per camera and joint. An observation behind its camera costs 1e12."""
    Xf = X.reshape(-1, 3)
    total = 0.0
    for cam, idx, joints, uv_obs, w in blocks:
        r = project(cameras[cam], np.take(Xf, idx, axis=0)) - uv_obs
        s2 = (r[:, 0] ** 2 + r[:, 1] ** 2) * inv_var[cam][joints]
        finite = np.isfinite(s2)
        rho, _ = rho_loss(np.where(finite, s2, 0.0), loss, c)
        total += float(w @ rho) + np.count_nonzero(~finite) * 1e12
    return total


def normal_terms(cameras, blocks, X: np.ndarray, inv_var: np.ndarray, loss: str, c: float) -> np.ndarray:
    """Gradient and normal blocks of the observations of ``blocks`` at X (T, J, 3) (IRLS weights for a robust
    ``loss``; ``inv_var`` (C, J) as :func:`data_cost`'s): (9, T·J), per point the gradient (3) then the
    :data:`LOWER` entries of its 3×3 block (6).
    Cameras are visited one block at a time, so that no (T, C, J, 2, 3) Jacobian is ever stored."""
    n = X.shape[0] * X.shape[1]
    Xf = X.reshape(n, 3)
    acc = np.zeros((9, n))
    for cam, idx, joints, uv_obs, w in blocks:
        uv, Jp = project_rows(cameras[cam], np.take(Xf, idx, axis=0))  # (2, m), (2, 3, m)
        r0, r1 = uv[0] - uv_obs[:, 0], uv[1] - uv_obs[:, 1]
        iv = inv_var[cam][joints]
        s2 = (r0 * r0 + r1 * r1) * iv
        finite = np.isfinite(s2)
        if loss == "l2":
            W = w * iv
        else:
            _, drho = rho_loss(np.where(finite, s2, 0.0), loss, c)
            W = w * drho * iv
        if not finite.all():  # behind the camera: no derivative
            W = np.where(finite, W, 0.0)
            Jp[:, :, ~finite] = 0.0
            r0, r1 = (np.where(finite, x, 0.0) for x in (r0, r1))
        J0, J1 = Jp  # (3, m) each
        WJ0, WJ1 = J0 * W, J1 * W
        vals = np.empty((9, idx.size))
        np.multiply(WJ0, r0, out=vals[:3])
        vals[:3] += WJ1 * r1
        for e, (i, k) in enumerate(LOWER):
            np.multiply(WJ0[i], J0[k], out=vals[3 + e])
            vals[3 + e] += WJ1[i] * J1[k]
        # a scatter-add by index (bincount: faster than acc[:, idx] += vals) over the block's own span of points
        # only: a bincount over all T·J points per block made each call quadratic in the frames (a block is
        # `chunk` frames of one camera; a call at 20,000 frames took 14× one at 5,000)
        lo, hi = int(idx.min()), int(idx.max()) + 1
        for e in range(9):
            acc[e, lo:hi] += np.bincount(idx - lo, vals[e], hi - lo)
    return acc
