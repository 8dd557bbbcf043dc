"""Points refine leaves out because one view placed them out of reach of the joints near them
(mocap.optim.refine_reach): a ray fixes no depth, and where no bone holds the point on it (a loose bone holds only
while its other end is seen) the motion model or a bad start placed it metres from the body."""

import numpy as np

from mocap.optim.refine_parts import unmeasured
from mocap.optim.refine_reach import REACH_FRAMES, REACH_MARGIN_M, out_of_reach, reach_limits

CHAIN = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]  # a chain of six joints 0.1 m apart


def _chain(T=200):
    rng = np.random.default_rng(1)
    walk = np.cumsum(rng.normal(0, 0.01, (T, 1, 3)), axis=0) + [0.0, 0.0, 1.0]
    X = walk + np.arange(6)[None, :, None] * np.array([0.1, 0.0, 0.0]) + rng.normal(0, 0.005, (T, 6, 3))
    views = np.ones((T, 6, 4), bool)
    return X, views


def test_reach_limits_are_the_shortest_chains_of_measured_bones():
    X, views = _chain()
    two = views.sum(-1) >= 2
    D = reach_limits(X, two, CHAIN, hops=3)
    assert abs(D[5, 2] - 0.3) < 0.01 and abs(D[2, 5] - 0.3) < 0.01  # three bones of 0.1 m
    assert np.isinf(D[5, 1]) and np.isinf(D[0, 0])  # four links apart; a joint and itself
    D = reach_limits(X, two, CHAIN + [(0, 3)], hops=3)
    assert abs(D[5, 0] - 0.5) < 0.01  # 5-4-3-0: three links, 0.1 + 0.1 + 0.3
    two[REACH_FRAMES - 1:, 4] = False  # bone 4-5 measured in too few frames: no chain through it
    assert np.isinf(reach_limits(X, two, CHAIN)[5, 2])


def test_a_one_view_point_far_from_its_neighbours_goes_with_the_bridge_to_it():
    X, views = _chain()
    views[100:140, 5, 1:] = False  # joint 5 seen by one view
    views[113:121, 5, 0] = False  # and by none in 113-120: the motion model's bridge
    X[110:113, 5] += [0.0, 0.0, 1.2]  # one view's point 1.2 m up its ray (a bad start)
    X[113:121, 5] += np.linspace(1.0, 0.05, 8)[:, None] * [0.0, 0.0, 1.0]  # bridged back down
    X[125:130, 5] += [0.0, 0.0, 0.15]  # a one-view point 0.15 m off: within the margin, kept
    drop = out_of_reach(X, views, CHAIN)
    assert drop[110:121, 5].all()
    assert drop.sum() == 11
    # unmeasured applies it after its own rules (the point is 1.2 m from the body's median: not depthless)
    assert np.array_equal(unmeasured(X, views.any(-1), views, 30, CHAIN), drop)
    assert not unmeasured(X, views.any(-1), views, 30).any()


def test_only_points_fewer_than_two_views_measure_and_only_against_two_view_neighbours():
    X, views = _chain()
    X[50:55, 5] += [0.0, 0.0, 1.0]  # two views measure it: a measured point is never out of reach
    assert not out_of_reach(X, views, CHAIN).any()
    X, views = _chain()
    views[80:90, 2:, 1:] = False  # joint 5 and its neighbours within three bones seen by one view
    X[80:90, 5] += [0.0, 0.0, 1.0]  # far from joints 0 and 1 (two views), four and five bones away: not compared
    assert not out_of_reach(X, views, CHAIN).any()
    views[80:90, 2, 1:] = True  # joint 2, three bones away, measured by two views
    assert out_of_reach(X, views, CHAIN)[80:90, 5].all()


def test_a_bone_two_views_measured_in_too_few_frames_bounds_nothing():
    X, views = _chain()
    views[:, 5, 1:] = False
    views[:REACH_FRAMES - 1, 5] = True  # joint 5 measured by two views in too few frames to know its bone
    X[100:105, 5] += [0.0, 0.0, 1.0]
    assert not out_of_reach(X, views, CHAIN).any()
    views[:REACH_FRAMES, 5] = True
    assert out_of_reach(X, views, CHAIN)[100:105, 5].all()


