"""The one Levenberg-Marquardt driver of the project, and its pass schedule.

Used by the trajectory refinement (:mod:`mocap.optim.refine`) and by calibration's bundle adjustment
(``calibration.bundle``). The driver knows nothing of a problem's structure: the problem supplies its
cost, its normal equations and their damped solve through the :class:`Problem` protocol, and the
driver decides which steps to take.

Step: ``x ← x + δ`` with δ from ``problem.solve(linearization, μ)``; the problem damps its normal
matrix with μ (how is its choice: Marquardt scaling or a multiple of the identity). A step that does
not lower the cost is retried from the same linearisation with μ × 10; after a failure at μ >
``mu_max`` the pass ends. An accepted step divides μ by 3 (not below ``mu_min``).
Stop: after ``max_iterations`` linearisations, when the relative cost decrease of an accepted step is
below ``tolerance``, or when its RMS entry is below ``min_step``.

Schedule (:func:`robust_then_refit`): a robust pass (the problem's robust loss or IRLS weights), then
observations whose residual norm exceeds ``outlier_sigma`` σ are dropped, σ being fixed or estimated
from the residual norms (median of the Rayleigh distribution of a 2D Gaussian), then a least-squares
pass on the kept observations.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

log = logging.getLogger(__name__)
RAYLEIGH_MEDIAN = float(np.sqrt(2 * np.log(2)))  # median of |r| for 2D Gaussian r with unit σ per axis
SIGMA_FLOOR = 1e-3  # px: residuals this small are exact data (synthetic keypoints), not a noise level


class Problem(Protocol):
    """What the driver needs of a nonlinear least-squares problem in a flat or shaped array ``x``."""

    def update(self, x: np.ndarray) -> bool | None:
        """Re-estimate what a pass holds fixed between steps (bone lengths, IRLS weights) at ``x``;
        called at the start of a pass and after every accepted step. ``False``: nothing changed, the
        cost just computed at ``x`` stands (None: it is computed again)."""

    def cost(self, x: np.ndarray) -> float:
        """The cost of the current pass at ``x``."""

    def linearize(self, x: np.ndarray) -> Any:
        """Gradient and normal matrix at ``x``, in whatever form :meth:`solve` takes."""

    def solve(self, lin: Any, mu: float) -> tuple[np.ndarray, int]:
        """The damped Gauss-Newton step δ (shaped as ``x``) and the inner solver's iterations (0 if direct)."""


class RobustProblem(Problem, Protocol):
    def residual_norms(self, x: np.ndarray) -> np.ndarray:
        """|residual| of every observation (any shape; NaN where undefined)."""

    def set_pass(self, robust: bool, keep: np.ndarray, sigma: float) -> None:
        """Select the robust or the least-squares cost, the observations used and their σ."""


@dataclass(frozen=True)
class LMSettings:
    max_iterations: int  # linearisations per pass
    tolerance: float  # stop when the relative cost decrease of a step is smaller
    mu_init: float = 1e-4
    mu_min: float = 1e-8
    mu_max: float = 1e6  # a step that fails at a larger damping ends the pass
    min_step: float = 0.0  # stop when the RMS entry of a step is smaller


@dataclass(frozen=True)
class PassResult:
    x: np.ndarray
    initial_cost: float
    final_cost: float
    iterations: int  # linearisations
    solves: int  # damped solves tried (≥ iterations: rejected steps are retried)
    inner_iterations: int  # of the problem's solver (conjugate gradient), summed


def levenberg_marquardt(problem: Problem, x: np.ndarray, s: LMSettings, name: str = "lm") -> PassResult:
    """One pass of damped Gauss-Newton from ``x``. See the module docstring for the rules."""
    mu, iters, solves, inner = s.mu_init, 0, 0, 0
    problem.update(x)
    cost = first = problem.cost(x)
    for _ in range(s.max_iterations):
        lin = problem.linearize(x)
        while True:
            delta, n = problem.solve(lin, mu)
            solves += 1
            inner += n
            x_new = x + delta
            new = problem.cost(x_new)
            if new <= cost or mu > s.mu_max:
                break
            mu *= 10
        iters += 1
        if not new <= cost:
            break
        decrease = (cost - new) / max(cost, 1e-300)
        x = x_new
        mu = max(mu / 3, s.mu_min)
        cost = new if problem.update(x) is False else problem.cost(x)
        step = float(np.sqrt(np.mean(delta**2))) if s.min_step > 0 else np.inf
        log.debug("%s: iteration %d, cost %.6g (−%.2e), μ %.1e, %d inner", name, iters, cost, decrease, mu, n)
        if decrease < s.tolerance or step < s.min_step:
            break
    return PassResult(x, first, cost, iters, solves, inner)


def rayleigh_sigma(norms: np.ndarray) -> float:
    """σ per axis of 2D Gaussian residuals from the median of their norms (finite ones), at least ``SIGMA_FLOOR``
    (exact detections: σ = 0 weighed every observation infinitely, its residual 0 × ∞ = NaN, dropped); 1 if none."""
    norms = norms[np.isfinite(norms)]
    return max(float(np.median(norms) / RAYLEIGH_MEDIAN), SIGMA_FLOOR) if norms.size else 1.0


@dataclass(frozen=True)
class Schedule:
    robust: LMSettings
    final: LMSettings
    outlier_sigma: float  # residual norms beyond this many σ are dropped before the final pass
    noise: float | None = None  # fixed σ per axis; None: estimated from the residual norms


@dataclass(frozen=True)
class RobustResult:
    x: np.ndarray
    keep: np.ndarray  # observations used by the final pass
    sigma: float  # σ of the final pass
    initial_norms: np.ndarray  # residual norms at the start
    robust: PassResult
    final: PassResult

    @property
    def iterations(self) -> int:
        return self.robust.iterations + self.final.iterations

    @property
    def solves(self) -> int:
        return self.robust.solves + self.final.solves

    @property
    def inner_iterations(self) -> int:
        return self.robust.inner_iterations + self.final.inner_iterations


def robust_then_refit(problem: RobustProblem, x: np.ndarray, observed: np.ndarray, schedule: Schedule,
                      name: str = "lm") -> RobustResult:
    """Robust pass → outlier rejection → least-squares pass. ``observed``: bool, shaped like
    ``problem.residual_norms(x)``, the observations that exist."""
    norms0 = problem.residual_norms(x)
    sigma = schedule.noise or rayleigh_sigma(norms0[observed])
    problem.set_pass(True, observed, sigma)
    first = levenberg_marquardt(problem, x, schedule.robust, f"{name} robust")
    norms = norms0 if first.x is x else problem.residual_norms(first.x)  # no step taken: the same residuals
    if schedule.noise is None and norms is not norms0:  # (no step taken: the same σ)
        sigma = rayleigh_sigma(norms[observed])
    with np.errstate(invalid="ignore"):
        keep = observed & (norms <= max(schedule.outlier_sigma * sigma, 1e-6))
    problem.set_pass(False, keep, sigma)
    final = levenberg_marquardt(problem, first.x, schedule.final, f"{name} final")
    return RobustResult(final.x, keep, sigma, norms0, first, final)
