"""A person's first frames, before the tracker confirmed it (mocap.multi.backward): a person entering through one
view's image first, then seen by two views in broken runs (too short for a two-view birth), was the person's only
from its first frame in enough views; those frames' detections are now its own, and only those (refine still
starts its points where two views see it)."""

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


def _entering(one_view_s: float, two_view_s: float, broken: bool, seed: int = 1, occlusion: bool = True):
    """Three walkers, four cameras; the last enters at 20 % of the take and is seen by camera 1 alone for
    ``one_view_s``, then by cameras 1-2 for ``two_view_s`` (``broken``: 5 frames of every 8), then by all."""
    F = int(8 * FPS)
    motions = [in_place(walking_figure(F, fps=FPS, seed=i), "coco17") for i in range(3)]
    take = make_crowd(motions, "coco17", FPS, CrowdSpec(people=3, seed=seed, occlusion=occlusion), RigSpec(n_cameras=4),
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
    """Seen by one view for 2 s before the others (no occlusion between the walkers): the walk back stops after
    ``coast_max_s`` (1 s) without two views, as the tracker ends a person unseen that long; no one else's
    detection is taken."""
    rig, kp, owner, p, entry = _entering(2.0, 0.0, False, occlusion=False)
    slots, summary = associate_take(rig, kp, "auto", progress=False)
    q = _person(slots, owner, p)
    frames = np.flatnonzero((slots[:, :, q] >= 0).any(axis=1))
    start3d = entry + int(2.0 * FPS)
    assert start3d - FPS - 1 <= frames[0] <= start3d - FPS + 1, (frames[0], start3d)
    f, c = np.nonzero(slots[:, :, q] >= 0)
    assert np.all(owner[f, c, slots[f, c, q]][f < start3d] == p)
    assert summary["detections_before_start"] >= FPS


def _two_views_with_gaps(seed: int):
    """Three walkers at 25 fps, three cameras; the third walker is seen by cameras 1-2 only, camera 2 losing it
    for 1-3 frames about every 8 (a two-view person whose second view keeps dropping out)."""
    fps = 25.0
    F = int(12 * fps)
    motions = [in_place(walking_figure(F, fps=fps, seed=i + seed), "coco17") for i in range(3)]
    take = make_crowd(motions, "coco17", fps, CrowdSpec(people=3, seed=seed, enter_leave=False),
                      RigSpec(n_cameras=3), CorruptionSpec(noise_px=3.0, outliers=0.03, seed=seed))
    data, owner = take.keypoints.data.copy(), take.owner.copy()
    rng, p = np.random.default_rng(seed), 2
    hidden = np.zeros(owner.shape[:2], bool)
    hidden[:, 2] = True
    f = 0
    while f < F:
        f += 8 + int(rng.integers(-1, 2))
        g = int(rng.integers(1, 4))
        hidden[f:f + g, 1] = True
        f += g
    gone = hidden[..., None] & (owner == p)
    data[gone], owner[gone] = np.nan, -1
    return take.rig, Keypoints2D(data, take.keypoints.camera_names, "coco17", fps), owner, p


def test_a_two_view_person_whose_second_view_keeps_dropping_out_stays_whole():
    """The person restarts after some of the one-view gaps: each restart is now followed back over the gap (and a
    one-view person's extension no longer takes a detection far nearer another person). Old code: 82.6 % and 91.8 %
    of its detections assigned at seeds 4 and 5; now 97-100 % at every seed."""
    shares = []
    for seed in range(6):
        rig, kp, owner, p = _two_views_with_gaps(seed)
        slots, _ = associate_take(rig, kp, "auto", progress=False)
        f, c, q = np.nonzero(slots >= 0)
        mine = owner[f, c, slots[f, c, q]] == p
        shares.append(np.bincount(q[mine]).max() / (owner == p).sum())  # in its main identity
    assert min(shares) > 0.95 and np.mean(shares) > 0.98, shares
