"""Where ``mocap dataset build`` computes its takes: a Dask cluster, a local process pool, or this process.

A take whose process dies (killed: out of memory, a crash in native code) fails alone, named, and the others
go on: on a cluster its task's error is that take's; in the local pool a dead worker breaks the whole pool
(``BrokenProcessPool`` for every take still running or waiting, with no sign of which one died), so the takes
not finished then run again, each in a process of its own, where a death is its take's only."""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, as_completed, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context

log = logging.getLogger("mocap.dataset.build")
Result = tuple  # (take id, arrays or None, error or None, seconds)
DAEMONIC = ("a daemonic process cannot start the detection's processes: start the Dask workers with "
            "DASK_DISTRIBUTED__WORKER__DAEMON=False (README: Scale-out on Dask)")


def daemon_hint(error: BaseException) -> str:
    """A hint for a take that failed in a daemonic worker (a Dask worker's default) when it needed to start
    processes (detection from videos: Python's 'daemonic processes are not allowed to have children')."""
    return f" ({DAEMONIC})" if multiprocessing.current_process().daemon and "daemonic" in str(error) else ""


def _exit_with_parent(parent: int) -> None:
    """Pool worker initialiser: end this worker when the build process is gone (killed with -9, it cannot
    stop its workers, which would otherwise wait for work forever)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


def died(tid: str, why: str) -> Result:
    return (tid, None, f"WorkerDied: the process computing take {tid} died ({why}): killed (out of memory?) or "
            "crashed", 0.0)


def run_jobs(task: Callable[[tuple], Result], jobs: list, workers: int, scheduler: str | None) -> Iterator[Result]:
    """Yield ``task(job)`` for each job (its take id first) as they finish; never raises for one take."""
    if not jobs:
        return
    if scheduler:
        yield from _on_cluster(task, jobs, scheduler)
        return
    n = workers or min(len(jobs), os.cpu_count() or 1)
    if n == 1:
        for job in jobs:
            yield task(job)
        return
    left = yield from _pooled(task, jobs, n)
    if left:
        log.warning("dataset build: a worker process died; the %d takes not finished run again, each in a process "
                    "of its own", len(left))
        yield from _alone(task, left, n)


def _on_cluster(task, jobs: list, scheduler: str) -> Iterator[Result]:
    from distributed import as_completed as dask_completed

    from mocap.distributed import connect

    with connect(scheduler) as client:  # a clear error, never a hang, when it does not answer
        futures = client.map(task, jobs, pure=False)
        tids = {f.key: job[0] for f, job in zip(futures, jobs, strict=True)}
        for fut in dask_completed(futures, loop=client.loop):  # the client is not the default one
            try:
                result = fut.result()
            except Exception as e:  # noqa: BLE001 — KilledWorker (its worker died on every try), a lost task
                result = died(tids[fut.key], f"{type(e).__name__}: {e}")
            yield result


def _pool(n: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=n, mp_context=get_context("spawn"), initializer=_exit_with_parent,
                               initargs=(os.getpid(),))


def _pooled(task, jobs: list, n: int):
    """One pool for every job; returns the jobs left unfinished when a worker died (the pool broken)."""
    left = list(jobs)
    with _pool(n) as pool:
        futures = {pool.submit(task, j): j for j in jobs}
        for fut in as_completed(futures):
            if isinstance(fut.exception(), BrokenProcessPool):
                continue
            left.remove(futures[fut])
            yield fut.result()
    return left


def _alone(task, jobs: list, n: int) -> Iterator[Result]:
    """Each job in a process of its own, ``n`` at a time: a death is its take's."""
    waiting, running = list(jobs), {}
    while waiting or running:
        while waiting and len(running) < n:
            job = waiting.pop(0)
            pool = _pool(1)
            running[pool.submit(task, job)] = (job, pool)
        done, _ = wait(running, return_when=FIRST_COMPLETED)
        for fut in done:
            job, pool = running.pop(fut)
            pool.shutdown(wait=False)
            exc = fut.exception()
            yield died(job[0], f"{type(exc).__name__}") if exc is not None else fut.result()
