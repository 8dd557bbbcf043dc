"""The detect stage's worker pool: (camera, frame range) chunks, warm-started trackers, exact results."""

import logging
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from mocap.detect import DETECTORS
from mocap.detect.chunks import chunk_range, plan_chunks
from mocap.io.hdf5 import read_keypoints2d
from mocap.stages import detect


class Brightness:
    """A detector without memory: every keypoint at (mean brightness, timestamp / 10)."""

    keypoint_set = "blazepose33"
    stateless = True

    def __init__(self, variant="full", model_path=None, num_poses=1):
        self.num_poses = num_poses

    def value(self, image_bgr, timestamp_ms):
        return float(image_bgr.mean())

    def __call__(self, image_bgr, timestamp_ms):
        out = np.ones((self.num_poses, 33, 3))
        out[..., 0] = self.value(image_bgr, timestamp_ms)
        out[..., 1] = timestamp_ms / 10
        return out

    def close(self):
        pass


class Smoothed(Brightness):
    """A tracker: each frame's x is 0.7 of the previous x plus 0.3 of the frame's brightness (a memory that
    fades, as a warm-up can catch up with)."""

    stateless = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.x = None

    def value(self, image_bgr, timestamp_ms):
        v = float(image_bgr.mean())
        self.x = v if self.x is None else 0.7 * self.x + 0.3 * v
        return self.x


@pytest.fixture
def fakes(monkeypatch):
    monkeypatch.setitem(DETECTORS, "still", f"{__name__}:Brightness")
    monkeypatch.setitem(DETECTORS, "tracker", f"{__name__}:Smoothed")


def ramp_video(path, n, seed, size=(64, 48), fps=30.0):
    """Frames whose brightness wanders, so every frame's detection differs."""
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    for v in np.clip(120 + np.cumsum(rng.normal(0, 8, n)), 10, 245):
        writer.write(np.full((size[1], size[0], 3), int(v), np.uint8))
    writer.release()
    return path


def session_with(tmp_path, lengths):
    (tmp_path / "videos").mkdir(parents=True)
    for k, n in enumerate(lengths):
        ramp_video(tmp_path / "videos" / f"cam{k + 1}.avi", n, k)
    return tmp_path


def test_whole_cameras_unless_split_longest_first():
    frames = {"a": 100, "b": 120, "c": 100}
    assert plan_chunks(frames, 2, split=False) == [("b", 0, 120), ("a", 0, 100), ("c", 0, 100)]
    assert plan_chunks({"a": 100, "b": 100, "c": 100, "d": 100}, 2, split=True) == [
        ("a", 0, 100), ("b", 0, 100), ("c", 0, 100), ("d", 0, 100)]  # 2 + 2: nothing to cut
    assert plan_chunks({"a": 100, "b": 100, "c": 100}, 2, split=True) == [
        ("a", 0, 100), ("c", 0, 100), ("b", 0, 50), ("b", 50, 100)]  # one camera in halves: 150 + 150
    assert plan_chunks({"a": 100}, 3, split=True) == [("a", 0, 34), ("a", 34, 68), ("a", 68, 100)]
    assert plan_chunks({"a": 12}, 4, split=True) == [("a", 0, 12)]  # too short to cut
    with pytest.raises(ValueError, match="need at least 1 worker, got 0"):
        plan_chunks(frames, 0, split=True)


@pytest.mark.parametrize("workers", [1, 2, 3, 5, 8])
def test_chunks_cover_every_frame_once_with_few_cuts(workers):
    rng = np.random.default_rng(workers)
    for _ in range(50):
        frames = {f"c{k}": int(n) for k, n in enumerate(rng.integers(0, 400, rng.integers(1, 9)))}
        plan = plan_chunks(frames, workers, split=True)
        for cam, n in frames.items():
            ranges = sorted((a, b) for c, a, b in plan if c == cam)
            assert ranges[0][0] == 0 and ranges[-1][1] == n  # a camera without frames: one empty chunk (its error)
            assert all(b == a2 for (_, b), (a2, _) in zip(ranges, ranges[1:], strict=False))  # contiguous, no overlap
            assert all(b - a >= 10 for a, b in ranges) or len(ranges) == 1
        assert len(plan) - len(frames) <= workers - 1  # at most one cut per share
        shares = sum(b - a for _, a, b in plan) / workers
        assert max(b - a for _, a, b in plan) <= max(max(frames.values()), shares + 10)


