"""Refine weighs each camera by its own 2D noise (mocap.optim.refine_noise): a camera of 3× the resolution errs 3×
the pixels; weighed alike, it pulls the trajectory. Cameras that are alike change nothing (bit-identical)."""

import dataclasses
import logging

import numpy as np
import pytest
from body_synth import blazepose_keypoints, body_motion

import mocap.optim.refine as refine_module
from mocap.optim.refine_noise import CAMERA_MARGIN, camera_noise
from mocap.stages import refine, triangulate
from mocap.synth import CorruptionSpec, RigSpec, corrupt, ring_rig
from mocap.types import Keypoints2D, Rig

FRAMES, FPS, ZOOM = 300, 30.0, 3.0


def _zoomed(cam, k: float):
    """The same camera with k × the resolution (focal length, principal point and size scaled)."""
    K = cam.K.copy()
    K[:2] *= k
    return dataclasses.replace(cam, K=K, size=(int(cam.size[0] * k), int(cam.size[1] * k)))


@pytest.fixture(scope="module")
def takes():
    """(truth, {zoom: (rig, keypoints, triangulated)}): 4 cameras, σ 2 px, 5 % outliers, 10 % dropouts; in the
    zoomed take cam02 has 3× the resolution (its detections, and their errors, 3× larger)."""
    A = blazepose_keypoints(body_motion(FRAMES, FPS))
    rig = ring_rig(RigSpec(n_cameras=4, size=(1280, 720)), A.reshape(-1, 3))
    uv = np.moveaxis(rig.project(A), 0, 1)
    data, _ = corrupt(uv, rig, "blazepose33", CorruptionSpec(2.0, 0.05, 0.10, seed=0))
    out = {}
    for zoom in (1.0, ZOOM):
        d = data.copy()
        d[:, 1, ..., :2] *= zoom
        cams = list(rig.cameras)
        cams[1] = _zoomed(cams[1], zoom)
        r = Rig(tuple(cams))
        kp = Keypoints2D(d, r.names, "blazepose33", FPS)
        out[zoom] = (r, kp, triangulate.run(r, kp))
    return A, out


def _refine(take, monkeypatch=None, ratios=None):
    """Refined points and summary; ``ratios``: 'off' (no camera weighing) or an array forced as the ratios."""
    rig, kp, tri = take
    if ratios is not None:
        monkeypatch.setattr(refine_module, "camera_noise",
                            lambda *a, **k: None if isinstance(ratios, str) else np.asarray(ratios, float))
    pts, summaries = refine.run(rig, kp, tri)
    if ratios is not None:
        monkeypatch.undo()
    return pts, summaries[0]


def _mpjpe(pts, A) -> float:
    return float(np.nanmean(np.linalg.norm(pts.xyz[:, 0] - A, axis=-1)))


def test_zoomed_camera_weighs_by_its_noise(takes, monkeypatch, caplog):
    A, out = takes
    equal = _mpjpe(_refine(out[1.0])[0], A)
    with caplog.at_level(logging.INFO, logger="mocap.optim.refine"):
        pts, s = _refine(out[ZOOM])
    zoomed = _mpjpe(pts, A)
    alike = _mpjpe(_refine(out[ZOOM], monkeypatch, "off")[0], A)  # every pixel weighed alike (as before)
    assert s.camera_noise is not None and abs(s.camera_noise["cam02"] - ZOOM) < 0.3, s.camera_noise
    assert all(abs(r - 1) < 0.15 for n, r in s.camera_noise.items() if n != "cam02"), s.camera_noise
    assert "2D noise of each camera relative to the others'" in caplog.text and "cam02" in caplog.text
    assert "cameras' σ relative" in str(s) and s.usable, str(s)
    print(f"MPJPE equal {1000 * equal:.2f} mm, zoomed {1000 * zoomed:.2f}, weighed alike {1000 * alike:.2f}")
    assert zoomed < 1.04 * equal, (zoomed, equal)  # within a few % of the take of equal cameras
    assert zoomed < alike - 0.05 * equal, (zoomed, alike)  # and clearly better than weighing pixels alike


def test_equal_cameras_are_unchanged(takes, monkeypatch):
    A, out = takes
    pts, s = _refine(out[1.0])
    assert s.camera_noise is None and "cameras' σ" not in str(s)
    off, _ = _refine(out[1.0], monkeypatch, "off")
    ones, _ = _refine(out[1.0], monkeypatch, np.ones(4))  # weights all 1, applied
    for other in (off, ones):
        assert np.array_equal(pts.xyz, other.xyz, equal_nan=True)
        assert np.array_equal(pts.reproj_err, other.reproj_err, equal_nan=True)
        assert np.array_equal(pts.views, other.views)


def test_camera_noise_margin():
    rng = np.random.default_rng(0)
    T, C, J = 200, 4, 10
    sig = np.array([2.0, 2.1, 1.9, 2.0])
    norms = np.hypot(*rng.normal(size=(2, T, C, J))) * sig[None, :, None]
    seen = np.ones((T, C, J), bool)
    assert camera_noise(norms, seen) is None  # a few % apart: nothing applied
    norms[:, 1] *= 3.0
    r = camera_noise(norms, seen, ["a", "b", "c", "d"])
    assert r is not None and abs(r[1] / np.median(r) - 3.0) < 0.3 and r[1] > CAMERA_MARGIN
    seen[:, 3] = False  # a camera without residuals keeps ratio 1
    seen[0, 3, :5] = True
    assert camera_noise(norms, seen)[3] == 1.0
    assert camera_noise(norms[:, :2], np.ones((T, 2, J), bool)) is None  # two cameras: not separable


def test_a_share_of_noisier_residuals_is_not_the_cameras_noise():
    """Every residual of a camera 3× larger: its ratio is 3; 70 % of them 3× larger (a person hidden behind
    another in that view for a while, a burst of bad detections): the camera keeps ratio 1 (the observation
    weights and the outlier cut deal with those)."""
    rng = np.random.default_rng(0)
    norms = np.hypot(*rng.normal(0.0, 2.0, (2, 400, 4, 12)))
    observed = np.ones(norms.shape, bool)
    every = norms.copy()
    every[:, 2] *= 3.0
    assert camera_noise(every, observed)[2] == pytest.approx(3.0, rel=0.1)
    some = norms.copy()
    some[:280, 2] *= 3.0  # 70 %: their median would say 2.21
    assert camera_noise(some, observed) is None


def test_points_seen_by_two_views_do_not_measure_a_camera():
    """A person seen by cameras 0-1 but for a few frames (with camera 2 too): a two-view point leaves one degree of
    freedom in its two residuals, split as the start triangulation chose (here 3× larger in camera 1). Those
    splits are not camera 1's noise: only points seen by three views or more count (the old code gave camera 1
    ratio 3 and weighed it down: a person's joints then came from camera 0 alone, 0.3-0.7 m off)."""
    rng = np.random.default_rng(0)
    T, C, J = 300, 3, 12
    norms = np.hypot(*rng.normal(0.0, 2.0, (2, T, C, J)))
    observed = np.zeros((T, C, J), bool)
    observed[:, :2] = True
    observed[:30, 2] = True  # three views in 30 frames
    split = norms.copy()
    split[30:, 1] *= 3.0
    assert camera_noise(split, observed) is None
    every = split.copy()
    every[:30, 1] *= 3.0  # camera 1 noisier where three views measure it too: still found
    assert camera_noise(every, observed)[1] == pytest.approx(3.0, rel=0.15)
