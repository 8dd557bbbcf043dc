"""The fit stage tells the fit which points are measured: refine's points seen by two cameras or more count fully
when the fit judges between rotation branches, those seen by one or none (estimates) for little
(:func:`mocap.stages.fit.view_certainty`; the effect: ``test_fit_flips``)."""

import numpy as np

from mocap.stages import fit as fit_stage
from mocap.types import Points3D


def test_the_stage_passes_each_points_views_as_certainty(monkeypatch):
    from body_synth import blazepose_keypoints, body_motion

    F, C = 20, 4
    xyz = blazepose_keypoints(body_motion(F, 60.0, seed=1))[:, None].repeat(2, axis=1)  # two people
    views = np.ones((F, 2, 33, C), bool)
    views[5:9, 1, 16, 1:] = False  # person 2's right wrist: one view in frames 5-8
    views[7, 1, 14] = False  # their right elbow: no view in frame 7
    points = Points3D(xyz, np.zeros((F, 2, 33)), views, tuple(f"cam{i}" for i in range(C)), "blazepose33", 60.0,
                      {"stage": "refined"})
    seen = {}
    real = fit_stage.fit_motion

    def spy(*args, certainty=None, **kw):
        seen["certainty"] = certainty
        return real(*args, certainty=certainty, **kw)

    monkeypatch.setattr(fit_stage, "fit_motion", spy)
    fit_stage.run(points, fit_stage.Config(person=1))
    c = seen["certainty"]
    assert c.shape == (F, 33)
    expected = np.ones((F, 33))
    expected[5:9, 16] = fit_stage.ONE_VIEW_CERTAINTY
    expected[7, 14] = fit_stage.NO_VIEW_CERTAINTY
    np.testing.assert_array_equal(c, expected)
    assert 0 < fit_stage.NO_VIEW_CERTAINTY < fit_stage.ONE_VIEW_CERTAINTY < 1
    fit_stage.run(points, fit_stage.Config(person=0))
    assert (seen["certainty"] == 1).all()  # every point of person 1 seen by four cameras
