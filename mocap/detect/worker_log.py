"""Warnings logged in a worker process (a video's damaged frames, ...) brought back to the run.

A pool worker has no logging set up: its warnings went to its stderr through Python's last-resort handler,
unformatted, between the progress bars, and never into the run's log (``logs/run-*.log``); a Dask worker's
stayed in that worker's log. Around a chunk the worker keeps what mocap logs at WARNING or above in the process
(the chunk's decoding thread too: :func:`kept`), returns it with the chunk, and the run logs it (:func:`said`)
under the same logger. Chunks run at once in one process (a Dask worker with several threads) share one buffer:
each record goes back once, with whichever of them ends first."""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager

_lock = threading.Lock()
_buffer: list[tuple[str, int, str]] = []
_users = [0]


class _Keep(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed log call: logging's own report, never the chunk's end
            self.handleError(record)
            return
        with _lock:
            _buffer.append((record.name, record.levelno, text))


_handler = _Keep(logging.WARNING)


@contextmanager
def kept(out: list):
    """Within the block, the (logger, level, text) of every mocap record at WARNING or above logged in this process
    are appended to ``out`` at its end (the worker then has a handler: nothing goes to its stderr unformatted)."""
    logger = logging.getLogger("mocap")
    with _lock:
        if _users[0] == 0:
            logger.addHandler(_handler)
        _users[0] += 1
    try:
        yield out
    finally:
        with _lock:
            out.extend(_buffer)
            _buffer.clear()
            _users[0] -= 1
            if _users[0] == 0:
                logger.removeHandler(_handler)


def said(records, level: int | None = None) -> None:
    """Log, in the run's process, the records a worker kept (:func:`kept`), at their level or at ``level``."""
    for name, own, text in records or ():
        logging.getLogger(name).log(own if level is None else level, "%s", text)
