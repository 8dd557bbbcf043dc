"""The fit's first solve on threads (issue 17, ``fit.workers``): the chunks of frames solved on several threads give
the one-thread fit bit for bit, body and fingers; :func:`mocap.threads.thread_map` keeps order, raises the first
error, and names a bad worker count."""

import threading

import numpy as np
import pytest
from body_synth import blazepose_keypoints, body_motion

from mocap.fit import FitConfig, fit_motion
from mocap.persons import _about, speaking_of
from mocap.synth.fingers import add_fingers, finger_curls, hand_keypoints
from mocap.threads import cores, thread_map


def _same(a, b):
    assert np.array_equal(a.rotations, b.rotations, equal_nan=True)
    assert np.array_equal(a.root_positions, b.root_positions, equal_nan=True)


def _spy(monkeypatch, module: str) -> list:
    """Record the chunks and worker count each ``thread_map`` of ``module`` (mocap.fit, mocap.fit.hands) is given."""
    calls = []

    def spy(fn, items, workers=0):
        items = list(items)
        calls.append((len(items), workers))
        return thread_map(fn, items, workers)

    monkeypatch.setattr(f"{module}.thread_map", spy)
    return calls


@pytest.mark.parametrize("workers", [2, 3])
def test_chunks_on_threads_give_the_one_thread_fit_bit_for_bit(workers, monkeypatch):
    truth = body_motion(240, 60.0, seed=3)
    rng = np.random.default_rng(3)
    kp = blazepose_keypoints(truth) + rng.normal(scale=0.01, size=(240, 33, 3))
    kp[rng.random((240, 33)) < 0.05] = np.nan  # dropouts: the chunks differ in what they see
    one, s1 = fit_motion(kp, "blazepose33", 60.0, FitConfig(chunk_frames=64, workers=1))
    calls = _spy(monkeypatch, "mocap.fit")
    many, sn = fit_motion(kp, "blazepose33", 60.0, FitConfig(chunk_frames=64, workers=workers))
    assert calls == [(4, workers)]  # the first solve's 4 chunks went to the pool
    _same(one, many)
    assert s1.rms_mm_median == sn.rms_mm_median and s1.rms_mm_median < 15


def test_finger_chunks_on_threads_give_the_one_thread_fit(monkeypatch):
    m22 = body_motion(120, 60.0, seed=1)
    m52 = add_fingers(m22, finger_curls(120, 60.0, seed=2))
    rng = np.random.default_rng(1)
    body, hands = blazepose_keypoints(m22), hand_keypoints(m52)
    pts = np.concatenate([body + rng.normal(0, 0.01, body.shape), hands + rng.normal(0, 0.004, hands.shape)], axis=1)
    cfg = dict(skeleton="body52", chunk_frames=40)
    one, _ = fit_motion(pts, "blazepose33_hands", 60.0, FitConfig(workers=1, **cfg))
    calls = _spy(monkeypatch, "mocap.fit.hands")
    two, _ = fit_motion(pts, "blazepose33_hands", 60.0, FitConfig(workers=2, **cfg))
    assert calls == [(3, 2)]  # the fingers' 3 chunks went to the pool
    _same(one, two)


def test_thread_map_keeps_order_and_uses_threads():
    seen = set()
    with speaking_of("person2"):  # the caller's context variables reach the pool's threads
        assert thread_map(lambda i: (i, _about.get()), range(4), workers=2) == [(i, "person2") for i in range(4)]

    def work(i):
        seen.add(threading.get_ident())
        return i * i

    assert thread_map(work, range(20), workers=4) == [i * i for i in range(20)]
    together = threading.Barrier(2, timeout=10)  # passes only when two items run at the same time

    def meet(i):
        together.wait()
        return i

    assert thread_map(meet, range(4), workers=2) == [0, 1, 2, 3]
    assert thread_map(work, [], workers=4) == []
    seen.clear()
    assert thread_map(work, range(5), workers=1) == [0, 1, 4, 9, 16]
    assert seen == {threading.get_ident()}  # one worker: this thread, no pool
    assert cores() >= 1


def test_thread_map_raises_the_first_error_and_names_a_bad_worker_count():
    def work(i):
        if i in (3, 7):
            raise ValueError(f"item {i} is bad")
        return i

    with pytest.raises(ValueError, match="item 3 is bad"):
        thread_map(work, range(10), workers=2)
    with pytest.raises(ValueError, match="workers must be 0 \\(one per core\\) or more, got -1"):
        thread_map(work, range(10), workers=-1)
    with pytest.raises(ValueError, match=r"fit.workers must be 0 \(one thread per core\) or more, got -2"):
        fit_motion(blazepose_keypoints(body_motion(30, 60.0)), "blazepose33", 60.0, FitConfig(workers=-2))
