"""The summary of :func:`mocap.optim.refine.refine_person` and its checks (kept apart: refine.py was over 400
lines)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from mocap.optim.noise import detection_noise

log = logging.getLogger("mocap.optim.refine")
# the ratio of the points' 3D noise along their worst direction to their noise across (median; geometry alone: the
# noise level, the frame rate and the distance cancel) above which a take is NOT usable, depth not measured: its
# views' rays meet at too small an angle (measured below; a millimetre threshold on the noise failed a 10° pair
# at 120 fps, 28 mm off, and passed it at 30 fps, 36 mm off: the residual σ it scales by grows with the frame rate)
MAX_DEPTH_RATIO = 25.0


@dataclass(frozen=True)
class RefineSummary:
    iterations: int
    initial_cost: float
    final_cost: float
    noise_px: float
    observations: int
    rejected: int
    rms_px: float
    cg_iterations: int
    seconds: float
    usable: bool
    message: str
    # each camera's 2D noise σ relative to the others' when refine weighed the cameras by it (one differed by more
    # than mocap.optim.refine_noise.CAMERA_MARGIN), else None: every pixel weighed alike
    camera_noise: dict[str, float] | None = None
    # the 3D noise σ (mm) the 2D noise σ makes of the body's points, from each kept view's depth and focal length
    # (median over points seen by two or more views; before the smoothing), None when no point has two views
    noise_mm_3d: float | None = None
    # the same σ along each point's worst-measured direction (the inverse of its views' information, rays and
    # all), median over those points: large where the rays meet at small angles (depth unmeasured), None as above;
    # and its ratio to the noise across, median over the points (geometry only: 1.3-2 on a ring of cameras)
    depth_mm_3d: float | None = None
    depth_ratio: float | None = None

    def __str__(self) -> str:
        return (f"refine: {self.iterations} iterations ({self.cg_iterations} CG), cost {self.initial_cost:.4g} → "
                f"{self.final_cost:.4g}, "
                f"σ={self.noise_px:.2f}px, RMS {self.rms_px:.2f}px, {self.rejected}/{self.observations} "
                f"observations rejected, {self.seconds:.2f}s — {'usable' if self.usable else 'NOT usable'}: "
                f"{self.message}" + ("; cameras' σ relative (σ and RMS in the median camera's pixels): "
                                     f"{self.camera_noise}" if self.camera_noise else ""))


def summarize(solved, uv: np.ndarray, seconds: float, camera_noise: dict[str, float] | None = None) -> RefineSummary:
    """One summary of the parts' solves ``solved`` [(problem, its RobustResult, its joints)] of
    :func:`mocap.optim.refine.refine_person`, ``uv`` all the 2D keypoints: iterations, CG iterations, costs,
    observations and rejections summed; σ the first part's (the body's); RMS over every kept observation (each
    divided by its camera's relative σ, as σ is); the views-agree check on the body's joints; ``camera_noise`` the
    cameras' relative σ refine applied. Each part is also checked on its own (its share of rejected observations,
    its RMS against its own σ): a body that is not usable alone is not usable with hands (the hands' observations
    diluted its rejections), nor is a hand most of whose observations were rejected; the RMS of all parts is read
    against σ with one part only (the hands' own noise level is not the body's)."""
    # in each camera's noise units (pixels where the cameras are alike: cam_scale 1), as σ
    norms = [prob.pixel_norms(fit.x) / prob.cam_scale[None, :, None] for prob, fit, _ in solved]
    kept = np.concatenate([n[fit.keep] for n, (_, fit, _) in zip(norms, solved, strict=True)])
    prob, fit, idx = solved[0]
    sigma, final = fit.sigma, sum(f.final.final_cost for _, f, _ in solved)
    n_obs = sum(int(np.sum(p.w > 0)) for p, _, _ in solved)
    rejected = n_obs - sum(int(f.keep.sum()) for _, f, _ in solved)
    rms = float(np.sqrt(np.mean(kept**2))) if kept.size else float("nan")
    problems = []
    if rejected > 0.3 * max(n_obs, 1) and len(solved) == 1:
        problems.append(f"{rejected / n_obs:.0%} of observations rejected (calibration or detection problem, or "
                        "another person's keypoints in some views: mixed identities?)")
    if not np.isfinite(final):
        problems.append("cost is not finite")
    if len(solved) > 1:
        problems += [f"{_part_name(p)}: {why}" for (p, f, _), n in zip(solved, norms, strict=True)
                     if (why := _part_problem(p, f, n))]
    # several parts: each was checked against its own σ above (the hands' pixels pooled with the body's and read
    # against the body's σ called a take whose hands are noisier NOT usable)
    pooled = len(solved) == 1 and rms > 3 * sigma
    if pooled and not any("RMS" in m for m in problems):
        problems.append(f"RMS {rms:.1f}px is large against σ {sigma:.1f}px")
    # the views-agree check is the body's (group 0): with hands it decides as for the body alone, and the hands'
    # 2D tracks (their own noise level, see set_group_noise) are not read a second time
    b = prob.groups == 0
    kb, nb = fit.keep[..., b], norms[0][..., b]
    rms_b = rms if b.all() and len(solved) == 1 else float(np.sqrt(np.mean(nb[kb] ** 2))) if kb.any() else float("nan")
    proj = np.moveaxis(prob.uv[..., b, :] + prob.residuals(fit.x)[..., b, :], 1, 0)  # the projections of X
    noise, why = detection_noise(uv[:, :, idx[b]], prob.w[..., b], proj)
    if np.isfinite(noise) and rms_b > 3 * noise and not (pooled or rms_b > 3 * sigma):
        problems.append(f"RMS {rms_b:.1f}px is more than 3× the detection noise σ {noise:.1f}px ({why}): the views "
                        "disagree — another person's keypoints in this person's slot (mixed identities), "
                        "left/right swaps, or a camera's calibration or sync")
    noise3d, depth3d, ratio = _noise_3d(prob, fit, sigma)
    if ratio is not None and not ratio <= MAX_DEPTH_RATIO:
        problems.append(f"depth not measured: the points' 3D noise along their worst direction is "
                        f"{'unbounded' if not np.isfinite(ratio) else f'{ratio:.0f}× their noise across'} (median; "
                        f"{depth3d:.0f} mm before smoothing): the rays of the views that see them meet at small angles "
                        "(cameras at one place, or close together for their distance)")
    summary = RefineSummary(
        iterations=sum(f.iterations for _, f, _ in solved),
        initial_cost=sum(f.robust.initial_cost for _, f, _ in solved), final_cost=final, noise_px=sigma,
        observations=n_obs, rejected=rejected, rms_px=rms,
        cg_iterations=sum(f.inner_iterations for _, f, _ in solved), seconds=seconds,
        usable=not problems, message="; ".join(problems) or "converged", camera_noise=camera_noise,
        noise_mm_3d=noise3d, depth_mm_3d=depth3d, depth_ratio=ratio,
    )
    log.info("%s", summary)
    return summary


def _noise_3d(prob, fit, sigma: float, max_points: int = 4000) -> tuple[float | None, float | None, float | None]:
    """The body's 3D noise σ in mm: per kept observation the pixel σ (its camera's and joint group's share)
    times depth over focal length, combined over a point's views (inverse variances), median over the points
    with two or more views; the σ along each point's worst direction (its views' information, 2 × 3 per view from
    the projection's Jacobian, inverted; inf when singular) and its ratio to the first, a point's geometry alone
    (1.3-2 on a ring of cameras; the noise level cancels), medians over the points of up to ``max_points`` / (body
    joints) frames spread over the take, all their joints. (None, None, None) when no point has two views."""
    X = np.asarray(fit.x, float)  # (T, Ja, 3)
    body = prob.groups == 0
    inv, views = np.zeros(X.shape[:2]), np.zeros(X.shape[:2], int)
    focal = [float(np.sqrt(cam.K[0, 0] * cam.K[1, 1])) for cam in prob.rig.cameras]

    def weights(c: int, Xc: np.ndarray, keep: np.ndarray, scale: np.ndarray) -> np.ndarray:
        z = Xc[..., 2]
        sv = sigma * prob.cam_scale[c] * scale * np.abs(z) / focal[c]
        use = keep & (z > 0) & (sv > 0)
        return np.where(use, 1.0 / np.where(use, sv, 1.0) ** 2, 0.0)

    for c, cam in enumerate(prob.rig.cameras):
        M = np.asarray(cam.cam_from_world, float)
        w = weights(c, X @ M[:3, :3].T + M[:3, 3], fit.keep[:, c] & body[None, :], prob.scale[None, :])
        inv += w
        views += w > 0
    ok = views >= 2
    if not ok.any():
        return None, None, None
    rows = np.flatnonzero(ok.any(axis=1))  # frames spread over the take, every joint of theirs (a stride over the
    n = max(1, min(len(rows), max_points // max(1, int(ok[rows].sum(axis=1).mean()))))  # points kept one joint)
    picked = rows[np.unique(np.linspace(0, len(rows) - 1, n).round().astype(int))]
    t, j = np.nonzero(ok[picked])
    t = picked[t]
    Xs, info = X[t, j], np.zeros((len(t), 3, 3))
    for c, cam in enumerate(prob.rig.cameras):
        M = np.asarray(cam.cam_from_world, float)
        Xc = Xs @ M[:3, :3].T + M[:3, 3]
        w = weights(c, Xc, fit.keep[t, c, j], prob.scale[j])
        zs = np.where(w > 0, Xc[:, 2], 1.0)
        for row in (0, 1):  # d(image coordinate)/dX in metres per metre: (R_row − (x_row / z) R_2) / z × z
            a = M[row, :3] - (Xc[:, row] / zs)[:, None] * M[2, :3]
            info += w[:, None, None] * a[:, :, None] * a[:, None, :]
    eig = np.linalg.eigvalsh(info)  # (n, 3) ascending
    worst = np.where(eig[:, 0] > 1e-12 * eig[:, -1].max(), 1.0 / np.sqrt(np.maximum(eig[:, 0], 1e-300)), np.inf)
    across = 1.0 / np.sqrt(inv[t, j])
    return (float(np.median(1.0 / np.sqrt(inv[ok])) * 1000), float(np.median(worst) * 1000),
            float(np.median(worst / across)))


def _part_name(prob) -> str:
    """What a part of a refine problem holds, for the summary's message (from its first joint's group)."""
    g = int(prob.groups[0])
    return "the body" if g == 0 else "the hands" if g == 1 else f"joint group {g}"


def _part_problem(prob, fit, norms: np.ndarray) -> str | None:
    """The checks of a part solved on its own (as :func:`summarize` checks one problem): more than 30 % of its
    observations rejected, or its RMS over 3× its own σ; None when neither."""
    n_obs = int(np.sum(prob.w > 0))
    rejected = n_obs - int(fit.keep.sum())
    if rejected > 0.3 * max(n_obs, 1):
        return (f"{rejected / n_obs:.0%} of observations rejected (calibration or detection problem, or another "
                "person's keypoints in some views: mixed identities?)")
    rms = float(np.sqrt(np.mean(norms[fit.keep] ** 2))) if fit.keep.any() else float("nan")
    return f"RMS {rms:.1f}px is large against σ {fit.sigma:.1f}px" if rms > 3 * fit.sigma else None
