"""Swap repair tests only the doubtful views against the other views' point (issue 14's cost target): a view
whose exchange is clearly worse on the point of all views keeps that evidence, and the repairs stay those of
testing every view."""

import numpy as np
import pytest
from test_swaps import scores, swapped_take

from mocap.geometry.swaps import SwapConfig, find_swaps, joint_errors, swap_groups
from mocap.keypoint_sets import get_keypoint_set
from mocap.stages import triangulate


def test_gated_repairs_are_those_of_testing_every_view():
    rig, kp, _, masks = swapped_take(frames=600, swaps=0.03, seed=4)
    ks = get_keypoint_set("coco17")
    w = triangulate.observation_weights(kp, 0.2)[:, :, 0]
    every, _ = find_swaps(rig, kp.xy[:, :, 0], w, ks, SwapConfig(clear_margin=None))
    gated, _ = find_swaps(rig, kp.xy[:, :, 0], w, ks)
    member = swap_groups(ks)[1]
    assert scores(every, masks["swapped"], w, member)[0] > 0.8  # the take has swaps the test finds
    differ = (every != gated).any(axis=2)
    assert differ.mean() <= 0.002, np.argwhere(differ)


def test_views_left_out_keep_their_distances_to_the_point_of_all_views():
    rig, kp, _, _ = swapped_take(frames=120, swaps=0.05, seed=1)
    w = triangulate.observation_weights(kp, 0.2)[:, :, 0]
    perm = get_keypoint_set("coco17").flip_permutation
    xy = kp.xy[:, :, 0]
    full = joint_errors(rig, xy, w, perm, 15.0)
    chosen = np.zeros(xy.shape[:2], bool)
    chosen[::3, 1] = True
    seen = {}

    def select(e_given, e_mirror):
        seen["given"], seen["mirror"] = e_given.copy(), e_mirror.copy()
        return chosen

    e_given, e_mirror = joint_errors(rig, xy, w, perm, 15.0, select=select)
    for got, ref, cheap in ((e_given, full[0], seen["given"]), (e_mirror, full[1], seen["mirror"])):
        assert np.allclose(got[chosen], ref[chosen], equal_nan=True)  # tested against the others' point
        assert np.allclose(got[~chosen], cheap[~chosen], equal_nan=True)  # kept
    # the point of all views includes the view itself: its own distances are smaller than the others' point's
    both = np.isfinite(seen["given"]) & np.isfinite(full[0])
    assert np.median(seen["given"][both]) < np.median(full[0][both])
    everything = joint_errors(rig, xy, w, perm, 15.0, select=lambda g, m: np.ones(xy.shape[:2], bool))
    assert np.allclose(everything[0], full[0], equal_nan=True) and np.allclose(everything[1], full[1], equal_nan=True)


def test_bad_gate_settings_say_what_was_expected():
    with pytest.raises(ValueError, match="clear_margin must be ≥ 0 \\(or None\\), got -1"):
        SwapConfig(clear_margin=-1)
    with pytest.raises(ValueError, match="scale_frames must be ≥ 1, got 0"):
        SwapConfig(scale_frames=0)
