"""Keep what native libraries (MediaPipe / TFLite / absl, Open3D, Filament) print to the C-level stderr
out of the terminal: the user cannot act on it ("GPU support is not available", "Created TensorFlow
Lite XNNPACK delegate", "XDG_RUNTIME_DIR is invalid", ...). Around a noisy native call, file
descriptor 2 points to a temporary file; what lands there is forwarded to a Python logger at DEBUG,
so it is in the run's log file (``logs/run-*.log``) and not on the screen."""

from __future__ import annotations

import atexit
import logging
import os
import re
import sys
import tempfile
import threading
from contextlib import contextmanager, suppress

log = logging.getLogger(__name__)

# glog / TensorFlow levels: 2 = errors only (ignored by the libraries that log through absl, hence the redirect)
QUIET_ENV = {"GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "2"}

GLOG_ERROR = re.compile(r"^[EF]\d{4} ")
_lock = threading.RLock()
_state = {"depth": 0, "saved": -1, "file": None, "loggers": []}
# the file fd 2 points to during a block: made once per process and emptied for the next block (creating a
# temporary file costs ~0.3 ms, paid on every detected frame); a forked child makes its own
_sink: dict = {"file": None, "pid": -1}


FFMPEG_QUIET = {"OPENCV_FFMPEG_LOGLEVEL": "8"}  # AV_LOG_FATAL: FFmpeg's decoding errors not printed


def quiet_ffmpeg() -> None:
    """FFmpeg (inside OpenCV) prints every error of a damaged video to stderr, ~30 lines for 4 damaged frames,
    again each time the video is read: the reader names those frames itself (:func:`mocap.io.video.read_frames`)
    and a video that does not open gets FFmpeg's reason in its error (:func:`mocap.io.video.ffmpeg_reason`).
    OpenCV reads the level at its first video opened in a process: call before (the user's own setting wins)."""
    for k, v in FFMPEG_QUIET.items():
        os.environ.setdefault(k, v)


def quiet_environment() -> None:
    """Ask glog / TensorFlow for errors only (the user's own settings win); call before importing them."""
    for k, v in QUIET_ENV.items():
        os.environ.setdefault(k, v)


def _forward(text: str, logger: logging.Logger) -> None:
    for line in text.splitlines():
        if line.strip():  # glog's errors (E…, F…) stay visible; the rest is for the log file
            level = logging.WARNING if GLOG_ERROR.match(line) else logging.DEBUG
            logger.log(level, "native: %s", line.rstrip())


@contextmanager
def native_stderr_to_log(logger: logging.Logger | None = None):
    """Within the block, what is written to file descriptor 2 (by C/C++ code, or Python's
    ``sys.stderr``) goes to ``logger`` at DEBUG instead of the terminal. Nested and concurrent uses
    share one redirection, undone when the last one leaves; the whole text is then forwarded."""
    logger = logger or log
    with _lock:
        if _state["depth"] == 0 and not _redirect():
            redirected = False
        else:
            redirected = True
            _state["depth"] += 1
            _state["loggers"].append(logger)
    try:
        yield
    finally:
        if redirected:
            _leave()


def _flush_stderr() -> None:
    with suppress(AttributeError, OSError, ValueError):  # no stderr, or a closed one
        sys.stderr.flush()


def _redirect() -> bool:
    _flush_stderr()
    try:
        sink = _empty_sink()
    except OSError as e:
        log.debug("cannot redirect native stderr: %s", e)
        return False
    try:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
    except OSError as e:  # no fd 2 (a daemon): leave the output alone
        log.debug("cannot redirect native stderr: %s", e)
        return False
    _state.update(saved=saved, file=sink, loggers=[])
    return True


def _empty_sink():
    """This process's sink file, empty (called with ``_lock`` held, outside any redirection)."""
    sink = _sink["file"]
    if sink is None or _sink["pid"] != os.getpid():  # a forked child shares its parent's file offset: a new one
        sink = tempfile.TemporaryFile()  # noqa: SIM115 - kept open for the process's later blocks
        atexit.register(sink.close)  # closed as the process ends (else "ResourceWarning: unclosed file" at exit)
        _sink.update(file=sink, pid=os.getpid())
    else:  # on the descriptor: the file object's buffer would skip a seek it thinks it needs not make
        os.ftruncate(sink.fileno(), 0)
        os.lseek(sink.fileno(), 0, os.SEEK_SET)
    return sink


def _read_all(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    parts = []
    while chunk := os.read(fd, 1 << 16):
        parts.append(chunk)
    return b"".join(parts)


def _leave() -> None:
    with _lock:
        _state["depth"] -= 1
        if _state["depth"] > 0:
            return
        _flush_stderr()
        os.dup2(_state["saved"], 2)
        os.close(_state["saved"])
        sink, loggers = _state["file"], _state["loggers"]
        _state.update(saved=-1, file=None, loggers=[])
        text = _read_all(sink.fileno()).decode("utf-8", errors="replace")  # before another block empties it
    _forward(text, loggers[0] if loggers else log)
