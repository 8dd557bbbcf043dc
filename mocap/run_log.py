"""The run's log lines: one format for the terminal and the session's log file, and that file's handler."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

from mocap.persons import NamedFormatter

# the terminal's and the log file's lines; with several people a line about one names them (NamedFormatter)
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_to_file(root: Path) -> logging.FileHandler:
    """A handler writing this project's lines (DEBUG up) to ``SESSION/logs/run-<time>.log``, attached to the ``mocap``
    and ``calibration`` loggers (raised to INFO where quieter); the caller removes and closes it."""
    logs = Path(root) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    h = logging.FileHandler(logs / f"run-{datetime.now():%Y%m%d-%H%M%S}.log")
    h.setFormatter(NamedFormatter(LOG_FORMAT))
    h.setLevel(logging.DEBUG)  # the file keeps what the terminal leaves out (native libraries' chatter)
    for name in ("mocap", "calibration"):
        lg = logging.getLogger(name)
        lg.addHandler(h)
        if lg.getEffectiveLevel() > logging.INFO:
            lg.setLevel(logging.INFO)
    return h
