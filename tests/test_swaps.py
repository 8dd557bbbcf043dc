"""Left/right swap repair (mocap.geometry.swaps) and its place in session_keypoints."""

import logging

import numpy as np
import pytest
from conftest import toy_motion

from mocap.geometry.swaps import SwapConfig, find_swaps, swap_groups, viterbi
from mocap.geometry.swaps_repair import apply_swaps, repair_keypoints
from mocap.io.hdf5 import read_points3d
from mocap.keypoint_sets import get_keypoint_set, hand_joints
from mocap.session import Session
from mocap.stages import refine, triangulate
from mocap.synth import CorruptionSpec, RigSpec, corrupt, ring_rig
from mocap.types import Keypoints2D


def swapped_take(frames=400, swaps=0.05, seed=0, n_cameras=4):
    truth = toy_motion(frames)
    rig = ring_rig(RigSpec(n_cameras=n_cameras), truth)
    uv = np.moveaxis(rig.project(truth), 0, 1)
    data, masks = corrupt(uv, rig, "coco17", CorruptionSpec(2.0, 0.05, 0.1, swaps=swaps, seed=seed))
    return rig, Keypoints2D(data, rig.names, "coco17", 60.0), truth, masks


def scores(swapped, truth_mask, w, member, visible=None):
    """(repaired share of swapped views, false share of the others): a swapped view is repaired when
    every group it has detections of is exchanged back. ``visible`` (F, C): the swapped views counted."""
    has = ((w > 0)[..., None] & member).any(axis=2)
    right = np.all(~has | (swapped == truth_mask[..., None]), axis=2)
    counted = truth_mask if visible is None else truth_mask & visible
    return float(right[counted].mean()), float(swapped.any(axis=2)[~truth_mask].mean())


def test_groups_follow_the_body_sides():
    names, member = swap_groups(get_keypoint_set("blazepose33"))
    ks = get_keypoint_set("blazepose33")
    assert names == ("head", "arms", "legs")
    side = {n: {ks.joints[j] for j in np.flatnonzero(member[:, g])} for g, n in enumerate(names)}
    assert {"left_ear", "right_ear", "mouth_left"} <= side["head"]
    assert {"left_shoulder", "right_wrist", "left_thumb", "right_index"} <= side["arms"]
    assert {"left_hip", "right_knee", "left_heel", "right_foot_index"} <= side["legs"]
    assert "nose" not in set().union(*side.values()) and member.sum() == 32
    names, member = swap_groups(get_keypoint_set("coco17"))
    assert names == ("head", "arms", "legs") and member.sum() == 16


def test_every_finger_of_the_hand_points_is_in_the_arms_group():
    ks = get_keypoint_set("blazepose33_hands")
    names, member = swap_groups(ks)
    side = {n: {ks.joints[j] for j in np.flatnonzero(member[:, g])} for g, n in enumerate(names)}
    fingers = {n for n, hand in zip(ks.joints, hand_joints(ks), strict=True) if hand}
    assert len(fingers) == 42 and fingers <= side["arms"]  # the middle and ring fingers were the face's
    assert side["head"] == {n for n in ks.joints if any(t in n for t in ("eye", "ear", "mouth"))}


@pytest.mark.shared_data
def test_a_face_swapped_alone_on_a_hands_take_is_repaired_and_the_fingers_stay(shared_data):
    from mocap.synth.groundtruth import make_take
    ks = get_keypoint_set("blazepose33_hands")
    take = make_take(str(shared_data / "bvh" / "cmu_01_01.bvh"), 300, 60.0, RigSpec(n_cameras=4),
                     CorruptionSpec(1.0, 0.0, 0.0, seed=0), hands=True)
    xy = take.keypoints.xy[:, :, 0].copy()
    s = take.keypoints.score[:, :, 0]
    w = np.where(np.isfinite(s) & np.isfinite(xy).all(-1), np.maximum(s, 1e-6), 0.0)
    face = np.array([any(t in n for t in ("eye", "ear", "mouth")) for n in ks.joints])
    flip = np.where(face, np.array(ks.flip_permutation), np.arange(len(ks.joints)))
    frames = np.arange(100, 130)  # camera 1's detector mirrors the face alone in 30 frames
    xy[frames, 1], w[frames, 1] = xy[frames, 1][:, flip], w[frames, 1][:, flip]
    swapped, names = find_swaps(take.rig, xy, w, ks, fps=take.keypoints.fps)
    decided = {n: int(swapped[frames, 1, g].sum()) for g, n in enumerate(names)}
    assert decided == {"head": 30, "arms": 0, "legs": 0}  # before: the face outweighed by 16 finger points
    assert swapped.sum() == 30


