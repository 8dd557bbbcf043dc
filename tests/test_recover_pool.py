"""The second detection pass's crops in worker processes (mocap.detect.recover_pool): the same skeletons as this
process computing them in turn, parts that cover every crop once, and one process for a handful of crops."""

from pathlib import Path

import numpy as np
import pytest

from mocap.detect import recover_pool


def test_split_covers_every_item_once_in_contiguous_parts():
    items = {0: list(range(10)), 1: list(range(3)), 2: [], 3: list(range(7))}
    for workers in (1, 2, 3, 8, 40):
        parts = recover_pool.split(items, workers)
        for c, v in items.items():
            mine = sorted((a, b) for cc, a, b in parts if cc == c)
            assert [i for a, b in mine for i in range(a, b)] == list(range(len(v)))  # contiguous, once each
        assert len(parts) >= min(workers, sum(map(len, items.values())), 3)  # cameras at least, when asked
        sizes = [b - a for _, a, b in parts]
        assert sizes == sorted(sizes, reverse=True)  # the largest part first


def test_few_crops_stay_in_this_process(monkeypatch):
    monkeypatch.setattr("mocap.threads.cores", lambda: 16)
    assert recover_pool.workers_for(0, recover_pool.MIN_CROPS - 1) == 1
    assert recover_pool.workers_for(0, 3 * recover_pool.MIN_CROPS) == 3
    assert recover_pool.workers_for(2, 100 * recover_pool.MIN_CROPS) == 2
    assert recover_pool.workers_for(0, 100 * recover_pool.MIN_CROPS) == 16


@pytest.mark.shared_data
def test_workers_give_what_one_process_gives(shared_data):
    """Real crops of the Pose2Sim demo through MediaPipe's landmarker: two workers (each camera a part, one camera
    split in two) return, item for item, what this process computes reading the frames in order."""
    from mocap.detect.blazepose import CropPose
    from mocap.io.video import probe

    videos = {c: shared_data / "pose2sim_demo" / "videos" / f"cam0{c + 1}.mp4" for c in range(2)}
    items = {}
    for c, path in videos.items():
        w, h = probe(path).size
        box = np.array([0.0, (h - w) / 2, float(w)])  # the portrait frame's middle square: the performer
        items[c] = [(f, box) for f in (3, 3, 4, 9, 15, 16)]  # one frame twice: two people's boxes in one view
    model = CropPose()
    try:
        readers = {c: recover_pool.serial(videos[c], v, model, 256) for c, v in items.items()}
        one = {c: [readers[c](k) for k in range(len(v))] for c, v in items.items()}
    finally:
        model.close()
    pool = recover_pool.Pool(model.spec, 2)
    seen = []
    try:
        many = pool.run(videos, items, 256, 3, seen.append)
        again = pool.run(videos, {0: items[0][:2]}, 256, 2)  # the next round: the same workers
    finally:
        pool.close()
    assert sum(seen) == 12
    for c in items:
        assert len(many[c]) == len(items[c])
        for a, b in zip(one[c], many[c], strict=True):
            assert np.isfinite(a[:, :, 0]).any()  # somebody found: the comparison means something
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(again[0][1], one[0][1])


