"""A two-view identity in a packed group (mocap.multi.seen.contradicted): the third camera's view of its spot
is inside some person's detection box, but a person standing behind it (farther from that camera) cannot hide it:
the spot is seen empty. Helper's packed take (4 people 0.6 m apart, 5 cameras): a 17-frame phantom from two
views' false detections was a 5th person and failed the take; now 4 people."""

from __future__ import annotations

import numpy as np
import pytest

from mocap.multi.track import associate_take
from mocap.synth import RigSpec
from mocap.synth.figure import walking_figure
from mocap.synth.groundtruth import ring_rig
from mocap.synth.multiperson import in_place
from mocap.types import Keypoints2D
from tests.multi_views import people_views


@pytest.mark.parametrize("where, persons", [("behind", 2), ("in front", 3)])
def test_a_person_behind_a_two_view_figure_does_not_hide_it(where, persons):
    """Half a second of a figure only cameras 1 and 2 detect. Camera 4 has a detection no person explains over it
    (it may be hiding it); camera 3 has a tracked person's over it, 0.7 m behind the figure (not a person: dropped,
    as a spot seen empty) or 0.7 m in front of it (it may hide a real person: kept). The old rule kept both."""
    walker = in_place(walking_figure(240, fps=60.0, seed=0), "coco17")
    figure = in_place(walking_figure(240, fps=3000.0, seed=1), "coco17") + [1.2, 0.0, 0.0]
    rig = ring_rig(RigSpec(), np.stack([walker, figure], 1))
    cam = rig.cameras[2]
    c = np.nanmean(figure[120], axis=0)
    ray = (c - cam.center) * [1, 1, 0]
    ray /= np.linalg.norm(ray)
    other = in_place(walking_figure(240, fps=60.0, seed=2), "coco17")
    spot = c[:2] + (0.7 if where == "behind" else -0.7) * ray[:2]
    other = other - np.r_[np.nanmean(other[:, :, :2], axis=(0, 1)), 0] + np.r_[spot, 0]
    truth = np.stack([walker, figure, other], axis=1)
    F, N, J, _ = truth.shape
    data = people_views(rig, truth)  # (F, C, 3, J, 3)
    shown = np.zeros(F, bool)
    shown[100:130] = True
    data[~shown, :, 1] = np.nan
    unexplained = data[shown, 3, 1][:, np.random.default_rng(0).permutation(J)]  # its joints in another order
    data[shown, 2:, 1] = np.nan
    data[shown, 3, 1] = unexplained
    slots, summary = associate_take(rig, Keypoints2D(data, rig.names, "coco17", 60.0), "auto", progress=False)
    assert summary["persons_found"] == persons, summary
    assert summary["persons_unconfirmed"] == 3 - persons
