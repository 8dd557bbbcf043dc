"""Points refine leaves out (mocap.optim.refine_parts.unmeasured): long runs no view saw, and points whose depth
no two views measured (far from the body's two-view joints, or in a frame with none) — a single view fixes a
ray, not a point on it."""

import numpy as np

from mocap.optim.refine_parts import DEPTHLESS_REACH_M, unmeasured


def _body(T=200, J=6):
    rng = np.random.default_rng(0)
    X = rng.normal(0, 0.3, (T, J, 3)) + np.array([0.0, 0.0, 1.0])
    views = np.ones((T, J, 4), bool)
    return X, views


def test_a_joint_seen_by_two_views_or_bridged_is_kept():
    X, views = _body()
    views[50:70, 2, 1:] = False  # 20 frames with one view: bridged (≤ 30)
    views[100:180, 3, 1:] = False  # 80 frames with one view, the point near the body: kept (the view bounds it)
    drop = unmeasured(X, views.any(-1), views, 30)
    assert not drop.any()


def test_a_one_view_point_far_from_the_body_or_a_person_seen_by_one_view_is_left_out():
    X, views = _body()
    views[100:180, 3, 1:] = False
    X[120:140, 3] += [0.0, 0.0, DEPTHLESS_REACH_M + 0.5]  # the motion model took it 2 m up along the ray
    views[150:200, :, 1:] = False  # the whole person seen by one camera for 50 frames (to the end)
    views[190:200, :, 0] = False  # and by none in the last 10
    drop = unmeasured(X, views.any(-1), views, 30)
    assert drop[120:140, 3].all() and not drop[100:120, 3].any()
    # one view only from frame 150 to the end (longer than the 15 frames an end gap is bridged): left out
    assert drop[150:200].all()
    assert not drop[:100].any()


def test_a_person_is_not_extrapolated_before_it_is_first_seen_or_after_it_is_last_seen():
    X, views = _body()
    views[:8] = False  # nobody sees the person in its first 8 frames (fewer than the 15 an end gap is bridged)
    views[195:] = False  # nor in its last 5
    views[:20, 4] = False  # joint 4 unseen until frame 20 while the others are seen from frame 8
    drop = unmeasured(X, views.any(-1), views, 30)
    assert drop[:8].all() and drop[195:].all()
    assert not drop[8:195].any()  # joint 4's 12 frames at the start of the person's run: bridged


def test_refine_leaves_the_frames_before_a_person_arrives_empty():
    from conftest import toy_take

    from mocap.stages import refine, triangulate
    from mocap.types import Keypoints2D

    rig, kp, truth, _ = toy_take(frames=100, noise_px=1.0, outliers=0.0, dropouts=0.0, seed=5, fps=25.0)
    data = kp.data.copy()
    data[:5] = np.nan  # 0.2 s before anyone sees the person: the motion extrapolated there was 23-81 mm off
    data[-5:] = np.nan
    kp2 = Keypoints2D(data, kp.camera_names, kp.keypoint_set, kp.fps)
    X = refine.run(rig, kp2, triangulate.run(rig, kp2))[0].xyz[:, 0]
    assert np.isnan(X[:5]).all() and np.isnan(X[-5:]).all()
    assert np.isfinite(X[5:-5]).all()
    assert np.percentile(np.linalg.norm(X[5:-5] - truth[5:-5], axis=-1), 95) < 0.01


def test_a_person_seen_by_one_view_before_two_gets_no_point_there():
    """A person entering through one camera's image (the association follows it back over those frames): seen by
    one view in its first 10 frames, two views from frame 10. Its depth there is the motion's extrapolation (up to
    0.1 m off a frame at a walk): no point before the first frame seen by two views, nor after the last."""
    X, views = _body()
    views[:10, :, 1:] = False
    views[192:, :, 1:] = False
    drop = unmeasured(X, views.any(-1), views, 30)
    assert drop[:10].all() and drop[192:].all()
    assert not drop[10:192].any()


def test_a_person_seen_by_one_view_between_two_view_frames_is_kept_near_the_body_s_straight_path():
    """No joint seen by two views for 30 frames, two views before and after: the body's place there is the two-view
    frames' medians interpolated; points within reach of it are kept, those the motion took 2 m away are not."""
    X, views = _body()
    X += np.linspace(0, 3, 200)[:, None, None] * [1.0, 0.0, 0.0]  # walking 3 m along x
    views[100:130, :, 1:] = False
    X[120:125, 2] += [0.0, 0.0, DEPTHLESS_REACH_M + 0.5]
    drop = unmeasured(X, views.any(-1), views, 10)
    assert drop[120:125, 2].all()
    assert drop.sum() == 5


def test_refine_keeps_a_whole_body_one_camera_sees_for_a_while():
    """A walker seen by one of four cameras for 0.7 s (longer than the 0.5 s a gap is bridged): its bones fix its
    size, so its depth, and the two-view frames either side hold its motion: 75 mm mean here, against 200 mm for a
    straight line between the frames either side (left out, the fit's slerp across such gaps was 2-3× as far
    off as the refined points kept)."""
    from body_synth import blazepose_keypoints, body_motion

    from mocap.stages import refine, triangulate
    from mocap.synth import CorruptionSpec, RigSpec, corrupt, ring_rig
    from mocap.types import Keypoints2D

    A = blazepose_keypoints(body_motion(150, 30.0, seed=3))
    rig = ring_rig(RigSpec(n_cameras=4, size=(1280, 720)), A.reshape(-1, 3))
    data, _ = corrupt(np.moveaxis(rig.project(A), 0, 1), rig, "blazepose33", CorruptionSpec(1.5, 0.0, 0.0, seed=1))
    gap = slice(60, 81)
    data[gap, 1:] = np.nan  # cam01 alone
    kp = Keypoints2D(data, rig.names, "blazepose33", 30.0)
    X = refine.run(rig, kp, triangulate.run(rig, kp))[0].xyz[:, 0]
    e = np.linalg.norm(X[gap] - A[gap], axis=-1) * 1000
    assert np.isfinite(e).all(), np.isfinite(e).mean(axis=1)
    straight = np.linspace(X[gap.start - 1], X[gap.stop], gap.stop - gap.start + 2)[1:-1]  # a straight bridge
    e_straight = np.linalg.norm(straight - A[gap], axis=-1) * 1000
    assert np.median(e) < 90 and np.mean(e) < 0.6 * np.mean(e_straight), (np.median(e), e.mean(), e_straight.mean())
