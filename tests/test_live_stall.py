"""mocap live: a camera that stays open but sends nothing (a stream hung in its read, or one that never sent a
frame) leaves the fusion after stall_s and is reported stalled; it rejoins with its next frame. It kept every 3D
update waiting two frame periods for it, for the whole take, was reported "running", and made the cameras that
ended normally "stopped mid-take". The clock is given (``_active(now)``) or the margins are seconds wide."""

import logging
import re
import time

import numpy as np
import pytest
from test_live_ends import Nobody

import mocap.detect
from mocap.live.engine import LiveConfig, LiveEngine


@pytest.fixture
def engine(monkeypatch):
    """Three cameras at 1 fps (a frame period of 1 s: waiting for a camera costs 2 s), playback started 20 s ago;
    the sources are never started: their state is set by the test."""
    from mocap.synth import RigSpec, ring_rig

    monkeypatch.setattr(mocap.detect, "get_detector", lambda *a, **k: Nobody())
    rig = ring_rig(RigSpec(n_cameras=3, size=(64, 48)), np.array([[0.3, 0.2, 1.0], [-0.3, -0.2, 0.5]]))
    e = LiveEngine(rig, {n: f"/nonexistent/{n}.avi" for n in rig.names}, LiveConfig(stall_s=2.0), realtime=True)
    e.t0 = time.monotonic() - 20.0
    for s in e.sources:
        s.t0, s.fps = e.t0, 1.0
    yield e
    e.halt.set()
    e.results.close()
    for t in e.threads:
        if t.is_alive():
            t.join(5)


def delivering(s, frames, last_frame_t):
    s.frames, s.last_frame_t = frames, last_frame_t


def test_a_silent_camera_leaves_the_fusion_and_rejoins(engine, caplog):
    e = engine
    a, b, c = e.sources
    now = e.t0 + 20.0
    delivering(a, 20, now - 0.1)
    delivering(b, 20, now - 0.1)
    assert e._active(e.t0 + 1.0) == {0, 1, 2}  # within stall_s of the start: waited for
    with caplog.at_level(logging.INFO, logger="mocap.live.engine"):
        assert e._active(now) == {0, 1}  # never sent a frame: out
        delivering(c, 5, e.t0 + 5.0)
        assert e._active(now) == {0, 1}  # sent 5 frames, then hung: out
        delivering(c, 6, now - 0.5)
        assert e._active(now) == {0, 1, 2}  # sends again: back in
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("camera cam03 sent nothing for 20.0 s: left out of the 3D") for m in messages), messages
    assert "camera cam03 sends again: back in the 3D" in messages


def test_the_fusion_does_not_wait_for_a_camera_that_never_sent(engine):
    """Two cameras' detections are fused at once, not after two frame periods (2 s here) waiting for the third."""
    e = engine
    now = time.monotonic()
    delivering(e.sources[0], 20, now)
    delivering(e.sources[1], 20, now)
    e.threads[-1].start()  # the fusion thread only
    kp = np.full((33, 3), np.nan)
    e.results.put((0, 19, now, kp))
    e.results.put((1, 19, now, kp))
    end = time.monotonic() + 1.5
    while e.updates == 0 and time.monotonic() < end:
        time.sleep(0.01)
    assert e.updates == 1 and e.latest_update.cameras == [0, 1]


def test_a_silent_camera_is_reported_stalled_and_the_others_ended(engine):
    e = engine
    a, b, c = e.sources
    now = time.monotonic()
    for s in (a, b):  # both ended normally at 10 s of the take
        delivering(s, 10, now - 10.0)
        s.ended, s.ended_at = "end of stream", e.t0 + 10.0

    def states():
        return [r["state"] for r in e.health()]

    st = states()  # c opened and never sent a frame
    assert st[:2] == ["ended: end of stream"] * 2 and st[2].startswith("stalled (no frame since the start, 2"), st
    delivering(c, 5, now - 15.0)  # c hung after 5 s, before the others ended
    st = states()
    assert st[:2] == ["ended: end of stream"] * 2, st
    assert re.fullmatch(r"stalled \(1[5-9]\.\d s without a frame\)", st[2]), st
    delivering(c, 15, now - 5.0)  # c went on to 15 s, then hung: the others did stop mid-take
    assert states()[:2] == ["stopped mid-take: end of stream"] * 2
    delivering(c, 21, now)  # c runs
    assert states() == ["stopped mid-take: end of stream"] * 2 + ["running"]