def test_viterbi_takes_clear_runs_and_ignores_weak_blips():
    cost0, cost1 = np.zeros(40), np.full(40, 3.0)  # mild evidence for state 0 throughout
    cost0[10:15], cost1[10:15] = 30.0, 0.0  # a clear run of state 1
    cost0[25], cost1[25] = 5.0, 0.0  # a weak blip: not worth two switches of 8
    cost1[30:33] = 0.0  # no evidence: the state stays
    state = viterbi(cost0[:, None], cost1[:, None], 8.0)[:, 0]
    assert np.flatnonzero(state).tolist() == list(range(10, 15))
    assert viterbi(cost1[:, None], cost0[:, None], 8.0)[:, 0].sum() == 35


def test_viterbi_scan_equals_the_frame_by_frame_recursion():
    def reference(cost0, cost1, switch):
        F, N = cost0.shape
        acc = np.stack([cost0[0], cost1[0]])
        back = np.zeros((F, 2, N), int)
        for f in range(1, F):
            stay, move = acc, acc[::-1] + switch
            back[f] = np.where(stay <= move, [[0], [1]], [[1], [0]])
            acc = np.minimum(stay, move) + np.stack([cost0[f], cost1[f]])
        s = (acc[1] < acc[0]).astype(int)
        out = np.zeros((F, N), bool)
        for f in range(F - 1, -1, -1):
            out[f] = s == 1
            s = back[f, s, np.arange(N)]
        return out, np.minimum(acc[0], acc[1])

    rng = np.random.default_rng(5)
    for F in (1, 2, 3, 5, 64, 333):
        c0 = np.maximum(rng.normal(size=(F, 7)) * 20, 0)
        c1 = np.maximum(rng.normal(size=(F, 7)) * 20, 0)
        state = viterbi(c0, c1, 8.0)
        ref, best = reference(c0, c1, 8.0)
        cost = np.where(state, c1, c0).sum(axis=0) + 8.0 * (state[1:] != state[:-1]).sum(axis=0)
        assert np.allclose(cost, best), F  # a path of least cost (ties may pick another)
        assert (state == ref).mean() > 0.99


def test_repair_of_a_toy_take_and_its_round_trip():
    rig, kp, truth, masks = swapped_take()
    ks = get_keypoint_set("coco17")
    w = triangulate.observation_weights(kp, 0.2)[:, :, 0]
    swapped, names = find_swaps(rig, kp.xy[:, :, 0], w, ks)
    uv = np.moveaxis(rig.project(truth), 0, 1)  # views where the sides are apart (the toy body turns side-on)
    paired = ks.flip_permutation != np.arange(17)
    apart = np.median(np.linalg.norm(uv - uv[:, :, ks.flip_permutation], axis=-1)[..., paired], axis=-1) > 10
    repaired, false = scores(swapped, masks["swapped"], w, swap_groups(ks)[1], apart)
    assert masks["swapped"].mean() > 0.03
    assert repaired >= 0.93 and false <= 0.005, (repaired, false)
    fixed, info = repair_keypoints(rig, kp, get_keypoint_set(kp.keypoint_set))
    assert sum(info["swaps_repaired"].values()) == int(swapped.any(axis=2).sum())
    # reused, the same result
    again, info2 = repair_keypoints(rig, kp, get_keypoint_set(kp.keypoint_set), stored=info["swap_repairs"])
    assert np.array_equal(again.data, fixed.data, equal_nan=True) and info2 == info
    back = apply_swaps(fixed.data[:, :, 0], swapped, ks)  # an exchange undone by the same exchange
    assert np.array_equal(back, kp.data[:, :, 0], equal_nan=True)
    clean = corrupt(np.moveaxis(rig.project(truth), 0, 1), rig, "coco17", CorruptionSpec(2.0, 0.0, 0.0, seed=1))[0]
    err = np.linalg.norm(fixed.xy[:, :, 0] - clean[..., :2][:, :, 0], axis=-1)
    raw = np.linalg.norm(kp.xy[:, :, 0] - clean[..., :2][:, :, 0], axis=-1)
    assert np.nanmedian(err[masks["swapped"]]) < 0.3 * np.nanmedian(raw[masks["swapped"]])


