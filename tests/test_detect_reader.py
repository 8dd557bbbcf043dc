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


def _failing_frames(path, stride, start, stop, threads=0):
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


def test_hand_shares_of_cameras_written_before_a_worker_died_are_kept(tmp_path):
    """A broken pool raises out of the collection loop: the hand shares of the cameras it already wrote stay
    (the 'no hand detected in any frame' warning must not rest on the retried cameras alone)."""
    from concurrent.futures import Future
    from concurrent.futures.process import BrokenProcessPool

    from mocap.io.hdf5 import create_keypoints2d

    F = 4
    work = create_keypoints2d(tmp_path / "pose2d.partial.h5", F, ["a", "b"], 1, "blazepose33_hands", 30.0)
    data = np.full((F, 1, 75, 3), np.nan)
    data[:, :, :33] = 1.0
    data[:2, :, 40] = 1.0  # a hand in half of the frames
    done, broken = Future(), Future()
    done.set_result(("a", 0, F, data, {"frames": F, "decode_s": 0.1, "infer_s": 0.1}))
    threading.Timer(0.3, broken.set_exception, (BrokenProcessPool("a worker died"),)).start()

    class Bar:
        def update(self, n):
            pass

    hands: dict = {}
    with pytest.raises(BrokenProcessPool):
        detect._collect([done, broken], work, ["a", "b"], F, Bar(), [("a", 0, F), ("b", 0, F)], {}, hands)
    assert hands == {"a": 0.5}


@pytest.mark.parametrize("threads", [0, 1, 3])
def test_the_reader_decodes_with_the_worker_s_decoder_threads(monkeypatch, tmp_path, threads):
    asked = []

    def frames(path, stride, start, stop, threads=0):
        asked.append(threads)
        for i in range(start, stop):
            yield i, np.zeros((8, 8, 3), np.uint8)

    monkeypatch.setattr(chunks, "probe", lambda path: FootageInfo(path, 4, 30.0, (8, 8)))
    monkeypatch.setattr(chunks, "read_frames", frames)
    monkeypatch.setattr(detect, "make_detector", lambda cfg: Still())
    monkeypatch.setattr(chunks.worker, "decoder_threads", threads)  # worker_init's: the pool's cores per worker
    _, data, _ = chunks.detect_video("cam", tmp_path / "cam.mp4", detect.Config())
    assert data.shape[0] == 4 and asked == [threads]
