"""Proxies (mocap/io/proxy.py): detection's frame reader writes each camera's frames shrunk to the overlay
videos' height, and the report's overlay render decodes those instead of the full-size video. A proxy is
taken only when it covers every frame of the source as it is now, at the size wanted; a drawn joint lands at
its projection either way."""

import os
import types
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_detect_reader import Still

from mocap.detect import chunks
from mocap.io import proxy
from mocap.report import overlay
from mocap.stages import detect
from mocap.types import Camera, Points3D, Rig

SIZE = (160, 120)  # the cameras' (width, height)


def _frame(i: int, size=SIZE) -> np.ndarray:
    img = np.full((size[1], size[0], 3), 40, np.uint8)
    img[:, : (i * 7) % size[0]] = (200, 60, 30)  # a band that grows: each frame differs
    return img


def _video(path: Path, frames: int, size=SIZE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, size)
    for i in range(frames):
        w.write(_frame(i, size))
    w.release()
    return path


def _segment(root: Path, src: Path, first: int, end: int, size, skip: int | None = None) -> None:
    seg = proxy.SegmentWriter(root, "cam", src, first, size, 10.0)
    for i in range(first, end):
        if i != skip:
            seg.write(i, _frame(i))
    seg.close(True)


def test_shrink_and_scaled_size():
    img = np.zeros((1920, 1080, 3), np.uint8)
    img[:960] = 200  # top half bright
    assert proxy.scaled_size((1080, 1920), 540) == (304, 540) and proxy.scaled_size((64, 48), 480) == (64, 48)
    small = proxy.shrink(img, (304, 540))
    assert small.shape == (540, 304, 3)
    assert small[:260].min() == 200 and small[280:].max() == 0  # the edge stays where it was (row 270)


