"""Refine's start: hand keypoints bridge their gaps with the body's wrist and drop gross triangulation errors."""

import numpy as np

from mocap.filters import interpolate_gaps
from mocap.optim.refine_start import start_points


def arm_and_hand(frames=120, fps=60.0):
    """(T, 4, 3): shoulder (still), wrist swinging on a 0.6 m circle at half a turn a second, a knuckle 9 cm and a
    fingertip 17 cm further along the forearm; groups: body, body, hand, hand."""
    t = np.arange(frames) / fps
    a = np.pi * t
    shoulder = np.tile([0.0, 0.0, 1.4], (frames, 1))
    along = np.stack([np.cos(a), np.zeros(frames), np.sin(a)], axis=1)
    wrist = shoulder + 0.6 * along
    X = np.stack([shoulder, wrist, wrist + 0.09 * along, wrist + 0.17 * along], axis=1)
    return X, np.array([0, 0, 1, 1])


def test_hand_gaps_follow_the_wrist_and_gross_errors_are_dropped():
    truth, groups = arm_and_hand()
    X0 = truth + np.random.default_rng(0).normal(0, 0.003, truth.shape)
    X0[40:55, 2:] = np.nan  # the hand unseen for a quarter of a second while the arm swings
    X0[80, 3] += [1.5, -2.0, 0.5]  # a fingertip triangulated from two views, one of them wrong
    plain = interpolate_gaps(X0, None, None)
    X = start_points(X0, groups)
    err = np.linalg.norm(X - truth, axis=-1)
    err_plain = np.linalg.norm(plain - truth, axis=-1)
    assert err[40:55, 2:].max() < 0.03 and err[40:55, 2:].max() < 0.5 * err_plain[40:55, 2:].max()  # with the wrist
    assert err[80, 3] < 0.02 and err_plain[80, 3] > 1.0
    seen = np.isfinite(X0[..., 0])
    seen[80, 3] = False
    assert np.array_equal(X[seen], X0[seen])  # what was triangulated (and plausible) is kept as it is
    assert np.array_equal(X[:, :2], plain[:, :2])  # the body as before


def test_without_groups_or_body_the_start_is_plain_interpolation():
    truth, groups = arm_and_hand()
    X0 = truth.copy()
    X0[10:20, 3] = np.nan
    plain = interpolate_gaps(X0, None, None)
    assert np.array_equal(start_points(X0, None), plain)
    assert np.array_equal(start_points(X0, np.ones(4, int)), plain)  # no body joint to follow
    X0[:, 2] = np.nan  # a joint never triangulated stays NaN
    assert np.isnan(start_points(X0, groups)[:, 2]).all()
