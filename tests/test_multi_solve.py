"""Every person of a frame solved at once (:func:`mocap.multi.solve.solve_people`) gives what solving each on its
own gives (:func:`solve_person`), on a crowded take with merged detections, outliers and dropped views."""

from __future__ import annotations

import numpy as np

import mocap.multi.track as track_module
from mocap.bench.multiperson import MultiBenchConfig, make
from mocap.multi.solve import Job, solve_people, solve_person
from mocap.multi.track import TrackConfig, Tracker, associate_take


def _others(preds: np.ndarray | None, me: int) -> np.ndarray | None:
    if preds is None:
        return None
    rows = [u for u in range(len(preds)) if u != me]
    return preds[rows] if rows else None


def test_people_solved_together_equal_each_solved_alone(monkeypatch):
    cfg = MultiBenchConfig(frames=150, outliers=0.1, dropouts=0.1)
    take = make(cfg, 4, 4, cfg.frames)
    seen = {"batched": 0, "alone": 0, "weak_or_nearer": 0}

    def checked(tr: Tracker, f: int, jobs: list[Job], preds):
        out = solve_people(tr, f, jobs, preds)
        for job, got in zip(jobs, out, strict=True):
            if got is None:
                seen["alone"] += 1
                continue
            seen["batched"] += 1
            want = solve_person(tr, job.views, job.slots, f, job.prior, job.costs, _others(preds, job.me), job.near,
                                job.stale)
            np.testing.assert_allclose(got[0], want[0], rtol=0, atol=1e-9)
            assert got[1] == want[1]
            assert got[2].keys() == want[2].keys()
            for c in want[2]:
                assert np.array_equal(got[2][c], want[2][c])
            seen["weak_or_nearer"] += int(any(not m.all() for m in got[2].values()))
        return out

    monkeypatch.setattr(track_module, "solve_people", checked)
    slots, summary = associate_take(take.rig, take.keypoints, 4, TrackConfig(), progress=False, quiet=True)
    assert summary["persons_found"] == 4
    assert seen["batched"] > 5 * seen["alone"] > 0  # nearly all together; the few that drop a view alone
    assert seen["weak_or_nearer"] > 0  # keypoints nearer another person were left out in the batch too


def test_a_job_without_two_views_is_left_to_the_caller():
    cfg = MultiBenchConfig(frames=5)
    take = make(cfg, 2, 3, cfg.frames)
    tr = Tracker(take.rig, take.keypoints, TrackConfig(), 0.2)
    prior = np.zeros((tr.J, 3))
    jobs = [Job([0], [0], prior, [0.0], -1, 0.0, np.zeros(tr.J, bool))]
    assert solve_people(tr, 0, jobs, None) == [None]
    assert solve_people(tr, 0, [], None) == []
