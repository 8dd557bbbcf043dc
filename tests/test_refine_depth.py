"""Refine's summary says when depth is not measured: two cameras at one place (or a degree apart) gave a take
metres off that refine filled and called usable (σ 78 px, 5 m off), since two kept views counted as depth
measured whatever the angle between their rays. The summary now carries the 3D noise along each point's
worst direction (its views' information, inverted) and its ratio to the noise across, the geometry alone; a take
is NOT usable where that ratio exceeds :data:`mocap.optim.refine_summary.MAX_DEPTH_RATIO`."""

import time
import warnings

import numpy as np
import pytest
from conftest import toy_take

from mocap.optim.refine_summary import MAX_DEPTH_RATIO
from mocap.stages import refine as refine_stage
from mocap.stages import triangulate as tri_stage
from mocap.synth import RigSpec


def _refined(n_cameras, arc_deg, fps=60.0, frames=300):
    rig, kp, truth, _ = toy_take(frames=frames, fps=fps, rig_spec=RigSpec(n_cameras=n_cameras, arc_deg=arc_deg,
                                                                         height_spread=0.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pts = tri_stage.run(rig, kp, tri_stage.Config())
        ref, summaries = refine_stage.run(rig, kp, pts, refine_stage.Config())
    err = np.linalg.norm(ref.xyz[:, 0] - truth, axis=-1)
    return summaries[0], float(np.nanmedian(err) * 1000)


@pytest.mark.parametrize("arc_deg", [0.0, 1.0])
def test_cameras_without_baseline_are_not_usable(arc_deg):
    s, err_mm = _refined(2, arc_deg)
    assert err_mm > 100  # the take is far off: depth is not measured
    assert not s.usable and "depth not measured" in s.message and "rays of the views" in s.message
    assert not s.depth_ratio <= MAX_DEPTH_RATIO


@pytest.mark.parametrize("fps", [30.0, 120.0])
def test_a_pair_ten_degrees_apart_is_usable_at_any_frame_rate(fps):
    """A millimetre threshold on the noise along the worst direction failed it at 120 fps (the residual σ grows
    with the frame rate) and passed it at 30: the ratio is the geometry's, the same at both."""
    s, err_mm = _refined(2, 10.0, fps=fps, frames=int(5 * fps))
    assert s.usable, s.message
    assert 8 < s.depth_ratio < 16  # about 1 / sin(10° / 2 ...): the pair's geometry
    assert err_mm < 30


def test_a_ring_of_cameras_measures_depth_about_as_well_as_across():
    s, err_mm = _refined(4, 270.0)
    assert s.usable, s.message
    assert err_mm < 10
    assert 1.0 <= s.depth_ratio < 2.5 and s.noise_mm_3d <= s.depth_mm_3d


def test_the_depth_figures_cost_little_on_a_long_take():
    """They are computed on up to 4,000 points spread over the take (every (frame, joint) made a 3 × 3 matrix:
    1.1 s and ~0.5 GB on 20,000 frames × 33 joints × 4 cameras, 17× the noise figure before)."""
    from types import SimpleNamespace

    from mocap.optim.refine_summary import _noise_3d

    rig, kp, truth, _ = toy_take(frames=20000)
    T, J = truth.shape[:2]
    prob = SimpleNamespace(rig=rig, groups=np.zeros(J, int), cam_scale=np.ones(len(rig)), scale=np.ones(J))
    fit = SimpleNamespace(x=truth, keep=np.ones((T, len(rig), J), bool))
    t0 = time.process_time()
    noise, depth, ratio = _noise_3d(prob, fit, 2.0)
    assert time.process_time() - t0 < 0.6
    assert 1.0 <= ratio < 2.5 and noise <= depth
