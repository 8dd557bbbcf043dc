"""People are numbered the same whatever order the detector's slots give them: two people there from the first
frame were numbered in the order their tracks were made, which the slots decide ("person1" was the man in some runs
of Pose2Sim's two-person demo and the woman in others: a stride, a sub-range, another count of people asked for)."""

import numpy as np

from mocap.bench.multiperson import score
from mocap.multi.track import associate_take
from mocap.types import Keypoints2D
from tests.test_multi_identity import kicker_beside_still


def _reordered(take, seed: int):
    """The same take with each view's detection slots in another order in every frame."""
    rng = np.random.default_rng(seed)
    F, C, S = take.keypoints.data.shape[:3]
    perm = np.argsort(rng.random((F, C, S)), axis=-1)
    data = np.take_along_axis(take.keypoints.data, perm[..., None, None], axis=2)
    owner = np.take_along_axis(take.owner, perm, axis=2)
    merged = np.take_along_axis(take.merged_with, perm, axis=2)
    kp = Keypoints2D(data, take.keypoints.camera_names, take.keypoints.keypoint_set, take.keypoints.fps)
    return type(take)(take.rig, kp, take.truth, owner, merged)


def test_people_there_from_the_start_are_numbered_the_same_whatever_the_slots():
    take = kicker_beside_still(frames=120, dup=False)
    orders = set()
    for seed in range(6):
        t = _reordered(take, seed)
        slots, summary = associate_take(t.rig, t.keypoints, "auto", progress=False)
        s = score(t, slots)
        assert summary["persons_found"] == 2 and s["identity_switches"] == 0
        orders.add(tuple(s["identity_to_person"]))
    assert len(orders) == 1, orders


def _late(take, person: int, frames: int):
    """The take with ``person``'s detections gone from every view in its first ``frames`` frames."""
    data, owner = take.keypoints.data.copy(), take.owner.copy()
    gone = owner[:frames] == person
    data[:frames][gone] = np.nan
    owner[:frames][gone] = -1
    kp = Keypoints2D(data, take.keypoints.camera_names, take.keypoints.keypoint_set, take.keypoints.fps)
    return type(take)(take.rig, kp, take.truth, owner, take.merged_with)


def test_people_appearing_within_half_a_second_are_numbered_by_place_not_by_a_frame():
    """Either person detected a few frames later (a sub-range, a stride, a slower detection) swapped the numbers."""
    take = kicker_beside_still(frames=120, dup=False)
    orders = set()
    for person in (0, 1):
        t = _late(take, person, 4)
        slots, summary = associate_take(t.rig, t.keypoints, "auto", progress=False)
        s = score(t, slots)
        assert summary["persons_found"] == 2 and s["identity_switches"] == 0
        orders.add(tuple(s["identity_to_person"]))
    assert len(orders) == 1, orders
