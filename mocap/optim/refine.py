"""Bundle-adjusted smoothing of 3D joint trajectories with the cameras fixed.

Free: every joint position of one person at every frame (joints never seen are left out), and the
length of each bone of the keypoint set. Cost:

    Σ_obs  score · ρ(|π_c(X_tj) − u_tcj|² / σ²)              reprojection, pixels, robust loss ρ
  + Σ_tj  |(X_t+1 − 2X_t + X_t−1) · fps² / accel_sigma|²       acceleration prior, m/s²
  + Σ_t,bone ((|X_ta − X_tb| − L_bone) / σ_bone)²              constant bone lengths, metres

with σ_bone = min(bone_sigma, bone_share · L_bone): a short body segment (hand, foot, face) may vary by the
same share of its length as a long one, not by the same centimetre (finger bones keep bone_sigma); the loose
bones (torso, head, face) by loose_bone_sigma, in the frames one end of them has one view only
(:mod:`mocap.optim.refine_bones`).

Solved by Levenberg-Marquardt. The normal matrix is banded in time for each joint (bandwidth 6 in
joint-major order) plus rank-one bone couplings between joints at equal frames; each step is a
conjugate-gradient solve preconditioned by :class:`mocap.optim.banded.ClusterPreconditioner`: the joints
are grouped into small clusters along their strong bones (stiff against the joints' own terms:
:func:`mocap.optim.banded.strong_clusters`) and each cluster's temporal bands and bone couplings are
factored together (frame-major, bandwidth 6 × its joints), so the stiff short bones (hand, foot, face) are
in the preconditioner and a step takes 1-5 CG iterations instead of 5-20 (BlazePose, 2,000 frames); time and
memory grow linearly with the number of frames. Bone lengths are re-estimated as the median segment length
before every step (block-coordinate descent; a side never triangulated takes the other side's lengths).

Two passes (the schedule of :func:`mocap.optim.lm.robust_then_refit`, the driver shared with
calibration's bundle adjustment): a robust pass (Cauchy or Huber loss), then observations whose
residual exceeds ``outlier_sigma`` σ are dropped and the least-squares problem is solved again; in that
pass joints that have converged are held (:data:`FREEZE_STEP_M`). Only observations that exist are projected
(:mod:`mocap.optim.refine_obs`: a hand missing from a view costs nothing); the start fills gaps, a hand's
following the body (:mod:`mocap.optim.refine_start`). Joints that share no bone are separate problems, solved
one after the other (:mod:`mocap.optim.refine_parts`: the body exactly as without hands, then the hands with their
own noise level and stopping; their final pass ends once a step did what the quadratic model predicted).
Summary: iterations, costs, σ, RMS, rejected observations and ``usable`` with the reason if not.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from mocap.optim.banded import (
    ClusterPreconditioner,
    Couplings,
    acceleration_prior,
    band_matvec,
    bone_scatter,
    column_median,
    pcg,
    prior_matvec,
    strong_clusters,
)
from mocap.optim.lm import LMSettings, Schedule, robust_then_refit
from mocap.optim.refine_bones import (
    bone_pairs,
    bone_terms,
    bone_weights,
    held_frames,
    length_frames,
    mirror_bones,
    mirrored_lengths,
    segment_lengths,
)
from mocap.optim.refine_noise import camera_noise, group_noise
from mocap.optim.refine_obs import LOWER, Observations, data_cost, normal_terms
from mocap.optim.refine_parts import independent_parts, noise_ratio, on_span, part_bones, parts_noise, unmeasured
from mocap.optim.refine_start import start_points
from mocap.optim.refine_summary import RefineSummary, summarize  # noqa: F401 (RefineSummary: the stage's import)
from mocap.types import Rig

log = logging.getLogger(__name__)
CHUNK = 512  # frames per block when evaluating projections
# final pass: a joint whose last step moved it less than this at every frame is converged and held fixed for the
# rest of the pass (its observations are no longer projected): two orders below the refined points' accuracy
FREEZE_STEP_M = 1e-5
# the band's sub-diagonals with entries (see linearize): 1-2 inside a frame's 3×3 block, 3 and 6 the time prior
# (one coordinate to itself a frame and two frames on); 4-5 stay empty, and the matrix-vector product skips them
BAND_ROWS = (1, 2, 3, 6)
# final pass of a hand (a part after the body, see refine_person): the step's cost decrease within this share of the
# quadratic model's prediction ends the pass (_Problem._stop_on_model)
MODEL_AGREEMENT = 0.01


@dataclass(frozen=True)
class RefineConfig:
    noise_px: float | None = None  # σ of 2D keypoint noise per axis; None: estimated from residuals
    accel_sigma: float = 15.0  # m/s²: typical joint acceleration; smaller is smoother
    bone_sigma: float = 0.01  # m: allowed variation of a bone's length ...
    bone_share: float = 0.05  # ... at most this share of its length (short bones: hands, feet, face)
    loss: str = "cauchy"  # robust loss of the first pass: cauchy | huber | l2
    loss_scale: float = 2.0  # where the robust loss bends, in σ
    outlier_sigma: float = 3.5  # residuals beyond this many σ are dropped before the final pass
    max_iterations: int = 12  # per pass
    tolerance: float = 1e-5  # final pass: stop when the relative cost decrease is smaller
    robust_tolerance: float = 1e-3  # robust pass: only has to separate inliers from outliers
    max_gap_s: float = 0.5  # longer runs with no view of a joint are NaN in the output (half of it at the ends)
    loose_bone_sigma: float = 0.03  # m: the variation of the loose bones (torso, head, face) (0: not held)

    def __post_init__(self) -> None:
        if self.loss not in ("cauchy", "huber", "l2"):
            raise ValueError(f"refine: loss must be cauchy, huber or l2, got {self.loss!r}")
        for name in ("accel_sigma", "bone_sigma", "bone_share", "loss_scale", "outlier_sigma"):
            if not getattr(self, name) > 0:
                raise ValueError(f"refine: {name} must be positive, got {getattr(self, name)}")
        for name, unit in (("loose_bone_sigma", "m (0: loose bones not held)"), ("max_gap_s", "seconds")):
            if not getattr(self, name) >= 0:
                raise ValueError(f"refine: {name} must be ≥ 0 {unit}, got {getattr(self, name)}")
        if self.noise_px is not None and not self.noise_px > 0:
            raise ValueError(f"refine: noise_px must be positive, got {self.noise_px}")


class _Problem:
    """One person's trajectory problem restricted to the joints that have observations; the
    :class:`mocap.optim.lm.RobustProblem` of the driver, with x the positions (T, Ja, 3)."""

    def __init__(self, rig: Rig, uv, w, bones, fps: float, cfg: RefineConfig, groups=None, model_stop: bool = False,
                 loose=(), pairs=()):
        self.rig, self.cfg, self.model_stop = rig, cfg, model_stop
        self.T, self.C, J = w.shape
        ok = np.isfinite(w) & (w > 0) & np.all(np.isfinite(uv), axis=-1)
        self.active = np.flatnonzero(ok.any(axis=(0, 1)))
        remap = {j: i for i, j in enumerate(self.active)}
        self.uv = np.nan_to_num(uv[:, :, self.active])
        self.w = np.where(ok, w, 0.0)[:, :, self.active]  # (T, C, Ja)
        self.obs = Observations(self.uv, ok[:, :, self.active], CHUNK)  # only the observations that exist
        self._lin = self.obs.weighted(self.w)  # those of the current pass, see set_pass
        self.bones, self.loose = bone_pairs(bones, loose, remap)  # see mocap.optim.refine_bones
        self.ba, self.bb = (np.array([bone[i] for bone in self.bones], int) for i in (0, 1))
        self.mirror = mirror_bones(self.bones, bone_pairs(pairs, (), remap)[0])  # (bones,) the other side's, or -1
        self.scatter = bone_scatter(self.ba, self.bb, self.active.size)
        self.views = (self.w > 0).sum(axis=1)  # (T, Ja) the views observing each joint
        self.few, self.held = held_frames(self.views, self.ba, self.bb, self.loose)  # (T, Ja), (bones, T)
        self.good = ~self.few[:, self.ba] & ~self.few[:, self.bb]  # (T, bones) frames that triangulate both ends
        self.length_at = length_frames(self.views > 0, self.few, self.ba, self.bb, self.loose)  # (T, bones); none: all
        self.lam2 = (fps**2 / cfg.accel_sigma) ** 2
        self.gram = acceleration_prior(self.T, fps, cfg.accel_sigma)
        # joint groups (body 0, hands 1, ...): each has its own 2D noise level, relative to the body's
        self.groups = np.zeros(self.active.size, int) if groups is None else np.asarray(groups)[self.active]
        self.scale = np.ones(self.active.size)  # σ of each joint's observations / σ of the body's
        self.cam_scale = np.ones(self.C)  # σ of each camera's observations / the cameras' median, see refine_noise
        self.sb = np.where(self.held, 1.0 / cfg.bone_sigma**2, 0.0)  # (bones, T) weights, see update
        self._bone_weights_set = self._lengths_final = self._lengths_fixed = False
        self.lengths = np.zeros(len(self.bones))
        self.wobs, self.sigma, self.loss = self.w, 1.0, cfg.loss  # the current pass, see set_pass
        self._last: tuple[np.ndarray, np.ndarray] | None = None  # (x, its residuals) of the last cost
        self._terms: tuple[np.ndarray, float, float] | None = None  # (x, its cost but the bone term, data), see cost
        self.frozen = np.zeros(self.active.size, bool)  # converged joints of the final pass, see _freeze
        self._frozen_cost, self._prev = 0.0, None
        self._predicted: float | None = None  # the last step's decrease by the quadratic model, see solve
        self._accepted: float | None = None  # the cost at the last accepted point of the final pass

    @property
    def n_joints(self) -> int:
        return self.active.size

    def residuals(self, X: np.ndarray) -> np.ndarray:
        """Reprojection residuals (T, C, Ja, 2) in pixels; the last ones are reused when asked again
        for the same array (the cost of an accepted step, then its residual norms)."""
        if self._last is not None and self._last[0] is X:
            return self._last[1]
        r = self.obs.residuals(self.rig.cameras, X)  # NaN where not observed
        self._last = (X, r)
        return r

    def residual_norms(self, X: np.ndarray) -> np.ndarray:
        """Residual norms in the body's noise units (divided by the joint's group's and the camera's relative σ)."""
        return self.pixel_norms(X) / self.scale / self.cam_scale[None, :, None]

    def pixel_norms(self, X: np.ndarray) -> np.ndarray:
        r = self.residuals(X)
        return np.hypot(r[..., 0], r[..., 1])

    def set_group_noise(self, X: np.ndarray, observed: np.ndarray) -> dict[int, float]:
        """Each group's σ relative to the body's (group 0) at X, in each camera's noise units
        (:func:`mocap.optim.refine_noise.group_noise`); returns {group: ratio}. Without groups nothing changes."""
        ratios = group_noise(self.pixel_norms(X) / self.cam_scale[None, :, None], observed, self.groups)
        for g, r in ratios.items():
            self.scale[self.groups == g] = r
        self._terms = None  # the cost changes with the scales; the pixel residuals (_last) do not
        return ratios

    def set_camera_noise(self, X: np.ndarray, ratios: np.ndarray | None = None) -> np.ndarray | None:
        """Each camera's σ relative to the others' (:func:`~mocap.optim.refine_noise.camera_noise` on the body at X
        unless ``ratios`` are given; in the weights' units: what they explain is not the camera's noise)."""
        if ratios is None:
            ratios = camera_noise(self.pixel_norms(X) * np.sqrt(self.w), (self.w > 0) & (self.groups == 0),
                                  self.rig.names)
        if ratios is not None:
            self.cam_scale, self._terms = np.asarray(ratios, float), None
        return ratios

    def set_pass(self, robust: bool, keep: np.ndarray, sigma: float) -> None:
        self.wobs = np.where(keep, self.w, 0.0)
        self._lin = self.obs.weighted(self.wobs)
        self.sigma, self.loss = sigma, self.cfg.loss if robust else "l2"
        self._terms = None
        self._lengths_final = not robust  # the final pass keeps the lengths it starts with, see update
        self.frozen[:] = False
        self._frozen_cost, self._prev = 0.0, None
        self._predicted = self._accepted = None

    def _inv_var(self) -> np.ndarray:
        return 1.0 / (self.sigma * self.scale[None, :] * self.cam_scale[:, None]) ** 2  # (C, Ja)

    def _freeze(self, X: np.ndarray) -> None:
        """Final pass (a fixed least-squares problem): joints that the last accepted step moved less than
        :data:`FREEZE_STEP_M` at every frame are held where they are for the rest of the pass; their observation
        terms become one constant, their steps zero (see linearize). A take whose hands were missed in many
        views keeps iterating on the hands long after the body has converged; the body then stops paying."""
        if self._prev is not None:
            step = np.abs(X - self._prev).max(axis=(0, 2))
            new = ~self.frozen & (step < FREEZE_STEP_M)
            if new.any():
                self.frozen |= new
                fz = self.frozen[None, None, :]
                self._lin = self.obs.weighted(np.where(fz, 0.0, self.wobs))
                self._frozen_cost = data_cost(self.rig.cameras, self.obs.weighted(np.where(fz, self.wobs, 0.0)), X,
                                              self._inv_var(), self.loss, self.cfg.loss_scale)
                self._terms = None
        self._prev = X

    def _stop_on_model(self, X: np.ndarray) -> None:
        """Final pass of a part solved with ``model_stop``: when the step just accepted lowered the cost by what the
        quadratic model predicted (within :data:`MODEL_AGREEMENT`), the problem is quadratic there and the
        conjugate gradient's step left ~its tolerance² of the decrease to take: every joint is held, and the
        driver's next step is zero (no projection, no solve: see linearize), which ends the pass."""
        cost = self.cost(X)
        if self._accepted is not None and self._predicted is not None and self._predicted > 0:
            rho = (self._accepted - cost) / self._predicted
            log.debug("refine: step decreased the cost %.4g× the model's prediction", rho)
            if abs(1.0 - rho) <= MODEL_AGREEMENT:
                self._frozen_cost = self._terms[2]  # the observations' cost at X (cost just computed)
                self.frozen[:] = True
                self._lin, self._terms = [], None
        self._accepted, self._predicted = cost, None

    def update(self, X: np.ndarray) -> None:
        """Bone lengths: the median segment length over the frames that see both ends. Re-estimated at
        every step of the robust pass; the final pass keeps those it starts with (re-estimating them
        there only drifts the least-squares cost by ~1e-5 per step and stalls the convergence), and holds
        its converged joints fixed (:meth:`_freeze`)."""
        if self._lengths_final:
            self._freeze(X)
            if self.model_stop:
                self._stop_on_model(X)
        if self._lengths_fixed:
            return
        self._lengths_fixed = self._lengths_final
        if not self.bones:
            return
        n = segment_lengths(X, self.ba, self.bb)  # (T, bones)
        self.lengths = column_median(np.where(self.length_at | ~self.length_at.any(axis=0), n, np.nan))
        self.lengths = mirrored_lengths(self.lengths, n, self.good, self.mirror)  # a side never triangulated
        if not self._bone_weights_set:  # from the first lengths, then fixed: a cost that keeps changing
            fingers = (self.groups[self.ba] > 0) | (self.groups[self.bb] > 0)
            self.sb = bone_weights(self.lengths, fingers, self.loose, self.held, self.cfg)
            self._bone_weights_set = True  # would slow the solver's convergence

    def cost(self, X: np.ndarray) -> float:
        """Total cost of the current pass at X, from the projections of the pass's observations only. The
        observation and acceleration terms of the last X are kept: after a step is accepted the driver asks
        again once the bone lengths are updated, which change only the bone term."""
        if self._terms is None or self._terms[0] is not X:
            data = self._frozen_cost + data_cost(self.rig.cameras, self._lin, X, self._inv_var(), self.loss,
                                                 self.cfg.loss_scale)
            acc = X[2:] - 2 * X[1:-1] + X[:-2]
            self._terms = (X, float(data + np.sum(acc**2) * self.lam2), float(data))
        bone = np.sum(self.sb.T * (segment_lengths(X, self.ba, self.bb) - self.lengths) ** 2)
        return float(self._terms[1] + bone)

    def linearize(self, X: np.ndarray):
        """Gradient (Ja·T·3,), banded block-diagonal part (7, Ja·T·3), bone couplings, the band's diagonal.

        Only the observations of the pass are visited (:class:`mocap.optim.refine_obs.Observations`), one
        camera and block of frames at a time, so that no (T, C, J, 2, 3) Jacobian is ever stored; of each
        point's symmetric 3×3 block only the 6 entries the band holds are summed (:func:`normal_terms`).
        """
        T, Ja = self.T, self.n_joints
        if self.frozen.all():  # every joint held (see _stop_on_model): the step is zero
            return None
        acc = normal_terms(self.rig.cameras, self._lin, X, self._inv_var(), self.loss, self.cfg.loss_scale)
        g = np.ascontiguousarray(acc[:3].reshape(3, T, Ja).transpose(2, 1, 0))  # (Ja, T, 3)
        h = np.ascontiguousarray(acc[3:].reshape(6, T, Ja).transpose(0, 2, 1))  # (6, Ja, T)
        couplings = Couplings(self.ba, self.bb, np.zeros((len(self.bones), T, 3)), self.scatter)
        if self.bones:  # all bones at once; each end's terms summed into its joint by the scatter matrix
            acc, su = bone_terms(X, self.ba, self.bb, self.lengths, self.sb, self.scatter)
            g += acc[..., :3]
            h += np.moveaxis(acc[..., 3:], 2, 0)
            couplings = Couplings(self.ba, self.bb, su, self.scatter)
        g += prior_matvec(self.gram, np.moveaxis(X, 1, 0))
        # offsets 0-2: one frame's 3x3 block, 3 and 6: the next two frames; every entry written once (no zeroed
        # 25 MB band to add into at 2,000 frames with hands): the block's, the time prior's, zeros elsewhere
        ab = np.empty((7, Ja, T, 3))
        for e, (i, k) in enumerate(LOWER):
            ab[i - k, :, :, k] = h[e]
        ab[1, :, :, 2] = 0.0
        ab[2, :, :, 1:] = 0.0
        ab[4:6] = 0.0
        ab[0] += self.gram[0][None, :, None]
        ab[3] = self.gram[1][None, :, None]
        ab[6] = self.gram[2][None, :, None]
        if self.frozen.any():  # held joints: identity rows, no gradient, no coupling to the others: their step is 0
            ab[:, self.frozen] = 0.0
            ab[0, self.frozen] = 1.0
            g[self.frozen] = 0.0
            held = self.frozen[couplings.a] | self.frozen[couplings.b]
            couplings = Couplings(couplings.a, couplings.b, np.where(held[:, None, None], 0.0, couplings.B),
                                  self.scatter)
        ab = ab.reshape(7, -1)
        return g.ravel(), ab, couplings, ab[0].copy()  # the diagonal without damping, see solve

    def solve(self, lin, mu: float) -> tuple[np.ndarray, int]:
        if lin is None:  # every joint held
            return np.zeros((self.T, self.n_joints, 3)), 0
        g, ab, couplings, diag = lin  # the damping changes only the diagonal: set in place from the undamped one
        np.add(diag, mu * diag + 1e-12 * (np.mean(diag) + 1.0), out=ab[0])
        shape = (self.n_joints, self.T, 3)
        work = np.empty(ab.shape[1])

        def matvec(v: np.ndarray) -> np.ndarray:
            y = band_matvec(ab, v, BAND_ROWS, work).reshape(shape)
            couplings.subtract(v.reshape(shape), y)
            return y.ravel()

        precond = ClusterPreconditioner(ab, couplings, strong_clusters(ab, couplings, self.T), self.T)
        delta, iters = pcg(matvec, -g, precond, rtol=1e-2, max_iter=100)
        if self.model_stop and self._lengths_final:  # the quadratic model's decrease −(2gᵀδ + δᵀHδ), H undamped
            damping = ab[0] - diag
            self._predicted = -float(2 * (g @ delta) + delta @ matvec(delta) - delta @ (damping * delta))
        return delta.reshape(shape).transpose(1, 0, 2), iters


