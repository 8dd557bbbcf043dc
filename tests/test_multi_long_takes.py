"""Long takes of several people: the occlusion measure (mocap.multi.overlap) goes through the take by blocks of
frames, with the same result as all at once and a peak memory that does not grow with the take beyond its
output."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

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


def test_the_info_of_a_points_file_is_read_without_its_arrays(tmp_path):
    """Report and triangulate read the triangulated points' settings and records (info) several times a run:
    the same dict as a full read, at a small fraction of its memory, from the file or from the points read."""
    import h5py

    from mocap.io import hdf5
    from mocap.types import Points3D

    F, P, J, C = 4000, 3, 33, 4
    rng = np.random.default_rng(0)
    info = {"stage": "triangulated", "association": {"persons_found": P, "people": [{"first": 0}] * P}}
    pts = Points3D(rng.normal(size=(F, P, J, 3)), rng.random((F, P, J)), rng.random((F, P, J, C)) > 0.5,
                   tuple(f"cam{c}" for c in range(C)), "blazepose33", 60.0, info)
    path = tmp_path / "triangulated.h5"
    hdf5.write_points3d(pts, path)
    hdf5._POINTS_MEMO.clear()
    tracemalloc.start()
    got = hdf5.read_points3d_info(path)  # from the file
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert got == hdf5.read_points3d(path).info == info
    arrays = pts.xyz.nbytes + pts.reproj_err.nbytes + pts.views.nbytes
    assert peak < 0.25 * arrays  # neither the arrays nor a copy of the file (its digest is taken by blocks)
    import hashlib

    assert hdf5.file_key(path)[-1] == hashlib.sha256(path.read_bytes()).hexdigest()
    got["stage"] = "changed"  # each caller its own copy (also from the points read)
    assert hdf5.read_points3d_info(path) == info
    with h5py.File(path, "r+") as f:
        f.attrs["info"] = "{not json"
    with pytest.raises(ValueError, match="attribute info is not JSON"):
        hdf5.read_points3d_info(path)
