"""The tracker's bookkeeping of a person (mocap.multi.tracklets, identity, track): when two tracks of one person
join, the joints' last triangulation (which joints are stale) is the later of the two (it was the older track's
alone: a joint measured a frame ago counted as stale); a new person's first cost is its detections' distance to
its skeleton (it was 0, halving its noise estimate while it had two); a frame whose other views came back by
meeting the one view's detection records that view's cost against the prediction, as the gate measures it (the
ray distances between the views were recorded, a tenth of it)."""

from __future__ import annotations

import numpy as np

from mocap.multi.identity import births, reacquire
from mocap.multi.track import TrackConfig, Tracker
from mocap.multi.tracklets import Track, join_tracks
from mocap.synth import RigSpec
from mocap.synth.figure import walking_figure
from mocap.synth.groundtruth import ring_rig
from mocap.synth.multiperson import in_place
from mocap.types import Keypoints2D
from tests.multi_views import people_views

FPS, F0 = 60.0, 70


def one_person(noise_px: float = 0.0) -> tuple[Tracker, np.ndarray]:
    truth = in_place(walking_figure(F0 + 2, fps=FPS, seed=0), "coco17")[:, None]  # (F, 1, J, 3)
    rig = ring_rig(RigSpec(n_cameras=3), truth)
    data = people_views(rig, truth)
    data[..., :2] += np.random.default_rng(0).normal(0.0, noise_px, data[..., :2].shape)
    return Tracker(rig, Keypoints2D(data, rig.names, "coco17", FPS), TrackConfig(), 0.2), truth[:, 0]


def test_joined_tracks_keep_the_latest_triangulation_of_each_joint():
    X = np.zeros((4, 3))
    old = Track(X=X, last=10, first=0, confirmed=True, frames=[10], slots=[np.zeros(2, np.int16)], costs=[0.01],
                measured=np.array([10, 2, 10, 3]))
    young = Track(X=X, last=20, first=15, confirmed=True, frames=[20], slots=[np.ones(2, np.int16)], costs=[0.01],
                  measured=np.array([20, 20, 5, 15]))
    join_tracks(old, young)
    assert old.measured.tolist() == [20, 20, 10, 15]


def test_a_person_found_again_keeps_its_new_track_s_triangulations():
    tr, truth = one_person()
    lost = Track(X=truth[F0 - 20].copy(), last=F0 - 20, first=0, confirmed=True, last3d=F0 - 20,
                 X3d=truth[F0 - 20].copy(), frames=[F0 - 20], slots=[np.zeros(3, np.int16)], costs=[0.01],
                 measured=np.full(17, F0 - 20))
    new = Track(X=truth[F0].copy(), last=F0, first=F0 - 3, confirmed=True, last3d=F0, X3d=truth[F0].copy(),
                frames=[F0], slots=[np.zeros(3, np.int16)], costs=[0.01], measured=np.full(17, F0))
    tr.live = [lost, new]
    assert reacquire(tr, new, F0)
    assert new.merged_into is lost and lost.measured.tolist() == [F0] * 17
    assert not lost.stale(F0, FPS).any()


def test_a_new_person_s_first_cost_is_its_detections_distance_to_it():
    tr, _ = one_person(noise_px=2.0)
    births(tr, F0, tr.usable[F0].copy())
    (t,) = tr.live
    assert 0.001 < t.costs[0] < 0.05, t.costs


def test_a_frame_whose_views_met_the_one_view_records_that_view_s_cost():
    """A person seen by camera 0 alone for 20 frames, predicted 0.5 m off along that camera's line of sight (and
    0.04 m across it): cameras 1 and 2 see it again, their detections meeting camera 0's (noise-free: at 0 m)."""
    tr, truth = one_person()
    X = truth[F0 - 1]
    ray = np.mean(X, axis=0) - tr.origins[0]
    ray /= np.linalg.norm(ray)
    across = np.cross(ray, [0.0, 0.0, 1.0])
    seen = np.array([0, -1, -1], np.int16)  # camera 0's detection of the frame before
    A = Track(X=X + 0.5 * ray + 0.04 * across / np.linalg.norm(across), last=F0 - 1, first=0, confirmed=True,
              last3d=F0 - 21, X3d=truth[F0 - 21].copy(), hits=30, frames=[F0 - 1], slots=[seen], costs=[0.04])
    tr.live = [A]
    tr.step(F0)
    assert A.last3d == F0 and (A.slots[-1] >= 0).all()  # seen by the three views again
    assert 0.02 < A.costs[-1] < 0.08, A.costs  # camera 0's cost (the ray distances: about 0)
