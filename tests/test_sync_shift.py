"""A camera's detections read between frames (mocap.stages.sync_shift.shift_views): a left/right swap that starts
between the two frames is not blended into keypoints halfway between the left and the right joint."""

import numpy as np
import pytest

from mocap.geometry.swaps import swap_groups
from mocap.keypoint_sets import get_keypoint_set
from mocap.stages.sync import apply_offsets
from mocap.stages.sync_search import shift_tracks
from mocap.stages.sync_shift import shift_views
from mocap.types import Keypoints2D


def _walk(frames=40, seed=0):
    """BlazePose-like detections (F, 1, 33, 3) of a body moving smoothly across the image, left and right apart."""
    rng = np.random.default_rng(seed)
    ks = get_keypoint_set("blazepose33")
    base = rng.uniform(300, 700, (33, 2))
    for a, b in ks.pairs:  # each right joint 80 px to the right of its left joint
        base[b] = base[a] + [80.0, rng.uniform(-5, 5)]
    t = np.arange(frames)[:, None, None]
    xy = base[None] + t * np.array([3.0, 1.0]) + 2 * np.sin(t / 5.0)
    data = np.concatenate([xy, np.full(xy.shape[:-1] + (1,), 0.9)], axis=-1)
    return data[:, None], ks


def _mirrored(data, ks, frames, group="arms"):
    names, member = swap_groups(ks)
    g = names.index(group)
    out = data.copy()
    for a, b in ks.pairs:
        if member[a, g]:
            out[frames, :, a], out[frames, :, b] = data[frames, :, b], data[frames, :, a]
    return out, member[:, g]


@pytest.mark.parametrize("offset", [0.5, 0.3, 0.8, -2.4])
def test_without_swaps_it_is_the_plain_interpolation(offset):
    data, _ = _walk()
    np.testing.assert_allclose(shift_views(data, offset, "blazepose33"), shift_tracks(data, offset), equal_nan=True)


@pytest.mark.parametrize("offset", [0.5, 0.3, 0.8])
def test_a_swap_starting_between_the_frames_keeps_the_nearer_frames_labels(offset):
    clean, ks = _walk()
    data, arms = _mirrored(clean, ks, slice(20, 30))  # the detector swapped the arms in frames 20-29
    plain = shift_tracks(data, offset)
    views = shift_views(data, offset, "blazepose33")
    truth = shift_tracks(clean, offset)
    expected, _ = _mirrored(truth, ks, slice(20, 30) if offset < 0.5 else slice(19, 29))
    k = 19  # read between frames 19 (as detected) and 20 (swapped)
    # plain interpolation: the arms halfway between left and right (tens of px from either joint)
    assert np.min(np.abs(plain[k, 0, arms, 0] - truth[k, 0, arms, 0])) > 15
    # here: the nearer frame's labels, the body read as it moves (within the motion between frames)
    np.testing.assert_allclose(views[..., :2], expected[..., :2], atol=1e-9, equal_nan=True)
    assert np.isnan(views[-1]).all()  # past the last frame: nothing, as before


def test_apply_offsets_reads_a_swapped_camera_between_frames_without_blending():
    clean, ks = _walk()
    data, arms = _mirrored(clean, ks, slice(10, 25))
    two = np.stack([clean, data], axis=1)  # (F, C=2, P=1, J, 3)
    kp = Keypoints2D(two, ("cam01", "cam02"), "blazepose33", 60.0)
    out = apply_offsets(kp, {"cam02": 0.5})
    assert np.array_equal(out.data[:, 0], kp.data[:, 0], equal_nan=True)  # the reference untouched
    truth = shift_tracks(clean, 0.5)[9, 0, :, :2]  # frame 9.5, between 9 (as detected) and 10 (swapped)
    mirror = np.arange(33)
    for a, b in ks.pairs:
        mirror[a], mirror[b] = b, a
    got = out.data[9, 1, 0, :, :2]
    own, other = (np.linalg.norm(got - truth[m], axis=-1) for m in (np.arange(33), mirror))
    assert np.all(np.minimum(own, other)[arms] < 1e-9)  # each arm keypoint a joint's (frame 10's labels), not halfway
    assert np.all(other[arms] < 1e-9) and np.all(own[~arms] < 1e-9)


