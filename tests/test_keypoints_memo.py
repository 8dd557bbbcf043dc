"""The session's 2D keypoints read once per run and shared between the stages of one process (issue 17): the
same keypoints and repairs as a fresh read, every caller gets its own copy, and never stale: a new or
rewritten pose2d.h5, other time offsets, another rig, other settings or new triangulated points are read
again."""

import json

import h5py
import numpy as np
import pytest
from conftest import count_calls
from test_swaps import swapped_take

from mocap.io import hdf5
from mocap.io.hdf5 import write_keypoints2d
from mocap.io.rig_files import write_rig
from mocap.session import Session
from mocap.stages import keypoints_memo, triangulate
from mocap.types import Camera, Keypoints2D, Rig


@pytest.fixture
def session(tmp_path):
    rig, kp, _, _ = swapped_take(120, swaps=0.05, seed=3)
    (tmp_path / "calibration").mkdir()
    write_rig(rig, tmp_path / "calibration" / "rig.toml")
    write_keypoints2d(kp, tmp_path / "pose2d.h5")
    keypoints_memo.clear()
    hdf5._KEYPOINTS_MEMO.clear()
    yield Session(tmp_path)
    keypoints_memo.clear()
    hdf5._KEYPOINTS_MEMO.clear()


@pytest.fixture
def computed(monkeypatch):
    """How many times the keypoints were really read and repaired."""
    return count_calls(monkeypatch, triangulate, "_read_session_keypoints")


def fresh(session, rig, **kwargs):
    keypoints_memo.clear()
    hdf5._KEYPOINTS_MEMO.clear()
    return triangulate.read_session_keypoints(session, rig, **kwargs)


def assert_same(a, b):
    (ka, ea), (kb, eb) = a, b
    np.testing.assert_array_equal(ka.data, kb.data)  # NaN where NaN
    assert (ka.camera_names, ka.keypoint_set, ka.fps) == (kb.camera_names, kb.keypoint_set, kb.fps)
    assert json.dumps(ea, sort_keys=True, default=str) == json.dumps(eb, sort_keys=True, default=str)


def test_read_once_and_the_same_as_a_fresh_read(session, computed):
    rig = session.rig()
    first = triangulate.read_session_keypoints(session, rig)
    again = triangulate.read_session_keypoints(session, session.rig())  # the rig read again: equal content
    assert len(computed) == 1
    assert first[1]["swaps_repaired"]  # the take has swaps: the repair's record is part of what is shared
    assert_same(first, again)
    assert_same(again, fresh(session, rig))
    # the same read without the repair: kept on the way (the report reads both): no third read, a fresh one's result
    unrepaired = triangulate.read_session_keypoints(session, rig, repair_swaps=False)
    assert len(computed) == 2 and not np.array_equal(unrepaired[0].data, first[0].data, equal_nan=True)
    assert_same(unrepaired, fresh(session, rig, repair_swaps=False))
    assert len(computed) == 3 and "swaps_repaired" not in unrepaired[1]
    other = triangulate.read_session_keypoints(session, rig, single_performer=False, repair_swaps=False)
    assert len(computed) == 4 and other[0].shape == unrepaired[0].shape  # other arguments: read


def test_every_caller_gets_its_own_copy(session, computed):
    rig = session.rig()
    kp, extra = triangulate.read_session_keypoints(session, rig)
    kp.data[:] = 0.0
    extra.clear()
    kp2, extra2 = triangulate.read_session_keypoints(session, rig)
    assert len(computed) == 1 and np.isnan(kp2.data).any() and extra2["swaps_repaired"]
    raw = session.keypoints2d(rig)
    raw.data[:] = 0.0
    assert np.isnan(session.keypoints2d(rig).data).any()


def test_a_new_pose2d_file_is_read_again(session, computed):
    rig = session.rig()
    before = triangulate.read_session_keypoints(session, rig)
    kp = hdf5.read_keypoints2d(session.pose2d_h5)
    data = kp.data.copy()
    data[..., :2] += 3.0  # same shape, same size on disk or nearly: only the content differs
    write_keypoints2d(Keypoints2D(data, kp.camera_names, kp.keypoint_set, kp.fps), session.pose2d_h5)
    after = triangulate.read_session_keypoints(session, rig)
    assert len(computed) == 2 and not np.allclose(after[0].xy, before[0].xy, equal_nan=True)
    assert_same(after, fresh(session, rig))


