"""The report's overlay videos rendered in the background (mocap/report/overlay.py, started ahead by
``mocap run``: mocap/ahead.py): a render under way is joined, the frames the report's crops show are kept,
smaller videos on request, the crops cached."""

import threading
import types
from pathlib import Path

import cv2
import numpy as np
import pytest
from body_synth import body_motion

from mocap.report import crops, overlay
from mocap.synth import RigSpec, ring_rig
from mocap.types import Points3D


def _video(path: Path, frames: int, size=(64, 48), fps=10.0) -> Path:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for i in range(frames):
        img = np.zeros((size[1], size[0], 3), np.uint8)
        img[:, : (i * 3) % size[0]] = (10 * i % 255, 255 - 7 * i % 255, 90)
        w.write(img)
    w.release()
    return path


def tiny_session(tmp_path: Path, cameras: int, video=_video, F: int = 12):
    """A session-like object with ``cameras`` 64×48 videos of F frames at 10 fps (written by ``video``), their
    ring rig and a body's points: (session, rig, points)."""
    motion = body_motion(F, fps=10.0)
    _, p = motion.fk()
    X = np.full((F, 1, 33, 3), np.nan)
    X[:, 0, :p.shape[1]] = p
    rig = ring_rig(RigSpec(n_cameras=cameras, size=(64, 48)), p.reshape(-1, 3))
    (tmp_path / "videos").mkdir()
    for name in rig.names:
        video(tmp_path / "videos" / f"{name}.mp4", F)
    pts = Points3D(X, np.zeros((F, 1, 33)), np.ones((F, 1, 33, len(rig)), bool), rig.names, "blazepose33", 10.0)
    return types.SimpleNamespace(root=tmp_path, video_sampling=lambda: (0, 1), camera_moves=lambda: []), rig, pts


@pytest.fixture
def tiny(tmp_path):
    return tiny_session(tmp_path, 2)


def test_a_render_under_way_is_joined_and_keeps_the_frames_asked_for(tiny, monkeypatch):
    session, rig, pts = tiny
    go, rendered = threading.Event(), []
    real = overlay.render

    def held(src, out, *a, **k):
        rendered.append(out.name)
        assert go.wait(30)
        return real(src, out, *a, **k)

    monkeypatch.setattr(overlay, "render", held)
    cam = rig.names[0]
    first = overlay.start(session, rig, pts, {}, threads=2, wanted={cam: {2, 5}})
    second = overlay.start(session, rig, pts, {})  # e.g. the report stage, while mocap run's render is under way
    assert second.jobs == first.jobs and second.pool is None
    go.set()
    assert second.result(progress=False) == first.result(progress=False)
    assert sorted(rendered) == sorted(f"{n}_reprojected.mp4" for n in rig.names)  # each camera once
    src = session.root / "videos" / f"{cam}.mp4"
    assert overlay.captured(session.root / "review", cam, src) == {}  # forgotten once waited for


def test_crops_take_the_frames_the_render_kept_and_decode_only_the_rest(tiny, monkeypatch):
    from mocap.report import _frames_of

    session, rig, pts = tiny
    cam = rig.names[1]
    src = session.root / "videos" / f"{cam}.mp4"
    expected = crops.read_video_frames(src, [2, 5, 7])
    pending = overlay.start(session, rig, pts, {}, threads=2, wanted={cam: {2, 5}})
    decoded = []
    real = crops.read_video_frames
    monkeypatch.setattr(crops, "read_video_frames", lambda path, frames: decoded.append(frames) or real(path, frames))
    got = _frames_of(session)(cam, src, [2, 5, 7])
    pending.result(progress=False)
    assert decoded == [[7]] and sorted(got) == [2, 5, 7]
    for i in (2, 5, 7):
        assert np.array_equal(got[i], expected[i]), i  # the kept frame is the video's, before any drawing


