"""The second detection pass's crops in worker processes (mocap.detect.recover_pool): the same skeletons as this
process computing them in turn, parts that cover every crop once, and one process for a handful of crops."""

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
    monkeypatch.setattr("mocap.detect.chunks.cores", lambda: 16)
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
