"""A detection pool worker ends without the interpreter's teardown (mocap.detect.chunks.exit_now), after its
results are sent and the exit handlers registered after its start (a detector's) have run; only in a pool's
child process, never in the process that calls worker_init itself."""

import atexit
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

from mocap.detect import chunks


def _init(early: str) -> None:
    from pathlib import Path

    atexit.register(Path(early).write_text, "ran")  # registered before worker_init: part of the skipped teardown
    chunks.worker_init()


def _task(marker: str) -> int:
    import os
    from pathlib import Path

    atexit.register(Path(marker).write_text, "ran")  # registered after worker_init: runs before exit_now
    return os.getpid()


def test_a_worker_exits_after_its_results_and_later_exit_handlers(tmp_path):
    marker, early = tmp_path / "handler_ran", tmp_path / "early_handler_ran"
    pool = ProcessPoolExecutor(1, mp_context=get_context("spawn"), initializer=_init, initargs=(str(early),))
    try:
        pid = pool.submit(_task, str(marker)).result(timeout=60)
        procs = list(pool._processes.values())
    finally:
        pool.shutdown(wait=True)
    assert [p.pid for p in procs] == [pid]
    assert [p.exitcode for p in procs] == [0]
    assert marker.read_text() == "ran"
    assert not early.exists()  # the rest of the interpreter's exit was skipped


def test_worker_init_in_this_process_leaves_its_exit_alone(monkeypatch):
    import signal

    registered = []
    monkeypatch.setattr(atexit, "register", lambda fn, *a, **k: registered.append(fn))
    monkeypatch.setattr(signal, "signal", lambda *a: None)  # worker_init would take this process's Ctrl-C
    monkeypatch.setattr(chunks, "worker", chunks.WorkerState())
    chunks.worker_init()
    assert chunks.exit_now not in registered and chunks.worker.started