def test_read_video_frames_in_one_pass_or_by_seeking_gives_the_video_frames(tmp_path):
    from mocap.io.video import read_frames

    src = _video(tmp_path / "v.mp4", 40)
    every = dict(read_frames(src))
    want = [30, 3, 12, 13, 39, 55, -1]  # unordered, and two frames the video does not have
    for hop in (250, 5):  # one forward pass; seeks over every jump longer than 5 frames
        got = crops.read_video_frames(src, want, hop=hop)
        assert sorted(got) == [3, 12, 13, 30, 39], hop
        for i, img in got.items():
            assert np.array_equal(img, every[i]), (hop, i)
    with pytest.raises(ValueError, match="cannot open the video"):
        crops.read_video_frames(tmp_path / "missing.mp4", [1])


def test_smaller_overlay_videos_on_request_and_a_size_change_renders_again(tiny, monkeypatch):
    from mocap.io.video import probe
    from mocap.report import Config

    session, rig, pts = tiny
    assert overlay.scaled_size((1080, 1920), 960) == (540, 960) and overlay.scaled_size((64, 48), 0) == (64, 48)
    assert overlay.scaled_size((64, 48), 480) == (64, 48)  # never larger than the camera's
    paths = overlay.overlay_videos(session, rig, pts, {})
    rendered = []
    real = overlay.render
    monkeypatch.setattr(overlay, "render", lambda src, out, *a, **k: rendered.append(k["height"]) or real(src, out, *a,
                                                                                                      **k))
    overlay.start(session, rig, pts, {}, height=24).result(progress=False)
    assert rendered == [24, 24] and all(probe(p).size == (32, 24) for p in paths)
    overlay.start(session, rig, pts, {}, height=24).result(progress=False)
    assert rendered == [24, 24]  # up to date at that size
    with pytest.raises(ValueError, match=r"overlay_height must be 0 \(the camera's size\) or an integer ≥ 64 px, "
                                         r"got 10"):
        Config(overlay_height=10)


def test_crops_made_again_from_the_same_inputs_come_from_the_cache(tiny, monkeypatch):
    from mocap.types import Keypoints2D

    session, rig, pts = tiny
    F, J = pts.xyz.shape[0], pts.xyz.shape[2]
    uv = np.moveaxis(rig.project(pts.xyz[:, 0].reshape(-1, 3)).reshape(len(rig), F, J, 2), 0, 1)
    noise = np.random.default_rng(0).normal(0, 2.0, uv.shape)
    data = np.concatenate([uv + noise, np.ones(uv.shape[:-1] + (1,))], axis=-1)[:, :, None]
    kp = Keypoints2D(data, rig.names, "blazepose33", 10.0)
    videos = {n: session.root / "videos" / f"{n}.mp4" for n in rig.names}
    cache = crops.CropCache(session.root / "report" / ".crops")
    decoded = []
    real = crops.read_video_frames
    monkeypatch.setattr(crops, "read_video_frames", lambda path, frames: decoded.append(frames) or real(path, frames))

    def made(cache):  # comparable crops (error_repaired_px is NaN: no repair)
        return [(c.camera, c.frame, c.video_frame, c.error_px, str(c.error_repaired_px), c.repaired, c.jpeg)
                for c in crops.camera_crops(rig, kp, kp, pts, 0, 2, videos, {}, None, cache=cache)]

    first = made(cache)
    assert len(decoded) == 2 and len(first) == 4 and all(c[2] is not None for c in first)
    decoded.clear()
    again = made(crops.CropCache(cache.folder))
    assert decoded == [] and again == first  # nothing decoded, the same crops
    kp.data[:, 0, 0, :, :2] += 3.0  # the detections of one camera changed: its crops are cut again
    other = crops.CropCache(cache.folder)
    changed = made(other)
    assert len(decoded) == 1 and changed[2:] == first[2:] and changed[:2] != first[:2]
    other.prune()
    assert len(list(cache.folder.glob("*.jpg"))) == 4  # the two crops no longer shown are gone
