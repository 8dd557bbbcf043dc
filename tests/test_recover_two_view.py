"""detect.recover: a person the first pass found in two views only, for a short while (too few frames for the take's
association): the second pass confirms it sooner and places it in the other views (the scene and the stand-in
landmark model of tests/test_recover.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from test_recover import CoordinateVideo, F, build_scene

from mocap.detect.recover import RecoverConfig, recover_detections
from mocap.multi.track import TrackConfig, associate_take
from mocap.types import Keypoints2D


@pytest.fixture(scope="module")
def scene():
    return build_scene()


@pytest.fixture(scope="module")
def two_view_scene(scene):
    """Person 1 seen by views 0 and 1 in 11 frames only (too few for the take's association to make it an
    identity: 4 × birth_frames in a row), by no view elsewhere; person 0 in every view."""
    rig, truth, kp, uv = scene
    rng = np.random.default_rng(5)
    data = np.concatenate([uv + rng.normal(0, 0.5, uv.shape), np.full(uv.shape[:-1] + (1,), 0.9)], axis=-1)
    data = np.moveaxis(data, 0, 1).copy()  # (F, C, P, J, 3), slot p = person p
    seen = np.zeros((F, 4), bool)
    seen[8:19, :2] = True
    data[:, :, 1][~seen] = np.nan
    return rig, truth, dataclasses.replace(kp, data=data), uv


def test_two_view_person_confirmed_sooner_for_the_second_pass(two_view_scene):
    """The association confirms a person only ever seen by two views after two_view_birth × birth_frames
    frames: the take's (4×) leaves the 11-frame person out, the second pass's (1×) tracks it."""
    rig, truth, kp, uv = two_view_scene
    slots, _ = associate_take(rig, kp, 2, progress=False)
    assert slots.shape[2] == 1
    slots, _ = associate_take(rig, kp, 2, progress=False, two_view_birth=RecoverConfig().two_view_birth)
    assert slots.shape[2] == 2
    assert sorted(((slots >= 0).sum(axis=1) >= 2).sum(axis=0)) == [11, F]  # person 1 in two views in its 11 frames
    with pytest.raises(ValueError, match="two_view_birth must be ≥ 1, got 0"):
        associate_take(rig, kp, 2, progress=False, two_view_birth=0)
    with pytest.raises(ValueError, match="two_view_birth ≥ 1, got 256, 8, 2, 0"):
        RecoverConfig(two_view_birth=0)


def test_whole_pass_places_a_two_view_person_in_the_other_views(two_view_scene, monkeypatch):
    """The second pass looks for the two-view person where it projects (as a tracked person: its boxes come
    from its triangulated skeleton), finds it in views 2 and 3 and, coasting, in the frames around; with
    the take's confirmation rule it would only have been found along the rays of lone detections."""
    import mocap.io.video

    rig, truth, kp, uv = two_view_scene
    video = CoordinateVideo(uv, rig.names, (0, 1))
    monkeypatch.setattr(mocap.io.video, "read_frames", video.frames)
    videos = {n: Path(f"/nonexistent/{n}.mp4") for n in rig.names}

    def run(cfg):
        return recover_detections(rig, kp, videos, np.arange(F), video.model, 2, TrackConfig(), 0.2, 15.0, cfg,
                                  progress=False)

    data, stats = run(RecoverConfig())
    assert stats["persons_tracked"] == 2 and sum(stats["recovered_lone"].values()) == 0
    for c in (2, 3):
        assert stats["recovered"][rig.names[c]] >= 11
        ok = np.isfinite(data[8:19, c, 1, :, 0]).all(axis=-1)
        assert ok.all()
        err = np.linalg.norm(data[8:19, c, 1, :, :2] - uv[c, 8:19, 1], axis=-1)
        assert err.max() < 0.1
    slots, _ = associate_take(rig, Keypoints2D(data, kp.camera_names, kp.keypoint_set, kp.fps), 2, progress=False)
    assert slots.shape[2] == 2  # now seen by four views: the take's association makes it an identity
    _, stats4 = run(RecoverConfig(two_view_birth=4))
    assert stats4["persons_tracked"] == 1 and sum(stats4["recovered_lone"].values()) > 0
