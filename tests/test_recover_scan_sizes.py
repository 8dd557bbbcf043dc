"""The tiled scan sizes people as angles (pixels ÷ focal length) when it pools them across views: in pixels, two
2560 × 1440 cameras among 640 × 360 ones (same views, 4× the pixels) took the small views' people as theirs and
cut 20 tiles each where people are large (none are due), and with small people a 4× camera got 20× the tiles."""

from types import SimpleNamespace

import numpy as np
from body_synth import blazepose_keypoints, body_motion

from mocap.detect import recover_scan
from mocap.detect.recover import RecoverConfig
from mocap.synth.groundtruth import RigSpec, ring_rig
from mocap.types import Camera, Keypoints2D, Rig

F, FPS = 30, 30.0


def _truth():
    a, b = blazepose_keypoints(body_motion(F, FPS, seed=1)), blazepose_keypoints(body_motion(F, FPS, seed=2))
    return np.stack([a - [0.8, 0, 0], b + [0.8, 0, 0]], axis=1)


def _scaled(rig, which, s):
    cams = []
    for k, c in enumerate(rig.cameras):
        if k in which:
            K = c.K.copy()
            K[:2] *= s
            c = Camera(c.name, K, c.dist, c.cam_from_world, (c.size[0] * s, c.size[1] * s), c.model)
        cams.append(c)
    return Rig(tuple(cams))


def _tiles(rig, truth):
    uv = rig.project(truth)
    data = np.moveaxis(np.concatenate([uv, np.full(uv.shape[:-1] + (1,), 0.9)], axis=-1), 0, 1).copy()
    kp = Keypoints2D(data, rig.names, "blazepose33", FPS)
    todo = []
    run = SimpleNamespace(data=kp.data.copy(), cfg=RecoverConfig(), kp=kp, rig=rig, names=list(rig.names),
                          min_score=0.2, stats={}, mirror=None, look=lambda cands, decide, person: todo.extend(cands))
    recover_scan.scan_round(run, 2)
    return {c: [cd.box[2] for cd in todo if cd.camera == c] for c in range(len(rig))}


def test_large_people_cost_no_tile_whatever_the_resolutions():
    truth = _truth()
    base = ring_rig(RigSpec(size=(640, 360), dist=(0, 0, 0, 0, 0), zoom=1.0), truth)
    assert not any(_tiles(base, truth).values())
    assert not any(_tiles(_scaled(base, (0, 1), 4), truth).values())


def test_small_people_tiles_scale_with_the_cameras_resolution():
    truth = _truth()
    base = ring_rig(RigSpec(size=(640, 360), dist=(0, 0, 0, 0, 0), zoom=0.4), truth)
    same = _tiles(base, truth)
    mixed = _tiles(_scaled(base, (0,), 4), truth)
    assert same[0] and mixed[0]
    assert abs(mixed[0][0] / same[0][0] - 4) < 0.05  # the same person sizes, in the 4× camera's pixels
    assert len(mixed[0]) == len(same[0])
    for c in (1, 2, 3):
        assert mixed[c] == same[c]
