"""persons = auto with scans for new people (mocap.detect.scan): the boxes and their overlap, the setting, and on
real pixels: a single-person camera gives exactly what persons = 1 gives, a second person who walks in is followed
from the next scan and let go once gone."""

from __future__ import annotations

import numpy as np
import pytest

from mocap.detect.scan import SHRINK_SCANS, iou, new_people, pose_boxes


def test_iou_of_boxes():
    a = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float)
    b = np.array([[5, 0, 15, 10], [0, 0, 10, 10], [100, 100, 101, 101]], float)
    expected = np.array([[50 / 150, 1, 0], [0, 0, 0]])
    np.testing.assert_allclose(iou(a, b), expected)
    assert iou(np.array([[0, 0, 0, 0.0]]), np.array([[0, 0, 0, 0.0]]))[0, 0] == 0  # empty boxes: no overlap, no NaN


def skeleton(cx: float, cy: float, height: float) -> np.ndarray:
    """(33, 3) blazepose33 landmarks of a standing person: hips at (cx, cy), head and feet half a height away."""
    out = np.zeros((33, 3))
    out[:, 0] = cx + np.linspace(-0.1, 0.1, 33) * height
    out[:, 1] = cy + np.linspace(-0.5, 0.5, 33) * height
    out[23:25, :2] = [[cx - 0.05 * height, cy], [cx + 0.05 * height, cy]]
    out[:, 2] = 0.9
    return out


def test_a_pose_box_is_the_body_circle_grown_as_mediapipe_grows_it():
    box = pose_boxes(skeleton(100, 200, 160)[None])[0]
    r = 1.25 * np.hypot(0.1 * 160, 0.5 * 160)  # the farthest landmark, grown 1.25×
    np.testing.assert_allclose(box, [100 - r, 200 - r, 100 + r, 200 + r])


def test_new_people_are_the_boxes_no_followed_person_overlaps():
    followed = pose_boxes(np.stack([skeleton(100, 200, 160), skeleton(600, 200, 160)]))
    same = followed + 8.0  # the detector's box of the same two people, a little off
    elsewhere = pose_boxes(skeleton(1100, 200, 160)[None])
    assert new_people(same, followed, 0.5) == 0
    assert new_people(np.concatenate([same, elsewhere]), followed, 0.5) == 1
    assert new_people(elsewhere, followed[:0], 0.5) == 1  # nobody followed yet: every box is new
    assert new_people(elsewhere[:0], followed, 0.5) == 0
    # two people close together: both boxes overlap the one followed person, who explains only one of them
    beside = pose_boxes(np.stack([skeleton(100, 200, 160), skeleton(130, 200, 160)]))
    assert iou(beside[1:], beside[:1])[0, 0] > 0.5 and new_people(beside, beside[:1], 0.5) == 1


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "10"])
def test_scan_every_is_checked(bad):
    from mocap.stages.detect import Config

    with pytest.raises(ValueError, match=f"scan_every must be a number of frames ≥ 1, got {bad!r}"):
        Config(persons="auto", scan_every=bad)


def test_which_detector_each_persons_setting_gets():
    from mocap.detect.scan import scanning
    from mocap.stages.detect import Config

    assert scanning(Config(persons="auto"))
    assert not scanning(Config(persons="auto", scan_every=1))  # MediaPipe's own multi-pose tracking, as before
    assert not scanning(Config(persons=1)) and not scanning(Config(persons=3))
    assert not scanning(Config(persons="auto", detector="onnx"))


def frames_of(video, n: int, scale: float = 1.0) -> list[np.ndarray]:
    import cv2

    from mocap.io.video import read_frames

    return [cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale != 1 else img
            for _, img in read_frames(video, 1, 0, n)]


