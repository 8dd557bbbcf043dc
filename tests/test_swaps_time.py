"""Left/right swaps in most views of a frame at once (mocap.geometry.swaps_time): the views' consensus is
mirrored there, and only the 3D over time shows it."""

import numpy as np
from body_synth import blazepose_keypoints, body_motion

from mocap.geometry.camera import pixels_to_normalised
from mocap.geometry.swaps import SwapConfig, find_swaps, swap_groups
from mocap.geometry.swaps_time import consensus_points, mirrored_frames
from mocap.keypoint_sets import get_keypoint_set
from mocap.stages import triangulate
from mocap.synth import CorruptionSpec, RigSpec, corrupt, ring_rig
from mocap.types import Keypoints2D

KS = get_keypoint_set("blazepose33")


def take(seed=0):
    """600 frames, 4 cameras, σ 2 px, 5 % outliers, 10 % dropouts, no swaps but the ones put in by hand."""
    truth = blazepose_keypoints(body_motion(600, 60.0, seed=seed))
    rig = ring_rig(RigSpec(n_cameras=4), truth.reshape(-1, 3))
    uv = np.moveaxis(rig.project(truth), 0, 1)
    data, _ = corrupt(uv, rig, "blazepose33", CorruptionSpec(2.0, 0.05, 0.10, seed=seed))
    return rig, data, truth


def swap(data, frames, cameras):
    out = data.copy()
    for c in cameras:
        out[frames, c] = out[frames, c][:, :, KS.flip_permutation]  # (F, C, P, J, 3)
    return out


def test_three_and_two_of_four_views_swapped_at_once_are_repaired():
    rig, data, _ = take()
    truth = np.zeros(data.shape[:2], bool)
    for frames, cams in ((slice(100, 105), (0, 1, 3)), (slice(300, 304), (1, 3)), (slice(450, 453), (0, 2))):
        data = swap(data, frames, cams)
        truth[frames, list(cams)] = True
    kp = Keypoints2D(data, rig.names, "blazepose33", 60.0)
    w = triangulate.observation_weights(kp, 0.2)[:, :, 0]
    swapped, _ = find_swaps(rig, kp.xy[:, :, 0], w, KS, fps=60.0)
    member = swap_groups(KS)[1]
    has = ((w > 0)[..., None] & member).any(axis=2)
    right = np.all(~has | (swapped == truth[..., None]), axis=2)
    assert right[truth].mean() >= 0.95, np.argwhere(truth & ~right)
    assert swapped.any(axis=2)[~truth].mean() <= 0.005
    # without the pass over time, the frames with most views swapped are not repaired
    alone, _ = find_swaps(rig, kp.xy[:, :, 0], w, KS, SwapConfig(mirrored_frames=False), fps=60.0)
    right_alone = np.all(~has | (alone == truth[..., None]), axis=2)
    assert right_alone[100:105][truth[100:105]].mean() < 0.5


def test_a_mirrored_consensus_is_found_over_time_and_only_where_some_view_looks_exchanged():
    rig, data, truth3d = take(seed=1)
    names, member = swap_groups(KS)
    X = truth3d.copy()
    X[200:204] = X[200:204][:, KS.flip_permutation]  # the consensus mirrored in 4 frames
    candidates = np.zeros((len(X), len(names)), bool)
    candidates[195:210] = True
    found = mirrored_frames(X, KS.flip_permutation, member, 60.0, candidates)
    legs, arms = names.index("legs"), names.index("arms")
    assert np.flatnonzero(found[:, legs]).tolist() == [200, 201, 202, 203]
    assert np.flatnonzero(found[:, arms]).tolist() == [200, 201, 202, 203]
    assert found[:, names.index("head")].tolist() == found[:, legs].tolist()  # too narrow: follows the others
    candidates[:] = False
    assert not mirrored_frames(X, KS.flip_permutation, member, 60.0, candidates).any()


def test_consensus_leaves_an_outlier_view_out_and_is_nan_without_two_agreeing_views():
    rig, data, truth3d = take(seed=2)
    xy = np.moveaxis(rig.project(truth3d[:20]), 0, 1)  # exact projections (20, 4, 33, 2)
    xy[:, 2, :5] += 300.0  # one view far off for five joints
    w = np.ones(xy.shape[:3])
    xn = np.stack([pixels_to_normalised(cam, xy[:, c]) for c, cam in enumerate(rig.cameras)], axis=1)
    X = consensus_points(rig, xy, xn, w, 15.0)
    assert np.nanmax(np.linalg.norm(X - truth3d[:20], axis=-1)) < 1e-6
    w[:, :, 5] = 0.0
    w[:, 0, 5] = 1.0  # joint 5 seen by one view only
    assert np.isnan(consensus_points(rig, xy, xn, w, 15.0)[:, 5]).all()


def test_takes_shorter_than_the_neighbourhood_are_repaired_without_error():
    """A take of fewer frames than the 3D neighbourhood (2 * NEAR + 1) with a view that looks exchanged:
    the frames around the candidates stay inside the take (np.convolve 'same' returned the kernel's length)."""
    _, _, truth3d = take(seed=0)
    rig = ring_rig(RigSpec(n_cameras=4), truth3d.reshape(-1, 3))
    for F in (1, 2, 3, 6):
        xy = np.moveaxis(rig.project(truth3d[:F]), 0, 1)  # (F, 4, 33, 2)
        xy[:, 1] = xy[:, 1][:, KS.flip_permutation]  # one view exchanged in every frame
        w = np.ones(xy.shape[:3])
        swapped, names = find_swaps(rig, xy, w, KS, fps=60.0)
        assert swapped.shape == (F, 4, len(names))
        assert swapped[:, 1].any(axis=1).all() and not swapped[:, [0, 2, 3]].any(), (F, swapped)
        # no consensus is mirrored here: the pass over time changes nothing
        alone, _ = find_swaps(rig, xy, w, KS, SwapConfig(mirrored_frames=False), fps=60.0)
        assert np.array_equal(swapped, alone)


def test_a_group_that_crosses_itself_stays_mirrored_with_the_others():
    """The legs crossing twice in a mirrored run (left on right: a mirror there moves nothing) let their own test
    leave the run at one crossing and come back at the next, saving the per-frame prior in between; where the
    arms and head are mirrored too the legs pay no prior (a whole body exchanged), so they stay mirrored."""
    _, _, truth3d = take(seed=1)
    names, member = swap_groups(KS)
    perm = KS.flip_permutation
    X = truth3d.copy()
    X[200:260] = X[200:260][:, perm]  # most views exchanged for 60 frames
    legs = np.flatnonzero(member[:, names.index("legs")])
    for cross in (slice(212, 215), slice(245, 248)):  # the legs' two sides meet
        X[cross, legs] = 0.5 * (X[cross, legs] + X[cross, perm[legs]])
    candidates = np.zeros((len(X), len(names)), bool)
    candidates[200:260] = True
    found = mirrored_frames(X, perm, member, 60.0, candidates)
    assert found[200:260, names.index("arms")].all()
    between = found[215:245, names.index("legs")]
    assert between.all(), np.flatnonzero(~between) + 215
    assert not found[:200].any() and not found[260:].any()
