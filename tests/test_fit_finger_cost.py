"""Cost of the fingers in the fit (issue 16): the finger pass's model-based stop (a frame is done when its step
did what the linear model predicted) saves steps and lands where the full iteration lands."""

import numpy as np
from body_synth import noisy_hands_take

import mocap.fit.hands as hands_mod
import mocap.fit.ik as ik
from mocap.fit import FitConfig, fit_motion
from mocap.synth.fingers import hand_keypoints

FPS = 60.0


def _pts(frames=120, seed=3):
    return noisy_hands_take(frames, FPS, seed, 0.01, 0.004)[1]


def _finger_fit(monkeypatch, pts, model_stop):
    """The body52 fit with the finger pass's stop forced to ``model_stop``; returns the motion and the number
    of frames stepped in the finger pass (summed over its steps)."""
    solve, step = ik.solve_ik, ik.damped_step
    stepped = [0]
    inside = [False]

    def counting_step(Jd, *a, **k):
        if inside[0]:
            stepped[0] += Jd.shape[0]
        return step(Jd, *a, **k)

    def finger_solve(*a, **k):
        k["model_stop"] = model_stop
        inside[0] = True
        try:
            return solve(*a, **k)
        finally:
            inside[0] = False

    monkeypatch.setattr(ik, "damped_step", counting_step)
    monkeypatch.setattr(hands_mod, "solve_ik", finger_solve)
    motion, _ = fit_motion(pts, "blazepose33_hands", FPS, FitConfig(skeleton="body52"))
    return motion, stepped[0]


def test_finger_pass_model_stop_saves_steps_and_lands_where_full_iteration_does(monkeypatch):
    pts = _pts()
    full, n_full = _finger_fit(monkeypatch, pts, False)
    fast, n_fast = _finger_fit(monkeypatch, pts, True)
    assert 0 < n_fast < n_full, (n_fast, n_full)
    tips = np.linalg.norm(hand_keypoints(fast) - hand_keypoints(full), axis=2) * 1000
    assert np.median(tips) < 0.2 and tips.max() < 2.0, (np.median(tips), tips.max())


def test_model_stop_is_off_by_default_so_the_body_pass_is_unchanged(monkeypatch):
    seen = []
    solve = ik.solve_ik

    def spy(*a, **k):
        seen.append(k.get("model_stop", False))
        return solve(*a, **k)

    monkeypatch.setattr("mocap.fit.solve_ik", spy)
    pts = _pts(60)
    fit_motion(pts[:, :33], "blazepose33", FPS, FitConfig())
    assert seen and not any(seen)
