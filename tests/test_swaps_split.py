"""Four views split two against two between a body side and its mirror (mocap.geometry.swaps_split): the views
have no consensus there; the 3D of one half, judged over time, repairs them."""

import numpy as np
from test_swaps_time import KS, swap, take

from mocap.geometry.camera import pixels_to_normalised
from mocap.geometry.swaps import find_swaps, swap_groups
from mocap.geometry.swaps_split import fill_split
from mocap.geometry.swaps_time import consensus_points, mirrored_frames
from mocap.stages import triangulate
from mocap.types import Keypoints2D

PERM = KS.flip_permutation
MEMBER = swap_groups(KS)[1]


def exact(seed, frames=20):
    rig, _, truth3d = take(seed)
    xy = np.moveaxis(rig.project(truth3d[:frames]), 0, 1)  # (F, 4, 33, 2) exact projections
    xn = np.stack([pixels_to_normalised(cam, xy[:, c]) for c, cam in enumerate(rig.cameras)], axis=1)
    return rig, xy, xn, truth3d[:frames]


def filled(rig, xy, xn):
    w = np.ones(xy.shape[:3])
    return fill_split(rig, xy, xn, w, consensus_points(rig, xy, xn, w, 15.0), MEMBER, PERM, 15.0)


def test_a_two_against_two_split_takes_the_first_cameras_half_for_every_group():
    rig, xy, xn, truth = exact(seed=3)
    for cams, mirrored in (((1, 2), False), ((0, 3), True), ((0, 1), True)):
        sx, sn = xy.copy(), xn.copy()
        for c in cams:
            sx[:, c], sn[:, c] = xy[:, c][:, PERM], xn[:, c][:, PERM]
        X, done = filled(rig, sx, sn)
        assert done.all(), (cams, done.sum(axis=0))
        want = truth[:, PERM] if mirrored else truth  # the half holding camera 0 is mirrored when it is exchanged
        grouped = MEMBER.any(axis=1)
        assert np.nanmax(np.linalg.norm(X[:, grouped] - want[:, grouped], axis=-1)) < 1e-3, cams


def test_views_that_agree_or_one_exchanged_view_are_left_alone():
    rig, xy, xn, _ = exact(seed=4)
    X0 = consensus_points(rig, xy, xn, np.ones(xy.shape[:3]), 15.0)
    X, done = filled(rig, xy, xn)
    assert not done.any() and np.array_equal(X, X0, equal_nan=True)
    one = xy.copy()
    one[:, 2] = xy[:, 2][:, PERM]
    sn = xn.copy()
    sn[:, 2] = xn[:, 2][:, PERM]
    assert not filled(rig, one, sn)[1].any()  # three against one: no partition into mirrored halves


def test_runs_of_two_of_four_views_exchanged_are_repaired_also_at_the_end_of_the_take():
    """The code before repaired none of these (0 %): the views' consensus was missing or wrong in every frame."""
    rig, data, _ = take(seed=3)
    truth = np.zeros(data.shape[:2], bool)
    for frames, cams in ((slice(200, 207), (1, 2)), (slice(400, 404), (0, 1)), (slice(594, 600), (0, 3))):
        data = swap(data, frames, cams)
        truth[frames, list(cams)] = True
    kp = Keypoints2D(data, rig.names, "blazepose33", 60.0)
    w = triangulate.observation_weights(kp, 0.2)[:, :, 0]
    swapped, _ = find_swaps(rig, kp.xy[:, :, 0], w, KS, fps=60.0)
    has = ((w > 0)[..., None] & MEMBER).any(axis=2)
    right = np.all(~has | (swapped == truth[..., None]), axis=2)
    assert right[truth].mean() >= 0.95, np.argwhere(truth & ~right)
    assert swapped.any(axis=2)[~truth].mean() <= 0.005


def test_a_long_run_of_one_halfs_points_is_as_likely_mirrored_as_not():
    """The test over time charges each mirrored frame a prior (the views' consensus is right in most frames); a
    split frame's point is an arbitrary half's, so ``even`` frames cost nothing: a long mirrored run is found."""
    _, _, truth3d = take(seed=1)
    X = truth3d.copy()
    X[200:400] = X[200:400][:, PERM]  # one half's points, the mirrored half, for 200 frames
    candidates = np.zeros((len(X), MEMBER.shape[1]), bool)
    candidates[200:400] = True
    assert not mirrored_frames(X, PERM, MEMBER, 60.0, candidates)[200:400].any()  # 200 priors outweigh two jumps
    found = mirrored_frames(X, PERM, MEMBER, 60.0, candidates, even=candidates)
    assert found[200:400].all() and not found[:200].any() and not found[400:].any()


def test_group_medians_are_numpys_nanmedian_without_a_warning_per_empty_row():
    """The per-key medians (NaN where a key has no value) equal np.nanmedian's to the bit, without numpy's warning
    for every all-NaN row (11,000 of them in a 2,000-frame take, a tenth of the swap repair's time)."""
    import warnings

    from mocap.geometry.swaps_split import _group_medians, nan_median_last

    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 40, 6))
    x[rng.random(x.shape) < 0.6] = np.nan
    x[:, :5] = np.nan  # rows with no value at all
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = np.nanmedian(x, axis=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none raised
        got = nan_median_last(x)
        grouped = _group_medians(np.array([[1.0, np.nan, 3.0, 5.0]]), np.array([0, 0, 2, 2]), 4)
    assert np.array_equal(got, want, equal_nan=True)
    assert np.array_equal(grouped, [[1.0, np.nan, 4.0, np.nan]], equal_nan=True)
