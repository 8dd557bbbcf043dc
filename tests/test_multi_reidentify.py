"""Identities joined to the number of people asked for (mocap.multi.reidentify): which track continues which is
solved over the whole take, by body size, and never across bodies of another size."""

import numpy as np

from mocap.multi.reidentify import join_to_persons, most_at_once
from mocap.multi.tracklets import Track

SEGMENTS = [(0, 1), (1, 2), (2, 3), (3, 4)]


def _track(first: int, last: int, size: float, seed: int) -> Track:
    rng = np.random.default_rng(seed)
    bones = size * np.array([0.45, 0.5, 0.3, 0.25])  # a chain of joints, the bones scaled by ``size``
    X = np.concatenate([[[0.0, 0.0, 0.0]], np.cumsum(bones[:, None] * [[0.0, 0.0, 1.0]], axis=0)])
    frames = list(range(first, last + 1))
    skel = {f: X + rng.normal(0, 0.003, X.shape) for f in frames}
    return Track(X, last, first, confirmed=True, frames=frames, slots=[np.array([0, 0, -1], np.int16)] * len(frames),
                 costs=[0.01] * len(frames), skel=skel, path={f: X.mean(axis=0) for f in frames})


def test_tracks_are_joined_by_body_size_over_the_whole_take_not_in_time_order():
    # a tall and a short actor leave together; the short one comes back first, the tall one just after
    tall, short = _track(0, 99, 1.2, 0), _track(0, 99, 0.9, 1)
    short2, tall2 = _track(300, 399, 0.9, 2), _track(310, 399, 1.2, 3)
    out, joined = join_to_persons([tall, short, short2, tall2], 2, 30.0, SEGMENTS)
    assert joined == 2 and len(out) == 2
    assert out[0] is tall and out[0].frames == list(range(0, 100)) + list(range(310, 400))
    assert out[1] is short and out[1].frames == list(range(0, 100)) + list(range(300, 400))


def test_nothing_is_joined_with_auto_with_as_many_as_asked_or_more_at_once_than_asked():
    def tracks():
        return [_track(0, 99, 1.0, 0), _track(0, 99, 1.0, 1), _track(200, 299, 1.0, 2)]

    assert most_at_once(tracks()) == 2
    for persons in ("auto", 3, 1):  # 1: two at once, the count given is wrong: left as found
        out, joined = join_to_persons(tracks(), persons, 30.0, SEGMENTS)
        assert joined == 0 and len(out) == 3


def test_a_body_of_another_size_is_never_joined():
    adult, other = _track(0, 99, 1.0, 0), _track(0, 99, 1.0, 1)
    child = _track(200, 299, 0.62, 2)
    out, joined = join_to_persons([adult, other, child], 2, 30.0, SEGMENTS)
    assert joined == 0 and len(out) == 3
    # where one of the two is the child's size, it is that one
    small = _track(0, 99, 0.64, 3)
    out, joined = join_to_persons([adult, small, child], 2, 30.0, SEGMENTS)
    assert joined == 1 and [len(t.frames) for t in out] == [100, 200] and out[1] is small
