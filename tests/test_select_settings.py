"""With ``detect.persons`` = 1 and several detections per view, the camera refinement (``all_people``) picks the
performer with the association's settings and ``min_score`` as triangulate does: it dropped them and could
refine the cameras on another person than the one triangulate reconstructs."""

import numpy as np
from body_synth import blazepose_keypoints, body_motion

from mocap.detect.select import all_people, performer
from mocap.multi.track import TrackConfig
from mocap.synth.groundtruth import RigSpec, ring_rig
from mocap.types import Keypoints2D


def test_the_camera_refinement_picks_triangulates_performer():
    F, fps = 40, 30.0
    a = blazepose_keypoints(body_motion(F, fps, seed=1))
    b = blazepose_keypoints(body_motion(F, fps, seed=2))
    truth = np.stack([a - [0.8, 0, 0], b + [0.8, 0, 0]], axis=1)
    rig = ring_rig(RigSpec(size=(640, 360), dist=(0, 0, 0, 0, 0)), truth)
    uv = rig.project(truth)
    data = np.moveaxis(np.concatenate([uv, np.full(uv.shape[:-1] + (1,), 0.9)], axis=-1), 0, 1).copy()
    data[:, :, 0, :, 2] = 0.4  # person A: above the default min_score 0.2, below the user's 0.5
    data[:, :, 1, :, :2] += np.random.default_rng(0).normal(0, 4.0, data[:, :, 1, :, :2].shape)
    kp = Keypoints2D(data, rig.names, "blazepose33", fps)

    def who(k):
        d = [np.nanmedian(np.abs(k.data[:, :, 0, :, :2] - data[:, :, p, :, :2])) for p in (0, 1)]
        return "AB"[int(np.argmin(d))]

    assert who(performer(rig, kp)) == "A"  # the defaults read A's keypoints
    assert who(performer(rig, kp, TrackConfig(), 0.5)) == "B"  # triangulate at min_score 0.5
    assert who(all_people(rig, kp, 1, TrackConfig(), 0.5)) == "B"