@pytest.mark.parametrize("offset", [2.5, 0.3, -1.7])
def test_people_in_slots_that_change_order_are_read_between_frames_apart(offset):
    """A multi-person detector's slots need not hold the same person from frame to frame: each body is read
    between the frames with the same body of the other frame, never blended with another person's."""
    one, _ = _walk(seed=0)
    two = one.copy()
    two[..., 0] += 600.0  # a second person 600 px to the right
    people = np.concatenate([one, two], axis=1)  # (F, 2, J, 3)
    order = np.random.default_rng(1).integers(0, 2, len(people)).astype(bool)  # slots exchanged in random frames
    shuffled = people.copy()
    shuffled[order] = people[order][:, ::-1]
    views = shift_views(shuffled, offset, "blazepose33")
    truth = [shift_tracks(p[:, None], offset)[:, 0] for p in (one[:, 0], two[:, 0])]
    plain = shift_tracks(shuffled, offset)
    for f in range(len(views)):
        if np.isnan(truth[0][f]).all():
            continue
        got = sorted(views[f], key=lambda v: np.nanmean(v[:, 0]))
        for v, t in zip(got, (truth[0][f], truth[1][f]), strict=True):
            np.testing.assert_allclose(v[:, :2], t[:, :2], atol=1e-9)
    mixed = [f for f in range(len(plain)) if not np.isnan(truth[0][f]).all()
             and np.abs(plain[f, 0, :, 0] - truth[0][f][:, 0]).min() > 100
             and np.abs(plain[f, 0, :, 0] - truth[1][f][:, 0]).min() > 100]
    assert mixed  # what the plain interpolation gave: bodies halfway between the two people


def test_a_slot_that_jumps_to_another_body_is_not_blended_and_a_body_changing_slot_is_followed():
    """Two slots: one whose detector picked another body in the next frame (nothing read between those frames),
    and a lone body that moves from one slot to the other (read between the frames as one body)."""
    one, _ = _walk(seed=0)
    data = np.concatenate([one, np.full_like(one, np.nan)], axis=1)  # (F, 2, J, 3): the second slot empty
    data[20:, 0, :, 0] += 600.0  # from frame 20 on, the first slot holds another body 600 px away
    views = shift_views(data, 0.4, "blazepose33")
    assert np.isnan(views[19]).all()  # between frames 19 and 20: two bodies
    np.testing.assert_allclose(views[18], shift_tracks(data, 0.4)[18])  # elsewhere: the interpolation
    np.testing.assert_allclose(views[25], shift_tracks(data, 0.4)[25])
    moving = np.concatenate([one, np.full_like(one, np.nan)], axis=1)
    moving[20:] = moving[20:, ::-1]  # from frame 20 on the body is in the second slot
    views = shift_views(moving, 0.4, "blazepose33")
    np.testing.assert_allclose(np.nansum(views[19], axis=0), shift_tracks(one, 0.4)[19, 0])


def test_one_slot_reads_as_before_however_fast_a_small_body_moves():
    """A single-person detector's one slot holds its person: a face seen alone (a 30 px box) moving 12 px a frame
    is read between the frames as before (not left out as another body)."""
    rng = np.random.default_rng(0)
    face = rng.uniform(0, 30, (33, 2))
    xy = face[None] + np.arange(40)[:, None, None] * np.array([12.0, 0.0])
    data = np.concatenate([xy, np.full(xy.shape[:-1] + (1,), 0.9)], axis=-1)[:, None]
    data[:, :, 5:, :] = np.nan  # five keypoints seen
    np.testing.assert_allclose(shift_views(data, 0.4, "blazepose33"), shift_tracks(data, 0.4), equal_nan=True)
