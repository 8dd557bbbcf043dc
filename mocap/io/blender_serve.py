"""The Blender child of a run (``python -m mocap.io.blender_serve``), started by :class:`mocap.io.blender.Child`.

It loads bpy at once (that is its start-up cost: the parent starts it while other stages run), then
serves export jobs read from stdin, one JSON list per line, each job ``{"capture", "out", "up", "scale"}`` as
for ``blender_addon.headless export-many``. Its stdout carries only the replies: ``mocap-export-ready``
and the time once bpy is loaded, ``mocap-export-done I`` after file I of a list, then ``mocap-export-end`` (or
``mocap-export-failed MESSAGE``) after the list; everything bpy prints goes to stderr. It ends at the end
of its input: when the parent closes the pipe, or dies (so it never outlives its parent). Then it removes
its temporary folder (``TMPDIR``, Blender's session folder inside it) when the parent named it in
:data:`OWN_TMP`: a parent killed outright (SIGKILL, the OOM killer) cannot, and left one folder in /tmp per run.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

READY = "mocap-export-ready"
DONE = "mocap-export-done"
END = "mocap-export-end"
FAILED = "mocap-export-failed"
OWN_TMP = "MOCAP_BLENDER_CHILD_TMP"  # the environment variable naming the folder the child removes when it ends
TMP_PREFIX = "mocap-blender-"  # the only folders it removes: the parent's (mocap.io.blender.Child)


def _remove_own_tmp() -> None:
    """The folder the parent made for this child (its ``TMPDIR``), removed: only a folder named by
    :data:`OWN_TMP` whose name starts with :data:`TMP_PREFIX` (never a ``TMPDIR`` of the user's)."""
    own = os.environ.get(OWN_TMP, "")
    if own and Path(own).name.startswith(TMP_PREFIX) and Path(own).is_dir():
        shutil.rmtree(own, ignore_errors=True)


def _reply(channel, line: str) -> None:
    channel.write(line + "\n")
    channel.flush()


def serve() -> int:
    try:
        _serve()
    finally:  # also when the parent died before reading a reply (a broken pipe)
        _remove_own_tmp()
    sys.stderr.flush()
    os._exit(0)  # every file is written and closed; bpy's teardown would only add time


def _serve() -> None:
    replies = os.fdopen(os.dup(1), "w")  # the replies keep the real stdout ...
    os.dup2(2, 1)  # ... and whatever bpy (Python or C) prints goes to stderr
    from blender_addon import headless  # loads bpy: the start-up this child exists to take early

    headless._empty_scene()  # the first factory reset is slower than the later ones
    _reply(replies, f"{READY} {time.time():.3f}")  # when: the parent tells how long the start-up took
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            for i, job in enumerate(json.loads(line)):
                headless.export_job(job)
                _reply(replies, f"{DONE} {i}")
        except Exception as e:  # noqa: BLE001 - reported to the parent, which raises it naming the files
            _reply(replies, f"{FAILED} {type(e).__name__}: {e}".replace("\n", " "))
            continue
        _reply(replies, END)


if __name__ == "__main__":
    sys.exit(serve())
