"""Swap repair's leave-one-out references come from each reference set's summed normal terms less the camera's
own term (issue 14's cost at 8 cameras): the same distances as solving every camera's other views directly,
with and without distrusted views, and the consensus point reuses the point of all views where every view
agrees with it."""

import numpy as np
from test_swaps import swapped_take

from mocap.geometry.normal_terms import count_views, distance, finite, normal_terms, solve_terms, sum_views
from mocap.geometry.swaps import _reference_sets, joint_errors
from mocap.geometry.swaps_time import consensus_points
from mocap.geometry.triangulation import normalise_observations
from mocap.keypoint_sets import get_keypoint_set
from mocap.stages import triangulate


def _direct(rig, xy, w, perm, max_px, trusted=None):
    """joint_errors without select, each camera's reference solved from its other views' terms directly."""
    F, C, J, _ = xy.shape
    uv = np.moveaxis(xy, 1, 2).reshape(F * J, C, 2)
    ww = np.moveaxis(w, 1, 2).reshape(F * J, C)
    used = (ww > 0) & finite(uv)
    T = normal_terms(rig, normalise_observations(rig, uv), np.where(used, ww, 0.0))
    trust = used if trusted is None else used & np.repeat(trusted, J, axis=0)
    base = np.where(count_views(trust) >= 2, trust, used)
    X = solve_terms(sum_views(base, T), count_views(base)[:, 0])
    proj = np.stack([cam.project(X) for cam in rig.cameras], axis=1)
    agree = used & (distance(proj[..., 0] - uv[..., 0], proj[..., 1] - uv[..., 1]) < max_px)
    sets, counts, level = _reference_sets(used, agree, trust)
    e_given, e_mirror = np.full((F, C, J), np.nan), np.full((F, C, J), np.nan)
    for c in range(C):
        ref = sets[level[:, c], np.arange(F * J)]
        ref[:, c] = False
        pc = rig.cameras[c].project(solve_terms(sum_views(ref, T), count_views(ref)[:, 0])).reshape(F, J, 2)
        pm = pc[:, perm]
        ok = (w[:, c] > 0) & np.isfinite(pc[..., 0]) & np.isfinite(pm[..., 0])
        d = xy[:, c]
        e_given[:, c] = np.where(ok, np.linalg.norm(pc - d, axis=-1), np.nan)
        e_mirror[:, c] = np.where(ok, np.linalg.norm(pm - d, axis=-1), np.nan)
    return e_given, e_mirror


def test_references_by_downdating_are_those_solved_directly():
    rig, kp, _, _ = swapped_take(frames=150, swaps=0.05, seed=2)
    w = triangulate.observation_weights(kp, 0.2)[:, :, 0]
    perm = get_keypoint_set("coco17").flip_permutation
    xy = kp.xy[:, :, 0]
    trusted = np.ones(xy.shape[:2], bool)
    trusted[::4, 2] = False  # a view distrusted in some frames: a reference set that leaves a used view out
    for t in (None, trusted):
        got, ref = joint_errors(rig, xy, w, perm, 15.0, t), _direct(rig, xy, w, perm, 15.0, t)
        for a, b in zip(got, ref, strict=True):
            assert np.array_equal(np.isnan(a), np.isnan(b))
            assert np.nanmax(np.abs(a - b)) < 1e-6  # px
    picked = np.zeros(xy.shape[:2], bool)
    picked[1::5] = True  # a few frames get the others' reference: only their rows are summed
    got = joint_errors(rig, xy, w, perm, 15.0, select=lambda g, m: picked)
    ref = _direct(rig, xy, w, perm, 15.0)
    assert np.nanmax(np.abs(got[0][picked] - ref[0][picked])) < 1e-6


def test_consensus_reuses_the_point_of_all_views_only_where_every_view_agrees():
    rig, kp, _, _ = swapped_take(frames=120, swaps=0.0, seed=3)
    w = triangulate.observation_weights(kp, 0.2)[:, :, 0]
    xy = kp.xy[:, :, 0]
    F, C, J, _ = xy.shape
    perm = get_keypoint_set("coco17").flip_permutation
    stash: dict = {}
    joint_errors(rig, xy, w, perm, 15.0, stash=stash)
    xn = np.moveaxis(stash["xn"].reshape(F, J, C, 2), 2, 1)
    rows = np.arange(F * J)
    first = (stash["T"], stash["used"], stash["agree"])
    plain = consensus_points(rig, xy, xn, w, 15.0, first, rows)
    reused = consensus_points(rig, xy, xn, w, 15.0, first, rows, stash["X"])
    assert np.array_equal(np.isnan(plain), np.isnan(reused)) and np.nanmax(np.abs(plain - reused)) < 1e-12
    # a point some view disagrees with is solved again: a wrong X there would show
    wrong = stash["X"] + 1.0
    moved = consensus_points(rig, xy, xn, w, 15.0, first, rows, wrong)
    all_agree = (stash["agree"] == stash["used"]).all(axis=1) & (count_views(stash["agree"])[:, 0] >= 2)
    assert not all_agree.all() and all_agree.any()
    others = ~all_agree & (count_views(stash["agree"])[:, 0] >= 2)  # (weak rows are decided again first)
    assert others.any()
    assert np.allclose(moved.reshape(-1, 3)[others], plain.reshape(-1, 3)[others], equal_nan=True)
    assert np.allclose(moved.reshape(-1, 3)[all_agree], wrong[all_agree])