def test_a_round_computed_by_the_pool_writes_what_one_process_writes(monkeypatch):
    """The whole pass with the crops computed ahead (the pool's path: only views with a free slot, None for the
    others, found mapped back to each candidate) against the crops computed as the round goes: the same keypoints
    and counts. The workers are stood in for by this process (a stand-in model cannot reach them), every third frame
    of the hidden view has no free slot, and the video ends before the last two frames in one view."""
    import dataclasses

    from test_recover import HIDDEN_VIEW, CoordinateVideo, F
    from test_recover import scene as make_scene

    import mocap.io.video
    from mocap.detect.recover import RecoverConfig, recover_detections
    from mocap.multi.track import TrackConfig

    rig, _, kp, uv = make_scene.__wrapped__()
    data = kp.data.copy()
    data[::3, HIDDEN_VIEW, 0] = data[::3, HIDDEN_VIEW, 1]  # a second detection of the person seen there: no free
    data[::3, HIDDEN_VIEW, 0, :, 0] += 200  # slot, and nobody recovered in those frames
    kp = dataclasses.replace(kp, data=data)
    video = CoordinateVideo(uv, rig.names, (0, 1))
    short = {rig.names[HIDDEN_VIEW]: F - 2}

    def frames(path, stride=1, start=0, stop=None, grey=False, threads=0):
        stop = min(stop, short.get(Path(path).stem, stop))
        yield from video.frames(path, stride, start, stop)

    monkeypatch.setattr(mocap.io.video, "read_frames", frames)

    class Model:
        spec = {"stand-in": True}

        def __call__(self, crop):
            return video.model(crop)

    rounds = []

    def run(pool, videos, items, crop_px, workers, done=lambda n: None):
        rounds.append((workers, {c: len(v) for c, v in items.items()}))
        out = {}
        for c, v in items.items():
            found = recover_pool.serial(videos[c], v, Model(), crop_px)
            got = [found(k) for k in range(len(v))]  # (a worker's list stops where its video ends: Pool.run
            out[c] = got  # leaves None for the rest)
        return out

    monkeypatch.setattr(recover_pool.Pool, "run", run)
    videos = {n: Path(f"/nonexistent/{n}.mp4") for n in rig.names}
    args = (rig, kp, videos, np.arange(F))
    one, s1 = recover_detections(*args, Model(), 2, TrackConfig(), 0.2, 15.0, RecoverConfig(), False, workers=1)
    assert rounds == []  # one process asked for: the crops as the round goes
    many, s2 = recover_detections(*args, Model(), 2, TrackConfig(), 0.2, 15.0, RecoverConfig(), False, workers=2)
    assert rounds and rounds[0][0] == 2, rounds
    np.testing.assert_array_equal(one, many)
    assert s1["recovered"] == s2["recovered"] and s1["no_free_slot"] == s2["no_free_slot"]
    n = s2["recovered"][rig.names[HIDDEN_VIEW]]
    assert n == len([f for f in range(F - 2) if f % 3]), s2  # free slot and a frame to crop: recovered
    assert s2["no_free_slot"][rig.names[HIDDEN_VIEW]] == len(range(0, F, 3))


@pytest.mark.shared_data
def test_workers_look_at_rois_as_one_process_does(shared_data):
    """Real ROIs of the Pose2Sim demo through the pose landmark model alone (RoiPose, the second pass's last look):
    two workers return, item for item, the landmarks and pose flags this process computes reading the frames in
    order, with the workers started by a crop round first (the pass's order) and then given the ROIs."""
    from mocap.detect.blazepose import CropPose
    from mocap.detect.pose_roi import RoiPose
    from mocap.io.video import probe

    videos = {c: shared_data / "pose2sim_demo" / "videos" / f"cam0{c + 1}.mp4" for c in range(2)}
    items = {}
    for c, path in videos.items():
        w, h = probe(path).size
        items[c] = [(f, (w / 2, h / 2, float(w), 0.0)) for f in (2, 2, 5, 11, 12)]  # the performer's middle square
    model = RoiPose()
    try:
        readers = {c: recover_pool.serial_rois(videos[c], v, model) for c, v in items.items()}
        one = {c: [readers[c](k) for k in range(len(v))] for c, v in items.items()}
    finally:
        model.close()
    pool = recover_pool.Pool(CropPose().spec, 2)
    try:
        w, h = probe(videos[0]).size
        pool.run({0: videos[0]}, {0: [(1, np.array([0.0, (h - w) / 2, float(w)]))] * 2}, 256, 2)  # a crop round
        executor = pool._pool
        many = pool.run_rois(videos, items, model.spec, 2)
        assert pool._pool is executor  # the crop round's workers made the ROI model beside their crop model
    finally:
        pool.close()
    for c in items:
        assert len(many[c]) == len(items[c])
        for (a, pa), (b, pb) in zip(one[c], many[c], strict=True):
            assert pa > 0.5 and np.isfinite(a[:, :2]).all()  # a pose found: the comparison means something
            np.testing.assert_array_equal(a, b)
            assert pa == pb
