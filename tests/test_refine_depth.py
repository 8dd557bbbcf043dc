"""Refine's summary says when depth is not measured: two cameras at one place (or a degree apart) gave a take
metres off that refine filled and called usable (σ 78 px, 5 m off), since two kept views counted as depth
measured whatever the angle between their rays. The summary now carries the 3D noise along each point's
worst direction (its views' information, inverted) and a take is NOT usable where it exceeds
:data:`mocap.optim.refine_summary.MAX_DEPTH_MM`."""

import warnings

import numpy as np
import pytest
from conftest import toy_take

from mocap.optim.refine_summary import MAX_DEPTH_MM
from mocap.stages import refine as refine_stage
from mocap.stages import triangulate as tri_stage
from mocap.synth import RigSpec


def _refined(n_cameras, arc_deg):
    rig, kp, truth, _ = toy_take(frames=300, rig_spec=RigSpec(n_cameras=n_cameras, arc_deg=arc_deg,
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
    assert not s.usable and "depth not measured" in s.message and "rays meet at small angles" in s.message
    assert not s.depth_mm_3d <= MAX_DEPTH_MM


def test_a_ring_of_cameras_measures_depth_about_as_well_as_across():
    s, err_mm = _refined(4, 270.0)
    assert s.usable, s.message
    assert err_mm < 10
    assert s.noise_mm_3d <= s.depth_mm_3d < 2.5 * s.noise_mm_3d  # the worst direction is not much worse
