"""mocap.io.blender.warm(): a warm Blender child that ended early is closed (reaped, its pipes and error
file closed) before another one starts, and says why it ended."""

import os
import sys
import time

import pytest

from mocap.io import blender


def test_a_dead_warm_child_is_closed_before_another_starts(monkeypatch, caplog):
    monkeypatch.setattr(blender, "bpy_available", lambda: True)
    monkeypatch.setattr(blender, "SERVE", [sys.executable, "-c", "import sys; sys.exit('no bpy here')"])
    try:
        first = blender.warm()
        end = time.monotonic() + 15
        while first.alive() and time.monotonic() < end:
            time.sleep(0.05)
        assert not first.alive()
        second = blender.warm()
        assert second is not first
        assert first.proc.stdout.closed and first._err.closed and first.proc.returncode is not None
        assert "ended early" in caplog.text and "no bpy here" in caplog.text
    finally:
        blender.release()


def test_the_blender_child_leaves_no_folder_in_tmp():
    """Blender makes a session folder (/tmp/blender_XXXXXX) that it removes only on a full exit; the warm child
    ends with os._exit (or is killed): one empty folder was left in /tmp per run. Its TMPDIR is now ours,
    removed when it is closed, killed or not."""
    if not blender.bpy_available():
        pytest.skip("bpy not installed")
    code = ("import os, sys, bpy; print('mocap-export-ready 0', flush=True); print(bpy.app.tempdir, flush=True); "
            "sys.stdin.read(); os._exit(0)")
    for kill in (False, True):
        child = blender.Child([sys.executable, "-c", code])
        assert child.proc.stdout.readline().startswith("mocap-export-ready")
        session = child.proc.stdout.readline().strip()
        assert session.startswith(child.tmp) and os.path.isdir(session), (session, child.tmp)
        child.close(kill=kill)
        assert not os.path.exists(child.tmp)
