"""OpenPose BODY_25 keypoints (OpenPose's default model; Pose2Sim's and older captures' 2D JSON): read from
OpenPose JSON by their count, triangulated, refined and fitted like the other sets. There was no 25-point set:
"no known keypoint set has 25 joints"."""

import json

import numpy as np
from body_synth import blazepose_keypoints, body_motion

from mocap.keypoint_sets import get_keypoint_set, keypoint_set_for_count
from mocap.pipeline import run
from mocap.synth import CorruptionSpec, RigSpec, corrupt, ring_rig
from mocap.synth.groundtruth import SyntheticTake, write_session
from mocap.types import Keypoints2D


def body25_points(frames: int, fps: float) -> np.ndarray:
    """(F, 25, 3) BODY_25 points on the synthetic body: its own points where BlazePose has them, the neck and the
    mid-hip between the shoulders and the hips, the big toe at the foot's tip, the small toe beside it."""
    bp = get_keypoint_set("blazepose33")
    X = blazepose_keypoints(body_motion(frames, fps))
    at = {name: X[:, bp.index(name)] for name in bp.joints}
    for side in ("left", "right"):
        at[f"{side}_big_toe"] = at[f"{side}_foot_index"]
        out = 1.0 if side == "left" else -1.0  # the small toe 4 cm to the outside of the big toe
        at[f"{side}_small_toe"] = at[f"{side}_foot_index"] + np.array([0.04 * out, 0.0, 0.0])
    at["neck"] = (at["left_shoulder"] + at["right_shoulder"]) / 2
    at["hip"] = (at["left_hip"] + at["right_hip"]) / 2
    return np.stack([at[name] for name in get_keypoint_set("body25").joints], axis=1)


def test_body25_is_a_known_set_with_mirrored_sides():
    ks = get_keypoint_set("body25")
    assert len(ks.joints) == 25 and keypoint_set_for_count(25) == "body25"
    assert ks.joints[1] == "neck" and ks.joints[8] == "hip" and ks.joints[24] == "right_heel"  # OpenPose's order
    perm = ks.flip_permutation
    assert np.array_equal(perm[perm], np.arange(25)) and ks.joints[perm[2]] == "left_shoulder"


def test_a_body25_openpose_session_runs_to_a_fitted_motion(tmp_path):
    fps = 30.0
    X = body25_points(150, fps)
    rig = ring_rig(RigSpec(n_cameras=4, size=(1280, 720)), X.reshape(-1, 3))
    data, masks = corrupt(np.moveaxis(rig.project(X), 0, 1), rig, "body25", CorruptionSpec(1.0, 0.02, 0.05, seed=0))
    root = write_session(SyntheticTake(rig, Keypoints2D(data, rig.names, "body25", fps), X, masks),
                         tmp_path / "openpose", json_2d=True)
    assert (root / "pose2d").is_dir() and not (root / "pose2d.h5").exists()  # OpenPose JSON only
    r = run(root, sets=["export.formats=['bvh']"], progress=False)
    assert "fit" in r.ran and (root / "motion" / "body22.npz").is_file()
    m = json.loads((root / "report" / "metrics.json").read_text())
    assert m["groundtruth"]["mpjpe_mm"] < 8, m["groundtruth"]  # 4.2 mm
    assert m["verdict"]["usable"], m["verdict"]