@pytest.mark.slow
@pytest.mark.shared_data
def test_one_person_gives_exactly_what_persons_1_gives(shared_data):
    from mocap.detect.blazepose import BlazePose
    from mocap.detect.scan import ScanningPose

    frames = frames_of(shared_data / "pose2sim_demo" / "videos" / "cam01.mp4", 24)
    one, auto = BlazePose(num_poses=1), ScanningPose(num_poses=10, scan_every=5)
    try:
        a = np.stack([one(img, round(i * 1000 / 60)) for i, img in enumerate(frames)])
        b = np.stack([auto(img, round(i * 1000 / 60)) for i, img in enumerate(frames)])
    finally:
        one.close()
        auto.close()
    assert b.shape == (24, 10, 33, 3) and np.isfinite(a).all()
    assert np.array_equal(a[:, 0], b[:, 0])  # bit-identical
    assert np.isnan(b[:, 1:]).all()
    assert auto.stats == {"frames": 24, "scans": 5, "grown": 0, "shrunk": 0, "most": 1}


@pytest.mark.slow
@pytest.mark.shared_data
def test_a_second_person_is_followed_from_the_next_scan_and_let_go_once_gone(shared_data):
    """Two real cameras side by side: the right one's person walks in at frame 7 and is gone from frame 27."""
    from mocap.detect.scan import ScanningPose

    videos = shared_data / "pose2sim_demo" / "videos"
    left, right = frames_of(videos / "cam01.mp4", 45, 0.5), frames_of(videos / "cam04.mp4", 45, 0.5)
    h, w = left[0].shape[:2]
    auto = ScanningPose(num_poses=10, scan_every=5)
    counts = []
    try:
        for i, (a, b) in enumerate(zip(left, right, strict=True)):
            image = np.zeros((max(h, b.shape[0]), w + b.shape[1], 3), np.uint8)
            image[:h, :w] = a
            if 7 <= i < 27:
                image[:b.shape[0], w:] = b
            poses = auto(image, round(i * 1000 / 60))
            counts.append(int(np.isfinite(poses[:, :, 0]).any(axis=1).sum()))
            if i == 26:  # one person in each half
                x = poses[np.isfinite(poses[:, :, 0]).any(axis=1), :, 0]
                assert sorted(np.nanmedian(x, axis=1) > w) == [False, True]
    finally:
        auto.close()
    assert counts[:10] == [1] * 10  # the scan at frame 5 saw one person; the one at 10 finds the second
    assert all(c == 2 for c in counts[10:27]), counts
    assert all(c == 1 for c in counts[27:]), counts
    assert auto.stats["grown"] == 1 and auto.stats["shrunk"] == 1 and auto.stats["most"] == 2
    assert auto.k == 1  # let go after SHRINK_SCANS scans with one person
    assert SHRINK_SCANS * 5 <= 45 - 27


def test_the_persons_axis_is_cut_to_the_slots_some_view_filled(tmp_path):
    from mocap.detect.scan import fit_persons_axis
    from mocap.io.hdf5 import (
        create_keypoints2d,
        keypoints2d_info,
        keypoints2d_status,
        read_keypoints2d,
        update_keypoints2d_info,
        write_camera,
    )

    path = tmp_path / "pose2d.h5"
    create_keypoints2d(path, 6, ["a", "b"], 10, "coco17", 30.0, {"persons": "auto"})
    data = np.full((6, 10, 17, 3), np.nan, np.float32)
    data[2, 1] = 1.5  # a second person in one frame of camera a
    data[:, 0] = 2.0
    write_camera(path, 0, data)
    write_camera(path, 1, np.where(np.arange(10)[None, :, None, None] == 0, data, np.nan))
    update_keypoints2d_info(path, recover={"recovered": 1})
    fit_persons_axis(path)
    kp = read_keypoints2d(path)
    assert kp.shape == (6, 2, 2, 17) and np.array_equal(kp.data[:, 0], data[:, :2], equal_nan=True)
    assert keypoints2d_status(path)[0].all() and keypoints2d_status(path)[1] == {"persons": "auto"}
    assert keypoints2d_info(path) == {"recover": {"recovered": 1}}
    fit_persons_axis(path, 10)  # resumed: every slot again, nothing lost
    again = read_keypoints2d(path)
    assert again.shape == (6, 2, 10, 17) and np.array_equal(again.data[:, :, :2], kp.data, equal_nan=True)
    assert np.isnan(again.data[:, :, 2:]).all() and keypoints2d_info(path) == {"recover": {"recovered": 1}}
    fit_persons_axis(path, 1)  # never below the slots in use
    assert read_keypoints2d(path).shape == (6, 2, 10, 17)
    empty = tmp_path / "empty.h5"  # nobody anywhere: one slot, as persons = 1 gives
    create_keypoints2d(empty, 3, ["a"], 10, "coco17", 30.0)
    write_camera(empty, 0, np.full((3, 10, 17, 3), np.nan))
    fit_persons_axis(empty)
    assert read_keypoints2d(empty).shape == (3, 1, 1, 17) and not (tmp_path / "empty.persons.h5").exists()


