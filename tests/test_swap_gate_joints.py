"""Swap repair's gate picks detections, not whole views: only the joints of a view's doubtful groups (and
their mirror joints) get the other views' reference; the rest keep their distances to the point of all
views. The repairs of the gated search stay those of testing every view."""

import numpy as np
from test_swaps import scores, swapped_take

import mocap.geometry.swaps as swaps
from mocap.geometry.swaps import joint_errors, swap_groups
from mocap.keypoint_sets import get_keypoint_set
from mocap.stages import triangulate


def test_chosen_joints_and_their_mirrors_get_the_other_views_reference():
    rig, kp, _, _ = swapped_take(frames=90, swaps=0.05, seed=2)
    ks = get_keypoint_set("coco17")
    w = triangulate.observation_weights(kp, 0.2)[:, :, 0]
    perm = ks.flip_permutation
    xy = kp.xy[:, :, 0]
    full = joint_errors(rig, xy, w, perm, 15.0)
    member = swap_groups(ks)[1]
    arms = int(np.flatnonzero([n == "arms" for n in swap_groups(ks)[0]])[0])
    left_arm = np.flatnonzero(member[:, arms])[::2]  # one joint of some pairs: their mirrors come along
    chosen = np.zeros(xy.shape[:2] + (xy.shape[2],), bool)
    chosen[::2, 2, left_arm] = True
    seen = {}

    def select(e_given, e_mirror):
        seen["given"], seen["mirror"] = e_given.copy(), e_mirror.copy()
        return chosen

    e_given, e_mirror = joint_errors(rig, xy, w, perm, 15.0, select=select)
    tested = chosen | chosen[:, :, perm]
    assert tested.sum() > chosen.sum()  # the mirror joints are in
    for got, ref, cheap in ((e_given, full[0], seen["given"]), (e_mirror, full[1], seen["mirror"])):
        assert np.allclose(got[tested], ref[tested], equal_nan=True)
        assert np.allclose(got[~tested], cheap[~tested], equal_nan=True)
        assert not np.allclose(got[tested], cheap[tested], equal_nan=True)  # the two references differ
    # a selection of every detection is the full test
    every = joint_errors(rig, xy, w, perm, 15.0, select=lambda g, m: np.ones(xy.shape[:3], bool))
    assert np.allclose(every[0], full[0], equal_nan=True) and np.allclose(every[1], full[1], equal_nan=True)


def test_rounds_retest_a_frame_only_with_new_exchanges(monkeypatch):
    """A frame's evidence depends only on its own exchanges and references: a round tests again only the
    frames whose exchanges changed since their last test, and the repairs are still found."""
    rig, kp, _, masks = swapped_take(frames=400, swaps=0.05, seed=3)
    ks = get_keypoint_set("coco17")
    w = triangulate.observation_weights(kp, 0.2)[:, :, 0]
    xy = kp.xy[:, :, 0]
    tested: list[tuple[bytes, bytes]] = []
    original = swaps.joint_errors

    def recording(rig_, xy_, w_, perm, max_reproj_px, trusted=None, *args, **kwargs):
        if kwargs.get("select") is None:  # the re-tests: one record per frame (its views as given, its references)
            tr = np.ones(xy_.shape[:2], bool) if trusted is None else trusted
            tested.extend((xy_[f].tobytes(), tr[f].tobytes()) for f in range(xy_.shape[0]))
        return original(rig_, xy_, w_, perm, max_reproj_px, trusted, *args, **kwargs)

    monkeypatch.setattr(swaps, "joint_errors", recording)
    found, _ = swaps.find_swaps(rig, xy, w, ks, swaps.SwapConfig(rounds=4))
    # the same test twice only where a frame's decision went back to an earlier one, or exchanged a group
    # without detections (re-testing every changed frame each round: 384 tests of 163 distinct here)
    assert tested and len(tested) - len(set(tested)) <= 0.05 * len(set(tested)), (len(tested), len(set(tested)))
    assert scores(found, masks["swapped"], w, swap_groups(ks)[1])[0] > 0.9
