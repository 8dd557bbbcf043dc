"""Opening an HDF5 file another process has open.

HDF5 locks a file while a process has it open (``flock``: shared for reading, exclusive for writing), and an open
that meets another process's lock fails at once with errno 11 (``BlockingIOError``). A run started just after an
interrupted one (Ctrl-C: its processes still ending) meets the lock for a moment; another ``mocap`` command on the
same session holds it for as long as it runs. :func:`open_h5` waits for the first and names the second: after
:data:`LOCK_WAIT_S` it raises :class:`FileInUseError` naming the processes that have the file open (Linux's
``/proc``). Other lock failures (a file system without locks: "No locks available", errno 37) are raised as HDF5
gives them, at once."""

from __future__ import annotations

import errno
import logging
import os
import time
from pathlib import Path

import h5py

log = logging.getLogger(__name__)
LOCK_WAIT_S = 10.0  # how long an open waits for another process to close the file (one that is ending does)


class FileInUseError(OSError):
    """The file is open in another process."""


def open_h5(path: str | Path, mode: str) -> h5py.File:
    """``h5py.File(path, mode)``, waiting up to :data:`LOCK_WAIT_S` while another process holds the file's lock;
    still held then: :class:`FileInUseError`."""
    deadline, waited = time.monotonic() + LOCK_WAIT_S, False
    while True:
        try:
            return h5py.File(path, mode)
        except OSError as e:
            if not _held(e):
                raise
            if time.monotonic() >= deadline:
                raise FileInUseError(f"{path} is open in another process{_holders(path)}: another mocap command on "
                                     f"this session? Let it end (or stop it) and run again") from None
            if not waited:
                log.info("%s is open in another process%s: waiting up to %.0f s for it to close", path, _holders(path),
                         LOCK_WAIT_S)
                waited = True
            time.sleep(0.1)


def _held(e: OSError) -> bool:
    """Whether HDF5's open failed on another process's lock (not on a file system without locks)."""
    return e.errno in (errno.EAGAIN, errno.EWOULDBLOCK) or "unable to lock file, errno = 11," in str(e)


def _holders(path: str | Path) -> str:
    """The other processes that have ``path`` open, as Linux's ``/proc`` shows them (this user's), for a message:
    ``" (process 123: mocap detect …)"``; "" when none can be seen."""
    try:
        target, found = os.path.realpath(path), []
        for pid in (d for d in os.listdir("/proc") if d.isdigit() and int(d) != os.getpid()):
            try:
                fds = os.listdir(f"/proc/{pid}/fd")
                if any(os.path.realpath(f"/proc/{pid}/fd/{fd}") == target for fd in fds):
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        command = " ".join(f.read().replace(b"\0", b" ").decode(errors="replace").split())
                    found.append(f"process {pid}: {command[:120]}")
            except OSError:  # gone, or another user's
                continue
    except OSError:  # no /proc
        return ""
    return f" ({'; '.join(found)})" if found else ""
