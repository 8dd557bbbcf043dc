"""The fit is usable relative to its points' noise: refine records a 3D noise σ per person, the fit stage passes it,
and the gate is a multiple of it with a floor (a fixed 50 mm let a fit 25 mm off 6 mm-noise points pass)."""

import numpy as np
from pipeline_synth import synthetic_session

from mocap.fit import MAX_USABLE_RMS_MM, MIN_USABLE_RMS_MM, USABLE_NOISE_MULTIPLE, FitSummary


def _summary(**kw) -> FitSummary:
    base = dict(frames=40, fitted_frames=40, empty_frames=0, noise_mm=0.4, rms_mm_median=25.0, rms_mm_p95=40.0)
    return FitSummary(**(base | kw))


def test_the_gate_is_a_multiple_of_the_points_noise_with_a_floor():
    assert _summary().usable and _summary().usable_below_mm == MAX_USABLE_RMS_MM  # noise unknown: as before
    bad = _summary(points_noise_mm=6.0)
    assert bad.usable_below_mm == USABLE_NOISE_MULTIPLE * 6.0 and not bad.usable
    why = bad.why_unusable()
    assert "misses the 3D keypoints by 25 mm" in why and "usable below 18 mm" in why and "noise σ 6.0 mm" in why
    assert _summary(points_noise_mm=6.0, rms_mm_median=3.7).usable  # the real takes' residuals: 3.3-3.7 mm
    assert _summary(points_noise_mm=0.5, rms_mm_median=12.0).usable  # the floor: model error, not noise
    assert _summary(points_noise_mm=0.5).usable_below_mm == MIN_USABLE_RMS_MM
    assert _summary(points_noise_mm=40.0, rms_mm_median=55.0).usable_below_mm == MAX_USABLE_RMS_MM
    assert _summary(points_noise_mm=float("nan")).usable_below_mm == MAX_USABLE_RMS_MM


def _refined(tmp_path, noise_px):
    from mocap.io.hdf5 import read_points3d
    from mocap.pipeline import run
    from mocap.session import Session

    root = synthetic_session(tmp_path / f"take{noise_px}", noise_px=noise_px)
    run(root, sets=["export.formats=['bvh']", "report.overlay_videos=false"], progress=False,
        only=["triangulate", "refine"])
    session = Session(root)
    return session, read_points3d(session.points3d("refined"))


def test_refine_records_the_3d_noise_and_the_fit_stage_passes_it(tmp_path):
    from mocap.stages import fit as fit_stage

    found = {}
    for px in (1.0, 4.0):
        session, points = _refined(tmp_path, px)
        s = points.info["summaries"][0]
        rig = session.rig()
        X = points.xyz[:, 0].reshape(-1, 3)
        X = X[np.isfinite(X).all(axis=1)]
        per_view = [np.median(X @ c.cam_from_world[2, :3] + c.cam_from_world[2, 3]) / np.sqrt(c.K[0, 0] * c.K[1, 1])
                    for c in rig.cameras]  # metres per pixel at the subject
        expected = s["noise_px"] * np.median(per_view) / np.sqrt(len(per_view)) * 1000
        assert 0.6 * expected < s["noise_mm_3d"] < 1.6 * expected, (s["noise_mm_3d"], expected)
        _, summary = fit_stage.run(points, fit_stage.Config())
        assert summary.points_noise_mm == s["noise_mm_3d"]
        found[px] = s["noise_mm_3d"]
    assert 2.5 < found[4.0] / found[1.0] < 6
