"""A pool worker keeps its ``persons = auto`` detector between chunks (mocap.detect.pool_detectors): a restarted
ScanningPose gives what a new one gives (on real pixels, bit for bit), a worker restarts the detector of its last
chunk for a next one with the same settings only, and closes it when it cannot be reused or the worker exits."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from test_detect_scan import frames_of
from test_detect_scan_chunks import FPS, Landmarker, N, fake_mediapipe

from mocap.detect import chunks, pool_detectors, scan
from mocap.stages import detect


def later_chunk(restarted, make, frames, first: int):
    """``frames`` (a chunk from frame ``first`` of its video, at 60 fps) through the restarted detector and through
    a new one (``make()``, closed after): (the restarted's keypoints, the new one's, the new one)."""
    new = make()
    try:
        t = [round((first + i) * 1000 / 60) for i in range(len(frames))]
        a = np.stack([restarted(img, ti) for img, ti in zip(frames, t, strict=True)])
        b = np.stack([new(img, ti) for img, ti in zip(frames, t, strict=True)])
    finally:
        new.close()
    return a, b, new


@pytest.mark.slow
@pytest.mark.shared_data
def test_a_restarted_scanning_pose_gives_what_a_new_one_gives(shared_data):
    """The first clip makes it follow two people (a second camera's person walks into the right half at frame 7);
    restarted, it runs another camera exactly as a new detector does."""
    videos = shared_data / "pose2sim_demo" / "videos"
    left, right = frames_of(videos / "cam01.mp4", 14, 0.5), frames_of(videos / "cam04.mp4", 14, 0.5)
    h, w = left[0].shape[:2]
    other = frames_of(videos / "cam02.mp4", 12, 0.5)
    reused = scan.ScanningPose(num_poses=10, scan_every=5)
    try:
        for i, (a, b) in enumerate(zip(left, right, strict=True)):
            image = np.zeros((max(h, b.shape[0]), w + b.shape[1], 3), np.uint8)
            image[:h, :w] = a
            if i >= 7:
                image[:b.shape[0], w:] = b
            reused(image, round(i * 1000 / 60))
        assert reused.k == 2 and reused.stats["grown"] == 1  # it had a state to forget
        scanner = reused._scanner
        reused.restart()
        assert reused.k == 1 and reused._scanner is scanner and reused.stats["frames"] == 0
        reused.phase = new_phase = 3  # a later chunk's phase, as detect_video sets it

        def make():
            made = scan.ScanningPose(num_poses=10, scan_every=5)
            made.phase = new_phase
            return made

        a, b, new = later_chunk(reused, make, other, 40)
    finally:
        reused.close()
    assert np.isfinite(a[:, 0]).all()
    assert np.array_equal(a, b, equal_nan=True)  # bit-identical
    assert reused.stats == new.stats and reused.stats["scans"] == 3  # frames 0, 2 and 7 (phase 3, every 5)
    with pytest.raises(RuntimeError, match="closed ScanningPose cannot restart"):
        reused.restart()


def write_video(path, n: int = N) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (64, 48))
    for i in range(n):
        writer.write(np.full((48, 64, 3), 10 + 4 * i, np.uint8))
    writer.release()


def test_a_worker_restarts_its_last_chunks_detector_for_the_next_with_the_same_settings(tmp_path, monkeypatch):
    fake_mediapipe(monkeypatch)
    made, closed = [], []
    monkeypatch.setattr(scan, "_landmarker", lambda variant, model_path, mode, k, **kw: (None, made.append(k) or
                                                                                             Landmarker(k)))
    real_close = scan.ScanningPose.close
    monkeypatch.setattr(scan.ScanningPose, "close", lambda self: closed.append(self) or real_close(self))
    video = tmp_path / "cam1.avi"
    write_video(video)
    cfg = detect.Config(persons="auto", scan_every=15, hands=False)
    _, alone, _ = detect.detect_video("cam1", video, cfg)  # not a pool worker: nothing kept
    assert closed and not pool_detectors._used
    monkeypatch.setattr(chunks.worker, "started", True)
    monkeypatch.setattr(pool_detectors, "_used", {})
    monkeypatch.setattr(pool_detectors, "_finalizer", None)
    _, first, stats = detect.detect_video("cam1", video, cfg)
    (kept,) = pool_detectors._used.values()
    assert kept.k == 2 and stats["scans"]["grown"] == 1  # kept as the chunk left it, restarted when taken
    before = len(closed)
    _, _, _, part, stats = chunks.detect_chunk("cam1", video, cfg, 40, N, 30, position=0)
    assert pool_detectors._used and next(iter(pool_detectors._used.values())) is kept and len(closed) == before
    np.testing.assert_array_equal(part, alone[40:])
    np.testing.assert_array_equal(first, alone)
    assert stats["scans"] == {"frames": 50, "scans": 4, "grown": 1, "shrunk": 0, "most": 2}  # its own chunk's
    # other settings: a new detector, and the one kept is closed when the new one is kept in its place
    other = detect.Config(persons="auto", scan_every=10, hands=False)
    _, _, stats = detect.detect_video("cam1", video, other)
    assert closed[-1] is kept and next(iter(pool_detectors._used.values())) is not kept
    # a chunk that fails (Ctrl-C) closes its detector rather than keeping it
    last = next(iter(pool_detectors._used.values()))
    monkeypatch.setattr(chunks.worker, "stop_requested", True)
    with pytest.raises(KeyboardInterrupt):
        detect.detect_video("cam1", video, other)
    assert closed[-1] is last and not pool_detectors._used
    # the worker's exit closes what it keeps
    monkeypatch.setattr(chunks.worker, "stop_requested", False)
    detect.detect_video("cam1", video, other)
    (last,) = pool_detectors._used.values()
    pool_detectors._finalizer()
    assert closed[-1] is last and not pool_detectors._used


def test_a_detector_that_cannot_restart_is_closed_after_its_chunk(tmp_path, monkeypatch):
    fake_mediapipe(monkeypatch)
    video = tmp_path / "cam1.avi"
    write_video(video, 5)
    monkeypatch.setattr(chunks.worker, "started", True)
    monkeypatch.setattr(pool_detectors, "_used", {})

    class Plain:  # a tracker without restart(): a new one per chunk
        keypoint_set, num_poses, closed = "blazepose33", 1, 0

        def __call__(self, image, t):
            return np.zeros((1, 33, 3))

        def close(self):
            Plain.closed += 1

    monkeypatch.setattr(detect, "make_detector", lambda cfg: Plain())
    detect.detect_video("cam1", video, detect.Config(persons=1, hands=False))
    detect.detect_video("cam1", video, detect.Config(persons=1, hands=False))
    assert Plain.closed == 2 and not pool_detectors._used


@pytest.mark.slow
@pytest.mark.shared_data
def test_a_restarted_body_and_hands_detector_gives_what_a_new_one_gives(shared_data):
    """detect.hands on (body52's default) with persons = auto: a pool worker restarts the body + hands detector for
    its next chunk instead of loading the hand models again (~0.4 CPU s a chunk); it forgets the hands it followed
    and gives, bit for bit, what a new one gives."""
    from mocap.detect.hands import WithHands

    videos = shared_data / "pose2sim_demo" / "videos"
    first, other = frames_of(videos / "cam01.mp4", 6), frames_of(videos / "cam03.mp4", 6)
    reused = WithHands(scan.ScanningPose(num_poses=10, scan_every=5))
    try:
        for i, img in enumerate(first):
            reused(img, round(i * 1000 / 60))
        assert reused.hands.previous and reused.hands.stats["found"] > 0  # it had hands to forget
        models = reused.hands.landmarks
        reused.restart()
        assert not reused.hands.previous and set(reused.hands.stats.values()) == {0}
        assert reused.hands.landmarks is models and reused.body.stats["frames"] == 0
        a, b, new = later_chunk(reused, lambda: WithHands(scan.ScanningPose(num_poses=10, scan_every=5)), other, 30)
    finally:
        reused.close()
    assert np.isfinite(a[:, 0, 33:]).any()  # hands found
    assert np.array_equal(a, b, equal_nan=True)  # bit-identical
    assert reused.hands.stats == new.hands.stats


def test_body_and_hands_restart_only_when_the_body_detector_can(monkeypatch):
    """A tracking body detector without restart() (persons = 1) leaves the body + hands detector without one: the
    worker closes it after its chunk (a new one per chunk, as before)."""
    from mocap.detect import hands

    class Hands:
        def __init__(self, variant):
            self.restarted = 0

        def restart(self):
            self.restarted += 1

    class Body:
        keypoint_set, num_poses = "blazepose33", 1

    class Restartable(Body):
        def restart(self):
            self.restarted = True

    monkeypatch.setattr(hands, "HandDetector", Hands)
    assert not hasattr(hands.WithHands(Body()), "restart")
    both = hands.WithHands(Restartable())
    both.restart()
    assert both.body.restarted and both.hands.restarted == 1
    cfg = detect.Config(persons="auto", hands=True)
    assert pool_detectors.reuse(cfg, both)
    assert pool_detectors.take(cfg) is both and both.hands.restarted == 2
    assert not pool_detectors.reuse(cfg, hands.WithHands(Body()))
