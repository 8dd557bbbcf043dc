"""A pool worker takes the parent's probe of a video (mocap.io.video.remember) instead of opening the file only
to read its header, while the file is the version the parent probed; a changed file is probed again."""

import os

from mocap.io import video
from mocap.io.video import FootageInfo


def test_a_remembered_probe_is_used_until_the_file_changes(tmp_path, monkeypatch):
    src = tmp_path / "cam.mp4"
    src.write_bytes(b"not really a video")
    opened = []
    monkeypatch.setattr(video, "_probe_video", lambda p: opened.append(p) or FootageInfo(p, 7, 25.0, (64, 48)))
    monkeypatch.setattr(video, "_probed", {})
    theirs = FootageInfo(src, 100, 30.0, (1080, 1920))
    video.remember(video.probe_key(src), theirs)
    assert video.probe(src) is theirs and opened == []
    st = src.stat()
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # another version of the file
    assert video.probe(src).frames == 7 and opened == [src]


def test_detect_chunk_seeds_the_probe_before_detecting(tmp_path, monkeypatch):
    from mocap.detect import chunks
    from mocap.stages import detect

    src = tmp_path / "cam.mp4"
    src.write_bytes(b"x")
    monkeypatch.setattr(video, "_probed", {})
    monkeypatch.setattr(video, "_probe_video", lambda p: (_ for _ in ()).throw(AssertionError("opened again")))
    info = FootageInfo(src, 20, 30.0, (64, 48))
    seen = []

    def fake_detect_video(label, path, cfg, position, overlay, **kw):
        seen.append(video.probe(path))
        import numpy as np

        return label, np.zeros((cfg.stop - cfg.start, 1, 33, 3)), {}

    monkeypatch.setattr(detect, "detect_video", fake_detect_video)
    cam, first, end, data, _ = chunks.detect_chunk("cam", src, detect.Config(), 0, 20, 0, 0, None, None,
                                                   (video.probe_key(src), info))
    assert seen == [info] and (cam, first, end) == ("cam", 0, 20) and len(data) == 20
