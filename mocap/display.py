"""Whether a window can be opened: OpenCV's Qt windows (``mocap view``, ``mocap live``) abort the whole process
(SIGABRT, "no Qt platform plugin could be initialized … reinstalling the application may fix this") when, on Linux,
``DISPLAY`` names an X display that cannot be reached, so the commands ask first and render to a file, or say what
to use instead. Windows and macOS open native windows (no DISPLAY needed)."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

X11_TCP_BASE = 6000  # display N listens on TCP port 6000 + N (an ``ssh -X`` session's localhost:10 → 6010)
CONNECT_S = 0.5


def has_display(display: str | None = None) -> bool:
    """Whether the X display ``display`` (default: ``$DISPLAY``) answers: a local one (``:0``, ``unix:0``) on its
    socket (Linux's abstract one, then /tmp/.X11-unix/X<n>: a file left by a crashed server does not answer), a
    remote one (``host:10.0``, an ssh tunnel's) on TCP port 6000 + n; macOS XQuartz's DISPLAY is its socket's path.
    OpenCV's Qt speaks X11 only (under Wayland, through XWayland's DISPLAY)."""
    display = os.environ.get("DISPLAY", "") if display is None else display
    host, sep, rest = display.rpartition(":")
    number = rest.split(".")[0]
    if not sep or not number.isdigit():
        return False
    if host.startswith("/"):  # XQuartz: /private/tmp/com.apple.launchd.…/org.xquartz:0, the whole value
        return _answers(display) or _answers(host)
    if host in ("", "unix"):
        return (sys.platform.startswith("linux") and _answers(f"\0/tmp/.X11-unix/X{number}")) or \
            _answers(f"/tmp/.X11-unix/X{number}")
    try:
        with socket.create_connection((host, X11_TCP_BASE + int(number)), timeout=CONNECT_S):
            return True
    except OSError:
        return False


def window_possible() -> bool:
    """Whether an OpenCV window can open here: on Linux an X display that answers; elsewhere (native windows)
    always."""
    return has_display() if sys.platform.startswith("linux") else True


def _answers(path: str) -> bool:
    """Whether a Unix socket at ``path`` (a leading NUL: Linux's abstract namespace) accepts a connection."""
    if not path.startswith("\0") and not Path(path).exists():
        return False
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(CONNECT_S)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()
