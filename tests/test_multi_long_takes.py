"""Long takes of several people: the occlusion measure (mocap.multi.overlap) goes through the take by blocks of
frames, with the same result as all at once and a peak memory that does not grow with the take beyond its
output."""

from __future__ import annotations

import tracemalloc

import numpy as np

from mocap.multi import overlap
from mocap.multi.overlap import occluded, sigma_ratio
from tests.test_multi_overlap import detections, one_behind_the_other


def _take(repeats: int):
    rig, truth = one_behind_the_other()
    kp, _ = detections(rig, truth, 2.0, 6.0)
    xy = np.tile(kp.xy, (repeats, 1, 1, 1, 1))
    X = np.tile(truth, (repeats, 1, 1, 1))
    X[::7, 1, ::3] = np.nan  # joints not triangulated in some frames
    return rig, xy, X


def test_blocks_of_frames_give_the_same_result(monkeypatch):
    rig, xy, X = _take(3)  # 180 frames
    whole = occluded(rig, xy, X, "coco17")
    usable = np.isfinite(xy[..., 0])
    ratio = sigma_ratio(rig, xy, X, usable, whole)
    assert whole.any() and ratio[0] > 1.5
    monkeypatch.setattr(overlap, "FRAME_BLOCK", 7)  # blocks that do not divide the take
    assert np.array_equal(occluded(rig, xy, X, "coco17"), whole)
    assert sigma_ratio(rig, xy, X, usable, whole) == ratio


def _peak(fn) -> int:
    tracemalloc.start()
    try:
        out = fn()
        return tracemalloc.get_traced_memory()[1] - out.nbytes
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_take_beyond_its_output(monkeypatch):
    monkeypatch.setattr(overlap, "FRAME_BLOCK", 60)
    short, long_ = _take(2), _take(16)  # 120 and 960 frames
    p_short = _peak(lambda: occluded(*short, "coco17"))
    p_long = _peak(lambda: occluded(*long_, "coco17"))
    assert p_long < 1.5 * p_short  # one block's work at a time (all at once: 8×)
