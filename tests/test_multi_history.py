"""A track's per-frame history (mocap.multi.history.FrameStore): the values of a dict, in a fraction of its memory."""

import tracemalloc

import numpy as np
import pytest

from mocap.multi.history import FrameStore, merged
from mocap.multi.tracklets import Track, join_tracks


def _frames(rng, n, first=0, shape=(33, 3)):
    return {f: rng.normal(size=shape) for f in range(first, first + n) if rng.random() < 0.8}


def test_same_as_a_dict():
    rng = np.random.default_rng(0)
    a, b = _frames(rng, 300), _frames(rng, 200, first=250)
    sa, sb = FrameStore(a), FrameStore(b)
    assert len(sa) == len(a) and list(sa) == sorted(a)
    assert all(np.array_equal(sa[f], a[f]) for f in a)
    assert 5000 not in sa and sa.get(5000) is None and "x" not in sa
    both, want = merged(sa, sb), {**a, **b}
    assert len(both) == len(want) and list(both) == sorted(want)
    assert all(np.array_equal(both[f], want[f]) for f in want)
    sa.update(b)  # in place, block by block
    assert len(sa) == len(want) and all(np.array_equal(sa[f], want[f]) for f in want)
    del sa[260]
    assert 260 not in sa and len(sa) == len(want) - 1
    with pytest.raises(ValueError, match=r"shape \(33, 3\), got \(3,\)"):
        sa[7] = np.zeros(3)
    with pytest.raises(ValueError, match="read-only"):
        sa[0][0, 0] = 1.0  # a value handed out is not a way to change the store


def test_track_joins_keep_values():
    rng = np.random.default_rng(1)
    sk_old, sk_young = _frames(rng, 100), _frames(rng, 100, first=80)
    old = Track(np.zeros((33, 3)), 99, 0, skel=sk_old, path={f: x.mean(axis=0) for f, x in sk_old.items()})
    young = Track(np.zeros((33, 3)), 179, 80, skel=sk_young)
    assert isinstance(old.skel, FrameStore) and isinstance(old.path, FrameStore)
    join_tracks(old, young)
    want = {**sk_young, **sk_old}  # the older track's frames win
    assert list(old.skel) == sorted(want) and all(np.array_equal(old.skel[f], want[f]) for f in want)


def test_memory_is_the_data():
    """An hour-long take's history: about the bytes of the skeletons themselves (a dict of arrays costs
    ~1 kB more per frame), growing linearly with frames."""
    x = np.ones((33, 3))
    peaks = []
    for n in (2000, 8000):
        tracemalloc.start()
        s = FrameStore()
        for f in range(n):
            s[f] = x
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert s.nbytes() <= n * (x.nbytes + 1) * 1.05
    assert peaks[1] <= 4 * x.nbytes * 2000 * 1.2 + 100_000
    assert peaks[1] / peaks[0] < 4.4  # linear in frames


def test_view_set_is_a_set_of_triples():
    from mocap.multi.history import ViewSet

    rng = np.random.default_rng(2)
    want = {(int(f), int(c), int(s)) for f, c, s in rng.integers(0, [100000, 16, 10], size=(500, 3))}
    vs = ViewSet(list(want)[:300])
    vs |= set(list(want)[300:])
    vs.add(next(iter(want)))  # again: once
    assert set(vs) == want and len(vs) == len(want)
    assert next(iter(want)) in vs and (0, 0, 200) not in vs and "x" not in vs
    other = ViewSet([(7, 1, 2)])
    other |= vs
    assert set(other) == want | {(7, 1, 2)}
    track = Track(np.zeros((33, 3)), 0, 0, checked={(1, 2, 3)})
    assert isinstance(track.checked, ViewSet) and set(track.checked) == {(1, 2, 3)}
    with pytest.raises(ValueError, match="view and slot < 256"):
        vs.add((1, 300, 0))


def test_view_set_memory():
    """8 bytes per member against ~100 for a set of tuples."""
    from mocap.multi.history import ViewSet

    items = [(f, c, 1) for f in range(20000) for c in range(4)]
    tracemalloc.start()
    vs = ViewSet()
    vs.update(items)
    size = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert size < 12 * len(items) and len(vs) == len(items)
