"""mocap.detect.chunks.detect_video: any error of the frame reader thread (not only a ValueError of a bad
video) reaches the caller instead of leaving the detector loop waiting for frames forever."""

import threading

import numpy as np
import pytest

from mocap.detect import chunks
from mocap.io.video import FootageInfo
from mocap.stages import detect


class Still:
    keypoint_set = "blazepose33"

    def __call__(self, image_bgr, timestamp_ms):
        return np.ones((1, 33, 3))

    def close(self):
        pass


def _failing_frames(path, stride, start, stop):
    yield start, np.zeros((8, 8, 3), np.uint8)
    raise RuntimeError("decoder crashed")


def test_a_reader_error_other_than_valueerror_is_raised_not_a_hang(monkeypatch, tmp_path):
    monkeypatch.setattr(chunks, "probe", lambda path: FootageInfo(path, 5, 30.0, (8, 8)))
    monkeypatch.setattr(chunks, "read_frames", _failing_frames)
    monkeypatch.setattr(detect, "make_detector", lambda cfg: Still())
    outcome = {}

    def call():
        try:
            chunks.detect_video("cam", tmp_path / "cam.mp4", detect.Config())
        except Exception as e:  # noqa: BLE001 - the test looks at it
            outcome["error"] = e

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(timeout=20)
    assert not thread.is_alive(), "detect_video waits forever after the reader thread failed"
    with pytest.raises(RuntimeError, match="decoder crashed"):
        raise outcome["error"]
