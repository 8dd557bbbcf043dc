"""A synthetic keypoint session (no shared data): body22 motion → BlazePose 2D in a ring of cameras."""

from __future__ import annotations

import numpy as np
from body_synth import blazepose_keypoints, body_motion

from mocap.synth import CorruptionSpec, RigSpec, corrupt, ring_rig
from mocap.synth.groundtruth import SyntheticTake, write_session
from mocap.types import Keypoints2D


def synthetic_session(root, frames: int = 120, fps: float = 30.0, noise_px: float = 1.0, seed: int = 0):
    m = body_motion(frames, fps)
    X = blazepose_keypoints(m)
    rig = ring_rig(RigSpec(n_cameras=4, size=(1280, 720)), X.reshape(-1, 3))
    uv = np.moveaxis(rig.project(X), 0, 1)
    data, masks = corrupt(uv, rig, "blazepose33", CorruptionSpec(noise_px, 0.02, 0.05, seed=seed))
    take = SyntheticTake(rig, Keypoints2D(data, rig.names, "blazepose33", fps), X, masks)
    return write_session(take, root, json_2d=False)