def test_two_cameras_or_no_swaps_change_nothing():
    rig, kp, _, _ = swapped_take(frames=150, swaps=0.0)
    fixed, info = repair_keypoints(rig, kp, get_keypoint_set(kp.keypoint_set))
    assert sum(info["swaps_repaired"].values()) == 0 and np.array_equal(fixed.data, kp.data, equal_nan=True)
    rig2, kp2, _, _ = swapped_take(frames=150, n_cameras=2)
    w = triangulate.observation_weights(kp2, 0.2)[:, :, 0]
    swapped, _ = find_swaps(rig2, kp2.xy[:, :, 0], w, get_keypoint_set("coco17"))
    assert swapped.shape == (150, 2, 3) and not swapped.any()
    with pytest.raises(ValueError, match="truncate"):
        SwapConfig(truncate=0)


def test_session_keypoints_repair_and_the_stages_share_it(tmp_path, caplog):
    from mocap.synth.groundtruth import SyntheticTake, write_session

    rig, kp, truth, masks = swapped_take(frames=300, seed=2)
    root = write_session(SyntheticTake(rig, kp, truth, masks), tmp_path / "s", json_2d=False)
    with caplog.at_level(logging.INFO, logger="mocap.geometry.swaps"):
        triangulate.main(root)
    pts = read_points3d(root / "points3d" / "triangulated.h5")
    counts = pts.info["swaps_repaired"]
    found = find_swaps(rig, kp.xy[:, :, 0], triangulate.observation_weights(kp, 0.2)[:, :, 0],
                       get_keypoint_set("coco17"))[0].any(axis=2)
    assert counts == {n: int(found[:, c].sum()) for c, n in enumerate(rig.names)}
    assert 0.8 * masks["swapped"].sum() < sum(counts.values()) < 1.1 * masks["swapped"].sum()
    assert any("left/right swaps repaired" in r.message for r in caplog.records)
    session = Session(root)
    kp_fixed = triangulate.session_keypoints(session, rig)  # as triangulate did: stored repairs
    kp_raw = triangulate.session_keypoints(session, rig, repair_swaps=False)
    assert np.array_equal(kp_raw.data, session.keypoints2d(rig).data, equal_nan=True)
    same = (kp_fixed.data == kp_raw.data) | np.isnan(kp_fixed.data) & np.isnan(kp_raw.data)
    changed = ~same.all(axis=(2, 3, 4))
    assert changed.sum() == sum(counts.values())
    refine.main(root)  # reads the same repaired keypoints
    assert np.isfinite(read_points3d(root / "points3d" / "refined.h5").xyz).mean() > 0.9
    triangulate.main(root, triangulate.Config(repair_swaps=False), overwrite=True)
    off = read_points3d(root / "points3d" / "triangulated.h5")
    assert "swaps_repaired" not in off.info
    assert np.array_equal(triangulate.session_keypoints(session, rig).data, kp_raw.data, equal_nan=True)


def mpjpe(X, truth):
    return float(np.nanmean(np.linalg.norm(X - truth, axis=-1)))


@pytest.mark.slow
@pytest.mark.shared_data
def test_swaps_in_two_percent_of_views_on_a_cmu_take(shared_data):
    from mocap.synth import make_take

    bvh = shared_data / "bvh" / "cmu_01_01.bvh"
    take = make_take(bvh, 2000, corruption=CorruptionSpec(2.0, 0.05, 0.1, swaps=0.02, seed=0))
    clean = make_take(bvh, 2000, corruption=CorruptionSpec(2.0, 0.05, 0.1, swaps=0.0, seed=0))
    rig, kp = take.rig, take.keypoints
    ks = get_keypoint_set(kp.keypoint_set)
    w = triangulate.observation_weights(kp, 0.2)[:, :, 0]
    fixed, info = repair_keypoints(rig, kp, get_keypoint_set(kp.keypoint_set))
    swapped = np.zeros(take.masks["swapped"].shape + (3,), bool)
    for f, c, _, bits in info["swap_repairs"]["views"]:
        swapped[f, c] = [(bits >> g) & 1 for g in range(3)]
    repaired, false = scores(swapped, take.masks["swapped"], w, swap_groups(ks)[1])
    assert repaired >= 0.95 and false <= 0.005, (repaired, false)
    tri = triangulate.run(rig, fixed)
    ref = refine.run(rig, fixed, tri)[0]
    base = refine.run(clean.rig, clean.keypoints, triangulate.run(clean.rig, clean.keypoints))[0]
    ratio = mpjpe(ref.xyz[:, 0], take.truth) / mpjpe(base.xyz[:, 0], clean.truth)
    assert ratio <= 1.1, ratio  # the cost is measured by `mocap bench robustness --swaps 0.02`, not here


