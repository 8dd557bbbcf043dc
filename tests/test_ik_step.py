"""The IK's block-arrow step (limbs eliminated around the trunk, :mod:`mocap.fit.ikstep`) against the plain
dense Levenberg–Marquardt step on the same rows, for the body (border: the root's translation and the trunk;
a hand's knuckles folded into six rows) and for the fingers under a held wrist (no border)."""

import numpy as np
import pytest
from body_synth import blazepose_keypoints, body_motion

import mocap.fit.ik as ik
from mocap.fit import FitConfig, fit_motion
from mocap.fit.ikstep import Blocks, damped_step
from mocap.synth.fingers import add_fingers, finger_curls, hand_keypoints

FPS = 60.0


def _dense(Jb, rb, blocks, border):
    """The dense rows (F, m, n) and residuals of a block-arrow step's input."""
    F, P, mr, w = Jb.shape
    n, nb = len(blocks.part), blocks.border.size
    a = w - blocks.cols.shape[1]
    m = int(blocks.rows.max()) + 1
    Jd, rd = np.zeros((F, m + 1, n + 1)), np.zeros((F, m + 1))
    for p in range(P):
        rows = blocks.rows[p]
        Jd[:, rows[:, None], blocks.cols[p][None, :]] += Jb[:, p, :, a:]
        if a:  # the rows against the frame's velocity, times that velocity per border column
            Jd[:, rows[:, None], blocks.border[None, :]] += Jb[:, p, :, :a] @ border[0][:, p]
        rd[:, rows] += rb[:, p]
    if nb:
        Jd[:, blocks.trunk[:, None], blocks.border[None, :]] = border[1]
        rd[:, blocks.trunk] = border[2]
    return Jd[:, :m, :n], rd[:, :m]


def _captured_steps(monkeypatch, pts, keypoint_set, skeleton):
    steps = []

    def capture(Jd, rd, groups, mu, blocks=None, border=None):
        if len(steps) < 12:
            steps.append((Jd, rd, groups, mu, blocks, border))
        return damped_step(Jd, rd, groups, mu, blocks, border)

    monkeypatch.setattr(ik, "damped_step", capture)
    fit_motion(pts, keypoint_set, FPS, FitConfig(skeleton=skeleton, iterations=3))
    return steps


@pytest.mark.parametrize("fingers", [False, True])
def test_block_arrow_step_equals_the_dense_step(monkeypatch, fingers):
    rng = np.random.default_rng(3)
    m22 = body_motion(40, FPS, seed=2)
    pts = blazepose_keypoints(m22)
    if fingers:
        pts = np.concatenate([pts, hand_keypoints(add_fingers(m22, finger_curls(40, FPS, seed=3)))], axis=1)
    pts = pts + rng.normal(0, 0.01, pts.shape)
    pts[rng.random(pts.shape[:2]) < 0.1] = np.nan
    steps = _captured_steps(monkeypatch, pts, "blazepose33_hands" if fingers else "blazepose33",
                            "body52" if fingers else "body22")
    kinds = set()
    for Jb, rb, groups, mu, blocks, border in steps:
        assert isinstance(blocks, Blocks)
        kinds.add(blocks.border.size > 0)
        Jd, rd = _dense(Jb, rb, blocks, border)
        d_block, pred_block = damped_step(Jb, rb, groups, mu, blocks, border)
        d_dense, pred_dense = damped_step(Jd, rd, groups, mu)
        assert np.abs(d_block - d_dense).max() < 1e-9 * max(1.0, np.abs(d_dense).max())
        np.testing.assert_allclose(pred_block, pred_dense, rtol=1e-9, atol=1e-9)
    # the body's step has a border (the trunk); the fingers' under a held wrist have none
    assert kinds == ({True, False} if fingers else {True})


def test_body22_blocks_are_the_limbs_around_the_trunk(monkeypatch):
    m22 = body_motion(20, FPS, seed=1)
    steps = _captured_steps(monkeypatch, blazepose_keypoints(m22), "blazepose33", "body22")
    blocks = steps[0][4]
    # border: the root's translation and the hips, spine, spine1, spine2 (3 each); five limbs: two legs
    # (hip 3 + knee 1 + ankle 3), neck and head (3 + 3), two arms (clavicle 3 + shoulder 3 + elbow 1 + wrist 3)
    assert blocks.border.size == 15
    assert sorted((blocks.cols < len(blocks.part)).sum(axis=1).tolist()) == [6, 7, 7, 10, 10]


def test_blocks_of_names_a_bad_partition():
    with pytest.raises(ValueError, match="must partition range"):
        Blocks.of([[0, 1]], [[0, 1]], 2, 4, border=[2])
