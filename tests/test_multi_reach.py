"""A joint triangulated beyond its body's reach (a detection carrying another person's body side in every view,
at the take's start before the tracker can tell the two apart) is left out of that person
(mocap.multi.other_body.beyond_reach, the triangulate stage); real motion never is."""

from __future__ import annotations

import numpy as np
import pytest

from mocap.keypoint_sets import get_keypoint_set
from mocap.multi.other_body import beyond_reach
from mocap.stages import triangulate
from mocap.synth import RigSpec
from mocap.synth.figure import walking_figure
from mocap.synth.groundtruth import ring_rig
from mocap.synth.multiperson import in_place
from mocap.types import Keypoints2D

KS = get_keypoint_set("coco17")
RIGHT = [i for i, n in enumerate(KS.joints) if n.startswith("right_")]
START = slice(0, 4)  # the frames whose detections of person 0 hold person 1's right side


def two_apart(frames: int = 90, seed: int = 0):
    """Two walkers 2 m apart, four cameras in a ring, σ 2 px; in frames 0–3 person 0's detection has, in every
    view, person 1's right-side keypoints. Returns rig, truth (F, 2, J, 3), keypoints (slot p: person p)."""
    rng = np.random.default_rng(seed)
    step = np.array([1.0, 0.0, 0.0])
    people = [in_place(walking_figure(frames, seed=seed + k), "coco17") for k in range(2)]
    truth = np.stack([people[0] - step, people[1] + step], axis=1)
    rig = ring_rig(RigSpec(), truth)
    uv = np.stack([cam.project(truth) for cam in rig.cameras], axis=1)  # (F, C, P, J, 2)
    xy = uv + rng.normal(0, 2.0, uv.shape)
    xy[START, :, 0][..., RIGHT, :] = xy[START, :, 1][..., RIGHT, :]
    data = np.concatenate([xy, np.full(xy.shape[:-1] + (1,), 0.9)], axis=-1)
    return rig, truth, Keypoints2D(data, rig.names, "coco17", 60.0)


def test_another_persons_side_is_beyond_reach_and_nothing_else():
    rig, truth, kp = two_apart()
    points = triangulate.run(rig, kp, triangulate.Config(repair_swaps=False))
    err = np.linalg.norm(points.xyz[START, 0][:, RIGHT] - truth[START, 0][:, RIGHT], axis=-1)
    assert np.nanmin(err) > 1.5  # triangulated where person 1 stands: the views agree
    far = beyond_reach(points.xyz, points.views, "coco17", kp.fps)  # (F, C, P, J)
    planted = np.zeros(far.shape, bool)
    planted[START, :, 0][..., RIGHT] = True
    assert far[planted].all(), far[planted].mean()
    assert not far[~planted].any(), np.argwhere(far & ~planted)[:5]


def test_views_not_used_for_a_joint_are_not_left_out():
    rig, truth, kp = two_apart()
    points = triangulate.run(rig, kp, triangulate.Config(repair_swaps=False))
    views = points.views.copy()
    views[START, 0, :, 1:] = False  # only camera 0 triangulated those joints
    far = beyond_reach(points.xyz, views, "coco17", kp.fps)
    assert far[START, 0, 0][:, RIGHT].all() and not far[:, 1:].any()


@pytest.mark.shared_data
@pytest.mark.parametrize("clip", ["cmu_01_01", "cmu_01_03"])
def test_real_motion_is_never_beyond_reach(shared_data, clip):
    """CMU's captured motion (jumps, climbing, arms overhead; 2,751 and 4,510 frames at 120 fps), with dropouts:
    no joint of it is ever taken for another body's."""
    from mocap.bench.fit import truth_motion
    from mocap.synth.groundtruth import keypoints_from_motion

    motion, mm = truth_motion(str(shared_data / "bvh" / f"{clip}.bvh"))
    X = keypoints_from_motion(motion, mm)[:, None].copy()  # (F, 1, J, 3)
    rng = np.random.default_rng(0)
    X[rng.random(X.shape[:3]) < 0.1] = np.nan
    views = np.broadcast_to(np.isfinite(X[..., :1]), X.shape[:3] + (4,))
    assert not beyond_reach(X, views, mm.keypoint_set, motion.fps).any()


def test_the_stage_leaves_them_out_and_records_them(tmp_path):
    from mocap.io.hdf5 import read_points3d
    from mocap.session import Session
    from mocap.settings import load_config
    from mocap.synth.multiperson import CrowdTake, write_crowd_session

    rig, truth, kp = two_apart()
    F, C, P, _ = kp.shape
    slots = np.broadcast_to(np.arange(P, dtype=np.int16), (F, C, P)).copy()
    session = Session(write_crowd_session(CrowdTake(rig, kp, truth, slots, np.full((F, C, P), -1, np.int16)),
                                          tmp_path / "two"))
    triangulate.main(session, load_config(session)[0], overwrite=True)
    points = read_points3d(session.points3d("triangulated"))
    p = int(np.argmin([np.nanmedian(np.linalg.norm(points.xyz[10:, q] - truth[10:, 0], axis=-1)) for q in range(P)]))
    err = np.linalg.norm(points.xyz[START, p][:, RIGHT] - truth[START, 0][:, RIGHT], axis=-1)
    assert not np.any(err > 0.5), np.nanmax(err)  # not triangulated (or near its own joint) any more
    assert points.info["association"]["beyond_reach_keypoints"] > 0
    later = triangulate.session_keypoints(session, session.rig())  # refine and the report read these
    assert np.isnan(later.xy[START, :, p][..., RIGHT, :]).mean() > 0.5
