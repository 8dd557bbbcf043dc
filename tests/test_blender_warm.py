"""mocap.io.blender.warm(): a warm Blender child that ended early is closed (reaped, its pipes and error
file closed) before another one starts, and says why it ended."""

import sys
import time

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
