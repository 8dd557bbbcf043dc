"""Issue 13: every malformed input gives a clear error naming the file (and camera, key or line)."""

import re

import numpy as np
import pytest
from test_bvh import toy_motion

from mocap.io.bvh import read_bvh, write_bvh

# --- BVH --------------------------------------------------------------------------------------------

@pytest.fixture
def bvh_text(tmp_path):
    return write_bvh(toy_motion(frames=5), tmp_path / "ok.bvh").read_text()


def _write(tmp_path, text, name="bad.bvh"):
    path = tmp_path / name
    path.write_bytes(text.encode())
    return path


def _line_of(text, needle):
    return text[: text.index(needle)].count("\n") + 1


def test_bvh_tolerates_crlf_tabs_and_extra_rows(tmp_path, bvh_text, caplog):
    ref = read_bvh(_write(tmp_path, bvh_text, "ref.bvh"))
    crlf = read_bvh(_write(tmp_path, bvh_text.replace("\n", "\r\n").replace(" ", "\t"), "crlf.bvh"))
    assert crlf.skeleton.joint_names == ref.skeleton.joint_names
    assert np.array_equal(crlf.rotations, ref.rotations) and crlf.fps == ref.fps
    last = bvh_text.rstrip("\n").rsplit("\n", 1)[1]
    with caplog.at_level("WARNING"):
        extra = read_bvh(_write(tmp_path, bvh_text + last + "\n\n", "extra.bvh"))
    assert extra.n_frames == 5 and np.array_equal(extra.root_positions, ref.root_positions)
    assert re.search(r"extra\.bvh: 1 data rows after the 5 that Frames: announces .*ignored", caplog.text)
    bom = read_bvh(_write(tmp_path, "\ufeff" + bvh_text.replace("\n", "\r"), "bom.bvh"))
    assert np.array_equal(bom.root_positions, ref.root_positions)


@pytest.mark.parametrize("cut", ["JOINT", "JOINT Spine", "OFFSET", "CHANNELS 3", "End Site", "{"])
def test_bvh_truncated_in_the_hierarchy(tmp_path, bvh_text, cut):
    k = bvh_text.index(cut, bvh_text.index("JOINT")) + len(cut)
    path = _write(tmp_path, bvh_text[:k])
    with pytest.raises(ValueError, match=r"bad\.bvh: line \d+: not a valid BVH file: .*(truncated|file ends)"):
        read_bvh(path)


def test_bvh_truncated_hierarchy_before_motion(tmp_path, bvh_text):
    k = bvh_text.index("JOINT LeftArm")
    path = _write(tmp_path, bvh_text[:k] + bvh_text[bvh_text.index("MOTION"):])
    with pytest.raises(ValueError, match=r"bad\.bvh: line \d+: .*MOTION inside the braces of 'Spine' \(opened on "
                                         r"line \d+\): the hierarchy is truncated"):
        read_bvh(path)


@pytest.mark.parametrize("header,message", [
    ("Frame Time: 0", "Frame Time must be positive"),
    ("Frame Time: -0.03", "Frame Time must be positive"),
    ("Frame Time: nan", "Frame Time must be finite"),
    ("Frame Time: fast", "Frame Time must be a number, got 'fast'"),
])
def test_bvh_bad_frame_time(tmp_path, bvh_text, header, message):
    path = _write(tmp_path, re.sub(r"Frame Time: \S+", header, bvh_text))
    line = _line_of(bvh_text, "Frame Time")
    with pytest.raises(ValueError, match=rf"bad\.bvh: line {line}: not a valid BVH file: {message}"):
        read_bvh(path)


def test_bvh_frame_counts(tmp_path, bvh_text):
    line = _line_of(bvh_text, "Frames:")
    for frames, message in (("0", rf"line {line}: .*Frames: 0: the file holds no motion"),
                            ("-2", "Frames: -2: the file holds no motion"),
                            ("2.5", "Frames must be an integer, got '2.5'"),
                            ("7", r"Frames: says 7 but the file has 5 data rows \(truncated file\?\)")):
        path = _write(tmp_path, re.sub(r"Frames: \d+", f"Frames: {frames}", bvh_text))
        with pytest.raises(ValueError, match=rf"bad\.bvh: .*{message}"):
            read_bvh(path)


def test_bvh_bad_data_rows(tmp_path, bvh_text):
    lines = bvh_text.split("\n")
    first = _line_of(bvh_text, "Frame Time") + 1  # 1-based line of the first data row
    n = len(lines[first - 1].split())
    short = lines.copy()
    short[first + 1] = " ".join(short[first + 1].split()[:-1])
    with pytest.raises(ValueError, match=rf"bad\.bvh: line {first + 2}: expected {n} values \(one per channel\), "
                                         rf"got {n - 1}"):
        read_bvh(_write(tmp_path, "\n".join(short)))
    word = lines.copy()
    word[first] = word[first].replace(word[first].split()[3], "abc", 1)
    with pytest.raises(ValueError, match=rf"bad\.bvh: line {first + 1}: value 'abc' is not a number"):
        read_bvh(_write(tmp_path, "\n".join(word)))
    inf = lines.copy()
    inf[first] = inf[first].replace(inf[first].split()[0], "inf", 1)
    with pytest.raises(ValueError, match=rf"bad\.bvh: line {first + 1}: value 'inf' is not a finite number"):
        read_bvh(_write(tmp_path, "\n".join(inf)))


@pytest.mark.parametrize("old,new,message", [
    ("HIERARCHY", "HIERARCHIE", "expected HIERARCHY, got 'HIERARCHIE'"),
    ("CHANNELS 3", "CHANNELS three", "CHANNELS count of 'Spine' must be an integer"),
    ("CHANNELS 3", "CHANNELS 9", "CHANNELS count must be 0 to 6"),
    ("Zrotation", "Wrotation", "unknown channel 'Wrotation'"),
    ("OFFSET 0.000000", "OFFSET x", "OFFSET value of 'Hips' must be a number, got 'x'"),
    ("JOINT Spine", "JOINT Hips", "joint name 'Hips' is used twice"),
    ("End Site", "End Point", "expected 'End Site', got 'End Point'"),
    ("MOTION", "", "unexpected 'Frames:'"),
])
def test_bvh_bad_hierarchy(tmp_path, bvh_text, old, new, message):
    path = _write(tmp_path, bvh_text.replace(old, new, 1))
    with pytest.raises(ValueError, match=rf"bad\.bvh: line \d+: not a valid BVH file: .*{re.escape(message)}"):
        read_bvh(path)


def test_bvh_unreadable_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.bvh: no such BVH file"):
        read_bvh(tmp_path / "missing.bvh")
    with pytest.raises(ValueError, match=r"empty\.bvh: empty file"):
        read_bvh(_write(tmp_path, "  \n", "empty.bvh"))
    (tmp_path / "bin.bvh").write_bytes(b"\x00\x01\x02HIERARCHY")
    with pytest.raises(ValueError, match=r"bin\.bvh: not a BVH file \(binary data\)"):
        read_bvh(tmp_path / "bin.bvh")