def test_warm_up_frames_come_before_the_chunk():
    assert chunk_range(50, 100, 30) == (20, 100)
    assert chunk_range(10, 40, 30) == (0, 40)  # not before the first frame
    assert chunk_range(0, 40, 30) == (0, 40)


@pytest.mark.slow  # worker pools (a few seconds each)
def test_a_stateless_detector_gives_the_same_result_whatever_the_chunking(tmp_path, fakes, caplog):
    session = session_with(tmp_path, [90])
    one = read_keypoints2d(detect.main(session, detect.Config(detector="still", workers=1))).data
    with caplog.at_level(logging.INFO, logger="mocap.stages.detect"):
        two = read_keypoints2d(detect.main(session, detect.Config(detector="still", workers=2), overwrite=True)).data
    assert detect.last_run["chunks"] == 2 and detect.last_run["workers"] == 2  # one camera on two workers
    assert "(2 workers, 2 chunks;" in caplog.text
    assert np.isfinite(one).all() and np.array_equal(one, two)


@pytest.mark.slow  # worker pools (a few seconds each)
def test_a_tracker_is_not_cut_unless_asked_and_then_warm_started(tmp_path, fakes):
    session = session_with(tmp_path, [90, 90, 90])
    whole = read_keypoints2d(detect.main(session, detect.Config(detector="tracker", workers=1))).data
    again = read_keypoints2d(detect.main(session, detect.Config(detector="tracker", workers=2), overwrite=True)).data
    assert detect.last_run["chunks"] == 3  # 3 cameras on 2 workers: whole cameras, identical results
    assert np.array_equal(whole, again)
    cut = read_keypoints2d(detect.main(session, detect.Config(detector="tracker", workers=2, split=True),
                                       overwrite=True)).data
    assert detect.last_run["chunks"] == 4  # one camera in halves
    assert not np.array_equal(whole, cut)  # the cut chunk ran over frames before its range, not from a cold start
    assert np.allclose(whole, cut, atol=0.01)  # 30 warm-up frames: the tracker's memory (0.7 ** 30) is gone
    cold = detect.Config(detector="tracker", start=45)  # what the second half would give without warm-up
    _, data, _ = detect.detect_video("cam2", session / "videos" / "cam2.avi", cold)
    assert np.abs(data[0, 0, :, 0] - whole[45, 1, 0, :, 0]).max() > 0.1


@pytest.mark.slow  # worker pools (a few seconds each)
def test_more_workers_than_chunks_starts_only_what_is_needed(tmp_path, fakes):
    session = session_with(tmp_path, [30, 30])
    detect.main(session, detect.Config(detector="tracker", workers=8))
    assert detect.last_run["workers"] == 2 and detect.last_run["chunks"] == 2
    assert read_keypoints2d(session / "pose2d.h5").shape == (30, 2, detect.Config().slots, 33)


def test_split_is_a_checked_setting_kept_in_the_file(tmp_path, fakes):
    """``split`` is part of the file's detection config: a finished file made without it is redone (not resumed)."""
    from mocap.io.hdf5 import keypoints2d_status

    session = session_with(tmp_path, [30])
    out = detect.main(session, detect.Config(detector="still", workers=1))
    assert "split" not in keypoints2d_status(out)[1]
    out = detect.main(session, detect.Config(detector="still", workers=1, split=True, stop=20))
    assert keypoints2d_status(out)[1]["split"] is True and read_keypoints2d(out).data.shape[0] == 20


