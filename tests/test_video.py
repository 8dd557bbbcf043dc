import cv2
import numpy as np
import pytest

from mocap.io.video import probe, read_frames


def write_video(path, n=30, size=(160, 120), fps=25.0):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    for i in range(n):
        img = np.full((size[1], size[0], 3), 40, np.uint8)
        cv2.putText(img, str(i), (10, 80), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 3)
        writer.write(img)
    writer.release()
    return path


def test_probe_and_stride(tmp_path):
    path = write_video(tmp_path / "cam01.avi")
    info = probe(path)
    assert info.frames == 30 and info.size == (160, 120) and abs(info.fps - 25.0) < 1e-6
    frames = [i for i, _ in read_frames(path, stride=4, start=2, stop=20)]
    assert frames == [2, 6, 10, 14, 18]
    _, grey = next(read_frames(path, grey=True))
    assert grey.ndim == 2


def test_one_decoder_thread_gives_the_same_frames(tmp_path):
    path = tmp_path / "cam01.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (160, 120))
    rng = np.random.default_rng(0)
    for _ in range(12):
        writer.write(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8))
    writer.release()
    default = list(read_frames(path, start=3))
    one = list(read_frames(path, start=3, threads=1))
    assert [i for i, _ in one] == list(range(3, 12)) == [i for i, _ in default]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(default, one, strict=True))


def test_image_folder(tmp_path):
    for i in range(5):
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), np.full((10, 20), i, np.uint8))
    info = probe(tmp_path)
    assert info.frames == 5 and info.fps is None and info.size == (20, 10)
    assert [int(img[0, 0, 0]) for _, img in read_frames(tmp_path, stride=2)] == [0, 2, 4]


def test_truncated_video_names_file_and_last_good_frame(tmp_path):
    path = write_video(tmp_path / "cam02.avi", n=40)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.5)])
    with pytest.raises(ValueError, match=r"cam02.avi: .*last good frame \d+"):
        for _ in read_frames(path):
            pass


@pytest.mark.parametrize("stride, start, stop", [(1, 0, None), (2, 0, None), (1, 5, 13), (3, 1, None)])
def test_a_damaged_frame_is_black_and_the_rest_read(tmp_path, caplog, stride, start, stop):
    """One frame's JPEG header destroyed (a bad sector, a dropped packet): OpenCV decodes the next frames, in
    step; the first failed grab stopped the whole detection as "truncated or corrupt". Now that frame is black,
    the others as they are, one warning."""
    import logging

    path = write_video(tmp_path / "cam01.avi", n=20)
    data = bytearray(path.read_bytes())
    starts = [i for i in range(len(data) - 2) if data[i:i + 3] == b"\xff\xd8\xff"]
    assert len(starts) == 20
    data[starts[12]:starts[13] - 16] = bytes(starts[13] - 16 - starts[12])  # frame 13's chunk header kept
    path.write_bytes(bytes(data))
    good = dict(read_frames(write_video(tmp_path / "good.avi", n=20)))
    with caplog.at_level(logging.WARNING):
        got = list(read_frames(path, stride, start, stop))
    assert [i for i, _ in got] == list(range(start, stop or 20, stride))
    for i, img in got:
        assert (img == 0).all() if i == 12 else np.array_equal(img, good[i]), i
    assert ("cam01.avi: frames 12 (1) cannot be decoded (damaged): given as black images" in caplog.text) == \
        (12 in range(start, stop or 20))
    data[starts[12]:starts[13]] = bytes(starts[13] - starts[12])  # frame 13's chunk header lost too: 13 came as 14
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"cam01.avi: corrupt video: frame 12 cannot be decoded and the video ends 1 "
                                         r"frame\(s\) before its header's 20: frames were lost, those after frame 12 "
                                         r"out of step"):
        list(read_frames(path, stride, start))


def test_unreadable_files(tmp_path):
    bad = tmp_path / "cam03.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(ValueError, match="cam03.mp4: cannot open video"):
        probe(bad)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        probe(tmp_path / "missing.mp4")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty: no images"):
        probe(tmp_path / "empty")


def test_a_video_without_a_rig_camera_is_named_once(tmp_path, caplog):
    """A filmed camera the rig lacks (another rig file, a renamed camera) used to be left out silently."""
    import logging

    from mocap.io.video import find_videos

    for c in ("cam01", "cam02", "cam03"):
        (tmp_path / f"{c}.mp4").write_bytes(b"")
    with caplog.at_level(logging.WARNING):
        assert list(find_videos(tmp_path, ("cam02", "cam03"))) == ["cam02", "cam03"]
        find_videos(tmp_path, ("cam02", "cam03"))  # the report and the view look again: said once
    said = [r.getMessage() for r in caplog.records if "not used" in r.getMessage()]
    assert said == [f"{tmp_path}: cam01.mp4 not used: no camera of that name in the rig ['cam02', 'cam03'] "
                    "(a file name is its camera's name)"]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        find_videos(tmp_path, ("cam01", "cam02", "cam03"))
    assert not caplog.records


