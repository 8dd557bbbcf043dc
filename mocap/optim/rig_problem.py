"""The camera refinement's least-squares problem (:func:`mocap.optim.rig_refine.refine_rig`): residuals, the
Jacobians stored camera-major, the Schur complement that eliminates the points, the robust weights and the
prior, for :mod:`mocap.optim.lm`'s Levenberg-Marquardt. See :mod:`mocap.optim.rig_refine` for what is free,
the gauge and the cost."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mocap.geometry.camera import project
from mocap.geometry.linalg import inv3
from mocap.geometry.normal_terms import distance, finite
from mocap.geometry.rotations import axis_angle_to_matrix
from mocap.types import Camera, Rig

if TYPE_CHECKING:
    from mocap.optim.rig_refine import RigRefineConfig


@dataclass(frozen=True)
class _View:
    """A camera as :func:`~mocap.geometry.camera.project` needs it (:class:`Camera` validates on creation,
    too slow for every cost evaluation)."""

    K: np.ndarray
    dist: np.ndarray
    cam_from_world: np.ndarray
    model: str

    @property
    def R(self) -> np.ndarray:
        return self.cam_from_world[:3, :3]

    @property
    def t(self) -> np.ndarray:
        return self.cam_from_world[:3, 3]


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a × b over the last axis (broadcast), written out: np.cross and batched products cost more here."""
    return np.stack([a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1], a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2],
                     a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]], axis=-1)


