"""A take whose process dies fails alone, named; the others go on. A pool worker killed (out of memory) broke the
whole local build (BrokenProcessPool: every take lost, no file written); on a cluster, KilledWorker named an opaque
task key and aborted the build with the takes done so far uncommitted."""

import multiprocessing
import os

import pytest

from mocap.dataset.jobs import DAEMONIC, daemon_hint, run_jobs


def _dies_on_b(job):
    if job[0] == "b":
        os._exit(9)  # as a process killed by the kernel: no exception, no result
    return job[0], {"take": job[0]}, None, 0.0


def _results(results):
    return {tid: (data, err) for tid, data, err, _ in results}


def test_a_dead_pool_worker_fails_its_take_only():
    got = _results(run_jobs(_dies_on_b, [("a",), ("b",), ("c",), ("d",)], workers=2, scheduler=None))
    assert sorted(got) == ["a", "b", "c", "d"]
    assert all(got[t] == ({"take": t}, None) for t in "acd")
    data, err = got["b"]
    assert data is None and err.startswith("WorkerDied: the process computing take b died (BrokenProcessPool): "
                                           "killed (out of memory?) or crashed")


def test_a_take_that_kills_its_dask_worker_fails_alone():
    distributed = pytest.importorskip("distributed")
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
            distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        got = _results(run_jobs(_dies_on_b, [("a",), ("b",), ("c",)], workers=0, scheduler=c.scheduler_address))
    assert sorted(got) == ["a", "b", "c"]  # the build went on, every take answered for
    assert got["b"][1].startswith("WorkerDied: the process computing take b died (KilledWorker")
    for t in "ac":  # done, or lost with b's worker while queued on it (no retry allowed here): named as its own
        assert got[t] == ({"take": t}, None) or got[t][1].startswith(f"WorkerDied: the process computing take {t} ")


def test_a_daemonic_worker_is_told_how_to_start_workers(monkeypatch):
    err = AssertionError("daemonic processes are not allowed to have children")
    assert daemon_hint(err) == ""  # not in a daemonic process
    monkeypatch.setattr(multiprocessing.current_process(), "daemon", True, raising=False)
    assert daemon_hint(err) == f" ({DAEMONIC})" and "DASK_DISTRIBUTED__WORKER__DAEMON=False" in DAEMONIC
