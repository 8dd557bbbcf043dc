"""Identities through crossings: two people seen apart are never one, merged detections do not pull a person
towards the other, facing cameras fix no depth, and a crowd whose lanes are shared keeps every identity."""

from __future__ import annotations

import numpy as np
import pytest

from mocap.bench.multiperson import MultiBenchConfig, make, score
from mocap.multi.merged import own_rays
from mocap.multi.rays import triangulate_rays
from mocap.multi.track import TrackConfig, Tracker, associate_take
from mocap.multi.tracklets import Track, join_tracks, seen_apart
from mocap.synth.figure import walking_figure
from mocap.synth.multiperson import CrowdSpec, in_place, make_crowd


def _track(centres: dict[int, tuple[float, float, float]]) -> Track:
    frames = sorted(centres)
    X = np.zeros((17, 3))
    return Track(X, frames[-1], frames[0], frames=frames, slots=[np.full(4, -1, np.int16) for _ in frames],
                 costs=[0.0] * len(frames), path={f: np.array(c) for f, c in centres.items()})


def test_two_people_seen_apart_are_never_one_and_duplicates_are():
    a = _track({f: (0.01 * f, 0.0, 1.0) for f in range(10)})
    b = _track({f: (0.01 * f, 0.5, 1.0) for f in range(5, 20)})  # the same frames, half a metre away
    assert seen_apart(a, b, 0.15, 3)
    assert not seen_apart(a, b, 0.15, 6)  # only five frames in common
    dup = _track({f: (0.01 * f + 0.02, 0.0, 1.0) for f in range(5, 20)})  # one person, two tracks
    assert not seen_apart(a, dup, 0.15, 3)
    assert not seen_apart(a, _track({f: (0.0, 0.0, 1.0) for f in range(30, 40)}), 0.15, 1)  # never together


def test_joined_tracks_keep_the_views_of_both_in_a_frame():
    old, young = _track({0: (0, 0, 1), 1: (0, 0, 1)}), _track({1: (0, 0, 1), 2: (0, 0, 1)})
    old.slots[1][0] = 2  # frame 1: old has view 0, young views 2 and 3
    young.slots[0][2:] = [1, 0]
    join_tracks(old, young)
    assert old.frames == [0, 1, 2]
    assert old.slots[1].tolist() == [2, -1, 1, 0]


def test_facing_cameras_fix_no_depth():
    X = np.array([0.3, -0.2, 1.1])
    origins = np.array([[4.0, 0.0, 1.5], [-4.0, -0.4, 0.75], [0.0, 4.0, 1.5]])
    d = X - origins
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    w = np.ones(2)
    assert np.degrees(np.arccos(-d[0] @ d[1])) < 2.0
    # two cameras facing each other across the person: their rays nearly one line, the depth anywhere on it
    assert np.isnan(triangulate_rays(origins[:2], d[:2], w)).all()
    np.testing.assert_allclose(triangulate_rays(origins[[0, 2]], d[[0, 2]], w), X, atol=1e-9)
    np.testing.assert_allclose(triangulate_rays(origins, d, np.ones(3)), X, atol=1e-9)


def test_keypoints_of_the_other_person_in_a_merged_detection_are_left_out():
    motions = [in_place(walking_figure(30, seed=i), "coco17") for i in range(2)]
    take = make_crowd(motions, "coco17", 60.0, CrowdSpec(people=2, enter_leave=False, clutter_rate=0.0))
    tr = Tracker(take.rig, take.keypoints, TrackConfig(), 0.2)
    A, B = take.truth[10, 0], take.truth[10, 1] + [0.0, 0.3, 0.0]  # two people 0.3 m apart
    side = np.zeros(17, bool)
    side[[1, 3, 5, 7, 9, 11, 13, 15]] = True  # one body side of B in A's detection
    O = tr.origins[:1]
    target = np.where(side[:, None], B, A)
    R = (target - O) / np.linalg.norm(target - O, axis=1, keepdims=True)
    own = own_rays(R[None], O, A, B[None])[0]
    assert np.isnan(own[side]).all() and np.isfinite(own[~side]).all()
    assert np.array_equal(own_rays(R[None], O, A, None)[0], R)  # nobody else: every keypoint counts


@pytest.mark.slow
@pytest.mark.parametrize("seed", [3, 5])
def test_walkers_sharing_a_lane_keep_their_identities(seed):
    """Five people, two of them on the same line walking opposite ways; one leaves: the track of the one who
    left, coasting on, was joined with the other (two people one identity, 75 % of person-frames)."""
    cfg = MultiBenchConfig(frames=600, seed=seed)
    take = make(cfg, 5, 4, cfg.frames)
    slots, summary = associate_take(take.rig, take.keypoints, 5, progress=False)
    s = score(take, slots)
    assert s["identity_switches"] == 0 and s["identities"] == 5, s
    assert sorted(s["identity_to_person"]) == [0, 1, 2, 3, 4]
    assert s["accuracy"] >= 0.99, s
