"""Full bundle adjustment of a rig from board observations.

Free: per camera the extrinsics (rotation vector, translation) and the intrinsics named in
``BundleConfig.free_intrinsics`` (fx, fy, cx, cy and the distortion terms); per board view its
pose. Fixed gauge: the reference camera's extrinsics; the scale comes from the board.
Cost: Σ ρ(|reprojection error|²) in pixels, a robust pass (Huber, as iteratively reweighted least
squares: weights from the residuals at the start of each step), then observations beyond
``outlier_sigma`` robust σ are dropped and the least-squares problem is solved again — the schedule of
:func:`mocap.optim.lm.robust_then_refit`, the driver shared with the trajectory refinement.
Solver: Levenberg-Marquardt (Marquardt scaling of the diagonal) on the normal equations with the board
poses eliminated (Schur complement), so each step solves one small dense system of size 15 × cameras.
Jacobians by central differences, evaluated for every observation at once.
Summary: iterations (damped steps tried), RMS before and after, per camera, rejected observations
and ``usable`` with the reason if not.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from mocap.geometry.camera import distort
from mocap.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from mocap.optim.lm import LMSettings, Schedule, robust_then_refit
from mocap.types import Camera

log = logging.getLogger(__name__)
INTRINSIC_SLOTS = ("fx", "fy", "cx", "cy", "d0", "d1", "d2", "d3", "d4")
DIST_NAMES = {"pinhole": ("k1", "k2", "p1", "p2", "k3"), "fisheye": ("k1", "k2", "k3", "k4")}
NC, NB = 15, 6  # parameters per camera, per board view


@dataclass(frozen=True)
class BundleConfig:
    free_intrinsics: tuple[str, ...] = ("fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2", "k3")
    loss_scale_px: float = 1.0  # Huber threshold of the robust pass
    outlier_sigma: float = 5.0
    max_iterations: int = 50  # linearisations per pass
    tolerance: float = 1e-10


@dataclass(frozen=True)
class Observations:
    """M corner observations: camera index, board-view index, corner index, pixel (M, 2)."""

    cam: np.ndarray
    view: np.ndarray
    corner: np.ndarray
    uv: np.ndarray


@dataclass(frozen=True)
class BundleSummary:
    iterations: int
    initial_rms_px: float
    final_rms_px: float
    rms_per_camera: dict = field(default_factory=dict)
    observations: int = 0
    rejected: int = 0
    seconds: float = 0.0
    usable: bool = False
    message: str = ""


def _pack(cameras: list[Camera]) -> np.ndarray:
    x = np.zeros((len(cameras), NC))
    for i, c in enumerate(cameras):
        x[i, :3], x[i, 3:6] = matrix_to_axis_angle(c.R), c.t
        x[i, 6:10] = c.K[0, 0], c.K[1, 1], c.K[0, 2], c.K[1, 2]
        x[i, 10 : 10 + c.dist.size] = c.dist
    return x


def _unpack(x: np.ndarray, cameras: list[Camera]) -> list[Camera]:
    out = []
    for i, c in enumerate(cameras):
        T = np.eye(4)
        T[:3, :3], T[:3, 3] = axis_angle_to_matrix(x[i, :3]), x[i, 3:6]
        K = np.array([[x[i, 6], c.K[0, 1], x[i, 8]], [0, x[i, 7], x[i, 9]], [0, 0, 1]])
        out.append(Camera(c.name, K, x[i, 10 : 10 + c.dist.size], T, c.size, c.model))
    return out


class _Problem:
    """The :class:`mocap.optim.lm.RobustProblem` of the driver: x is the cameras' parameters (C, NC)
    then the board poses (V, NB), flattened."""

    def __init__(self, cameras: list[Camera], obj: np.ndarray, obs: Observations,
                 free: np.ndarray | None = None, loss_scale: float = 1.0):
        self.cameras, self.obj, self.obs = cameras, obj, obs
        self.models = [c.model for c in cameras]
        self.skew = np.array([c.K[0, 1] for c in cameras])
        self.free = np.ones((len(cameras), NC), bool) if free is None else free
        self.loss_scale = loss_scale
        self.robust, self.keep = False, np.ones(len(obs.cam), bool)
        self.w = self.keep.astype(float)

    def split(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = self.free.size
        return x[:n].reshape(-1, NC), x[n:].reshape(-1, NB)

    # the driver's protocol
    def residual_norms(self, x: np.ndarray) -> np.ndarray:
        return np.linalg.norm(self.residuals(*self.split(x)), axis=1)

    def set_pass(self, robust: bool, keep: np.ndarray, sigma: float) -> None:
        self.robust, self.keep = robust, keep

    def update(self, x: np.ndarray) -> None:
        """IRLS weights of the robust pass (Huber) from the residuals at x; 1 in the final pass."""
        if self.robust:
            n = self.residual_norms(x)
            self.w = self.keep * np.minimum(1.0, self.loss_scale / np.maximum(n, 1e-12))
        else:
            self.w = self.keep * 1.0

    def cost(self, x: np.ndarray) -> float:
        return float(np.sum(self.w * self.residual_norms(x) ** 2))

    def linearize(self, x: np.ndarray):
        """Normal equations with the current weights: camera, board and cross blocks, gradients."""
        o, w, free = self.obs, self.w, self.free
        xc, xb = self.split(x)
        C, V = xc.shape[0], xb.shape[0]
        r = self.residuals(xc, xb)
        Jc, Jb = self.jacobians(xc, xb)
        Jc = Jc * free[o.cam][:, None, :]
        wJc, wJb = Jc * w[:, None, None], Jb * w[:, None, None]
        Hcc = np.zeros((C, NC, NC))
        np.add.at(Hcc, o.cam, np.einsum("mki,mkj->mij", wJc, Jc))
        Hbb = np.zeros((V, NB, NB))
        np.add.at(Hbb, o.view, np.einsum("mki,mkj->mij", wJb, Jb))
        Hcb = np.zeros((V, C, NC, NB))
        np.add.at(Hcb, (o.view, o.cam), np.einsum("mki,mkj->mij", wJc, Jb))
        gc = np.zeros((C, NC))
        np.add.at(gc, o.cam, np.einsum("mki,mk->mi", wJc, r))
        gb = np.zeros((V, NB))
        np.add.at(gb, o.view, np.einsum("mki,mk->mi", wJb, r))
        return Hcc, Hbb, Hcb, gc, gb

    def solve(self, lin, mu: float) -> tuple[np.ndarray, int]:
        """One damped Gauss-Newton step with the board poses eliminated."""
        Hcc, Hbb, Hcb, gc, gb = lin
        free = self.free
        C = Hcc.shape[0]
        Hcc = Hcc + mu * np.einsum("cii->ci", Hcc)[:, :, None] * np.eye(NC)
        for c in range(C):  # fixed parameters: identity rows keep the system regular, steps stay 0
            Hcc[c][~free[c], ~free[c]] = 1.0
        Hbb = Hbb + (mu * np.einsum("vii->vi", Hbb) + 1e-12)[:, :, None] * np.eye(NB)
        Hbb_inv = np.linalg.inv(Hbb)
        Y = np.einsum("vcij,vjk->vcik", Hcb, Hbb_inv)
        S = -np.einsum("vcik,vdlk->cidl", Y, Hcb)
        for c in range(C):
            S[c, :, c, :] += Hcc[c]
        rhs = -gc + np.einsum("vcik,vk->ci", Y, gb)
        dc = np.linalg.solve(S.reshape(C * NC, C * NC), rhs.ravel()).reshape(C, NC) * free
        db = np.einsum("vij,vj->vi", Hbb_inv, -gb - np.einsum("vcij,ci->vj", Hcb, dc))
        return np.concatenate([dc.ravel(), db.ravel()]), 0

    def residuals(self, xc: np.ndarray, xb: np.ndarray) -> np.ndarray:
        o = self.obs
        Rb = axis_angle_to_matrix(xb[:, :3])[o.view]  # rotations per view / camera, then gathered
        Xw = np.einsum("mij,mj->mi", Rb, self.obj[o.corner]) + xb[o.view, 3:]
        Rc = axis_angle_to_matrix(xc[:, :3])[o.cam]
        Xc = np.einsum("mij,mj->mi", Rc, Xw) + xc[o.cam, 3:6]
        xy = Xc[:, :2] / Xc[:, 2:]
        uv = np.empty_like(xy)
        for c, model in enumerate(self.models):
            m = o.cam == c
            n = 5 if model == "pinhole" else 4
            d, _ = distort(xy[m], xc[c, 10 : 10 + n], model)
            p = xc[c]
            uv[m, 0] = p[6] * d[:, 0] + self.skew[c] * d[:, 1] + p[8]
            uv[m, 1] = p[7] * d[:, 1] + p[9]
        r = uv - o.uv
        r[~(Xc[:, 2] > 0)] = 1e6  # behind the camera
        return r

    def jacobians(self, xc, xb) -> tuple[np.ndarray, np.ndarray]:
        o = self.obs
        Jc = np.zeros((len(o.cam), 2, NC))
        Jb = np.zeros((len(o.cam), 2, NB))
        for s in range(NC):
            h = 1e-6 * max(1.0, float(np.max(np.abs(xc[:, s]))))
            d = np.zeros_like(xc)
            d[:, s] = h
            Jc[:, :, s] = (self.residuals(xc + d, xb) - self.residuals(xc - d, xb)) / (2 * h)
        for s in range(NB):
            h = 1e-7 * max(1.0, float(np.max(np.abs(xb[:, s]))))
            d = np.zeros_like(xb)
            d[:, s] = h
            Jb[:, :, s] = (self.residuals(xc, xb + d) - self.residuals(xc, xb - d)) / (2 * h)
        return Jc, Jb


def squared_errors(cameras: list[Camera], board_poses: np.ndarray, obj: np.ndarray, obs: Observations) -> np.ndarray:
    """Squared reprojection error (M,) of every observation, px²."""
    xb = np.zeros((len(board_poses), NB))
    xb[:, :3], xb[:, 3:] = matrix_to_axis_angle(board_poses[:, :3, :3]), board_poses[:, :3, 3]
    return np.sum(_Problem(cameras, obj, obs).residuals(_pack(cameras), xb) ** 2, axis=1)


def bundle_adjust(cameras: list[Camera], board_poses: np.ndarray, obj: np.ndarray, obs: Observations,
                  reference: int = 0, cfg: BundleConfig = BundleConfig()):
    """Refine cameras (cam_from_ref) and board poses (ref_from_board, (V, 4, 4)).

    Returns (cameras, board poses, kept-observation mask, summary)."""
    t0 = time.perf_counter()
    xc = _pack(cameras)
    xb = np.zeros((len(board_poses), NB))
    xb[:, :3] = matrix_to_axis_angle(board_poses[:, :3, :3])
    xb[:, 3:] = board_poses[:, :3, 3]
    free = np.zeros((len(cameras), NC), bool)
    free[:, :6] = True
    free[reference, :6] = False
    for i, c in enumerate(cameras):
        names = ("fx", "fy", "cx", "cy") + DIST_NAMES[c.model]
        for slot, name in zip(range(6, 6 + len(names)), names, strict=True):
            free[i, slot] = name in cfg.free_intrinsics
    unknown = set(cfg.free_intrinsics) - {"fx", "fy", "cx", "cy", "k1", "k2", "k3", "k4", "p1", "p2"}
    if unknown:
        raise ValueError(f"bundle adjustment: unknown intrinsic parameters {sorted(unknown)}")
    prob = _Problem(cameras, obj, obs, free, cfg.loss_scale_px)
    schedule = Schedule(LMSettings(cfg.max_iterations, cfg.tolerance, 1e-3, 1e-9, 1e7),
                        LMSettings(cfg.max_iterations, cfg.tolerance, 1e-3, 1e-9, 1e7), cfg.outlier_sigma)
    fit = robust_then_refit(prob, np.concatenate([xc.ravel(), xb.ravel()]), np.ones(len(obs.cam), bool),
                            schedule, "bundle adjustment")
    xc, xb = prob.split(fit.x)
    keep, iterations = fit.keep, fit.solves
    initial = float(np.sqrt(np.mean(fit.initial_norms**2)))
    r = prob.residuals(xc, xb)
    n2 = np.sum(r**2, axis=1)
    final = float(np.sqrt(np.mean(n2[keep])))
    cams = _unpack(xc, cameras)
    per_cam = {c.name: float(np.sqrt(np.mean(n2[keep & (obs.cam == i)]))) if np.any(keep & (obs.cam == i))
               else float("nan") for i, c in enumerate(cameras)}
    rejected = int((~keep).sum())
    problems = [f"camera {k}: RMS {v:.2f}px" for k, v in per_cam.items() if not v < 1.5]
    if rejected > 0.1 * len(keep):
        problems.append(f"{rejected / len(keep):.0%} of observations rejected")
    poses = np.tile(np.eye(4), (len(xb), 1, 1))
    poses[:, :3, :3], poses[:, :3, 3] = axis_angle_to_matrix(xb[:, :3]), xb[:, 3:]
    summary = BundleSummary(iterations, initial, final, per_cam, len(keep), rejected, time.perf_counter() - t0,
                            not problems, "; ".join(problems) or "converged")
    log.info("bundle adjustment: %d iterations, RMS %.3f → %.3f px, %d/%d rejected", iterations, initial, final,
             rejected, len(keep))
    return cams, poses, keep, summary
