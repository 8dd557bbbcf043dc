"""Refine solves the parts that share no bone apart (mocap/optim/refine_parts.py): the body of a take with hands
exactly as without them, each hand with its own noise level, and a hand's final pass ends once a step did what
the quadratic model predicted, no less accurate than iterating on."""

import logging

import numpy as np
import pytest
from test_hands_triangulate import hands_take

import mocap.optim.refine as refine_module
from mocap.keypoint_sets import get_keypoint_set, joint_groups
from mocap.optim.refine import RefineConfig, refine_person
from mocap.optim.refine_parts import independent_parts, part_bones
from mocap.stages import triangulate


def test_parts_are_the_body_then_each_hand():
    ks = get_keypoint_set("blazepose33_hands")
    groups = joint_groups(ks)
    parts = independent_parts(len(ks.joints), ks.bones, groups)
    assert [p.tolist() for p in parts] == [list(range(33)), list(range(33, 75))]  # the body, the hands
    hands = part_bones(ks.bones, parts[1])
    assert len(hands) == 46 and all(0 <= a < 42 and 0 <= b < 42 for a, b in hands)  # in the part's own indices
    three = independent_parts(75, ks.bones, np.r_[groups[:54], 2 * groups[54:]])  # the right hand a group of its own
    assert [p.tolist() for p in three] == [list(range(33)), list(range(33, 54)), list(range(54, 75))]
    assert len(independent_parts(75, ks.bones, None)) == 1  # no groups: one problem, as before hands
    assert len(independent_parts(75, list(ks.bones) + [(15, 33)], groups)) == 1  # a bone to the body: one problem
    assert len(independent_parts(75, ks.bones, np.ones(75, int))) == 1  # no body
    with pytest.raises(ValueError, match=r"groups \(74,\) do not match the 75 joints \(expected \(75,\)\)"):
        independent_parts(75, ks.bones, groups[:74])


@pytest.fixture(scope="module")
def take():
    rig, kp, truth = hands_take(frames=90, cameras=4)
    ks = get_keypoint_set(kp.keypoint_set)
    w = triangulate.observation_weights(kp, 0.2)[:, :, 0]
    return rig, kp, truth, ks, w, triangulate.run(rig, kp).xyz[:, 0]


def test_the_body_of_a_take_with_hands_is_refined_as_without_them(take):
    rig, kp, truth, ks, w, X0 = take
    X, err, views, s = refine_person(rig, kp.xy[:, :, 0], w, X0, ks.bones, kp.fps, RefineConfig(), joint_groups(ks))
    body_bones = get_keypoint_set("blazepose33").bones
    Xb, err_b, views_b, s_b = refine_person(rig, kp.xy[:, :, 0, :33], w[..., :33], X0[:, :33], body_bones, kp.fps)
    assert np.array_equal(X[:, :33], Xb, equal_nan=True) and np.array_equal(views[:, :33], views_b)
    assert np.array_equal(err[:, :33], err_b, equal_nan=True)
    assert s.noise_px == s_b.noise_px and s.iterations > s_b.iterations  # σ the body's; the hands' steps added
    assert s.observations == (w > 0).sum() and s.usable
    fingers = np.linalg.norm(X[1:, 33:] - truth[1:, 33:], axis=-1) * 1000
    assert np.nanmedian(fingers) < 4.0, np.nanmedian(fingers)


def test_a_hand_stops_once_the_model_predicts_its_step(take, monkeypatch):
    rig, kp, truth, ks, w, X0 = take
    final = []  # (the problem stops on the model, it linearised with projections) per final-pass linearisation
    real = refine_module._Problem.linearize

    def spy(self, X):
        lin = real(self, X)
        if self._lengths_final:
            final.append((self.model_stop, lin is not None))
        return lin

    monkeypatch.setattr(refine_module._Problem, "linearize", spy)

    def solve():
        final.clear()
        X, _, _, s = refine_person(rig, kp.xy[:, :, 0], w, X0, ks.bones, kp.fps, RefineConfig(), joint_groups(ks))
        return X, s, sum(real for stops, real in final if stops), sum(1 for stops, _ in final if not stops)

    X, s, hands, body = solve()
    assert hands == 1  # one step for the hands; then the held joints' zero step, which projects nothing
    monkeypatch.setattr(refine_module, "MODEL_AGREEMENT", -1.0)  # never: iterate to the tolerance
    X_full, s_full, hands_full, body_full = solve()
    assert hands_full >= 2 and body_full == body  # the hands' step, then at least one to see it converged
    assert abs(s.final_cost - s_full.final_cost) < 1e-4 * s_full.final_cost
    e, e_full = (np.nanmean(np.linalg.norm(x[1:, 33:] - truth[1:, 33:], axis=-1)) * 1000 for x in (X, X_full))
    assert e < e_full + 0.02, (e, e_full)
    assert np.nanmax(np.linalg.norm(X - X_full, axis=-1)) < 0.001
    assert np.array_equal(X[:, :33], X_full[:, :33], equal_nan=True)


def test_a_hand_never_seen_is_left_empty_and_a_fixed_noise_is_scaled_for_the_hands(take, caplog):
    rig, kp, truth, ks, w, X0 = take
    w = w.copy()
    w[..., 54:] = 0.0  # the right hand in no view
    cfg = RefineConfig(noise_px=2.0)
    with caplog.at_level(logging.INFO, logger="mocap.optim.refine"):
        X, _, _, s = refine_person(rig, kp.xy[:, :, 0], w, X0, ks.bones, kp.fps, cfg, joint_groups(ks))
    assert np.isnan(X[:, 54:]).all() and np.isfinite(X[:, :54]).mean() > 0.95 and s.usable
    assert s.noise_px == 2.0
    line = next(r.getMessage() for r in caplog.records if "relative to the body" in r.getMessage())
    ratio = float(line.split("1: ")[1].rstrip("}"))
    assert 0.2 < ratio < 0.9, line  # 1 px hands against 2 px body, measured on the starting residuals


def test_a_bad_body_or_hand_is_not_hidden_behind_the_other_part(take):
    """The verdict of a take with hands: a body whose observations are not usable alone (two in five far off) is not
    usable beside good hands (their observations diluted its rejected share), and the hands flag themselves."""
    rig, kp, truth, ks, w, X0 = take
    rng = np.random.default_rng(1)
    groups = joint_groups(ks)

    def spoiled(joints, share, px):
        uv = kp.xy[:, :, 0].copy()
        bad = (rng.random(uv.shape[:3]) < share) & joints[None, None, :]
        uv[bad] += rng.normal(0, px, (bad.sum(), 2))
        return uv

    uv = spoiled(np.arange(75) < 33, 0.45, 60.0)
    body_bones = get_keypoint_set("blazepose33").bones
    s_b = refine_person(rig, uv[..., :33, :], w[..., :33], X0[:, :33], body_bones, kp.fps)[3]
    assert not s_b.usable and "of observations rejected" in s_b.message
    s = refine_person(rig, uv, w, X0, ks.bones, kp.fps, RefineConfig(), groups)[3]
    assert s.rejected < 0.3 * s.observations  # the whole take's share alone would pass
    assert not s.usable and s.message.startswith("the body: ") and "of observations rejected" in s.message
    uv = spoiled(np.arange(75) >= 54, 0.8, 30.0)  # the right hand's detections mostly wrong
    s = refine_person(rig, uv, w, X0, ks.bones, kp.fps, RefineConfig(), groups)[3]
    assert not s.usable and "the hands: " in s.message and "the body" not in s.message, s.message
