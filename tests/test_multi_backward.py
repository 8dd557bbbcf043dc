"""A person's first frames, before the tracker confirmed it (mocap.multi.backward): a person entering through one
view's image first, then seen by two views in broken runs (too short for a two-view birth), was reconstructed only
from its first frame in enough views; those frames are now its own, and only those."""

from __future__ import annotations

import numpy as np
import pytest

from mocap.multi.track import associate_take
from mocap.synth import RigSpec
from mocap.synth.figure import walking_figure
from mocap.synth.groundtruth import CorruptionSpec
from mocap.synth.multiperson import CrowdSpec, in_place, make_crowd
from mocap.types import Keypoints2D

FPS = 60.0


def _entering(one_view_s: float, two_view_s: float, broken: bool, seed: int = 1):
    """Three walkers, four cameras; the last enters at 20 % of the take and is seen by camera 1 alone for
    ``one_view_s``, then by cameras 1-2 for ``two_view_s`` (``broken``: 5 frames of every 8), then by all."""
    F = int(8 * FPS)
    motions = [in_place(walking_figure(F, fps=FPS, seed=i), "coco17") for i in range(3)]
    take = make_crowd(motions, "coco17", FPS, CrowdSpec(people=3, seed=seed), RigSpec(n_cameras=4),
                      CorruptionSpec(noise_px=2.0, outliers=0.01, seed=seed))
    data, owner = take.keypoints.data.copy(), take.owner.copy()
    p = 2
    entry = int(np.flatnonzero(np.isfinite(take.truth[:, p, :, 0]).any(axis=-1))[0])
    n1, n2 = int(one_view_s * FPS), int(two_view_s * FPS)
    for f in range(entry, entry + n1 + n2):
        seen = [0] if f < entry + n1 else ([0, 1] if not broken or (f - entry) % 8 < 5 else [])
        for c in range(data.shape[1]):
            if c not in seen:
                gone = owner[f, c] == p
                data[f, c, gone], owner[f, c, gone] = np.nan, -1
    return take.rig, Keypoints2D(data, take.keypoints.camera_names, "coco17", FPS), owner, p, entry


def _person(slots: np.ndarray, owner: np.ndarray, p: int) -> int:
    """The association's person holding most of truth person p's detections."""
    f, c, q = np.nonzero(slots >= 0)
    mine = owner[f, c, slots[f, c, q]] == p
    return int(np.bincount(q[mine], minlength=slots.shape[2]).argmax())


@pytest.mark.parametrize("one_view_s, two_view_s, broken", [(0.3, 0.3, False), (0.2, 0.8, True)])
def test_a_person_is_followed_back_to_its_first_detection(one_view_s, two_view_s, broken):
    """The old code started the person at its first frame seen by two views (0.3 s late), or, with the two-view
    runs broken (never 12 frames in a row), when the third camera saw it (1.0 s late)."""
    rig, kp, owner, p, entry = _entering(one_view_s, two_view_s, broken)
    slots, summary = associate_take(rig, kp, "auto", progress=False)
    assert summary["persons_found"] == 3
    q = _person(slots, owner, p)
    frames = np.flatnonzero((slots[:, :, q] >= 0).any(axis=1))
    assert frames[0] <= entry + 1, (frames[0], entry)
    f, c = np.nonzero(slots[:, :, q] >= 0)
    who = owner[f, c, slots[f, c, q]]
    early = f < entry + int((one_view_s + two_view_s) * FPS)
    assert np.all(who[early] == p), np.unique(who[early], return_counts=True)  # nobody else's detections
    theirs = (owner == p).any(axis=2)  # frames × views where the person was detected
    assert (slots[:, :, q] >= 0)[theirs].mean() > 0.97
    assert summary["detections_before_start"] >= int(one_view_s * FPS)


def test_one_view_alone_is_followed_back_one_coast_at_most():
    """Seen by one view for 2 s before the others: the walk back stops after ``coast_max_s`` (1 s) without two
    views, as the tracker ends a person unseen that long; no one else's detection is taken."""
    rig, kp, owner, p, entry = _entering(2.0, 0.0, False)
    slots, _ = associate_take(rig, kp, "auto", progress=False)
    q = _person(slots, owner, p)
    frames = np.flatnonzero((slots[:, :, q] >= 0).any(axis=1))
    start3d = entry + int(2.0 * FPS)
    assert start3d - FPS - 1 <= frames[0] <= start3d - FPS + 1, (frames[0], start3d)
    f, c = np.nonzero(slots[:, :, q] >= 0)
    assert np.all(owner[f, c, slots[f, c, q]][f < start3d] == p)
