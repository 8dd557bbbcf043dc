"""Camera refinement from the performer: a bundle adjustment of the camera poses and 3D keypoints.

Free: every camera's pose (a rotation update ``R = exp(φ) R₀`` and its centre ``C``; optionally a common
focal scale ``fx, fy ← e^s (fx, fy)`` and the principal point ``cx, cy``, off by default), and the 3D
position of every point used (one keypoint of one frame, seen by enough views). Distortion is kept.

Gauge: keypoints alone fix the rig only up to a similarity. The reference camera (the first) keeps its
given pose, and the distance from it to the camera farthest from it keeps its given value (that
camera's centre moves on the sphere about the reference centre: two of its three centre coordinates are
free). So the refined rig stays in the given rig's world frame and scale.

Cost::

    Σ_obs ρ(|π_c(X_i) − u_ic|² / σ²)        reprojection, pixels, Cauchy loss ρ bending at ``loss_scale`` σ
  + Σ_c |φ_c|² / prior_deg² + |C_c − C_c,given|² / prior_m²     optional prior: stay near the given rig

The prior only settles what the take barely observes: a performer in a small volume seen from afar
leaves a nearly free mode (a camera swinging about the performer while turning to keep it in view),
along which an unregularised solution drifts by degrees and decimetres for a tiny gain.

Solver: Levenberg-Marquardt (:mod:`mocap.optim.lm`, Marquardt damping of the diagonal). The points are
eliminated by the Schur complement (each point's 3×3 block), so each step solves a dense system of
6 unknowns per camera (9 with intrinsics); time grows linearly with the points. Schedule: robust pass,
observations beyond ``outlier_sigma`` σ dropped, least-squares pass (:func:`~mocap.optim.lm.robust_then_refit`).

Summary (:class:`RigRefineSummary`): iterations, costs, σ, RMS before and after, observations rejected,
per-camera moves (degrees, millimetres), and ``usable`` with the reason when not.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from mocap.geometry.normal_terms import finite
from mocap.geometry.rotations import geodesic_deg, matrix_to_axis_angle
from mocap.optim.lm import LMSettings, Schedule, robust_then_refit
from mocap.optim.rig_problem import _Problem
from mocap.types import Rig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RigRefineConfig:
    intrinsics: bool = False  # also refine focal scale and principal point
    loss_scale: float = 2.0  # where the Cauchy loss bends, in σ
    outlier_sigma: float = 3.5  # residuals beyond this many σ are dropped before the final pass
    max_iterations: int = 40  # per pass
    tolerance: float = 1e-7  # stop when the relative cost decrease is smaller
    robust_iterations: int | None = None  # of the robust pass (None: max_iterations); it only has to tell the
    # outliers, the least-squares pass settles the cameras: from a start near the solution a few (or none) do
    robust_tolerance: float = 1e-5  # ... and its stop on the relative cost decrease
    prior_deg: float | None = None  # σ of a Gaussian prior keeping each camera's rotation near the given one
    prior_m: float | None = None  # ... and its centre (None: no prior)
    frozen_jacobian: bool = False  # the least-squares pass's later steps reuse its first Jacobian (chord steps:
    # from a start within the noise of the solution, they converge as Gauss-Newton does, at a projection each)


@dataclass(frozen=True)
class RigRefineSummary:
    iterations: int
    initial_cost: float
    final_cost: float
    noise_px: float
    points: int
    observations: int
    rejected: int
    rms_before_px: float  # over the observations kept by the final pass, given rig and initial points
    rms_px: float
    moves_deg: dict[str, float]
    moves_mm: dict[str, float]
    reference: str
    scale_camera: str
    seconds: float
    usable: bool
    message: str
    residuals_px: np.ndarray | None = field(default=None, repr=False, compare=False)  # (N, C) at the solution, of
    # every point given (NaN: unseen, behind the camera, or the point left out)

    def __str__(self) -> str:
        moves = ", ".join(f"{n} {self.moves_deg[n]:.2f}°/{self.moves_mm[n]:.0f} mm" for n in self.moves_deg)
        return (f"rig refinement: {self.points} points, {self.iterations} iterations, RMS {self.rms_before_px:.2f} → "
                f"{self.rms_px:.2f} px, {self.rejected}/{self.observations} rejected, moves {moves}, "
                f"{self.seconds:.2f}s — {'usable' if self.usable else 'NOT usable'}: {self.message}")


def moves(rig: Rig, given: Rig) -> tuple[dict[str, float], dict[str, float]]:
    """Per camera: rotation (degrees) and centre displacement (millimetres) from ``given`` to ``rig``."""
    deg = {c.name: float(geodesic_deg(c.R, g.R)) for c, g in zip(rig.cameras, given.cameras, strict=True)}
    mm = {c.name: float(np.linalg.norm(c.center - g.center) * 1000)
          for c, g in zip(rig.cameras, given.cameras, strict=True)}
    return deg, mm


def along_axis(rig: Rig, given: Rig) -> dict[str, float]:
    """Per camera: the centre's displacement (mm) from ``given`` to ``rig`` along the given camera's line of sight
    (positive: forward). A camera moved mostly that way with little turn is what a focal length off looks like."""
    return {c.name: float(1000 * (c.center - g.center) @ g.R[2]) for c, g in zip(rig.cameras, given.cameras,
                                                                                   strict=True)}


def _parameters(problem: _Problem, start: Rig) -> np.ndarray:
    """(C, P) camera parameters of ``start`` relative to the problem's given rig (its inverse of
    :meth:`_Problem.cameras`; the reference camera's stay zero)."""
    cam = np.zeros((problem.C, problem.P))
    for c, (s, g) in enumerate(zip(start.cameras, problem.rig.cameras, strict=True)):
        if c == 0:
            continue
        cam[c, :3] = matrix_to_axis_angle(s.R @ problem.R0[c].T)
        cam[c, 3:6] = s.center - problem.C0[c]
        if problem.cfg.intrinsics:
            cam[c, 6] = np.log(s.K[0, 0] / g.K[0, 0])
            cam[c, 7:9] = s.K[:2, 2] - g.K[:2, 2]
    return cam