def test_the_proxy_s_quick_shrink_is_shrink_where_it_can_be_and_close_elsewhere():
    rng = np.random.default_rng(3)
    noise = rng.integers(0, 256, (1920, 1080, 3), dtype=np.uint8)
    for size in ((540, 960), (270, 480), (135, 240)):  # factors 2, 4, 8: the same 2 × 2 means
        assert np.array_equal(proxy.quick_shrink(noise, size), proxy.shrink(noise, size)), size
    y, x = np.mgrid[0:1920, 0:1080]
    smooth = np.stack([128 + 100 * np.sin(x / 90.0), 128 + 100 * np.cos(y / 70.0), (x + y) * 255 // 3000],
                      axis=-1).astype(np.uint8)  # detail much coarser than a proxy pixel
    small = proxy.quick_shrink(smooth, (304, 540))
    assert small.shape == (540, 304, 3)
    assert np.abs(small.astype(int) - proxy.shrink(smooth, (304, 540))).max() <= 2
    edge = np.zeros((1920, 1080, 3), np.uint8)
    edge[:960] = 200
    small = proxy.quick_shrink(edge, (304, 540))
    assert small[:268].min() == 200 and small[272:].max() == 0  # the edge stays where it was (row 270)


def test_segments_cover_the_video_else_none(tmp_path):
    src = _video(tmp_path / "videos" / "cam.mp4", 20)
    small = (80, 60)
    assert proxy.segments(tmp_path, "cam", src, 20, small) is None  # none written
    _segment(tmp_path, src, 0, 12, small)
    assert proxy.segments(tmp_path, "cam", src, 20, small) is None  # partial
    _segment(tmp_path, src, 8, 20, small)  # overlapping (a cut chunk's warm-up frames)
    parts = proxy.segments(tmp_path, "cam", src, 20, small)
    assert [(p.name, a, b) for p, a, b in parts] == [("00000000.mp4", 0, 12), ("00000008.mp4", 8, 20)]
    got = list(proxy.read_frames(parts, 20))
    assert [i for i, _ in got] == list(range(20))
    for i, img in got:
        want = proxy.shrink(_frame(i), small)
        assert img.shape == want.shape and np.abs(img.astype(int) - want).mean() < 6, i  # MPEG-4: lossy
    assert proxy.segments(tmp_path, "cam", src, 20, (40, 30)) is None  # another size
    st = src.stat()
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the video changed since
    assert proxy.segments(tmp_path, "cam", src, 20, small) is None
    proxy.clear(tmp_path, "cam")
    assert not proxy.folder(tmp_path, "cam").exists()
    with pytest.raises(ValueError, match="camera name"):
        proxy.folder(tmp_path, "../x")


def test_a_segment_with_a_gap_or_interrupted_leaves_nothing(tmp_path):
    src = _video(tmp_path / "videos" / "cam.mp4", 10)
    _segment(tmp_path, src, 0, 10, (80, 60), skip=4)  # a frame missing: not a proxy of the video
    seg = proxy.SegmentWriter(tmp_path, "cam", src, 0, (80, 60), 10.0)
    seg.write(0, _frame(0))
    seg.close(False)  # interrupted
    assert list(proxy.folder(tmp_path, "cam").iterdir()) == []


def test_detection_writes_the_proxy_as_it_decodes(tmp_path, monkeypatch):
    src = _video(tmp_path / "videos" / "cam.mp4", 15)
    monkeypatch.setattr(detect, "make_detector", lambda cfg: Still())
    spec = (tmp_path, "cam", (80, 60))
    for first, end in ((0, 9), (9, 15)):  # two chunks of the camera
        cam, _, _, data, stats = chunks.detect_chunk("cam", src, detect.Config(), first, end, 0, 0, None, spec)
        assert len(data) == end - first and stats["proxy_cpu_s"] >= 0
    parts = proxy.segments(tmp_path, "cam", src, 15, (80, 60))
    assert [(a, b) for _, a, b in parts] == [(0, 9), (9, 15)]
    chunks.detect_video("cam", src, detect.Config(stride=2), 0, None, (tmp_path / "s", "cam", (80, 60)))
    assert not proxy.folder(tmp_path / "s", "cam").exists()  # a stride skips frames: no proxy


def test_a_proxy_that_cannot_be_written_leaves_detection_alone(tmp_path, monkeypatch, caplog):
    src = _video(tmp_path / "videos" / "cam.mp4", 8)
    monkeypatch.setattr(detect, "make_detector", lambda cfg: Still())
    real = proxy.SegmentWriter.write

    def full_disk(self, i, img):
        if i == 3:
            raise OSError("No space left on device")
        real(self, i, img)

    monkeypatch.setattr(proxy.SegmentWriter, "write", full_disk)
    with caplog.at_level("WARNING", logger="mocap.io.proxy"):
        _, data, _ = chunks.detect_video("cam", src, detect.Config(), 0, None, (tmp_path, "cam", (80, 60)))
    assert data.shape[0] == 8 and np.isfinite(data).all()
    assert "cam: proxy for the overlay videos abandoned at frame 3 (No space left on device)" in caplog.text
    assert proxy.segments(tmp_path, "cam", src, 8, (80, 60)) is None
    assert list(proxy.folder(tmp_path, "cam").iterdir()) == []  # nothing half-written left


def test_the_proxy_s_cpu_is_not_counted_as_inference(tmp_path, monkeypatch):
    """The reader thread's proxy writing is its own CPU (proxy_cpu_s), not the detector's (infer_cpu_s)."""
    import time

    src = _video(tmp_path / "videos" / "cam.mp4", 8)
    monkeypatch.setattr(detect, "make_detector", lambda cfg: Still())
    real = proxy.SegmentWriter.write

    def slow(self, i, img):  # 50 ms of this thread's CPU per frame
        t = time.thread_time()
        while time.thread_time() - t < 0.05:
            pass
        real(self, i, img)

    monkeypatch.setattr(proxy.SegmentWriter, "write", slow)
    _, _, stats = chunks.detect_video("cam", src, detect.Config(), 0, None, (tmp_path, "cam", (80, 60)))
    assert stats["proxy_cpu_s"] >= 0.35
    assert stats["infer_cpu_s"] < 0.2, stats  # the detector stands still: next to nothing


def _scene(tmp_path: Path, frames: int = 6):
    """One camera looking down +z at a segment of two joints; the session's video of SIZE."""
    K = np.array([[100.0, 0, SIZE[0] / 2], [0, 100.0, SIZE[1] / 2], [0, 0, 1]])
    cam = Camera("cam", K, np.zeros(5), np.eye(4), SIZE)
    rig = Rig([cam])
    X = np.full((frames, 1, 33, 3), np.nan)
    X[:, 0, 11] = (-0.3, -0.2, 2.0)  # left shoulder
    X[:, 0, 13] = (0.25, 0.15, 2.0)  # left elbow: one limb (11, 13) drawn
    pts = Points3D(X, np.zeros((frames, 1, 33)), np.ones((frames, 1, 33, 1), bool), rig.names, "blazepose33", 10.0)
    src = _video(tmp_path / "videos" / "cam.mp4", frames)
    session = types.SimpleNamespace(root=tmp_path, video_sampling=lambda: (0, 1), camera_moves=lambda: [])
    return session, rig, pts, src


def _green_on_segment(img: np.ndarray, a, b) -> float:
    """The share of points along a → b (in pixels of ``img``) drawn green."""
    t = np.linspace(0.1, 0.9, 30)[:, None]
    p = np.round(a + t * (b - a)).astype(int)
    px = img[p[:, 1], p[:, 0]].astype(int)
    return float(np.mean((px[:, 1] > 150) & (px[:, 0] < 120) & (px[:, 2] < 120)))


def test_the_overlay_renders_from_the_proxy_and_the_joint_lands_at_its_projection(tmp_path, monkeypatch):
    session, rig, pts, src = _scene(tmp_path)
    height = 60
    size = proxy.scaled_size(SIZE, height)
    _segment(tmp_path, src, 0, 6, size)
    from mocap.io import video

    def no_source(*a, **k):
        raise AssertionError("the source video was decoded")

    monkeypatch.setattr(video, "read_frames", no_source)
    pending = overlay.start(session, rig, pts, {}, threads=1, wanted={"cam": {3}}, height=height)
    [out] = pending.result(progress=False)
    monkeypatch.undo()
    uv = rig[0].project(pts.xyz[0, 0, [11, 13]]) * (size[1] / SIZE[1])
    frames = dict(video.read_frames(out))
    assert len(frames) == 6 and frames[0].shape == (size[1], size[0], 3)
    for img in frames.values():
        assert _green_on_segment(img, uv[0], uv[1]) > 0.9  # the limb between the two projections
        assert _green_on_segment(img, uv[0] + (0, 15), uv[1] + (0, 15)) < 0.1  # and not beside it


def test_without_a_proxy_the_source_is_decoded_to_the_same_drawing(tmp_path):
    session, rig, pts, src = _scene(tmp_path)
    height = 60
    size = proxy.scaled_size(SIZE, height)
    [out] = overlay.start(session, rig, pts, {}, threads=1, height=height).result(progress=False)
    from mocap.io.video import read_frames

    uv = rig[0].project(pts.xyz[0, 0, [11, 13]]) * (size[1] / SIZE[1])
    for _, img in read_frames(out):
        assert _green_on_segment(img, uv[0], uv[1]) > 0.9


def test_detection_asks_for_proxies_only_where_the_overlay_render_can_use_them(tmp_path):
    from dataclasses import replace

    from mocap.io.video import FootageInfo
    from mocap.report import Config as ReportConfig
    from mocap.settings import Settings

    session = types.SimpleNamespace(root=tmp_path)
    infos = {"big": FootageInfo(tmp_path / "big.mp4", 50, 30.0, (1080, 1920)),
             "small": FootageInfo(tmp_path / "small.mp4", 50, 30.0, (640, 480))}
    (proxy.folder(tmp_path, "big") / "00000000.json").parent.mkdir(parents=True)
    (proxy.folder(tmp_path, "big") / "00000000.json").write_text("{}")  # an old proxy of a camera detected again
    settings = Settings()
    got = proxy.for_detection(session.root, settings.report, settings.detect, infos)
    assert got == {"big": (tmp_path, "big", (304, 540)), "small": None}  # 480 px: already no taller than 540
    assert not proxy.folder(tmp_path, "big").exists()
    assert ReportConfig().overlay_height == 540
    full = replace(settings, report=ReportConfig(overlay_height=0))
    off = replace(settings, report=ReportConfig(overlay_videos=False))
    assert proxy.for_detection(session.root, full.report, settings.detect, infos) == {"big": None, "small": None}
    assert proxy.for_detection(session.root, off.report, settings.detect, infos) == {"big": None, "small": None}
    for cfg in (detect.Config(stride=2), detect.Config(start=5), detect.Config(stop=20)):  # frames left out
        assert proxy.for_detection(session.root, settings.report, cfg, infos)["big"] is None
    assert proxy.for_detection(session.root, settings.report, detect.Config(stop=500), infos)["big"] is not None


def test_probe_reads_a_video_once_per_version_of_the_file(tmp_path, monkeypatch):
    from mocap.io import video

    src = _video(tmp_path / "v.mp4", 8)
    opened = []
    real = video._probe_video
    monkeypatch.setattr(video, "_probe_video", lambda p: opened.append(p) or real(p))
    assert video.probe(src).frames == 8 and video.probe(src).frames == 8 and len(opened) == 1
    _video(tmp_path / "v.mp4", 5)  # rewritten: another version
    assert video.probe(src).frames == 5 and len(opened) == 2


def test_crops_cut_from_proxy_frames_are_cached_apart_from_full_size_ones(tmp_path):
    from mocap.report.crops import CropCache

    src = _video(tmp_path / "v.mp4", 3)
    full, small = CropCache(tmp_path / "c"), CropCache(tmp_path / "c", 540)
    assert full.key(src, 1, "cam") == CropCache(tmp_path / "c", 0).key(src, 1, "cam")
    assert small.key(src, 1, "cam") != full.key(src, 1, "cam")
    assert small.key(src, 1, "cam") == CropCache(tmp_path / "c", 540).key(src, 1, "cam")


@pytest.mark.slow  # a worker pool (a few seconds)
def test_the_detect_stage_writes_every_camera_s_proxy_whatever_the_chunking(tmp_path, monkeypatch):
    from dataclasses import replace

    from test_detect_pool import Brightness  # noqa: F401 - the fake detector the workers import

    from mocap.detect import DETECTORS
    from mocap.report import Config as ReportConfig
    from mocap.settings import Settings

    monkeypatch.setitem(DETECTORS, "still", "test_detect_pool:Brightness")
    src = _video(tmp_path / "videos" / "cam.mp4", 40)
    settings = replace(Settings(), detect=detect.Config(detector="still", workers=2),
                       report=ReportConfig(overlay_height=64))
    detect.main(tmp_path, settings)
    assert detect.last_run["chunks"] == 2 and detect.last_run["proxy_cpu_s"] > 0  # one camera in two chunks
    size = proxy.scaled_size(SIZE, 64)
    parts = proxy.segments(tmp_path, "cam", src, 40, size)
    assert [(a, b) for _, a, b in parts] == [(0, 20), (20, 40)]
    for i, img in proxy.read_frames(parts, 40):
        assert np.abs(img.astype(int) - proxy.shrink(_frame(i), size)).mean() < 6, i


def test_an_unreadable_proxy_is_drawn_over_from_the_video_with_a_warning(tmp_path, caplog):
    session, rig, pts, src = _scene(tmp_path)
    size = proxy.scaled_size(SIZE, 60)
    _segment(tmp_path, src, 0, 6, size)
    [(video, _, _)] = proxy.segments(tmp_path, "cam", src, 6, size)
    video.write_bytes(video.read_bytes()[:200])  # damaged after its record was written
    with caplog.at_level("WARNING", logger="mocap.report.overlay"):
        [out] = overlay.start(session, rig, pts, {}, threads=1, height=60).result(progress=False)
    assert "cam_reprojected.mp4: proxy" in caplog.text and "drawing on the video itself" in caplog.text
    from mocap.io.video import read_frames

    uv = rig[0].project(pts.xyz[0, 0, [11, 13]]) * (size[1] / SIZE[1])
    got = list(read_frames(out))
    assert len(got) == 6 and all(_green_on_segment(img, uv[0], uv[1]) > 0.9 for _, img in got)


def test_a_proxy_failing_midway_counts_each_frame_once(tmp_path, caplog):
    """A proxy whose record says more frames than it holds fails mid-render: the video is drawn again from the
    source, and the render's count of frames done (the progress bar's) starts again instead of adding up."""
    import json

    session, rig, pts, src = _scene(tmp_path)
    size = proxy.scaled_size(SIZE, 60)
    _segment(tmp_path, src, 0, 3, size)
    [(video, _, _)] = proxy.segments(tmp_path, "cam", src, 3, size)
    record = proxy.SegmentWriter.record_path(video)
    record.write_text(json.dumps(json.loads(record.read_text()) | {"end": 6}))  # claims frames it lacks
    with caplog.at_level("WARNING", logger="mocap.report.overlay"):
        pending = overlay.start(session, rig, pts, {}, threads=1, wanted={"cam": {1, 4}}, height=60)
        pending.result(progress=False)
    assert "frame 3 cannot be read" in caplog.text and "drawing on the video itself" in caplog.text
    [job] = pending.jobs
    assert job.rendered == job.total == 6


def test_camera_names_the_rig_accepts_have_a_proxy(tmp_path):
    """A proxy's folder takes every camera name a rig file accepts (a space, an accent, brackets), as the
    videos' file names do: detection and the overlay videos worked with such names before the proxies."""
    from dataclasses import replace

    from mocap.io.rig_files import check_camera_name
    from mocap.io.video import FootageInfo
    from mocap.report import Config as ReportConfig
    from mocap.settings import Settings

    name = "Kamera Süd (2)"
    assert check_camera_name("rig.toml", name) == name
    session, rig, pts, _ = _scene(tmp_path)
    rig = Rig([replace(rig[0], name=name)])
    pts = replace(pts, camera_names=rig.names)
    src = _video(tmp_path / "videos" / f"{name}.mp4", 6)
    settings = replace(Settings(), report=ReportConfig(overlay_height=64))
    info = {name: FootageInfo(src, 6, 10.0, SIZE)}
    size = proxy.scaled_size(SIZE, 64)
    assert proxy.for_detection(session.root, settings.report, settings.detect, info) == {name: (tmp_path, name, size)}
    seg = proxy.SegmentWriter(tmp_path, name, src, 0, size, 10.0)
    for i in range(6):
        seg.write(i, _frame(i))
    seg.close(True)
    assert proxy.segments(tmp_path, name, src, 6, size) is not None
    [out] = overlay.start(session, rig, pts, {}, threads=1, height=64).result(progress=False)
    assert out.is_file()
    proxy.clear(tmp_path, name)
    assert not proxy.folder(tmp_path, name).exists()
    for bad in ("../x", ".hidden", "a/b"):
        with pytest.raises(ValueError, match="camera name"):
            proxy.folder(tmp_path, bad)


def test_a_proxy_that_cannot_be_finished_is_a_warning(tmp_path, monkeypatch, caplog):
    """Its record cannot be written (a full disk): a warning, not an exception in the reader thread."""
    src = _video(tmp_path / "videos" / "cam.mp4", 5)
    monkeypatch.setattr(detect, "make_detector", lambda cfg: Still())

    def full_disk(*a, **k):
        raise OSError("No space left on device")

    monkeypatch.setattr(proxy, "atomic_write_text", full_disk)
    with caplog.at_level("WARNING", logger="mocap.io.proxy"):
        _, data, _ = chunks.detect_video("cam", src, detect.Config(), 0, None, (tmp_path, "cam", (80, 60)))
    assert data.shape[0] == 5
    assert "cam: proxy for the overlay videos not finished (No space left on device)" in caplog.text
    assert proxy.segments(tmp_path, "cam", src, 5, (80, 60)) is None


def test_a_joint_projecting_far_outside_the_image_is_not_drawn(tmp_path):
    """A point barely in front of the camera's plane projects billions of pixels away: the limb to it is
    left out, the others are drawn, and the render does not fail."""
    session, rig, pts, src = _scene(tmp_path)
    X = pts.xyz.copy()
    X[:, 0, 15] = (5.0, 0.0, 1e-8)  # left wrist: 5e10 px to the right, beyond 32-bit pixels
    far = Points3D(X, pts.reproj_err, pts.views, pts.camera_names, pts.keypoint_set, pts.fps)
    assert rig[0].project(X[0, 0, 15])[0] > 1e10
    [out] = overlay.start(session, rig, far, {}, threads=1, height=60).result(progress=False)
    from mocap.io.video import read_frames

    size = proxy.scaled_size(SIZE, 60)
    uv = rig[0].project(pts.xyz[0, 0, [11, 13]]) * (size[1] / SIZE[1])
    frames = [img for _, img in read_frames(out)]
    assert len(frames) == 6 and all(_green_on_segment(img, uv[0], uv[1]) > 0.9 for img in frames)


def test_the_proxy_study_measures_each_shrink_against_the_drawing_on_the_full_frames(tmp_path):
    from mocap.bench.detect import proxy_study

    src = _video(tmp_path / "cam.mp4", 6, (240, 180))
    rows = proxy_study(src, frames=6, height=60)  # factor 3: the bilinear step alone
    assert [r["proxy"] for r in rows] == ["shrink", "quick_shrink"] and rows[0]["from_first_mse"] == 0.0
    for r in rows:  # the codecs lose something; on bands this coarse the two filters differ little
        assert 0 < r["ideal_mse"] < 500 and r["video_psnr_db"] > 25 and r["shrink_ms"] >= 0
    assert rows[1]["from_first_mse"] < rows[0]["ideal_mse"]