def test_a_pose2d_file_changed_in_place_is_read_again(session):
    rig = session.rig()
    first = session.keypoints2d(rig)
    with h5py.File(session.pose2d_h5, "r+") as f:  # not replaced: the same inode, changed in place
        f["keypoints"][0, 0, 0, 0, 0] = 12345.0
    assert session.keypoints2d(rig).data[0, 0, 0, 0, 0] == 12345.0 != first.data[0, 0, 0, 0, 0]


def test_other_offsets_rig_settings_or_points_are_read_again(session, computed):
    rig = session.rig()
    triangulate.read_session_keypoints(session, rig)
    session.sync_file.write_text(json.dumps({"offsets_frames": {rig.names[1]: 2.0}}))
    shifted = triangulate.read_session_keypoints(session, rig)
    assert len(computed) == 2
    assert_same(shifted, fresh(session, rig))

    c = rig.cameras[0]
    moved = np.array(c.cam_from_world, dtype=float)
    moved[0, 3] += 0.05
    other = Rig((Camera(c.name, c.K, c.dist, moved, c.size, c.model),) + rig.cameras[1:])
    computed.clear()
    triangulate.read_session_keypoints(session, other)
    triangulate.read_session_keypoints(session, rig, cfg=triangulate.Config(min_score=0.5))
    triangulate.read_session_keypoints(session, rig, single_performer=False)
    assert len(computed) == 3

    computed.clear()  # the triangulate stage writes its points: the readers that follow its record read again
    triangulate.main(session, triangulate.Config(), overwrite=True)
    computed.clear()
    recorded = triangulate.read_session_keypoints(session, rig)
    assert len(computed) == 1
    assert_same(recorded, fresh(session, rig))


def test_keypoints_from_openpose_folders_are_not_kept(session, computed):
    session.pose2d_h5.unlink()
    assert keypoints_memo.key(session, session.rig(), {}, None, ()) is None
    assert keypoints_memo.get(None) is None


def test_a_touched_pose2d_file_is_read_again(session, monkeypatch):
    """Same inode, same size: its modification time alone says it may have changed."""
    import os

    reads = []
    real = hdf5.read_keypoints2d
    monkeypatch.setattr(hdf5, "read_keypoints2d", lambda path: reads.append(path) or real(path))
    rig = session.rig()
    session.keypoints2d(rig)
    session.keypoints2d(rig)
    assert len(reads) == 1
    st = session.pose2d_h5.stat()
    os.utime(session.pose2d_h5, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    session.keypoints2d(rig)
    assert len(reads) == 2


def test_the_stage_s_own_passes_are_not_kept_and_the_later_readers_are(session, computed):
    """The triangulate stage's passes (which search the swaps) are never read again under their key: not kept
    (memory on long takes); refine's and the report's reads, through the recorded settings, are."""
    triangulate.main(session, overwrite=True)
    assert not keypoints_memo._MEMO and len(computed) == 1
    later = triangulate.read_session_keypoints(session, session.rig())
    assert len(keypoints_memo._MEMO) == 2  # with and without the swap repair (the report reads both)
    assert_same(later, triangulate.read_session_keypoints(session, session.rig()))
    assert len(computed) == 2


def test_every_detection_is_the_aligned_keypoints_and_not_kept(session):
    """What the report's mirrored-camera check reads: every slot aligned by sync.json, nothing selected or
    repaired (as read_session_keypoints with persons=1 and no repair gives), not kept in the memo."""
    (session.root / "sync.json").write_text(json.dumps({"offsets_frames": {"cam02": 1.5}}))
    rig = session.rig()
    got = triangulate.every_detection(session, rig)
    assert not keypoints_memo._MEMO
    want = fresh(session, rig, single_performer=False, repair_swaps=False, persons=1)[0]
    assert_same((got, {}), (want, {}))
    assert not np.array_equal(got.data, session.keypoints2d(rig).data, equal_nan=True)  # the offset applied


def test_the_last_reader_is_handed_the_entries(session, computed):
    """The report's page, the run's last reader: the memo's entries handed over (no copies held beside them on
    long takes), the same keypoints; a later reader reads again."""
    rig = session.rig()
    first = triangulate.read_session_keypoints(session, rig)
    assert len(keypoints_memo._MEMO) == 2  # with and without the swap repair
    last = triangulate.read_session_keypoints(session, rig, last=True)
    assert len(computed) == 1 and len(keypoints_memo._MEMO) == 1  # handed over, no longer kept
    assert_same(first, last)
    raw = triangulate.session_keypoints(session, rig, repair_swaps=False, last=True)
    assert not keypoints_memo._MEMO and len(computed) == 1
    again = triangulate.read_session_keypoints(session, rig)
    assert len(computed) == 2
    assert_same(first, again)
    assert_same((raw, {}), (fresh(session, rig, repair_swaps=False)[0], {}))