def refine_person(rig: Rig, uv: np.ndarray, w: np.ndarray, X0: np.ndarray, bones, fps: float,
                  cfg: RefineConfig = RefineConfig(), groups: np.ndarray | None = None, loose=(), pairs=()):
    """Refine one person's trajectories. uv: (T, C, J, 2) pixels, NaN when missing. w: (T, C, J) confidences. X0:
    (T, J, 3) start, NaN where unknown. bones: (a, b) joint index pairs; loose: pairs held more loosely
    (``cfg.loose_bone_sigma``, not at all when it is 0); pairs: (left, right) joints
    (:func:`mocap.optim.refine_bones.mirrored_lengths`). groups: (J,) joint groups with their own 2D noise level (0:
    the body, 1: hands); None: one group. Groups that share no bone are solved as separate problems
    (:func:`mocap.optim.refine_parts.independent_parts`: the body, then the hands, which start from the body's
    wrists and measure their own noise). Returns X (T, J, 3), mean reprojection error of the kept views (T, J), kept
    views (T, J, C) and a :class:`RefineSummary` (σ is the body's; iterations, costs and observations summed over
    the parts), solved from the first observation to the last (:func:`mocap.optim.refine_parts.on_span`)."""
    t0 = time.perf_counter()
    T, C, J = w.shape
    if uv.shape != (T, C, J, 2) or X0.shape != (T, J, 3) or len(rig) != C:
        raise ValueError(f"refine: shapes disagree: uv {uv.shape}, w {w.shape}, X0 {X0.shape}, rig of {len(rig)}")
    if (span := on_span(refine_person, rig, uv, w, X0, bones, fps, cfg, groups, loose, pairs)) is not None:
        return span
    loose = tuple(loose) if cfg.loose_bone_sigma > 0 else ()
    parts = independent_parts(J, (*bones, *loose), groups)
    start = start_points(X0, groups)  # hands follow the body's wrists
    if not np.any(np.isfinite(start)):
        raise ValueError("refine: no joint could be triangulated; check calibration and detections")
    out, err = np.full((T, J, 3), np.nan), np.full((T, J), np.nan)
    seen, views = np.zeros((T, J), bool), np.zeros((T, J, C), bool)
    solved, cams = [], None  # (problem, fit, its points) of each part; the cameras' relative σ (the body's)
    for part in parts:
        whole = part.size == J
        sub = None if groups is None else np.asarray(groups)[part]
        bones_, loose_, pairs_ = (part_bones(p, part) for p in (bones, loose, pairs))  # in the part's indices
        prob = _Problem(rig, uv if whole else uv[:, :, part], w if whole else w[:, :, part], bones_, fps, cfg, sub,
                        model_stop=bool(solved), loose=loose_, pairs=pairs_)
        if not prob.active.size:  # a hand no view ever saw: left empty
            continue
        X = start[:, part[prob.active]]
        if not np.all(np.isfinite(X)):  # joints seen but never triangulated start at the body's centre
            body = X if not solved else start[:, solved[0][2]]
            body = body if np.isfinite(body).any() else start
            X = np.where(np.isfinite(X), X, np.nanmedian(body.reshape(-1, 3), axis=0))
        if not solved or cams is not None:  # measured on the body; the other parts take the body's
            cams = prob.set_camera_noise(X, cams)
        noise = cfg.noise_px
        if noise is not None and solved:  # a fixed σ is the body's: another part's is scaled by its measured ratio
            noise *= noise_ratio(prob, X, *solved[0][:2])
        schedule = Schedule(LMSettings(cfg.max_iterations, cfg.robust_tolerance, min_step=1e-6),
                            LMSettings(cfg.max_iterations, cfg.tolerance, min_step=1e-6), cfg.outlier_sigma, noise)
        ratios = prob.set_group_noise(X, prob.w > 0)
        if ratios:
            log.info("refine: 2D noise of each joint group relative to the body's: %s",
                     {g: round(r, 2) for g, r in ratios.items()})
        fit = robust_then_refit(prob, X, prob.w > 0, schedule, "refine")
        log.debug("refine: %d joints: %d iterations (%d CG), σ %.2fpx", part.size, fit.iterations, fit.inner_iterations,
                  fit.sigma)
        solved.append((prob, fit, idx := part[prob.active]))
        norms = prob.pixel_norms(fit.x)
        out[:, idx] = fit.x
        seen[:, idx] = fit.keep.any(axis=1)
        views[:, idx] = np.moveaxis(fit.keep, 1, 2)
        with np.errstate(invalid="ignore"):
            err[:, idx] = np.where(fit.keep, norms, 0).sum(1) / fit.keep.sum(1)
    if not solved:
        raise ValueError("refine: no joint has an observation; check the detections")
    if len(solved) > 1 and groups is not None:  # each part measured its own σ
        log.info("refine: 2D noise of each joint group relative to the body's: %s", parts_noise(solved))
    out[unmeasured(out, seen, views, int(round(cfg.max_gap_s * fps)), (*bones, *loose))] = np.nan
    named = None if cams is None else {n: round(float(r), 2) for n, r in zip(rig.names, cams, strict=True)}
    return out, err, views, summarize(solved, uv, time.perf_counter() - t0, named)
