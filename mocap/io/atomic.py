"""Write files atomically: to a temporary name in the same folder, then rename.

The temporary file is ``.{name}.{pid}.{random}.part``, created with mode 0666 so that the user's
umask applies to the result like to any other file (``tempfile.mkstemp`` would leave it 0600).
A process killed while writing leaves its part behind; the first write into a folder in a process
removes the parts there whose writing process no longer exists (and that have not changed for a
minute: on a disk shared between machines, the pid may be another machine's).
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

_PART = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.(?P<token>[0-9a-f]{8})\.part(\.[A-Za-z0-9]+)?$")
_LEGACY_PART = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.part$")  # tempfile.mkstemp names of earlier versions
GRACE_S = 60.0  # a part of a dead process is removed once unchanged this long
LEGACY_MAX_AGE_S = 24 * 3600.0  # a legacy part carries no pid: removed once it is a day old
_swept: set[str] = set()
_swept_lock = threading.Lock()


def part_name(path: Path, pid: int | None = None, keep_suffix: bool = False) -> str:
    """The temporary name of a part of ``path`` written by process ``pid`` (this one by default);
    with ``keep_suffix`` it ends in the path's suffix (for writers that choose the format by it)."""
    pid = os.getpid() if pid is None else pid
    if keep_suffix:
        return f".{path.stem}.{pid}.{secrets.token_hex(4)}.part{path.suffix}"
    return f".{path.name}.{pid}.{secrets.token_hex(4)}.part"


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (on this machine); unknown counts as alive."""
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):  # another user's process, or a platform without signal 0
        return True
    return True


def remove_stale_parts(folder: Path) -> list[Path]:
    """Remove the ``.*.part`` files in ``folder`` left by processes that no longer exist, unchanged for
    :data:`GRACE_S` (and parts without a pid older than :data:`LEGACY_MAX_AGE_S`); returns what was removed."""
    removed = []
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if not (name.startswith(".") and ".part" in name):
            continue
        m = _PART.match(name)
        try:
            if m:  # a pid that does not exist here, and no write for a while (another host on a shared disk)
                stale = not pid_alive(int(m["pid"])) and \
                    now - entry.stat(follow_symlinks=False).st_mtime > GRACE_S
            elif _LEGACY_PART.match(name):
                stale = now - entry.stat(follow_symlinks=False).st_mtime > LEGACY_MAX_AGE_S
            else:
                continue
            if stale and entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except FileNotFoundError:  # removed by someone else meanwhile
            continue
        except OSError as e:
            log.debug("could not remove stale part %s: %s", entry.path, e)
    if removed:
        log.info("removed %d stale partial file(s) in %s: %s", len(removed), folder,
                 ", ".join(p.name for p in removed))
    return removed


def sweep_once(folder: Path) -> None:
    """:func:`remove_stale_parts` on the first call for ``folder`` in this process."""
    key = os.path.abspath(folder)
    with _swept_lock:
        if key in _swept:
            return
        _swept.add(key)
    remove_stale_parts(folder)


def _create_part(path: Path, names: list[Path]) -> Path:
    """A new empty part file next to ``path``; its name is appended to ``names`` before the file exists (a Ctrl-C
    between creating it and returning leaves the caller its name to remove)."""
    for _ in range(100):
        tmp = path.parent / part_name(path)
        names.append(tmp)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
        except FileExistsError:  # (a name this process drew twice: not ours to remove)
            names.pop()
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"{path}: could not create a temporary file next to it")


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` and move the result to ``path`` only when it succeeded."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_once(path.parent)
    names: list[Path] = []  # the part's name, known before the part exists
    try:
        tmp = _create_part(path, names)
        write(tmp)
        os.replace(tmp, path)
    finally:
        for tmp in names:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write(path, lambda p: p.write_text(text))