class _Problem:
    """x = [camera parameters (C, P) flattened, points (N, 3) flattened]; P = 6 (+3 with intrinsics)."""

    def __init__(self, rig: Rig, uv: np.ndarray, observed: np.ndarray, cfg: RigRefineConfig):
        self.rig, self.uv, self.cfg = rig, uv, cfg
        self.C, self.N = len(rig), uv.shape[0]
        self.P = 9 if cfg.intrinsics else 6
        self.R0 = np.stack([c.R for c in rig.cameras])
        self.C0 = np.stack([c.center for c in rig.cameras])
        d = np.linalg.norm(self.C0 - self.C0[0], axis=1)
        self.far = int(np.argmax(d))
        self.distance = float(d[self.far])
        self.uvt = np.ascontiguousarray(uv.transpose(1, 0, 2))  # (C, N, 2): camera-major, as projected
        self.keep = observed.copy()
        self.keept = self.keep.T
        self.robust, self.sigma = True, 1.0
        self._last: tuple[np.ndarray, np.ndarray] | None = None  # the last x projected and its pixels
        self._frozen: tuple | None = None  # the first linearisation of a least-squares pass (frozen_jacobian)
        self._factor: tuple | None = None  # (its blocks, μ, Hpp⁻¹, Hcp·Hpp⁻¹, the Schur complement) once solved

    # ----- parameters -----
    def split(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = self.C * self.P
        return x[:n].reshape(self.C, self.P), x[n:].reshape(self.N, 3)

    def centres(self, cam: np.ndarray) -> np.ndarray:
        Cs = self.C0 + cam[:, 3:6]
        v = Cs[self.far] - self.C0[0]
        Cs[self.far] = self.C0[0] + self.distance * v / np.linalg.norm(v)
        Cs[0] = self.C0[0]
        return Cs

    def views(self, x: np.ndarray) -> list[_View]:
        """The cameras at ``x`` as projection needs them (no validation: this runs at every cost)."""
        cam, _ = self.split(x)
        Cs = self.centres(cam)
        out = []
        for c, base in enumerate(self.rig.cameras):
            R = self.R0[c] if c == 0 else axis_angle_to_matrix(cam[c, :3]) @ self.R0[c]
            T = np.eye(4)
            T[:3, :3], T[:3, 3] = R, -R @ Cs[c]
            K = base.K.copy()
            if self.cfg.intrinsics:
                K[:2, :2] *= np.exp(cam[c, 6])
                K[:2, 2] += cam[c, 7:9]
            out.append(_View(K, base.dist, T, base.model))
        return out

    def cameras(self, x: np.ndarray) -> list[Camera]:
        return [dataclasses.replace(base, K=v.K, cam_from_world=v.cam_from_world)
                for base, v in zip(self.rig.cameras, self.views(x), strict=True)]

    def rig_at(self, x: np.ndarray) -> Rig:
        return Rig(tuple(self.cameras(x)))

    def basis(self, x: np.ndarray) -> np.ndarray:
        """(C, P, P): maps each camera's reduced update onto its parameters (gauge columns are zero)."""
        E = np.tile(np.eye(self.P), (self.C, 1, 1))
        E[0, :6, :6] = 0.0  # the reference camera's pose is fixed
        cam, _ = self.split(x)
        u = self.centres(cam)[self.far] - self.C0[0]
        u /= np.linalg.norm(u)
        a = np.eye(3)[np.argmin(np.abs(u))]
        t1 = np.cross(u, a)
        t1 /= np.linalg.norm(t1)
        t2 = np.cross(u, t1)
        E[self.far, 3:6, 3:6] = np.stack([t1, t2, np.zeros(3)], axis=1)  # centre moves on the sphere
        return E

    # ----- residuals and cost -----
    def _project(self, x: np.ndarray, jacobian: bool = False):
        """Pixels (C, N, 2) of every point in every camera; with ``jacobian`` also d(pixel)/d(point)
        (C, N, 2, 3) and d(pixel)/d(camera parameters) (C, N, 2, P), camera-major: the normal blocks are
        then products of contiguous slices (no copies of transposed arrays)."""
        if not jacobian and self._last is not None and np.array_equal(self._last[0], x):
            return self._last[1]  # the schedule asks the residuals and the cost at the same x
        _, X = self.split(x)
        cams = self.views(x)
        if not jacobian:
            proj = np.stack([project(c, X) for c in cams])
            self._last = (x.copy(), proj)
            return proj
        proj = np.empty((self.C, self.N, 2))
        Jx = np.empty((self.C, self.N, 2, 3))
        Jc = np.zeros((self.C, self.N, 2, self.P))
        for c, cam in enumerate(cams):
            p, J = project(cam, X, jacobian=True)
            R = cam.R
            Jcam = (J.reshape(-1, 3) @ R.T).reshape(J.shape)  # d(pixel)/d(camera-frame point); one product
            Xc = X @ R.T + cam.t
            proj[c], Jx[c] = p, J
            Jc[c, :, :, :3] = _cross(Xc[:, None, :], Jcam)  # −Jcam · [Xc]ₓ row by row (batched 3×3 products
            # in numpy are slower)
            Jc[c, :, :, 3:6] = -J
            if self.cfg.intrinsics:
                Jc[c, :, :, 6] = p - cam.K[:2, 2]
                Jc[c, :, 0, 7] = 1.0
                Jc[c, :, 1, 8] = 1.0
        self._last = (x.copy(), proj)
        return proj, Jx, Jc

    def residual_norms(self, x: np.ndarray) -> np.ndarray:
        """(N, C) residual norms (px)."""
        d = self._project(x) - self.uvt
        return distance(d[..., 0], d[..., 1]).T

    def set_pass(self, robust: bool, keep: np.ndarray, sigma: float) -> None:
        self.robust, self.keep, self.sigma = robust, keep.copy(), float(sigma)
        self.keept = self.keep.T
        self._frozen = self._factor = None

    def update(self, x: np.ndarray) -> bool:
        return False  # nothing is held between steps: the cost of an accepted step stands

    def _rho(self, s2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not self.robust:
            return s2, np.ones_like(s2)
        c2 = self.cfg.loss_scale ** 2
        return c2 * np.log1p(s2 / c2), 1.0 / (1.0 + s2 / c2)

    def _s2(self, r: np.ndarray) -> np.ndarray:
        s2 = (r[..., 0] ** 2 + r[..., 1] ** 2) / self.sigma**2
        return np.where(np.isfinite(s2), s2, 1e6)  # behind a camera: as bad as a gross outlier

    def _prior(self) -> np.ndarray:
        """(P,) inverse variances of the prior on each camera parameter (zeros: none)."""
        w = np.zeros(self.P)
        if self.cfg.prior_deg:
            w[:3] = 1.0 / np.radians(self.cfg.prior_deg) ** 2
        if self.cfg.prior_m:
            w[3:6] = 1.0 / self.cfg.prior_m**2
        return w

    def cost(self, x: np.ndarray) -> float:
        s2 = self._s2(self._project(x) - self.uvt)
        cam, _ = self.split(x)
        return float(np.sum(self._rho(s2)[0][self.keept]) + np.sum(cam**2 * self._prior()))

    def linearize(self, x: np.ndarray):
        """The normal blocks: Hcc (C, P, P) per camera (the only camera blocks the Schur complement
        needs: no observation couples two cameras), Hpp (N, 3, 3), Hcp (C, P, N, 3), gradients gc (C, P) and
        gp (N, 3), in the reduced camera parameters (:meth:`basis`)."""
        if self._frozen is not None:  # a later step of a least-squares pass with the Jacobian frozen
            return self._regradient(x)
        proj, Jx, Jc = self._project(x, jacobian=True)
        r = proj - self.uvt  # (C, N, 2)
        s2 = self._s2(r)
        w = np.where(self.keept & finite(r), self._rho(s2)[1] / self.sigma**2, 0.0)  # (C, N)
        r = np.where(w[..., None] > 0, r, 0.0)
        if not np.isfinite(proj).all():  # NaN behind a camera: out of every sum (elsewhere w = 0 suffices)
            Jx = np.where(w[..., None, None] > 0, Jx, 0.0)
            Jc = np.where(w[..., None, None] > 0, Jc, 0.0)
        C, N, P = self.C, self.N, self.P
        Jcw = Jc * w[..., None, None]
        Hcc = Jcw.reshape(C, 2 * N, P).swapaxes(1, 2) @ Jc.reshape(C, 2 * N, P)
        gc = (Jcw.reshape(C, 2 * N, P).swapaxes(1, 2) @ r.reshape(C, 2 * N, 1))[..., 0]
        Jxp = Jx.transpose(1, 0, 2, 3).reshape(N, 2 * C, 3)  # point-major: one 3×3 product per point
        Jxpw = (Jxp * w.T.repeat(2, axis=1)[..., None]).swapaxes(1, 2)
        Hpp = Jxpw @ Jxp
        gp = (Jxpw @ r.transpose(1, 0, 2).reshape(N, 2 * C, 1))[..., 0]  # (a sum over two axes costs more)
        Hcp = Jcw.swapaxes(-1, -2) @ Jx  # (C, N, P, 3)
        E = self.basis(x)
        Hcc = E.transpose(0, 2, 1) @ Hcc @ E  # into the reduced parameters (gauge columns zero)
        gc = np.einsum("cqp,cq->cp", E, gc)
        for c in np.flatnonzero(np.any(np.eye(P) != E, axis=(1, 2))):  # the reference and the scale camera
            Hcp[c] = E[c].T @ Hcp[c]
        Hcp = np.ascontiguousarray(Hcp.transpose(0, 2, 1, 3))  # (C, P, N, 3): S is then one matrix product
        prior = self._prior()
        if prior.any():
            cam, _ = self.split(x)
            Hcc += np.einsum("cpq,q,cqr->cpr", E.transpose(0, 2, 1), prior, E)
            gc += np.einsum("cqp,cq->cp", E, prior * cam)
        if self.cfg.frozen_jacobian and not self.robust:
            self._frozen = (Hcc, Hpp, Hcp, E, Jcw, Jxpw, w > 0)
        return Hcc, Hpp, Hcp, gc, gp, E

    def _regradient(self, x: np.ndarray):
        """The normal blocks of the pass's first linearisation with the gradient at ``x`` (the residuals
        there, the Jacobians of then): a chord step, one projection instead of a Jacobian and its products."""
        Hcc, Hpp, Hcp, E, Jcw, Jxpw, used = self._frozen
        C, N, P = self.C, self.N, self.P
        r = self._project(x) - self.uvt
        r = np.where((used & finite(r))[..., None], r, 0.0)
        gc = np.einsum("cqp,cq->cp", E, (Jcw.reshape(C, 2 * N, P).swapaxes(1, 2) @ r.reshape(C, 2 * N, 1))[..., 0])
        gp = (Jxpw @ r.transpose(1, 0, 2).reshape(N, 2 * C, 1))[..., 0]
        prior = self._prior()
        if prior.any():
            cam, _ = self.split(x)
            gc += np.einsum("cqp,cq->cp", E, prior * cam)
        return Hcc, Hpp, Hcp, gc, gp, E

    def solve(self, lin, mu: float) -> tuple[np.ndarray, int]:
        """The damped step; a chord step (:meth:`_regradient`) at a damping no larger than their last solve's
        reuses its Schur complement and Hpp⁻¹ (that damping); a larger one (a rejected step) solves again."""
        Hcc, Hpp, Hcp, gc, gp, E = lin
        C, P, N = self.C, self.P, self.N
        f = self._factor
        if f is not None and f[0] is Hcc and mu <= f[1]:
            Hinv, A, S, fixed = f[2:]
        else:
            Hinv, A, S, fixed = self._schur(Hcc, Hpp, Hcp, mu)
            if self._frozen is not None and self._frozen[0] is Hcc:
                self._factor = (Hcc, mu, Hinv, A, S, fixed)
        rhs = (-gc + (A.reshape(C * P, 3 * N) @ gp.ravel()).reshape(C, P)).ravel()
        rhs[fixed] = 0.0
        dc = np.linalg.solve(S, rhs).reshape(C, P)
        b = -gp - (dc.reshape(1, C * P) @ Hcp.reshape(C * P, 3 * N)).reshape(N, 3)
        dp = np.einsum("nij,nj->ni", Hinv, b)
        dc_full = np.einsum("cpq,cq->cp", E, dc)
        return np.concatenate([dc_full.ravel(), dp.ravel()]), 0

    def _schur(self, Hcc: np.ndarray, Hpp: np.ndarray, Hcp: np.ndarray, mu: float) -> tuple:
        """Damped Hpp⁻¹ (N, 3, 3), Hcp·Hpp⁻¹ (C, P, N, 3), the reduced camera system S (C·P, C·P) with its gauge
        rows and columns fixed, and those (C·P,) bool."""
        C, P, N = self.C, self.P, self.N
        dpp = np.einsum("nii->ni", Hpp)
        Hpp_d = Hpp + np.einsum("ni,ij->nij", mu * dpp + 1e-12 * (1 + dpp.max(initial=0)), np.eye(3))
        Hinv = inv3(Hpp_d)  # not np.linalg.inv: see mocap.geometry.linalg
        A = np.ascontiguousarray((Hcp.transpose(0, 2, 1, 3) @ Hinv[None]).transpose(0, 2, 1, 3))  # Hcp·Hpp⁻¹
        S = -(A.reshape(C * P, 3 * N) @ Hcp.reshape(C * P, 3 * N).T)  # one product over points and axes
        for c in range(C):
            blk = Hcc[c] + mu * np.diag(np.diag(Hcc[c]))
            S[c * P:(c + 1) * P, c * P:(c + 1) * P] += blk
        fixed = np.diag(S) <= 1e-12 * max(np.abs(np.diag(S)).max(), 1e-300)
        S[fixed, :], S[:, fixed] = 0.0, 0.0
        S[fixed, fixed] = 1.0
        return Hinv, A, S, fixed
