from __future__ import annotations

import numpy as np
import pytest

from mocap.data import shared_data_dir
from mocap.geometry.rotations import axis_angle_to_matrix
from mocap.keypoint_sets import get_keypoint_set
from mocap.synth import CorruptionSpec, RigSpec, corrupt, ring_rig
from mocap.types import Keypoints2D


@pytest.fixture(autouse=True)
def _warnings_said_once_are_said_again():
    """Warnings a process says once (mocap.session_checks.say_once) are said again in each test."""
    from mocap.session_checks import _said

    _said.clear()


@pytest.fixture(scope="session")
def shared_data():
    root = shared_data_dir()
    if root is None:
        pytest.skip("shared data folder not found (../shared/data or $MOCAP_SHARED_DATA)")
    return root


# Standing human (COCO 17) in metres: x left, y forward(-), z up, centred between the hips.
COCO_REST = np.array([
    [0.0, -0.08, 0.62], [0.03, -0.06, 0.66], [-0.03, -0.06, 0.66], [0.07, 0.0, 0.64], [-0.07, 0.0, 0.64],
    [0.18, 0.0, 0.45], [-0.18, 0.0, 0.45], [0.45, 0.0, 0.45], [-0.45, 0.0, 0.45], [0.70, 0.0, 0.45],
    [-0.70, 0.0, 0.45], [0.10, 0.0, 0.0], [-0.10, 0.0, 0.0], [0.10, 0.0, -0.45], [-0.10, 0.0, -0.45],
    [0.10, 0.0, -0.88], [-0.10, 0.0, -0.88],
])


def toy_motion(frames: int, fps: float = 60.0) -> np.ndarray:
    """(F, 17, 3) COCO joints of a rigid body walking a circle and turning: bones are constant."""
    t = np.arange(frames) / fps
    angle = 0.6 * t
    centre = np.stack([1.2 * np.cos(angle), 1.2 * np.sin(angle), 0.95 + 0.03 * np.sin(2 * np.pi * 1.5 * t)], 1)
    R = axis_angle_to_matrix(np.stack([np.zeros_like(t), np.zeros_like(t), angle + 0.3 * np.sin(t)], 1))
    return centre[:, None] + np.einsum("fij,kj->fki", R, COCO_REST)


def toy_take(frames=300, noise_px=2.0, outliers=0.05, dropouts=0.1, seed=0, rig_spec=None, fps=60.0):
    truth = toy_motion(frames, fps)
    rig = ring_rig(rig_spec or RigSpec(), truth)
    uv = np.moveaxis(rig.project(truth), 0, 1)
    data, masks = corrupt(uv, rig, "coco17", CorruptionSpec(noise_px, outliers, dropouts, seed=seed))
    return rig, Keypoints2D(data, rig.names, "coco17", fps), truth, masks


@pytest.fixture
def coco():
    return get_keypoint_set("coco17")


@pytest.fixture
def landmark_model_copy(tmp_path):
    """A copy of mediapipe's shipped BlazePose *full* landmark model in ``tmp_path`` (skips without mediapipe)."""
    from mocap.detect import blazepose

    try:
        shipped = blazepose.landmark_model("full")
    except (ImportError, FileNotFoundError) as e:
        pytest.skip(f"mediapipe's full model is not installed: {e}")
    path = tmp_path / "landmarks.tflite"
    path.write_bytes(shipped.read_bytes())
    return path


def count_calls(monkeypatch, owner, name: str) -> list:
    """Replace ``owner.name`` by a wrapper that records each call, then calls it; returns the record (one item
    per call)."""
    calls: list = []
    real = getattr(owner, name)

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, counting)
    return calls
