"""The second pass does not add a detection of a body the view already holds with its sides exchanged: on the
real demo (one performer, ``--persons 2``) it added cam02's performer again in frames 33-34, 109-146 px from the
first pass's swapped detection and 8.5-11 px from its mirror image."""

import numpy as np
from body_synth import blazepose_keypoints, body_motion

from mocap.detect.recover import others_in_view
from mocap.detect.recover_scan import new_skeleton
from mocap.keypoint_sets import get_keypoint_set

MIRROR = get_keypoint_set("blazepose33").flip_permutation


def _poses():
    X = blazepose_keypoints(body_motion(30, 30.0, seed=1))
    for f in range(0, 30, 3):
        for yaw in (0, 45, 90):
            th = np.radians(yaw)
            R = np.array([[np.cos(th), -np.sin(th), 0], [np.sin(th), np.cos(th), 0], [0, 0, 1]])
            P = X[f] @ R.T
            xy = np.stack([P[:, 0], -P[:, 2]], 1)
            yield (xy - xy.min(0)) * (160 / np.ptp(xy, 0).max()) + [800, 400]


def test_a_body_seen_with_its_sides_swapped_is_no_new_person():
    new_without, new_with = 0, 0
    for xy in _poses():
        found = np.concatenate([xy, np.full((33, 1), 0.9)], 1)[None]
        swapped = np.concatenate([xy[MIRROR], np.full((33, 1), 0.9)], 1)[None]  # the first pass's detection
        tile = np.array([700.0, 300.0, 400.0])
        args = (0.2, 8, 0.05, 0.25, (1920, 1080))
        new_without += new_skeleton(found, tile, others_in_view(swapped, np.empty((0, 33, 2))), *args) == 0
        new_with += new_skeleton(found, tile, others_in_view(swapped, np.empty((0, 33, 2)), MIRROR), *args) == 0
    assert new_without >= 15  # as before: most poses taken for a second person
    assert new_with == 0


def test_another_body_beside_it_is_still_new():
    poses = list(_poses())
    xy = poses[0]
    other = np.concatenate([xy + [300.0, 0.0], np.full((33, 1), 0.9)], 1)[None]  # a second person, 300 px aside
    found = np.concatenate([xy, np.full((33, 1), 0.9)], 1)[None]
    dets = others_in_view(other, np.empty((0, 33, 2)), MIRROR)
    assert dets.shape == (2, 33, 2)
    assert new_skeleton(found, np.array([700.0, 300.0, 400.0]), dets, 0.2, 8, 0.05, 0.25, (1920, 1080)) == 0


def test_the_scan_passes_the_mirror_to_its_duplicate_check(monkeypatch):
    """The wiring: a round's duplicate check is given the keypoint set's mirror (a test of others_in_view alone
    passes with the wiring undone)."""
    from types import SimpleNamespace

    from body_synth import blazepose_keypoints, body_motion

    import mocap.detect.recover as recover
    from mocap.detect import recover_scan
    from mocap.detect.recover import RecoverConfig
    from mocap.synth.groundtruth import RigSpec, ring_rig
    from mocap.types import Keypoints2D

    seen = []
    real = recover.others_in_view
    monkeypatch.setattr(recover, "others_in_view", lambda *a: seen.append(a[2] if len(a) > 2 else None) or real(*a))
    a, b = blazepose_keypoints(body_motion(30, 30.0, seed=1)), blazepose_keypoints(body_motion(30, 30.0, seed=2))
    truth = np.stack([a - [0.8, 0, 0], b + [0.8, 0, 0]], axis=1)
    rig = ring_rig(RigSpec(size=(640, 360), dist=(0, 0, 0, 0, 0), zoom=0.4), truth)
    uv = rig.project(truth)
    data = np.moveaxis(np.concatenate([uv, np.full(uv.shape[:-1] + (1,), 0.9)], axis=-1), 0, 1).copy()
    kp = Keypoints2D(data, rig.names, "blazepose33", 30.0)

    def look(cands, decide, person):
        for cand in cands[:1]:
            decide(cand, np.concatenate([uv[cand.camera, 0, 0], np.full((33, 1), 0.9)], axis=1)[None])

    run = SimpleNamespace(data=kp.data.copy(), cfg=RecoverConfig(), kp=kp, rig=rig, names=list(rig.names),
                          min_score=0.2, stats={}, mirror=MIRROR, look=look, recovered_at=[])
    recover_scan.scan_round(run, 2)
    assert seen and all(m is MIRROR for m in seen)
