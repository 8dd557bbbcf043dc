"""Detection's progress when no terminal shows the bars (``mocap run`` under nohup, a batch job, CI, its log
file): the workers count their frames in a shared array (one slot each), and a thread of the stage logs how far
detection is every :data:`EVERY_S` seconds: frames done of all, cameras done, the rate and the time left."""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time

log = logging.getLogger("mocap.stages.detect")
EVERY_S = 60.0  # a line a minute: an hour of detection is 60 lines in the log
_counts = None  # in a pool worker: the shared frame counts (one per worker slot)


def attach(counts) -> None:
    """In a pool worker (its initializer): count this worker's frames into ``counts``."""
    global _counts
    _counts = counts


def tick(slot: int) -> None:
    """One frame detected by the worker of ``slot`` (a no-op outside a pool that counts)."""
    if _counts is not None and 0 <= slot < len(_counts):
        _counts[slot] += 1


def wanted() -> bool:
    """Whether to log progress lines: no terminal shows the progress bars (tqdm draws none then)."""
    try:
        return not sys.stderr.isatty()
    except (AttributeError, ValueError):
        return True


class Reporter:
    """Logs ``frames done of total`` (the sum of ``counts``), ``cameras()`` done of ``cameras_total``, the rate
    and the time left, every ``every_s`` seconds until stopped."""

    def __init__(self, counts, total: int, cameras_total: int, cameras, every_s: float | None = None):
        self.counts, self.total, self.cameras_total, self.cameras = counts, max(int(total), 1), cameras_total, cameras
        self.every_s, self.t0 = EVERY_S if every_s is None else every_s, time.perf_counter()
        self.halt = threading.Event()
        self.thread = None

    def __enter__(self) -> Reporter:
        """Start logging (again for a pool started again after a worker died: the same count and clock)."""
        self.halt.clear()
        self.thread = threading.Thread(target=self._run, name="detect-progress", daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        """Stop logging (the chunks are back, or the pool failed)."""
        self.halt.set()
        self.thread.join()

    def line(self) -> str:
        """The progress line now: frames done of all, cameras done, the rate since the start, the time left."""
        done = min(int(sum(self.counts)), self.total)
        dt = time.perf_counter() - self.t0
        rate = done / dt if dt > 0 else 0.0
        left = f", about {_duration((self.total - done) / rate)} left" if rate > 0 and done < self.total else ""
        return (f"detection: {done:,} of {self.total:,} frames ({100 * done / self.total:.0f}%), {self.cameras()} of "
                f"{self.cameras_total} cameras done, {rate:.1f} frames/s{left}")

    def _run(self) -> None:
        while not self.halt.wait(self.every_s):
            log.info(self.line())


def for_pool(ctx, workers: int, plan: list, warmup: int, gathered: dict):
    """(the frame counts a pool's ``workers`` share, a context for its chunks' gathering: progress lines while
    they run when no terminal shows the bars, else nothing). ``plan``: its (camera, first, end) chunks, those cut
    after a camera's first frame run ``warmup`` frames more; ``gathered``: the chunks back (a camera is done when
    all of its chunks are)."""
    counts = ctx.Array("q", workers, lock=False)
    cameras = sorted({c for c, _, _ in plan})

    def done() -> int:
        return sum(all(k in gathered for k in plan if k[0] == c) for c in cameras)

    total = sum(b - a + (warmup if a else 0) for _, a, b in plan)
    return counts, (Reporter(counts, total, len(cameras), done) if wanted() else contextlib.nullcontext())


def _duration(s: float) -> str:
    """Seconds as a person reads a time left: 45 s, 12 min, 1.5 h."""
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"
