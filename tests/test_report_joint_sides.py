"""The report's crops colour each detected joint by its body side: the side table made in one pass gives every
joint of every keypoint set the side the per-joint search gives, and the crops are drawn pixel for pixel as
with the per-joint search."""

import numpy as np

from mocap.config_files import preset_names
from mocap.keypoint_sets import get_keypoint_set
from mocap.report import crops


def segments(name):
    kps = get_keypoint_set(name)
    segs, mids = crops.keypoint_segments(kps)
    return segs, crops.segment_sides(tuple(kps.joints) + ("",) * len(mids), segs), len(kps.joints) + len(mids)


def test_joint_sides_match_the_per_joint_search():
    names = preset_names("keypoints")
    assert {"blazepose33", "coco17"} <= set(names)
    for name in names:
        segs, sides, n = segments(name)
        table = crops.joint_sides(segs, sides)
        assert [table.get(i, crops.CENTRE) for i in range(n)] == [crops.sides_of_joint(i, segs, sides)
                                                                  for i in range(n)], name
        assert {crops.LEFT, crops.RIGHT} <= set(table.values()), name


def test_crops_drawn_as_with_the_per_joint_search(monkeypatch):
    segs, sides, n = segments("blazepose33")
    rng = np.random.default_rng(0)
    det = rng.uniform(5, 195, (n, 2))
    det[3] = np.nan
    uv = det + rng.normal(0, 3, det.shape)
    fast = np.zeros((200, 200, 3), np.uint8)
    crops.draw(fast, det, uv, segs, sides, 1.0)
    monkeypatch.setattr(crops, "joint_sides", lambda segs, sides: {
        i: crops.sides_of_joint(i, segs, sides) for i in range(n)})
    slow = np.zeros((200, 200, 3), np.uint8)
    crops.draw(slow, det, uv, segs, sides, 1.0)
    assert fast.any() and np.array_equal(fast, slow)
