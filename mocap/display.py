"""Whether an X display can be opened: OpenCV's Qt windows (``mocap view``, ``mocap live``) abort the whole
process (SIGABRT, "no Qt platform plugin could be initialized … reinstalling the application may fix this")
when ``DISPLAY`` names a display that cannot be reached, so the commands ask first and render to a file, or
say what to use instead."""

from __future__ import annotations

import os
import socket
from pathlib import Path

X11_TCP_BASE = 6000  # display N listens on TCP port 6000 + N (an ``ssh -X`` session's localhost:10 → 6010)
CONNECT_S = 0.5


def has_display(display: str | None = None) -> bool:
    """Whether ``display`` (default: ``$DISPLAY``) can be reached: a local one (``:0``, ``unix:0``) by its socket
    in /tmp/.X11-unix, a remote one (``host:10.0``, an ssh tunnel's) by a TCP connection to its port. OpenCV's
    Qt speaks X11 only (under Wayland, through XWayland's DISPLAY)."""
    display = os.environ.get("DISPLAY", "") if display is None else display
    host, sep, rest = display.rpartition(":")
    number = rest.split(".")[0]
    if not sep or not number.isdigit():
        return False
    if host in ("", "unix") or host.startswith("/"):  # local; macOS XQuartz: a launchd socket path
        return Path(host if host.startswith("/") else f"/tmp/.X11-unix/X{number}").exists()
    try:
        with socket.create_connection((host, X11_TCP_BASE + int(number)), timeout=CONNECT_S):
            return True
    except OSError:
        return False
