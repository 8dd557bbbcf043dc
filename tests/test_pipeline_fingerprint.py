"""The pipeline's fingerprint of its inputs (mocap.pipeline_state): a session copied with ``cp -r`` keeps its stages,
an edited or trimmed video, or a byte changed inside a large file, does not (the stage contract:
tests/test_stage_contract.py)."""

import numpy as np


def test_a_copied_video_keeps_its_fingerprint_and_an_edited_one_does_not(tmp_path):
    """Large files were fingerprinted by size and time: a session copied with ``cp -r`` (new times) re-ran its
    detection, minutes per take. A video is now fingerprinted by its size and chunks spread over it."""
    import os
    import shutil

    from mocap.pipeline_state import SMALL, _fingerprint

    rng = np.random.default_rng(0)
    video = tmp_path / "a" / "videos" / "cam01.mp4"
    video.parent.mkdir(parents=True)
    video.write_bytes(rng.bytes(3 * SMALL + 12345))
    copy = tmp_path / "b"
    shutil.copytree(tmp_path / "a", copy)  # as cp -r: new times
    os.utime(copy / "videos" / "cam01.mp4", ns=(1, 1))

    def fp(root):
        return _fingerprint([root / "videos" / "cam01.mp4"], root)

    assert fp(tmp_path / "a") == fp(copy)
    data = bytearray(video.read_bytes())
    data[-5:] = b"12345"  # the last chunk of another take, same size
    (copy / "videos" / "cam01.mp4").write_bytes(bytes(data))
    assert fp(tmp_path / "a") != fp(copy)
    (copy / "videos" / "cam01.mp4").write_bytes(bytes(data[:-1]))  # trimmed
    assert fp(tmp_path / "a") != fp(copy)
    # other large files (a real take's pose2d.h5, 1-100 MB) by their whole content: a copy keeps its stages (a
    # 1.1 MB pose2d.h5 re-ran detection on a cp -r copy, 127 s), a byte changed in the middle (an HDF5 rewritten in
    # place at one size) is seen
    h5 = tmp_path / "a" / "pose2d.h5"
    h5.write_bytes(rng.bytes(2 * SMALL + 7))
    before = _fingerprint([h5], tmp_path / "a")
    os.utime(h5, ns=(5, 5))
    assert _fingerprint([h5], tmp_path / "a") == before
    data = bytearray(h5.read_bytes())
    data[SMALL + 3] ^= 1
    h5.write_bytes(bytes(data))
    assert _fingerprint([h5], tmp_path / "a") != before
