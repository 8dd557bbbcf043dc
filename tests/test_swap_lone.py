"""Swap repair evaluates a frame again without its most evident view only where that view can have hidden another
swapped view from the references: with fewer than ``SwapConfig.lone_views`` views, or where several views show
evidence (issue 14's cost at 8 cameras)."""

import numpy as np
import pytest
from conftest import count_calls
from test_swaps import scores, swapped_take

import mocap.geometry.swaps as swaps
from mocap.geometry.swaps import SwapConfig, find_swaps, swap_groups
from mocap.keypoint_sets import get_keypoint_set
from mocap.stages import triangulate
from mocap.types import Keypoints2D

KS = get_keypoint_set("coco17")


def eight_camera_take():
    """600 frames, 8 cameras, 3 % of views swapped at random, and 20 frames with two views swapped at once."""
    rig, kp, _, masks = swapped_take(frames=600, swaps=0.03, seed=5, n_cameras=8)
    data, truth = kp.data.copy(), masks["swapped"].copy()
    rng = np.random.default_rng(5)
    for f in rng.choice(600, 20, replace=False):
        for c in rng.choice(8, 2, replace=False):
            if not truth[f, c]:
                data[f, c] = data[f, c][:, KS.flip_permutation]
                truth[f, c] = True
    return rig, Keypoints2D(data, kp.camera_names, kp.keypoint_set, kp.fps), truth


def test_eight_cameras_repair_the_same_views_and_evaluate_fewer_frames_again(monkeypatch):
    rig, kp, truth = eight_camera_take()
    w = triangulate.observation_weights(kp, 0.2)[:, :, 0]
    member = swap_groups(KS)[1]
    rows = []
    real = swaps.joint_errors
    monkeypatch.setattr(swaps, "joint_errors", lambda rig, xy, *a, **k: rows.append(len(xy)) or real(rig, xy, *a, **k))
    always, _ = find_swaps(rig, kp.xy[:, :, 0], w, KS, SwapConfig(lone_views=None))
    again_always, rows[:] = sum(rows[1:]), []
    lone, _ = find_swaps(rig, kp.xy[:, :, 0], w, KS)
    again_lone = sum(rows[1:])
    repaired, false = scores(lone, truth, w, member)
    assert repaired >= 0.95 and false <= 0.005, (repaired, false)
    assert np.array_equal(lone, always)
    assert again_lone < 0.8 * again_always, (again_lone, again_always)  # frames evaluated again


def test_four_cameras_evaluate_every_evident_frame_again_as_before(monkeypatch):
    rig, kp, _, _ = swapped_take(frames=300, swaps=0.03, seed=2)
    w = triangulate.observation_weights(kp, 0.2)[:, :, 0]
    calls = count_calls(monkeypatch, swaps, "joint_errors")
    lone, _ = find_swaps(rig, kp.xy[:, :, 0], w, KS)
    n = len(calls)
    always, _ = find_swaps(rig, kp.xy[:, :, 0], w, KS, SwapConfig(lone_views=None))
    assert np.array_equal(lone, always) and len(calls) == 2 * n


def test_bad_lone_views_say_what_was_expected():
    with pytest.raises(ValueError, match="lone_views must be ≥ 3 \\(or None\\), got 2"):
        SwapConfig(lone_views=2)