def test_the_margin_is_beyond_the_chain_of_bones():
    X, views = _chain()
    views[100:110, 5, 1:] = False
    # moved square to the chain: from joint 4 (one 0.1 m bone) sqrt(0.1² + d²), within 0.1 + the margin or not
    X[100:105, 5, 2] += np.sqrt((0.1 + REACH_MARGIN_M - 0.02) ** 2 - 0.01)
    X[105:110, 5, 2] += np.sqrt((0.1 + REACH_MARGIN_M + 0.02) ** 2 - 0.01)
    drop = out_of_reach(X, views, CHAIN)
    assert drop[105:110, 5].all() and drop.sum() == 5


def test_a_limb_stretched_further_than_two_views_saw_it_is_within_reach():
    """Two views only ever saw the last two bones folded back (the end 0.3 m from joint 3); one view then sees them
    stretched (0.42 m from joint 3, 0.67 m from joint 2): farther than two views ever measured the pairs, plus the
    margin, but not than the chain of bones between them."""
    T, L = 200, 0.3
    base = np.cumsum(np.random.default_rng(2).normal(0, 0.01, (T, 3)), axis=0)
    X = np.zeros((T, 6, 3))
    for j in range(4):
        X[:, j] = base + [j * L, 0.0, 0.0]
    X[:, 4] = X[:, 3] + [0.0, L, 0.0]
    X[:, 5] = X[:, 4] + [-L, 0.0, 0.0]  # folded back
    views = np.ones((T, 6, 4), bool)
    views[100:110, 5, 1:] = False
    X[100:110, 5] = X[100:110, 4] + [L, 0.0, 0.0]  # stretched, seen by one view
    assert np.linalg.norm(X[105, 5] - X[105, 2]) > np.sqrt(2) * L + REACH_MARGIN_M + 0.02
    assert not out_of_reach(X, views, CHAIN).any()


def test_refine_leaves_out_an_eye_one_view_placed_a_metre_from_the_head():
    """A face no camera sees for 40 frames but one frame, where two cameras detect the left eye, one of them 6 px
    off a point 0.9 m behind the eye on the other's ray: triangulate meets them there, refine drops one view and
    keeps the other's point at that depth (nothing else measures it: no bone holds an eye, the nose is unseen).
    Before, the eye stayed there, 0.9 m from the head, within reach of the body's centre."""
    from body_synth import blazepose_keypoints, body_motion

    from mocap.keypoint_sets import get_keypoint_set
    from mocap.stages import refine, triangulate
    from mocap.synth import CorruptionSpec, RigSpec, corrupt, ring_rig
    from mocap.types import Keypoints2D

    eye = get_keypoint_set("blazepose33").joints.index("left_eye")
    A = blazepose_keypoints(body_motion(150, 30.0, seed=3))
    rig = ring_rig(RigSpec(n_cameras=4, size=(1280, 720)), A.reshape(-1, 3))
    data, _ = corrupt(np.moveaxis(rig.project(A), 0, 1), rig, "blazepose33", CorruptionSpec(1.0, 0.0, 0.0, seed=1))
    data[50:90, :, 0, :11] = np.nan  # the face (nose to mouth) unseen in every view
    ray = A[70, eye] - rig.cameras[0].center
    far = A[70, eye] + 0.9 * ray / np.linalg.norm(ray)
    data[70, 0, 0, eye, :2] = rig.cameras[0].project(A[70, eye])
    data[70, 1, 0, eye, :2] = rig.cameras[1].project(far) + [0.0, 6.0]
    data[70, :2, 0, eye, 2] = 0.9
    kp = Keypoints2D(data, rig.names, "blazepose33", 30.0)
    init = triangulate.run(rig, kp)
    assert np.linalg.norm(init.xyz[70, 0, eye] - far) < 0.05  # the two views met there
    X = refine.run(rig, kp, init)[0].xyz[:, 0]
    e = np.linalg.norm(X[:, eye] - A[:, eye], axis=-1)
    assert not (e[50:90] > 0.3).any(), np.round(e[50:90], 2)
    assert np.nanmax(e[:50]) < 0.05 and np.nanmax(e[90:]) < 0.05
