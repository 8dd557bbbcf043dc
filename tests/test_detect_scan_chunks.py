"""persons = auto (mocap.detect.scan) under ``detect.split`` / cluster chunks: the scans for new people fall on the
same frames whatever the chunk, so a chunk's frames after its warm-up are those of the whole camera; a landmark
model mediapipe refuses leaves no person detector open. MediaPipe is stood in for by fakes (no model is run)."""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from mocap.detect import chunks, scan
from mocap.stages import detect

FPS, N, ENTERS = 30.0, 60, 32  # a second person walks in at frame 32 (no scan there: 30 and 45 are)


def standing(cx: float) -> np.ndarray:
    out = np.zeros((33, 3))
    out[:, 0] = cx + np.linspace(-16, 16, 33)
    out[:, 1] = 200 + np.linspace(-80, 80, 33)
    out[23:25, :2] = [[cx - 8, 200], [cx + 8, 200]]
    out[:, 2] = 0.9
    return out


PEOPLE = [standing(100), standing(600)]


def present(frame: int) -> list[np.ndarray]:
    return PEOPLE[:2 if frame >= ENTERS else 1]


def frame_of(image: np.ndarray) -> int:
    return int(round((float(image.mean()) - 10) / 4))  # the video's frame i is 10 + 4 i bright


class Landmarker:
    """MediaPipe's VIDEO landmarker made for k people: the first k people in view."""

    def __init__(self, k: int):
        self.k = k

    def detect_for_video(self, image, timestamp_ms):
        return present(frame_of(image))[:self.k]

    def close(self):
        pass


class Scanner:
    """MediaPipe's person detector: the box of everyone in view."""

    closed = 0

    def __call__(self, image):
        return scan.pose_boxes(np.stack(present(frame_of(image))))

    def close(self):
        Scanner.closed += 1


def fake_mediapipe(monkeypatch):
    mp = SimpleNamespace(Image=lambda image_format, data: data, ImageFormat=SimpleNamespace(SRGB=0))
    monkeypatch.setattr(scan, "_import_mediapipe", lambda: mp)
    monkeypatch.setattr(scan, "build_bundle", lambda variant, model_path: None)
    monkeypatch.setattr(scan, "_landmarker", lambda variant, model_path, mode, k, **kw: (mp, Landmarker(k)))
    monkeypatch.setattr(scan, "PersonScanner", lambda bundle, num_poses, min_detection: Scanner())

    def poses(result, shape, num_poses):
        out = np.full((num_poses, 33, 3), np.nan)
        out[:len(result)] = result
        return out

    monkeypatch.setattr(scan, "_poses", poses)


def test_a_chunk_scans_on_the_frames_the_whole_camera_scans(tmp_path, monkeypatch):
    fake_mediapipe(monkeypatch)
    video = tmp_path / "cam1.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (64, 48))
    for i in range(N):
        writer.write(np.full((48, 64, 3), 10 + 4 * i, np.uint8))
    writer.release()
    cfg = detect.Config(persons="auto", scan_every=15, hands=False)
    assert scan.scanning(cfg)
    _, whole, stats = detect.detect_video("cam1", video, cfg)
    people = np.isfinite(whole[..., 0]).any(axis=-1).sum(axis=-1)
    assert list(people) == [1] * 45 + [2] * 15  # found by the scan at 45
    assert stats["scans"]["scans"] == 4
    # frames 40-59 cut as detect.split / the cluster cut them: from frame 10 (30 frames of warm-up)
    _, first, end, part, stats = chunks.detect_chunk("cam1", video, cfg, 40, N, 30, position=0)
    assert (first, end) == (40, N)
    np.testing.assert_array_equal(part, whole[40:])
    assert stats["scans"]["scans"] == 4  # its first frame (10), then 15, 30 and 45 as the whole camera
    # the same chunk as a cluster task (mocap run --scheduler with chunk_frames)
    from dataclasses import asdict

    from mocap import distributed

    _, _, _, task, _ = distributed.detect_chunk("cam1", str(video), asdict(cfg), 40, N, 30, {})
    np.testing.assert_array_equal(task, whole[40:])
    # a chunk that starts on a frame of its own (not a multiple of scan_every) is not scanned later than the whole
    _, _, _, late, _ = chunks.detect_chunk("cam1", video, detect.Config(persons="auto", hands=False), 50, N, 1,
                                           position=0)
    np.testing.assert_array_equal(late, whole[50:])


def test_a_landmark_model_refused_closes_the_person_detector_made_before_it(monkeypatch):
    fake_mediapipe(monkeypatch)

    def refused(*args, **kwargs):
        raise ValueError("blazepose: the landmark model bad.tflite could not be loaded")

    monkeypatch.setattr(scan, "_landmarker", refused)
    closed = Scanner.closed
    with pytest.raises(ValueError, match="could not be loaded"):
        scan.ScanningPose(model_path="bad.tflite")
    assert Scanner.closed == closed + 1
