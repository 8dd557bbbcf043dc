"""A bone's length is measured over the frames that triangulate both its ends (over frames where an end has
one view any length fits that view's ray, and the length followed the solve's own drift), and a side of the
body that two views never measure takes the other side's lengths (mocap.optim.refine_bones)."""

import numpy as np
import pytest
from body_synth import blazepose_keypoints, body_motion

from mocap.keypoint_sets import get_keypoint_set
from mocap.optim.refine import RefineConfig, refine_person
from mocap.optim.refine_bones import MEASURED_FRAMES, mirror_bones, mirrored_lengths
from mocap.stages import triangulate
from mocap.synth import CorruptionSpec, RigSpec, corrupt, ring_rig
from mocap.types import Keypoints2D

KS = get_keypoint_set("blazepose33")
ARM = [KS.joints.index(n) for n in ("right_elbow", "right_wrist", "right_pinky", "right_index", "right_thumb")]
FOREARM = KS.bones.index((KS.joints.index("right_elbow"), KS.joints.index("right_wrist")))


def test_each_bone_s_mirror_is_the_other_side_s():
    m = mirror_bones(KS.bones, KS.pairs)
    name = {k: frozenset(KS.joints[j] for j in bone) for k, bone in enumerate(KS.bones)}
    left = KS.bones.index((KS.joints.index("left_elbow"), KS.joints.index("left_wrist")))
    assert m[FOREARM] == left and m[left] == FOREARM
    assert m[KS.bones.index((KS.joints.index("left_hip"), KS.joints.index("right_hip")))] == -1  # across the body
    for k, j in enumerate(m):
        if j >= 0:
            assert {n.replace("left", "right") for n in name[k]} == {n.replace("left", "right") for n in name[j]}


def test_a_length_is_its_own_when_measured_else_its_mirror_s():
    T = 50
    n = np.stack([np.full(T, 0.40), np.full(T, 0.30), np.full(T, 0.08), np.full(T, 0.50)], axis=1)  # (T, bones)
    mirror = np.array([1, 0, 3, 2])
    good = np.zeros((T, 4), bool)
    good[:, 1] = True  # bone 0 never triangulated: takes bone 1's
    good[:, 2] = True
    good[: MEASURED_FRAMES - 1, 3] = True  # bone 3 triangulated in too few frames: takes bone 2's
    out = mirrored_lengths(np.array([0.40, 0.30, 0.08, 0.50]), n, good, mirror)
    assert out.tolist() == pytest.approx([0.30, 0.30, 0.08, 0.08])
    good[:, 0] = True
    good[:, 3] = True
    same = mirrored_lengths(np.array([0.40, 0.30, 0.08, 0.50]), n, good, mirror)  # both sides triangulated: kept
    assert same.tolist() == pytest.approx([0.40, 0.30, 0.08, 0.50])
    good[:, 1] = good[:, 0] = False
    none = mirrored_lengths(np.array([0.40, 0.30, 0.08, 0.50]), n, good, mirror)  # neither side: kept
    assert none[:2].tolist() == pytest.approx([0.40, 0.30])


def test_a_bone_s_length_is_over_the_frames_that_triangulate_it_when_there_are_enough():
    from mocap.optim.refine_bones import length_frames

    T = 30
    views = np.full((T, 3), 2)
    views[MEASURED_FRAMES:, 1] = 1  # joint 1 triangulated in the first MEASURED_FRAMES frames only
    views[: MEASURED_FRAMES - 1, 2] = 2
    views[MEASURED_FRAMES - 1:, 2] = 1  # joint 2 in one frame fewer
    ba, bb = np.array([0, 0, 0]), np.array([1, 2, 2])
    frames = length_frames(views > 0, views < 2, ba, bb, np.array([False, False, True]))
    assert frames[:, 0].tolist() == [True] * MEASURED_FRAMES + [False] * (T - MEASURED_FRAMES)  # enough: those
    assert frames[:, 1].all()  # too few: every frame that sees both ends
    assert frames[:, 2].sum() == MEASURED_FRAMES - 1  # a loose bone: its triangulated frames, however few


@pytest.fixture(scope="module")
def take():
    A = blazepose_keypoints(body_motion(300, 30.0, seed=4))
    rig = ring_rig(RigSpec(n_cameras=4, size=(1280, 720)), A.reshape(-1, 3))
    uv = np.moveaxis(rig.project(A), 0, 1)
    data, _ = corrupt(uv, rig, "blazepose33", CorruptionSpec(1.5, 0.0, 0.0, seed=1))
    return rig, A, data


def _refine(rig, data, pairs):
    kp = Keypoints2D(data, rig.names, "blazepose33", 30.0)
    w = np.where(np.isfinite(data[..., 2]), data[..., 2], 0.0)[:, :, 0]
    X0 = triangulate.run(rig, kp).xyz[:, 0]
    X, *_ = refine_person(rig, kp.xy[:, :, 0], w, X0, KS.bones, kp.fps, RefineConfig(), None, KS.loose_bones, pairs)
    return X


def test_an_arm_one_camera_sees_all_take_takes_the_other_arm_s_lengths(take):
    rig, A, data = take
    data = data.copy()
    data[:, 1:, 0, ARM] = np.nan  # the right forearm and hand seen by cam01 alone, the whole take
    X = _refine(rig, data, KS.pairs)
    length = np.median(np.linalg.norm(X[:, ARM[0]] - X[:, ARM[1]], axis=-1)) * 1000
    true = np.median(np.linalg.norm(A[:, ARM[0]] - A[:, ARM[1]], axis=-1)) * 1000
    held = np.median(np.linalg.norm(X[:, ARM] - A[:, ARM], axis=-1)) * 1000
    assert np.isfinite(X[:, ARM]).all() and abs(length - true) < 10 and held < 80, (length, true, held)
    alone = _refine(rig, data, ())  # without the other side's lengths: 372 mm, the wrist left out (over 1.5 m)
    e = np.linalg.norm(alone[:, ARM] - A[:, ARM], axis=-1) * 1000
    assert np.isnan(e).mean() > 0.5 or np.nanmedian(e) > 3 * held, (np.isnan(e).mean(), np.nanmedian(e), held)