def test_an_empty_or_corrupt_video_is_named_and_ffmpeg_stays_off_the_terminal(tmp_path, capfd, caplog):
    import logging

    empty = tmp_path / "cam01.mp4"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"cam01.mp4: empty file \(0 bytes\): not a video"):
        probe(empty)
    bad = tmp_path / "cam02.mp4"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    with caplog.at_level(logging.DEBUG, logger="mocap.io.video"), \
            pytest.raises(ValueError, match=r"cam02.mp4: cannot open video \(unsupported or corrupt file\): FFmpeg: "
                                            r"moov atom not found"):  # FFmpeg's reason in the error itself
        probe(bad)
    assert "moov atom" not in capfd.readouterr().err  # not on the terminal


def test_ffmpeg_says_nothing_of_damaged_frames_on_the_terminal(tmp_path):
    """A damaged MPEG-4 video: FFmpeg printed its decoding errors ("marker does not match f_code", ~30 lines for a
    few frames on the real demo) on the terminal each time the video was read; the reader names the frames itself."""
    import subprocess
    import sys

    path = tmp_path / "cam01.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (160, 120))
    rng = np.random.default_rng(0)
    for i in range(60):
        img = np.full((120, 160, 3), 40, np.uint8)
        cv2.circle(img, (20 + 2 * i, 60), 15, (0, 200, 255), -1)
        img[::7] = rng.integers(0, 255, img[::7].shape)
        writer.write(img)
    writer.release()
    data = bytearray(path.read_bytes())
    data[len(data) // 3:len(data) // 3 + 3000] = bytes(3000)
    path.write_bytes(bytes(data))
    code = f"from mocap.io.video import read_frames; print(sum(1 for _ in read_frames({str(path)!r})))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "60"
    assert "@ 0x" not in r.stderr and "f_code" not in r.stderr, r.stderr  # FFmpeg's "[mpeg4 @ 0x…] …" lines
    import os

    env = {k: v for k, v in os.environ.items() if k != "OPENCV_FFMPEG_LOGLEVEL"}  # this process's mocap set it
    plain = subprocess.run([sys.executable, "-c", f"import cv2; c = cv2.VideoCapture({str(path)!r}); "
                            "[c.grab() for _ in range(60)]"], capture_output=True, text=True, env=env)
    assert "@ 0x" in plain.stderr  # the same reading without mocap's setting: FFmpeg's lines (the test can fail)


def test_an_image_folder_is_read_in_frame_order_with_unpadded_numbers(tmp_path):
    """frame0 … frame11: a plain name sort read frame10 and frame11 after frame1 (no error, the motion scrambled)."""
    for i in (0, 1, 2, 9, 10, 11):
        cv2.imwrite(str(tmp_path / f"frame{i}.png"), np.full((8, 12, 3), 20 * i, np.uint8))
    order = [int(img[0, 0, 0]) // 20 for _, img in read_frames(tmp_path)]
    assert order == [0, 1, 2, 9, 10, 11]
    assert probe(tmp_path).size == (12, 8) and probe(tmp_path).frames == 6


def test_a_phone_videos_rotation_tag_is_named_in_the_size_refusal(tmp_path):
    """A phone video stored 160×120 with a 90° rotation tag (players show it 120×160) against a rig calibrated on
    the turned picture: refused as "rotated by 90° (a phone's orientation tag, or …?)", a guess; the tag is now read
    and named with what to do."""
    import struct

    from mocap.io.video import check_sizes
    from mocap.synth import RigSpec, ring_rig

    path = tmp_path / "cam01.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (160, 120))
    for _ in range(5):
        writer.write(np.zeros((120, 160, 3), np.uint8))
    writer.release()
    plain = probe(path)
    data = bytearray(path.read_bytes())
    at = data.find(b"tkhd") + 4 + 40  # the track header's matrix (version 0): a 90° turn
    data[at:at + 36] = struct.pack(">9i", 0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)
    turned = tmp_path / "cam02.mp4"
    turned.write_bytes(bytes(data))
    info = probe(turned)
    assert (plain.rotation, info.rotation, info.size) == (0, 90, (160, 120))
    rig = ring_rig(RigSpec(n_cameras=2, size=(120, 160)), np.random.default_rng(0).normal(size=(30, 3)))
    with pytest.raises(ValueError, match=r"cam02: the footage is 160×120, the rig's camera 120×160: rotated by 90°: "
                                         r"cam02.mp4 carries a rotation tag of 90°"):
        check_sizes({"cam01": info.__class__(path, 5, 30.0, (120, 160)), "cam02": info}, rig, "rig.toml")
    with pytest.raises(ValueError, match=r"rotated by 90° \(width and height exchanged in the rig"):
        check_sizes({"cam01": plain, "cam02": plain}, rig, "rig.toml")
