"""Stitching a track lost for a while to the one that takes it up (mocap.multi.tracklets.stitch)."""

from __future__ import annotations

import numpy as np
from test_multi_identity import _track

from mocap.multi.tracklets import Track


def located(path: dict, end=None) -> Track:
    """A track through the body centres ``path`` (frame → centre), located in 3D; its last skeleton at ``end``."""
    t = _track(path)
    t.last3d = t.frames[-1]
    t.X_start = np.tile(path[t.frames[0]], (17, 1)).astype(float)
    t.X_end = t.X3d = np.tile(path[t.frames[-1]] if end is None else end, (17, 1)).astype(float)
    return t


def test_a_track_whose_last_skeleton_was_two_peoples_views_is_stitched_where_the_body_stood():
    """A person standing still, half hidden by another for a few frames: the last frames of her track paired her
    view with the other person's in another camera (its last skeleton 0.55 m from where she stood, as on Pose2Sim's
    two-person take with the man hidden for 0.5 s); found again 4 frames later where she stood: the same person
    (the median of her last 0.5 s is where the track ended, :func:`mocap.multi.tracklets.settled`). Someone
    appearing 1 m away is not her."""
    from mocap.multi.track import TrackConfig
    from mocap.multi.tracklets import settled, stitch

    still = {f: (0.2, -0.4, 0.8) for f in range(54)} | {f: (-0.2, 0.0, 0.9) for f in range(54, 57)}  # paired wrong
    her = located(still)
    assert np.allclose(settled(her, 60.0, True), (0.2, -0.4, 0.8))
    again = located({f: (0.22, -0.45, 0.85) for f in range(61, 100)})
    out = stitch([her, again], TrackConfig(), 60.0)
    assert len(out) == 1 and out[0].frames == list(range(57)) + list(range(61, 100))
    other = located({f: (1.2, -0.4, 0.8) for f in range(61, 100)})
    assert len(stitch([located(still), other], TrackConfig(), 60.0)) == 2


def test_a_walker_lost_for_a_few_frames_is_stitched_where_her_walk_takes_her():
    """A person walking at 1.2 m/s (30 fps), her last skeleton a bad pairing (0.45 m off), lost for 2 frames, found
    again where her walk took her: the median of her last 0.5 s lags her by 0.3 m, the last skeleton is off, and she
    was split in two identities (a synthetic three-person take, persons = auto: 0.36 m against the 0.30 m allowed).
    Her centres' steps carry her on (:func:`mocap.multi.tracklets.moving`): the same person. Someone coming from the
    other way, or standing 1 m ahead of her, is not her."""
    from mocap.multi.track import TrackConfig
    from mocap.multi.tracklets import moving, stitch

    step = 1.2 / 30  # m per frame along x
    walk = {f: (-2.0 + step * f, 0.1, 0.9) for f in range(60)}
    bad = (walk[59][0] - 0.3, walk[59][1] - 0.35, 0.8)  # her last skeleton: two people's partial views
    her = located(walk | {59: bad}, end=bad)
    p, v = moving(her, 30.0, True, 2.0)
    assert np.allclose(v, (step, 0, 0), atol=1e-6) and np.allclose(p, walk[59], atol=1e-6)
    again = located({f: (-2.0 + step * f, 0.12, 0.92) for f in range(62, 120)})
    out = stitch([her, again], TrackConfig(), 30.0)
    assert len(out) == 1 and out[0].stitched == [(59, 62)]
    back = located({f: (-2.0 + step * 62 + 0.6 - step * (f - 62), 0.1, 0.9) for f in range(62, 120)})
    assert len(stitch([located(walk | {59: bad}, end=bad), back], TrackConfig(), 30.0)) == 2  # 0.6 m ahead, coming
    ahead = located({f: (-2.0 + step * 62 + 1.0, 0.1, 0.9) for f in range(62, 120)})
    assert len(stitch([located(walk | {59: bad}, end=bad), ahead], TrackConfig(), 30.0)) == 2


def test_people_are_numbered_by_the_first_frame_two_views_see_them():
    """The backward walk gave a person entering at frame 60 someone else's lone detection at frame 10: numbered with
    those there from the start (by place), the entrant became person1. Numbered by the first frame two views see
    each one, the entrant comes last."""
    from test_multi_identity import _track

    from mocap.multi.track import in_order

    def placed(path: dict, lone: int | None = None) -> Track:
        t = _track(path)
        t.X_start = np.tile(path[min(path)], (17, 1)).astype(float)
        if lone is not None:  # one view's detection, walked back onto
            t.frames.insert(0, lone)
            t.slots.insert(0, np.array([0, -1, -1, -1], np.int16))
        return t

    a = placed({f: (0.0, 0.0, 1.0) for f in range(100)})
    b = placed({f: (1.0, 0.0, 1.0) for f in range(100)})
    entrant = placed({f: (-1.0, 0.0, 1.0) for f in range(60, 100)}, lone=10)
    assert in_order([entrant, b, a], 30.0) == [a, b, entrant]
