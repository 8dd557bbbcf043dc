"""The camera refinement's polish with its Jacobian frozen (RigRefineConfig.frozen_jacobian: chord steps,
a projection each instead of a Jacobian): from the warm start it lands where Gauss-Newton steps land and
where the converged adjustment does (synthetic take, perturbed rig); its chord steps reuse the Schur
complement of the pass's first linearisation (_Problem.solve): one reduced camera system per linearisation
while its steps are accepted, a new one after a rejected step (a larger damping), and the same cameras as
solving every chord step afresh."""

import dataclasses

import numpy as np
from pipeline_synth import synthetic_session
from test_rig_refine import perturbed

import mocap.optim.rig_refine as rr
from mocap.bench.robustness import rig_errors
from mocap.geometry.rig_errors import points3d
from mocap.optim.rig_refine import RigRefineConfig, refine_rig
from mocap.session import Session
from mocap.stages import rig_refine


def _warm(tmp_path):
    """A perturbed rig, its observations, the warm start from a quarter of them, and the points through it."""
    s = Session(synthetic_session(tmp_path / "take", frames=240))
    bad = perturbed(s.rig())
    cfg = rig_refine.Config()
    xy, _ = rig_refine._observations(s.keypoints2d(), cfg)
    uv = rig_refine._used(xy, np.arange(len(xy)), cfg.min_views)[0]
    solver = RigRefineConfig(prior_deg=cfg.prior_deg, prior_m=cfg.prior_m)
    few = uv[::4]
    start, _, first = refine_rig(bad, few, points3d(bad, few, cfg.max_reproj_px),
                                 dataclasses.replace(solver, tolerance=1e-3, robust_tolerance=1e-3))
    assert first.usable
    return bad, uv, start, points3d(start, uv, cfg.max_reproj_px), solver


def test_frozen_jacobian_steps_land_where_gauss_newton_steps_do(tmp_path):
    bad, uv, start, X, solver = _warm(tmp_path)
    polish = dataclasses.replace(solver, robust_iterations=0, tolerance=1e-9, max_iterations=2)
    out = {}
    for name, c in (("chord", dataclasses.replace(polish, frozen_jacobian=True)), ("gauss-newton", polish),
                    ("converged", dataclasses.replace(polish, max_iterations=40))):
        rig, _, summary = refine_rig(bad, uv, X, c, start=start)
        assert summary.usable, summary
        out[name] = (rig, summary)
    assert out["chord"][1].iterations == out["gauss-newton"][1].iterations == 2
    for name in ("gauss-newton", "converged"):
        centres, rotations = rig_errors(out["chord"][0], out[name][0])
        assert centres.max() < 0.1 and rotations.max() < 0.001, (name, centres, rotations)
    assert out["chord"][1].rms_px < 1.0005 * out["converged"][1].rms_px
    centres, _ = rig_errors(out["chord"][0], start)
    assert centres.max() > 0.5  # the polish moved the cameras by millimetres: the agreement is not the start


def test_chord_steps_reuse_the_reduced_system(tmp_path, monkeypatch):
    bad, uv, start, X, solver = _warm(tmp_path)
    polish = dataclasses.replace(solver, robust_iterations=0, tolerance=1e-9, max_iterations=3, frozen_jacobian=True)
    built, solves = [], []
    schur, solve = rr._Problem._schur, rr._Problem.solve
    monkeypatch.setattr(rr._Problem, "_schur", lambda self, *a: built.append(a[-1]) or schur(self, *a))
    monkeypatch.setattr(rr._Problem, "solve", lambda self, lin, mu: solves.append(mu) or solve(self, lin, mu))
    reused, _, summary = refine_rig(bad, uv, X, polish, start=start)
    assert summary.usable and summary.iterations == 3
    assert len(solves) >= 3 and len(built) == 1 + sum(b > a for a, b in zip(solves, solves[1:], strict=False))
    monkeypatch.setattr(rr._Problem, "solve", lambda self, lin, mu: (setattr(self, "_factor", None),
                                                                     solve(self, lin, mu))[1])
    fresh, _, _ = refine_rig(bad, uv, X, polish, start=start)  # every chord step solved afresh
    centres, rotations = rig_errors(reused, fresh)
    assert centres.max() < 0.05 and rotations.max() < 0.0005, (centres, rotations)
