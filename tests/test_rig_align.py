"""Camera moves with the whole rig aligned (mocap.geometry.align.aligned_camera_errors): a change of the rig's
world frame alone (rotation, translation, scale) moves no camera; one camera's own move stays with it."""

import numpy as np
import pytest

from mocap.geometry.align import aligned_camera_errors
from mocap.geometry.rotations import axis_angle_to_matrix
from mocap.synth import RigSpec, ring_rig
from mocap.types import Rig


def _posed(cam, R, centre):
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, -R @ centre
    return cam.with_pose(T)


def test_a_new_world_frame_moves_no_camera_and_one_cameras_move_stays_its_own():
    rig = ring_rig(RigSpec(n_cameras=6), np.random.default_rng(0).normal(scale=0.3, size=(50, 3)) + [0, 0, 1])
    Q, s, t = axis_angle_to_matrix(np.array([0.3, -0.2, 0.9])), 1.3, np.array([2.0, -1.0, 0.5])
    # the world X' = s Q X + t: a camera's rotation becomes R Qᵀ, its centre s Q c + t
    moved = Rig(tuple(_posed(c, c.R @ Q.T, s * Q @ c.center + t) for c in rig.cameras))
    raw = [np.linalg.norm(a.center - b.center) for a, b in zip(moved.cameras, rig.cameras, strict=True)]
    assert min(raw) > 0.5  # metres: every camera moved in the raw frame
    mm, deg = aligned_camera_errors(moved, rig)
    assert mm.max() < 1e-6 and deg.max() < 1e-6
    turn = axis_angle_to_matrix(np.array([0.0, np.radians(2.0), 0.0]))
    one = list(moved.cameras)
    one[3] = _posed(one[3], turn @ one[3].R, one[3].center + s * Q @ np.array([0.2, 0.0, 0.0]))
    mm, deg = aligned_camera_errors(Rig(tuple(one)), rig)
    assert int(np.argmax(mm)) == 3 and int(np.argmax(deg)) == 3
    assert 1.2 < deg[3] < 2.0 and 100 < mm[3] < 200  # the alignment spreads a little of it over the others
    assert np.delete(deg, 3).max() < 0.5 * deg[3]


def test_rigs_of_different_sizes_are_refused():
    rig = ring_rig(RigSpec(n_cameras=4), np.random.default_rng(0).normal(scale=0.3, size=(50, 3)) + [0, 0, 1])
    with pytest.raises(ValueError, match="4 cameras against 3"):
        aligned_camera_errors(rig, Rig(rig.cameras[:3]))
