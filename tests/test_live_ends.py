"""mocap live --from-videos: when a camera's stream ended is judged in the take's time, not by when its reader
got there (on a busy machine the readers of a normal take reached their ends up to a second apart, and every
camera but the last was reported "stopped mid-take"); a file cut short says so; playback's clock starts when
the engine starts, not when its detectors were made."""

import time

import cv2
import numpy as np
import pytest

import mocap.detect
from mocap.live.engine import LiveConfig, LiveEngine


def video(path, frames, fps=60.0, cut=None):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (64, 48))
    rng = np.random.default_rng(0)
    for _ in range(frames):
        w.write(rng.integers(0, 255, (48, 64, 3), np.uint8))
    w.release()
    if cut:  # the file cut short: its header still promises every frame
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * cut)])
    return str(path)


class Nobody:
    keypoint_set = "blazepose33"

    def __call__(self, image, ms):
        return [np.full((33, 3), np.nan)]

    def close(self):
        pass


@pytest.fixture
def engine(monkeypatch, tmp_path, rig4):
    monkeypatch.setattr(mocap.detect, "get_detector", lambda *a, **k: Nobody())

    def make(sources):
        return LiveEngine(rig4, sources, LiveConfig(), realtime=True)
    return make


@pytest.fixture
def rig4():
    from mocap.types import Camera, Rig

    cams = []
    for k in range(4):
        T = np.eye(4)
        T[:3, 3] = [0.0, 0.0, 3.0 + k]
        cams.append(Camera(name=f"cam0{k + 1}", K=np.array([[60.0, 0, 32], [0, 60.0, 24], [0, 0, 1]]),
                           dist=np.zeros(5), cam_from_world=T, size=(64, 48)))
    return Rig(tuple(cams))


def test_a_reader_that_fell_behind_ends_with_the_take_and_a_cut_file_is_named(engine, tmp_path):
    paths = {"cam01": video(tmp_path / "cam01.avi", 12), "cam02": video(tmp_path / "cam02.avi", 12),
             "cam03": video(tmp_path / "cam03.avi", 12, cut=0.5)}
    e = engine(paths)
    t0 = time.monotonic()
    for s in e.sources:
        s.t0 = t0
    a, b, cut = e.sources
    a.run()  # on schedule: 0.2 s
    time.sleep(0.3)
    b.run()  # 0.5 s behind: every frame late, its end reached 0.5 s after a's in wall time
    cut.run()
    rows = {r["camera"]: r for r in e.health()}
    assert rows["cam01"]["state"] == "ended: end of stream" and rows["cam02"]["state"] == "ended: end of stream"
    assert b.late_s > 0.3 and abs(a.ended_at - b.ended_at) < 1e-9
    assert rows["cam03"]["read"] < 12
    assert rows["cam03"]["state"] == f"stopped mid-take: video cut short at frame {rows['cam03']['read']} of 12"


def test_playback_starts_when_the_engine_starts(engine, tmp_path):
    e = engine({"cam01": video(tmp_path / "cam01.avi", 3), "cam02": video(tmp_path / "cam02.avi", 3)})
    time.sleep(0.8)  # making the detectors took this long
    before = time.monotonic()
    e.start()
    try:
        assert all(s.t0 >= before for s in e.sources) and e.t0 >= before
        while e.running():
            time.sleep(0.02)
    finally:
        e.stop()
    assert all(s.late_s < 0.5 for s in e.sources)  # no frame was due before playback began


