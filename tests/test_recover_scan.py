"""detect.recover's first round: people small in the image that the first pass found in no view, looked for in
tiles (mocap.detect.recover_scan). Arrays, and the whole pass with the stand-in landmark model of test_recover
(no mediapipe)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from body_synth import blazepose_keypoints, body_motion
from test_recover import CoordinateVideo

from mocap.detect.recover import RecoverConfig, recover_detections
from mocap.detect.recover_scan import new_skeleton, scanned_frames, several_people, tiles
from mocap.multi.track import TrackConfig, associate_take
from mocap.synth.groundtruth import RigSpec, ring_rig
from mocap.types import Keypoints2D

F, FPS = 30, 30.0


def test_tiles_cover_the_image_with_overlap():
    t = np.array(tiles((640, 360), 260.0))
    assert np.allclose(t[:, 2], 260.0) and len(t) == 8  # 4 across, 2 down
    assert t[:, 0].min() == 0 and np.isclose((t[:, 0] + t[:, 2]).max(), 640)
    assert t[:, 1].min() == 0 and np.isclose((t[:, 1] + t[:, 2]).max(), 360)
    xs = np.unique(t[:, 0])
    assert np.all(np.diff(xs) <= 260 * 0.6 + 1e-9)  # every neighbour shares at least 40 % of a tile
    one = tiles((640, 360), 1000.0)  # larger than the short side: tiles of the short side across
    assert all(b[2] == 360 for b in one) and len(one) == 3
    assert np.allclose(tiles((300, 300), 300.0), [[0, 0, 300]])


def test_scanned_frames_cover_every_frame_within_half_an_interval():
    frames, half = scanned_frames(100, 30.0)
    assert frames.tolist() == [0, 30, 60, 90] and half == 15
    frames, half = scanned_frames(50, 30.0)  # the end beyond half an interval from the last: scanned too
    assert frames.tolist() == [0, 30, 49]
    covered = {g for f in frames for g in range(f - half, f + half + 1)}
    assert set(range(50)) <= covered


def test_several_people():
    data = np.full((5, 2, 3, 4, 3), np.nan)
    data[:, :, 0] = 1.0
    assert several_people(data, 2) and not several_people(data, 1) and not several_people(data, "auto")
    data[3, 1, 2] = 1.0
    assert several_people(data, "auto")


def test_a_new_skeleton_lies_inside_its_tile_and_is_nobody_there_already():
    rng = np.random.default_rng(0)
    body = np.column_stack([rng.uniform(100, 160, 20), rng.uniform(80, 200, 20), np.full(20, 0.9)])  # (J, 3)
    other = body + [200.0, 0.0, 0.0]
    tile = np.array([60.0, 40.0, 200.0])
    found = np.stack([other, body])  # the other person lies beyond the tile's border
    assert new_skeleton(found, tile, np.zeros((0, 20, 2)), 0.2, 8, 0.05, 0.25, (640, 360)) == 1
    assert new_skeleton(found, tile, body[None, :, :2] + 1.0, 0.2, 8, 0.05, 0.25, (640, 360)) == -1  # a duplicate
    assert new_skeleton(found, tile, body[None, :, :2] + 40.0, 0.2, 8, 0.05, 0.25, (640, 360)) == 1  # another
    low = body.copy()
    low[:, 2] = 0.1
    assert new_skeleton(np.stack([low]), tile, np.zeros((0, 20, 2)), 0.2, 8, 0.05, 0.25, (640, 360)) == -1


def small_scene(zoom: float):
    """Two people 1.6 m apart, 4 cameras (640 × 360) whose focal is ``zoom`` × the one framing them; the first
    pass found person 0 (slot 1) in every view and person 1 in none."""
    a = blazepose_keypoints(body_motion(F, FPS, seed=1))
    b = blazepose_keypoints(body_motion(F, FPS, seed=2))
    truth = np.stack([a - [0.8, 0, 0], b + [0.8, 0, 0]], axis=1)
    rig = ring_rig(RigSpec(size=(640, 360), dist=(0, 0, 0, 0, 0), zoom=zoom), truth)
    uv = rig.project(truth)  # (C, F, P, J, 2)
    data = np.moveaxis(np.concatenate([uv, np.full(uv.shape[:-1] + (1,), 0.9)], axis=-1), 0, 1).copy()
    data = data[:, :, ::-1].copy()  # slot 1: person 0, slot 0: person 1
    data[:, :, 0] = np.nan  # person 1 missed everywhere
    return rig, Keypoints2D(data, rig.names, "blazepose33", FPS), uv


def scan_pass(rig, kp, uv, monkeypatch, persons=2):
    import mocap.io.video

    video = CoordinateVideo(uv, rig.names, (0, 1))
    monkeypatch.setattr(mocap.io.video, "read_frames", video.frames)
    videos = {n: Path(f"/nonexistent/{n}.mp4") for n in rig.names}
    return recover_detections(rig, kp, videos, np.arange(F), video.model, persons, TrackConfig(), 0.2, 15.0,
                              RecoverConfig(), progress=False)


@pytest.mark.parametrize("persons", [2, "auto"])
def test_a_small_person_no_view_found_is_found_in_tiles_and_followed(monkeypatch, persons):
    rig, kp, uv = small_scene(0.5)
    extent = np.ptp(uv[:, :, 0], axis=2).max(axis=-1)  # (C, F) person 0's largest extent
    assert np.median(extent) < 0.4 * 360  # small: the whole-image detector's blind spot
    if persons == "auto":  # a second detection somewhere tells a take of several people
        kp = Keypoints2D(kp.data.copy(), kp.camera_names, kp.keypoint_set, kp.fps)
        kp.data[0, 0, 0] = np.moveaxis(np.concatenate([uv, np.full(uv.shape[:-1] + (1,), 0.9)], -1), 0, 1)[0, 0, 1]
    slots0, _ = associate_take(rig, kp, persons, progress=False, quiet=True)
    assert slots0.shape[2] == 1  # before: one person
    data, stats = scan_pass(rig, kp, uv, monkeypatch, persons)
    scan = stats["scan"]
    found = 2 * len(rig) - (persons == "auto")  # in both scanned frames of every view (but the one given)
    assert sum(scan["found"].values()) == found and "skipped" not in scan, scan
    written = np.isfinite(data[:, :, 0, :, 0]).any(axis=-1)  # (F, C): person 1's slot
    assert written.mean() > 0.95, written.mean()
    err = np.linalg.norm(data[:, :, 0, :, :2] - np.moveaxis(uv[:, :, 1], 0, 1), axis=-1)
    assert np.nanmax(err) < 0.1  # person 1's own keypoints (the crop round trip is exact)
    assert np.array_equal(data[:, :, 1], kp.data[:, :, 1], equal_nan=True)  # the first pass's kept
    after, _ = associate_take(rig, Keypoints2D(data, kp.camera_names, kp.keypoint_set, FPS), persons,
                              progress=False, quiet=True)
    assert after.shape[2] == 2


def test_no_tiles_where_people_are_large_or_alone(monkeypatch):
    rig, kp, uv = small_scene(1.0)
    data, stats = scan_pass(rig, kp, uv, monkeypatch)
    assert stats["scan"]["skipped"] == "every view's people are large" and not sum(stats["scan"]["tiles"].values())
    rig, kp, uv = small_scene(0.5)
    data, stats = scan_pass(rig, kp, uv, monkeypatch, persons="auto")  # one detection per view: one performer
    assert stats["scan"]["skipped"].startswith("one person") and np.array_equal(data, kp.data, equal_nan=True)