def _three_camera_scores(bvh, seed: int) -> tuple[float, float]:
    """(repaired, false) shares of the swap search on a 1,000-frame take of ``bvh`` seen by 3 cameras, 2 % of views
    swapped (more than 50 of them)."""
    from mocap.synth import make_take

    take = make_take(bvh, 1000, rig_spec=RigSpec(n_cameras=3),
                     corruption=CorruptionSpec(2.0, 0.05, 0.1, swaps=0.02, seed=seed))
    rig, kp = take.rig, take.keypoints
    ks = get_keypoint_set(kp.keypoint_set)
    w = triangulate.observation_weights(kp, 0.2)[:, :, 0]
    swapped, _ = find_swaps(rig, kp.xy[:, :, 0], w, ks, SwapConfig(), kp.fps)
    repaired, false = scores(swapped, take.masks["swapped"], w, swap_groups(ks)[1])
    assert take.masks["swapped"].sum() > 50
    return repaired, false


def test_three_cameras_a_swapped_view_does_not_make_the_others_look_swapped(shared_data):
    """With three views, a swapped view is in each other view's reference (leaving it out leaves one view): they
    looked swapped too, and the round that exchanged both found the pair inconsistent and undid both (real
    two-person footage: the man's left and right exchanged in cam02 over frames 50-65, his other views cam01 and
    cam04; cam04 exchanged with it, both undone, cam02's detections then left out of him). Their evidence there is
    the swapped view's pull: none. A 3-camera CMU take with 2 % of views swapped: 73.6 % of 72 repaired (0.24 %
    false) before, 94.4 % (0.03 %) then, 97.2 % (0.03 %) with the rule below."""
    repaired, false = _three_camera_scores(shared_data / "bvh" / "cmu_01_01.bvh", seed=0)
    assert repaired >= 0.9 and false <= 0.002, (repaired, false)


def test_three_cameras_a_view_left_without_evidence_keeps_its_detections_as_given(shared_data):
    """The three-view rule leaves a view with no evidence while another is the suspect; with none, the decision over
    frames carried a neighbouring run's exchange across them (a view swapped for 2 frames was held swapped for the 14
    where the next view was, and the rounds then undid every exchange there). Such a view now costs the exchange a
    switch per frame. CMU 01_03, 3 cameras, 2 % swaps (runs overlapping across views): 69.4 % repaired (0.58 %
    false) before, 98.8 % (0.00 %) now."""
    repaired, false = _three_camera_scores(shared_data / "bvh" / "cmu_01_03.bvh", seed=1)
    assert repaired >= 0.95 and false <= 0.002, (repaired, false)


@pytest.mark.slow
@pytest.mark.shared_data
def test_real_demo_cam02_swaps_are_repaired(shared_data, tmp_path):
    from test_detect import p2s_session

    from mocap.cli import main as cli

    session = p2s_session(shared_data, tmp_path)
    assert cli(["detect", str(session)]) == 0
    assert cli(["triangulate", str(session)]) == 0
    pts = read_points3d(session / "points3d" / "triangulated.h5")
    counts = pts.info["swaps_repaired"]
    frames = sorted({f for f, c, _, _ in pts.info["swap_repairs"]["views"] if c == 1})
    assert counts["cam02"] >= 20 and frames and frames[0] >= 30 and frames[-1] <= 75, (counts, frames)
    assert all(counts[n] <= 2 for n in ("cam01", "cam03", "cam04")), counts