def test_a_missing_camera_list_is_said_before_any_preview(tmp_path, rig4, monkeypatch, capsys):
    from mocap.cli import main as cli
    from mocap.io.rig_files import write_rig

    (tmp_path / "calibration").mkdir()
    write_rig(rig4, tmp_path / "calibration" / "rig.toml")
    monkeypatch.delenv("DISPLAY", raising=False)
    assert cli(["live", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "live.toml does not exist" in err and "preview" not in err.split("error:")[0], err


def test_a_recording_keeps_camera_names_a_rig_accepts(tmp_path, rig4):
    """A space or an accent is a valid rig camera name; --record refused it (the stricter safe_name)."""
    import dataclasses

    from mocap.io.rig_files import read_rig
    from mocap.live.record import Recorder
    from mocap.types import Rig

    names = ["câm 01", "cam02", "cam03", "cam04"]
    rig = Rig(tuple(dataclasses.replace(c, name=n) for c, n in zip(rig4.cameras, names, strict=True)))
    rec = Recorder(tmp_path / "rec", rig, names, 30.0, "mjpg")
    for k in range(len(names)):
        rec.write(k, np.zeros((48, 64, 3), np.uint8), 30.0)
    rec.close()
    assert (tmp_path / "rec" / "videos" / "câm 01.avi").is_file()
    assert read_rig(tmp_path / "rec" / "calibration" / "rig.toml").names == tuple(names)
    with pytest.raises(ValueError, match=r"record: camera name '\.\./x' is not a safe file name"):
        Recorder(tmp_path / "rec2", Rig(tuple(dataclasses.replace(c, name=n) for c, n in
                                              zip(rig4.cameras, ["../x", "b", "c", "d"], strict=True))),
                 ["../x", "b", "c", "d"], 30.0, "mjpg")
    assert not (tmp_path / "rec2").exists()  # refused before anything is written


def test_readers_behind_the_videos_rate_are_said_with_the_latency():
    from mocap.live.cli import late_note

    on_time = {"cameras": [{"late_s": 0.01}, {"late_s": 0.2}]}
    assert late_note(on_time) is None
    note = late_note({"cameras": [{"late_s": 0.1}, {"late_s": 9.6}]})
    assert note.startswith("the video readers fell up to 9.6 s behind the videos' rate") and "latency" in note


def test_no_camera_that_opens_is_an_error_naming_each_reason(tmp_path, rig4, engine, capfd):
    """live.toml's streams all unreachable: the table says why per camera, the command fails (it exited 0 with
    nothing measured), and FFmpeg's own "Connection refused" lines stay in the log."""
    from mocap.cli import main as cli
    from mocap.io.rig_files import write_rig

    (tmp_path / "calibration").mkdir()
    write_rig(rig4, tmp_path / "calibration" / "rig.toml")
    (tmp_path / "live.toml").write_text('[cameras]\ncam01 = "http://127.0.0.1:9/a.mjpg"\n'
                                        'cam02 = "http://127.0.0.1:9/b.mjpg"\n')
    assert cli(["live", str(tmp_path), "--no-preview", "--seconds", "5"]) == 2
    out, err = capfd.readouterr()
    assert "no frame: cannot open 'http://127.0.0.1:9/a.mjpg'" in out
    assert "error: no camera delivered a frame (cam01, cam02" in err and "live.toml" in err
    assert "camera cam01: camera cam01" not in err and "Connection refused" not in err


def test_one_camera_alone_says_why_there_is_no_3d(tmp_path, rig4, engine, capfd):
    """Of live.toml's cameras only one opens: it ran with 0 3D updates and nothing said why."""
    from mocap.cli import main as cli
    from mocap.io.rig_files import write_rig

    (tmp_path / "calibration").mkdir()
    write_rig(rig4, tmp_path / "calibration" / "rig.toml")
    good = video(tmp_path / "cam01.avi", 6, fps=30.0)
    (tmp_path / "live.toml").write_text(f'[cameras]\ncam01 = "{good}"\ncam02 = "http://127.0.0.1:9/b.mjpg"\n')
    assert cli(["live", str(tmp_path), "--no-preview", "--seconds", "2"]) == 0
    out, err = capfd.readouterr()
    assert "no 3D: only cam01 delivered frames, and a point needs two cameras" in err, err
    # a camera that never delivered is not one that "stopped mid-take"; no "nan ms" latency, the load rounded
    assert "no frame: cannot open 'http://127.0.0.1:9/b.mjpg'" in out and "mid-take" not in out, out
    assert "cameras that stopped or never delivered: cam02 (no frame: cannot open" in out
    assert "no latency (no 3D update)" in out and "nan" not in out
    load = out.split("load [")[1].split("]")[0]
    assert all(len(v.strip().split(".")[-1]) <= 2 for v in load.split(",")), load


def test_a_display_that_cannot_be_reached_never_opens_a_window(tmp_path, rig4, monkeypatch, capsys):
    """A stale DISPLAY (an old ssh -X session's, a stopped X server's): OpenCV's Qt aborted the whole process
    (SIGABRT, "reinstalling the application may fix this problem"). Without --window the preview goes to a PNG,
    saying why; --window is an error naming what to use instead."""
    from mocap import live as live_pkg
    from mocap.cli import main as cli
    from mocap.io.rig_files import write_rig
    from mocap.live.display import PngSink

    (tmp_path / "calibration").mkdir()
    write_rig(rig4, tmp_path / "calibration" / "rig.toml")
    (tmp_path / "live.toml").write_text('[cameras]\ncam01 = 0\ncam02 = 1\n')

    class StartedError(Exception):
        pass

    sinks = []

    def started(*a, sink=None, **k):
        sinks.append(sink)
        raise StartedError

    monkeypatch.setattr(live_pkg, "run_live", started)
    monkeypatch.setenv("DISPLAY", ":97")  # no X server there
    with pytest.raises(StartedError):
        cli(["live", str(tmp_path)])
    assert isinstance(sinks[-1], PngSink)
    assert "display :97 cannot be reached: preview in" in capsys.readouterr().err
    assert cli(["live", str(tmp_path), "--window"]) == 2
    assert "error: --window: no display to open it on (DISPLAY=':97' cannot be reached); use --png FILE or " \
           "--mjpeg PORT" in capsys.readouterr().err
    assert len(sinks) == 1  # refused before anything started


def test_has_display_asks_the_display_itself(tmp_path, monkeypatch):
    import socket
    import sys

    from mocap.display import X11_TCP_BASE, has_display, window_possible

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "darwin")  # native windows: no DISPLAY needed (--window worked there)
    assert window_possible()
    monkeypatch.setattr(sys, "platform", "linux")
    assert not window_possible()

    assert not has_display("") and not has_display(":97") and not has_display("nonsense")
    xq = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # macOS XQuartz: DISPLAY is its socket's whole path
    xq.bind(str(tmp_path / "org.xquartz:0"))
    xq.listen(1)
    try:
        assert has_display(f"{tmp_path}/org.xquartz:0") and not has_display(f"{tmp_path}/gone:0")
    finally:
        xq.close()
    assert not has_display(f"{tmp_path}/org.xquartz:0")  # a socket file left behind answers no more
    server = socket.socket()
    for n in range(40, 100):  # a free port 6000 + n on this machine stands for an ssh tunnel's display
        try:
            server.bind(("127.0.0.1", X11_TCP_BASE + n))
            break
        except OSError:
            continue
    server.listen(1)
    try:
        assert has_display(f"127.0.0.1:{n}.0")
    finally:
        server.close()
    assert not has_display(f"127.0.0.1:{n}.0")  # the tunnel closed
