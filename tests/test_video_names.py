"""Which file is a camera's video: one per camera (two were resolved by sort order, silently: cam01.webm over
cam01.mp4), names compared in one Unicode form (macOS writes file names decomposed: 'kaméra02' was not found), and a
name differing only in case said so."""

import unicodedata

import pytest

from mocap.io.video import find_videos


def test_two_videos_for_one_camera_are_refused_naming_both(tmp_path):
    for name in ("cam01.mp4", "cam01.webm", "cam02.mp4", "cam03.mp4", "cam03.avi"):
        (tmp_path / name).write_bytes(b"x")
    with pytest.raises(ValueError, match=r"several videos for one camera: cam01: cam01\.mp4, cam01\.webm; cam03: "
                                         r"cam03\.avi, cam03\.mp4; keep one in the folder"):
        find_videos(tmp_path, ("cam01", "cam02", "cam03"))
    assert find_videos(tmp_path, ("cam02",)) == {"cam02": tmp_path / "cam02.mp4"}  # the others are not used


def test_names_match_in_any_unicode_form_and_a_case_difference_is_said(tmp_path):
    decomposed = unicodedata.normalize("NFD", "kaméra02")
    (tmp_path / f"{decomposed}.mp4").write_bytes(b"x")
    (tmp_path / "CAM01.MP4").write_bytes(b"x")
    got = find_videos(tmp_path, ("kaméra02",))
    assert list(got) == ["kaméra02"] and got["kaméra02"].name == f"{decomposed}.mp4"
    with pytest.raises(ValueError, match=r"no video for cameras \['cam01'\].*names differ only in case: CAM01\.MP4 "
                                         r"for cam01"):
        find_videos(tmp_path, ("cam01",))
