"""Sync's last check judges the applied offsets on the views they move (issue 14: a shift of 0.4 frame recovered
within 0.1): over every view of eight cameras, one moved camera hardly shows, and with left/right swaps (not yet
repaired when sync runs) its interpolated neighbours of a swapped frame made the right offset look worse, so it was
dropped."""

import numpy as np
from body_synth import blazepose_keypoints, body_motion

from mocap.stages import sync
from mocap.synth import CorruptionSpec, RigSpec, corrupt, ring_rig
from mocap.types import Keypoints2D


def _take(shift: float, cameras: int = 8, frames: int = 600, swaps: float = 0.02, seed: int = 0):
    X = blazepose_keypoints(body_motion(frames, 60.0, seed=seed))
    rig = ring_rig(RigSpec(n_cameras=cameras), X.reshape(-1, 3))
    uv = np.moveaxis(rig.project(X), 0, 1)
    data, _ = corrupt(uv, rig, "blazepose33", CorruptionSpec(2.0, 0.05, 0.10, swaps=swaps, seed=seed))
    data[:, 1] = sync.shift_tracks(data[:, 1], -shift)  # cam02 sees at t + shift what the others see at t
    return rig, Keypoints2D(data, rig.names, "blazepose33", 60.0)


def test_a_subframe_offset_among_eight_cameras_with_swaps_is_kept():
    rig, kp = _take(0.4, seed=1)  # the old check (every view) dropped this one: 3.005 → 3.018 px
    r = sync.run(rig, kp)
    assert r["applied"] and abs(r["offsets_frames"]["cam02"] - 0.4) < 0.1, (r["offsets_frames"],
                                                                         r.get("triangulation_px"))
    assert all(v == 0.0 for n, v in r["offsets_frames"].items() if n != "cam02"), r["offsets_frames"]
    px = r["triangulation_px"]
    assert px["with"] < px["without"], px


def test_the_check_measures_the_moved_cameras_only():
    rig, kp = _take(0.4, cameras=4, frames=200, swaps=0.0)
    moved = np.arange(4) == 1
    fixed = sync.apply_offsets(kp, {"cam02": 0.4})
    assert sync._triangulation_error(rig, fixed, sync.Config(), None, moved) < \
        sync._triangulation_error(rig, kp, sync.Config(), None, moved)
    none = sync._triangulation_error(rig, kp, sync.Config(), None, np.zeros(4, bool))
    assert np.isnan(none)  # no camera moved: nothing to judge
