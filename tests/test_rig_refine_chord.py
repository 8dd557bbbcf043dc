"""The camera refinement's polish with its Jacobian frozen (RigRefineConfig.frozen_jacobian: chord steps,
a projection each instead of a Jacobian): from the warm start it lands where Gauss-Newton steps land and
where the converged adjustment does (synthetic take, perturbed rig)."""

import dataclasses

import numpy as np
from pipeline_synth import synthetic_session
from test_rig_refine import perturbed

from mocap.bench.robustness import rig_errors
from mocap.optim.rig_refine import RigRefineConfig, refine_rig
from mocap.session import Session
from mocap.stages import rig_refine


def test_frozen_jacobian_steps_land_where_gauss_newton_steps_do(tmp_path):
    s = Session(synthetic_session(tmp_path / "take", frames=240))
    bad = perturbed(s.rig())
    cfg = rig_refine.Config()
    xy, _ = rig_refine._observations(s.keypoints2d(), cfg)
    uv = rig_refine._used(xy, np.arange(len(xy)), cfg.min_views)[0]
    solver = RigRefineConfig(prior_deg=cfg.prior_deg, prior_m=cfg.prior_m)
    few = uv[::4]
    start, _, first = refine_rig(bad, few, rig_refine._points3d(bad, few, cfg.max_reproj_px),
                                 dataclasses.replace(solver, tolerance=1e-3, robust_tolerance=1e-3))
    assert first.usable
    X = rig_refine._points3d(start, uv, cfg.max_reproj_px)
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