def test_the_second_pass_looks_for_nobody_with_auto_and_one_person_tracked(monkeypatch):
    """persons = auto with one person tracked: no second person to be hidden behind, so no box is looked at even
    where a view misses the person (with persons = 2 the same take is looked at)."""
    from body_synth import blazepose_keypoints, body_motion
    from test_recover import CoordinateVideo

    import mocap.io.video
    from mocap.detect.recover import RecoverConfig, recover_detections
    from mocap.multi.track import TrackConfig
    from mocap.synth.groundtruth import RigSpec, ring_rig
    from mocap.types import Keypoints2D

    F, fps = 30, 30.0
    truth = blazepose_keypoints(body_motion(F, fps, seed=1))[:, None]  # (F, 1, 33, 3)
    rig = ring_rig(RigSpec(size=(640, 360), dist=(0, 0, 0, 0, 0)), truth)
    uv = rig.project(truth)  # (C, F, 1, J, 2)
    data = np.moveaxis(np.concatenate([uv, np.full(uv.shape[:-1] + (1,), 0.9)], axis=-1), 0, 1)
    data = np.concatenate([data, np.full_like(data, np.nan)], axis=2)  # two slots per view
    data[10:20, 0, 0] = np.nan  # view 0 misses the person for a while
    kp = Keypoints2D(data, rig.names, "blazepose33", fps)
    video = CoordinateVideo(np.concatenate([uv, uv], axis=2), rig.names, (0,))
    monkeypatch.setattr(mocap.io.video, "read_frames", video.frames)
    videos = {n: f"/nonexistent/{n}.mp4" for n in rig.names}
    looked = {}
    for persons in ("auto", 2):
        out, stats = recover_detections(rig, kp, videos, np.arange(F), video.model, persons, TrackConfig(), 0.2,
                                        15.0, RecoverConfig(), progress=False)
        looked[persons] = sum(stats["looked"].values())
        if persons == "auto":
            assert stats["skipped"] == "fewer than 2 people tracked" and np.array_equal(out, data, equal_nan=True)
    assert looked == {"auto": 0, 2: 10}


def test_a_failed_cut_of_the_persons_axis_leaves_the_file_closed_and_as_it_was(tmp_path, monkeypatch):
    """keypoints2d_cameras holds the file open while it yields: an error while the cut copy is written (disk full)
    must not leave the file open (it is written again by the next run in this process), nor the half copy."""
    from pathlib import Path

    import h5py

    from mocap.detect import scan
    from mocap.io import hdf5

    path = tmp_path / "pose2d.h5"
    hdf5.create_keypoints2d(path, 4, ["a", "b"], 10, "coco17", 30.0, {"persons": "auto"})
    one = np.where(np.arange(10)[None, :, None, None] == 0, 1.0, np.nan) + np.zeros((4, 10, 17, 3))  # slot 0 only
    for c in range(2):
        hdf5.write_camera(path, c, one)
    real = hdf5.write_camera

    def full_disk(p, c, data):
        if Path(p) != path and c == 1:
            raise OSError("No space left on device")
        real(p, c, data)

    monkeypatch.setattr(hdf5, "write_camera", full_disk)
    with pytest.raises(OSError, match="No space") as failed:
        scan.fit_persons_axis(path)
    assert failed.value is not None  # the traceback (its frames) still held here
    still_open = [h5py.h5f.get_name(i) for i in h5py.h5f.get_obj_ids(types=h5py.h5f.OBJ_FILE)]
    assert not still_open, still_open
    assert not (tmp_path / "pose2d.persons.h5").exists()
    assert hdf5.read_keypoints2d(path).shape == (4, 2, 10, 17)  # as it was