def refine_rig(rig: Rig, uv: np.ndarray, X0: np.ndarray, cfg: RigRefineConfig = RigRefineConfig(),
               start: Rig | None = None) -> tuple[Rig, np.ndarray, RigRefineSummary]:
    """Refine the cameras of ``rig`` and the points X0 (N, 3) from their observations uv (N, C, 2; NaN:
    unseen). Points that are not finite are left out. ``start``: the cameras to start from (an estimate
    made on fewer points; the same reference camera and scale), else ``rig``'s; the gauge, the prior
    and the moves stay those of ``rig``. Returns (refined rig, points, summary)."""
    t0 = time.perf_counter()
    uv = np.asarray(uv, float)
    ok = finite(X0)
    uv, X0 = uv[ok], np.asarray(X0, float)[ok]
    observed = finite(uv)
    problem = _Problem(rig, uv, observed, cfg)
    x_given = np.concatenate([np.zeros(problem.C * problem.P), X0.ravel()])
    x0 = x_given if start is None else np.concatenate([_parameters(problem, start).ravel(), X0.ravel()])
    lm = LMSettings(cfg.max_iterations, cfg.tolerance)
    robust = cfg.max_iterations if cfg.robust_iterations is None else cfg.robust_iterations
    schedule = Schedule(LMSettings(robust, cfg.robust_tolerance), lm,
                        cfg.outlier_sigma)
    result = robust_then_refit(problem, x0, observed, schedule, "rig refine")
    refined = problem.rig_at(result.x)
    keep = result.keep
    norms = problem.residual_norms(result.x)  # first: the last point projected
    after = norms[keep]
    before = problem.residual_norms(x_given)[keep]
    rms_before = float(np.sqrt(np.mean(before**2))) if before.size else float("nan")
    rms = float(np.sqrt(np.mean(after**2))) if after.size else float("nan")
    deg, mm = moves(refined, rig)
    why = []
    if not np.isfinite(rms):
        why.append("no observation left")
    elif rms > rms_before * 1.001:
        why.append(f"RMS rose ({rms_before:.2f} → {rms:.2f} px)")
    usable = not why
    summary = RigRefineSummary(result.iterations, result.robust.initial_cost, result.final.final_cost,
                               result.sigma, len(X0), int(observed.sum()), int(observed.sum() - keep.sum()),
                               rms_before, rms, deg, mm, rig.names[0], rig.names[problem.far],
                               time.perf_counter() - t0, usable, "converged" if usable else "; ".join(why),
                               np.full((len(ok), problem.C), np.nan))
    summary.residuals_px[ok] = norms
    log.info("%s", summary)
    _, X = problem.split(result.x)
    out = np.full((len(ok), 3), np.nan)
    out[ok] = X
    return refined, out, summary
