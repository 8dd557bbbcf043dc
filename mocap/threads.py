"""The cores this process may use, and a map over threads for NumPy work that releases the GIL.

The fit's first solve is batched Levenberg–Marquardt over chunks of frames (:func:`mocap.fit.fit_motion`):
most of a chunk's time is in NumPy's batched products and reductions, which run with the GIL released (the
Python between those calls holds it), and every frame's solve is its own, so chunks solved on threads give the
results of one thread, bit for bit, in less wall time (two threads on 2 cores: the CMU 01_03 take's first solve
3.4 → 2.4 s, for ~1 CPU s more of contention). The items run in copies of the caller's context variables; NumPy's
error state (``np.errstate``, per thread in NumPy 1.x) is not carried: the pool's threads have the defaults.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def cores() -> int:
    """The cores this process may run on (its affinity), else the machine's logical CPUs."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def thread_map(fn: Callable[[T], R], items: Iterable[T], workers: int = 0) -> list[R]:
    """``fn`` of each item, in order, on up to ``workers`` threads (0: one per core; 1, or a single item: in
    this thread, no pool), each in the caller's context variables. The first exception in ``fn`` (in item order)
    is raised here, the items not started are cancelled."""
    items = list(items)
    if workers < 0:
        raise ValueError(f"workers must be 0 (one per core) or more, got {workers}")
    n = min(workers or cores(), len(items))
    if n <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="mocap") as pool:
        # each item in a copy of the caller's context (a pool's threads start with none: the person a stage's
        # lines name, mocap.persons.speaking_of, would be lost)
        futures = [pool.submit(contextvars.copy_context().run, fn, item) for item in items]
        try:
            return [f.result() for f in futures]
        finally:
            for f in futures:
                f.cancel()
