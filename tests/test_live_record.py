"""mocap live --record: a camera that delivers no frame (a stream down at the start) has no video, so the
recorded rig leaves it out (mocap run refused the session: "no video for cameras [...] of the rig"); fewer than
two cameras with a video is said; the warning about short cameras no longer names one without a video."""

import logging

import cv2
import numpy as np
import pytest
from test_live_ends import Nobody

from mocap.io.rig_files import read_rig
from mocap.io.video import find_videos
from mocap.live.record import Recorder


@pytest.fixture
def rig():
    from mocap.synth import RigSpec, ring_rig

    return ring_rig(RigSpec(n_cameras=4, size=(64, 48)), np.array([[0.3, 0.2, 1.0], [-0.3, -0.2, 0.5]]))


def record(out, rig, frames):
    rec = Recorder(out, rig, list(rig.names), 30.0, "mjpg")
    img = np.zeros((48, 64, 3), np.uint8)
    for k, n in enumerate(frames):
        for _ in range(n):
            rec.write(k, img, 30.0)
    rec.close()
    return rec


def test_a_camera_without_frames_is_left_out_of_the_recorded_rig(tmp_path, rig, caplog):
    out = tmp_path / "rec"
    with caplog.at_level(logging.WARNING, logger="mocap.live.record"):
        rec = record(out, rig, [6, 6, 3, 0])
    names = read_rig(out / "calibration" / "rig.toml").names
    assert names == rig.names[:3] and rec.recorded == list(rig.names[:3])
    assert sorted(find_videos(out / "videos", names)) == sorted(names)  # what mocap run reads: no error
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith(f"record: cameras ['{rig.names[3]}'] delivered no frame: left out of") for m in messages)
    short = [m for m in messages if "fewer frames" in m]
    assert len(short) == 1 and short[0].startswith(f"record: cameras ['{rig.names[2]}'] recorded fewer"), short
    assert "refuses the session beyond" in short[0]


def test_fewer_than_two_cameras_recorded_is_said(tmp_path, rig, caplog):
    out = tmp_path / "rec"
    with caplog.at_level(logging.WARNING, logger="mocap.live.record"):
        rec = record(out, rig, [4, 0, 0, 0])
    assert rec.recorded == [rig.names[0]]
    assert read_rig(out / "calibration" / "rig.toml").names == rig.names  # left whole: nothing to process
    assert any("cannot be processed by mocap run" in r.getMessage() for r in caplog.records)


def test_live_record_with_an_unreachable_camera_gives_a_session_mocap_run_reads(tmp_path, rig, capfd, monkeypatch):
    import mocap.detect
    from mocap.cli import main as cli

    monkeypatch.setattr(mocap.detect, "get_detector", lambda *a, **k: Nobody())
    from mocap.io.rig_files import write_rig

    (tmp_path / "calibration").mkdir()
    write_rig(rig, tmp_path / "calibration" / "rig.toml")
    lines = []
    for n in rig.names[:2]:
        w = cv2.VideoWriter(str(tmp_path / f"{n}.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (64, 48))
        for _ in range(6):
            w.write(np.zeros((48, 64, 3), np.uint8))
        w.release()
        lines.append(f'{n} = "{tmp_path / n}.avi"')
    lines.append(f'{rig.names[2]} = "http://127.0.0.1:9/none.mjpg"')
    (tmp_path / "live.toml").write_text("[cameras]\n" + "\n".join(lines) + "\n")
    out = tmp_path / "out"
    assert cli(["live", str(tmp_path), "--no-preview", "--seconds", "3", "--record", str(out)]) == 0
    stdout, _ = capfd.readouterr()
    assert f"mocap run {out}); without {rig.names[2]}, which delivered no frame" in stdout, stdout
    names = read_rig(out / "calibration" / "rig.toml").names
    assert names == rig.names[:2] and sorted(find_videos(out / "videos", names)) == sorted(names)