def test_deferred_module_loads_on_first_use():
    code = ("import sys; from mocap.detect.chunks import defer_import; defer_import('xml.dom.minidom');"
            "import xml.dom.minidom as m; print(type(sys.modules['xml.dom.minidom']).__name__);"
            "print(m.parseString('<a/>').documentElement.tagName, type(sys.modules['xml.dom.minidom']).__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["Deferred", "a", "module"]


class DiesOnce(Brightness):
    """Kills its worker process at the frame of 0.5 s, once (a marker file, ``model_path``, remembers), or
    every time without a marker path."""

    def __init__(self, variant="full", model_path=None, num_poses=1):
        super().__init__(variant, model_path, num_poses)
        self.marker = Path(model_path) if model_path else None

    def __call__(self, image_bgr, timestamp_ms):
        if timestamp_ms >= 500 and (self.marker is None or not self.marker.exists()):
            if self.marker is not None:
                self.marker.write_text("died")
            os._exit(3)  # as the kernel's OOM killer or a crash in native code would end it
        return super().__call__(image_bgr, timestamp_ms)


@pytest.mark.slow  # worker pools (a few seconds each)
def test_a_worker_dying_mid_chunk_has_its_chunks_run_again_once(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(DETECTORS, "still", f"{__name__}:Brightness")
    monkeypatch.setitem(DETECTORS, "dies", f"{__name__}:DiesOnce")
    session = session_with(tmp_path / "take", [60])
    truth = read_keypoints2d(detect.main(session, detect.Config(detector="still", workers=1))).data
    with caplog.at_level(logging.WARNING, logger="mocap.stages.detect"):
        out = detect.main(session, detect.Config(detector="dies", workers=2, model_path=str(tmp_path / "died")),
                          overwrite=True)
    assert (tmp_path / "died").is_file() and "a worker process died" in caplog.text
    assert np.array_equal(read_keypoints2d(out).data, truth)  # every frame once, as without the death
    with pytest.raises(RuntimeError, match=r"a worker process died 2 times .*chunks not done: \['cam1\[0:30\]', "
                                           r"'cam1\[30:60\]'\]\. The cameras finished are kept"):
        detect.main(session, detect.Config(detector="dies", workers=2), overwrite=True)
    assert read_keypoints2d(out).data.shape == truth.shape  # the earlier result is untouched


def test_bench_sweeps_measure_against_the_unchunked_run(tmp_path, fakes):
    from dataclasses import replace

    from mocap.bench.detect import speed_options, warmup_sweep

    video = ramp_video(tmp_path / "cam.avi", 60, 3)
    still = warmup_sweep(video, (30,), (0, 10), 15, detect.Config(detector="still"))
    assert [r["max_px"] for r in still] == [0.0, 0.0]  # no memory: a cut changes nothing
    tracked = warmup_sweep(video, (30,), (0, 10, 30), 15, detect.Config(detector="tracker"))
    assert tracked[0]["max_px"] > tracked[1]["max_px"] > 0 and tracked[2]["max_px"] == 0  # 30: from frame 0
    ref = detect.Config(detector="still")
    rows = speed_options(video, {"stride 2": replace(ref, stride=2)}, ref)
    assert [r["option"] for r in rows] == ["reference", "stride 2"] and [r["frames"] for r in rows] == [60, 30]
    assert rows[1]["median_px"] == 0.0 and rows[1]["p95_px"] == 0.0  # compared on the frames both detect


@pytest.mark.parametrize("workers", [1, 2])
def test_a_shorter_camera_ending_before_start_is_left_missing(tmp_path, fakes, caplog, workers):
    """Cameras 60 and 30 frames long (within the length difference sync explains), --start 40: the shorter
    camera's empty chunk failed the whole detection with "need stride ≥ 1, start ≥ 0 and stop > start" (its
    Config rebuilt for 40–40). It is left missing, with a warning."""
    session = session_with(tmp_path, [60, 30])
    with caplog.at_level(logging.WARNING):
        kp = read_keypoints2d(detect.main(session, detect.Config(detector="still", workers=workers, start=40)))
    assert kp.data.shape[:2] == (20, 2)
    assert np.isfinite(kp.data[:, 0]).all() and np.isnan(kp.data[:, 1]).all()
    assert "camera cam2: its video ends at frame 30, before detect.start = 40: left missing (NaN)" in caplog.text


def test_a_finished_file_of_another_config_is_redone_not_refused(tmp_path, fakes):
    """A detection that failed before writing anything (a model file missing) and was run again as the runner does
    (resumed: the same settings) took the finished pose2d.h5 of the earlier settings for its work and refused:
    "was started with another detection config; use --overwrite". Nothing of that file can be resumed: redone."""
    session = session_with(tmp_path, [40, 40])
    first = read_keypoints2d(detect.main(session, detect.Config(detector="still", workers=1))).data
    again = read_keypoints2d(detect.main(session, detect.Config(detector="still", workers=1, stop=20))).data
    assert first.shape[0] == 40 and again.shape[0] == 20 and np.array_equal(again, first[:20])
