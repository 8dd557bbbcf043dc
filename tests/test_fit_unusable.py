"""An unusable fit says why in words (it printed the whole FitSummary dataclass, bone lengths and all)."""

import dataclasses
import logging

from mocap.fit import MAX_USABLE_RMS_MM, FitSummary


def _summary(**kw) -> FitSummary:
    base = dict(frames=40, fitted_frames=40, empty_frames=0, noise_mm=0.2, rms_mm_median=12.0, rms_mm_p95=30.0,
                bone_lengths={"RightForeArm": 1.39})
    return FitSummary(**(base | kw))


def test_why_unusable_in_words():
    assert _summary().usable and _summary().why_unusable() == ""
    bad = _summary(rms_mm_median=81.6, rms_mm_p95=196.7)
    assert not bad.usable
    why = bad.why_unusable()
    assert "misses the 3D keypoints by 82 mm" in why and "P95 197 mm" in why
    assert f"usable below {MAX_USABLE_RMS_MM:.0f} mm" in why and "another person" in why
    assert "FitSummary" not in why and "RightForeArm" not in why
    empty = _summary(fitted_frames=0, empty_frames=40)
    assert not empty.usable and "no frame of 40 could be fitted" in empty.why_unusable()


def test_the_fit_stage_warns_with_the_reason(tmp_path, monkeypatch, caplog):
    from pipeline_synth import synthetic_session

    from mocap.pipeline import run
    from mocap.stages import fit as fit_stage

    real = fit_stage.run

    def mixed(points, cfg):  # the fit of a body whose points are mixed with another's
        motion, summary = real(points, cfg)
        return motion, dataclasses.replace(summary, rms_mm_median=81.6, rms_mm_p95=196.7)

    monkeypatch.setattr(fit_stage, "run", mixed)
    session = synthetic_session(tmp_path / "take")
    with caplog.at_level(logging.WARNING, logger="mocap.stages.fit"):
        run(session, sets=["export.formats=['bvh']", "report.overlay_videos=false"], progress=False,
            only=["triangulate", "refine", "fit"])
    assert "fit looks unusable: the skeleton misses the 3D keypoints by 82 mm" in caplog.text
    assert "FitSummary(" not in caplog.text
