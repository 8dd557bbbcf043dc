"""mocap live: bounded queues, fusion of the cameras' freshest detections, a camera stopping mid-take,
headless preview, and a recording that mocap run processes like the same videos given as files."""

import shutil
import threading
import time
import urllib.request

import h5py
import numpy as np
import pytest
import scale_helpers as helpers

from mocap.cli import main as cli
from mocap.io.hdf5 import read_points3d
from mocap.live import LiveConfig, run_live
from mocap.live.display import MjpegSink, PngSink, render
from mocap.live.sources import LatestQueue, parse_source, session_sources
from mocap.session import Session


def test_latest_queue_drops_the_oldest_and_counts():
    q = LatestQueue(2)
    for k in range(5):
        q.put(k)
    assert q.dropped == 3 and q.get() == 3 and q.get() == 4
    assert q.get(timeout=0.01) is None  # empty: no wait without bound
    done = []
    t = threading.Thread(target=lambda: done.append(q.get()))
    t.start()
    q.close()
    t.join(1)
    assert done == [None]
    with pytest.raises(ValueError, match="queue size must be ≥ 1, got 0"):
        LatestQueue(0)


def test_camera_list_errors(tmp_path):
    s = Session(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"live.toml does not exist: list the cameras there .*--from-videos"):
        session_sources(s, ("a", "b"), False)
    (tmp_path / "live.toml").write_text('[cameras]\na = 0\nz = "rtsp://h/s"\n')
    with pytest.raises(ValueError, match=r"cameras \['z'\] are not in the rig \['a', 'b'\]"):
        session_sources(s, ("a", "b"), False)
    (tmp_path / "live.toml").write_text('[cameras]\na = 0\n')
    with pytest.raises(ValueError, match="at least 2 of the rig's cameras"):
        session_sources(s, ("a", "b"), False)
    (tmp_path / "live.toml").write_text('[cameras]\na = 0\nb = "rtsp://h/s"\n')
    assert session_sources(s, ("a", "b"), False) == {"a": 0, "b": "rtsp://h/s"}
    assert parse_source("2") == 2 and parse_source("http://x/y") == "http://x/y"


def test_headless_preview_png_and_mjpeg(tmp_path):
    img = render(None, [{"camera": "cam01", "read": 3, "detected": 2, "dropped": 1, "found": 1.0,
                         "recent_found": 1.0, "state": "running"}], [])
    assert img.shape == (600, 960, 3)
    PngSink(tmp_path / "p.png").show(img)
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    sink = MjpegSink(0)
    try:
        sink.show(img)
        threading.Timer(0.2, sink.show, (img,)).start()
        with urllib.request.urlopen(sink.address + "stream.mjpg", timeout=5) as r:
            chunk = r.read(200)
        assert b"Content-Type: image/jpeg" in chunk and b"\xff\xd8" in chunk
    finally:
        sink.close()


@pytest.fixture(scope="module")
def take(shared_data, tmp_path_factory):
    helpers.register()
    root = tmp_path_factory.mktemp("live")
    return helpers.video_session(root / "take", shared_data / "bvh" / "cmu_01_01.bvh", frames=45, cameras=4)


def replay(truth) -> LiveConfig:
    return LiveConfig(detector="replay", model_path=str(truth))


@pytest.mark.slow
@pytest.mark.shared_data
def test_live_from_videos_follows_the_take(take):
    session, truth = take
    updates = []
    sink = type("Sink", (), {"show": lambda self, img: updates.append(img) or True, "close": lambda self: None})()
    s = run_live(session, replay(truth), from_videos=True, sink=sink)
    assert all(c["read"] == 45 and c["state"].startswith("ended") for c in s["cameras"]), s["cameras"]
    assert all(c["detected"] + c["dropped"] == 45 for c in s["cameras"])  # every frame detected or counted
    assert s["updates"] >= 30 and 0 < s["latency_ms_median"] < 1000
    assert updates and updates[-1].shape == (600, 960, 3)


@pytest.mark.slow
@pytest.mark.shared_data
def test_live_points_match_the_ground_truth(take):
    from mocap.live.engine import LiveEngine
    from mocap.live.sources import session_sources

    session, truth = take
    s = Session(session)
    engine = LiveEngine(s.rig(), session_sources(s, s.rig().names, True), replay(truth), realtime=True)
    gt = read_points3d(session / "groundtruth" / "points3d.h5").xyz[:, 0]
    engine.start()
    errors = []
    try:
        while engine.running():
            u = engine.latest_update
            if u is not None and len(set(u.frame_index.values())) == 1:  # all cameras on the same frame
                f = next(iter(u.frame_index.values()))
                ok = np.isfinite(u.points[:, 0]) & np.isfinite(gt[f, :, 0])
                errors.append(np.linalg.norm(u.points[ok] - gt[f, ok], axis=1))
            time.sleep(0.03)
    finally:
        engine.stop()
    e = np.concatenate(errors)
    assert len(errors) >= 10 and np.median(e) < 0.03, (len(errors), np.median(e))  # the synthetic 2 px noise


@pytest.mark.slow
@pytest.mark.shared_data
def test_a_camera_stopping_mid_take_is_reported_and_live_goes_on(take):
    session, truth = take
    s = run_live(session, replay(truth), from_videos=True, stop_after={"cam02": 0.5})
    rows = {c["camera"]: c for c in s["cameras"]}
    assert rows["cam02"]["state"] == "stopped mid-take: stream stopped (simulated)"
    assert rows["cam02"]["read"] < 25
    assert all(rows[c]["read"] == 45 and rows[c]["state"].startswith("ended") for c in ("cam01", "cam03", "cam04"))
    assert s["updates"] >= 30  # the 3D goes on from the other three


@pytest.mark.slow
@pytest.mark.shared_data
def test_recorded_session_processes_like_the_videos_as_files(take, tmp_path):
    session, truth = take
    files = tmp_path / "files"
    shutil.copytree(session, files)
    rec = tmp_path / "rec"
    s = run_live(session, replay(truth), from_videos=True, record=rec, codec="ffv1")
    assert s["recorded"] == str(rec) and sorted(p.name for p in (rec / "videos").iterdir())[0] == "cam01.mkv"
    assert cli(["run", str(rec)] + helpers.replay_sets(truth)) == 0
    assert cli(["run", str(files)] + helpers.replay_sets(truth)) == 0
    with h5py.File(rec / "pose2d.h5") as a, h5py.File(files / "pose2d.h5") as b:
        assert np.array_equal(a["keypoints"][()], b["keypoints"][()], equal_nan=True)
    assert (rec / "export" / "rec_body22.bvh").read_bytes() == (files / "export" / "files_body22.bvh").read_bytes()


@pytest.mark.slow
@pytest.mark.shared_data
def test_stream_urls_and_a_stream_that_stops(take):
    """Cameras given as MJPEG stream URLs in live.toml (served here); one server stops mid-take."""
    from mocap.io.video import read_frames

    session, truth = take
    names = ("cam01", "cam02", "cam03")
    sinks = {n: MjpegSink(0) for n in names}
    stop = threading.Event()

    def feed(name: str) -> None:
        frames = [f for _, f in read_frames(session / "videos" / f"{name}.avi")]
        k = 0
        while not stop.is_set():
            if not sinks[name].closed:
                sinks[name].show(frames[k % len(frames)])
            k += 1
            time.sleep(1 / 30)

    feeders = [threading.Thread(target=feed, args=(n,), daemon=True) for n in names]
    for f in feeders:
        f.start()
    (session / "live.toml").write_text("[cameras]\n" + "".join(f'{n} = "{sinks[n].address}stream.mjpg"\n'
                                                              for n in names))
    threading.Timer(1.5, sinks["cam02"].close).start()
    try:
        s = run_live(session, replay(truth), seconds=3.0)
    finally:
        stop.set()
        for sink in sinks.values():
            if not sink.closed:
                sink.close()
        (session / "live.toml").unlink()
    rows = {c["camera"]: c for c in s["cameras"]}
    assert rows["cam02"]["state"].startswith("stopped mid-take: no frame from the camera"), rows["cam02"]
    assert rows["cam01"]["state"] == rows["cam03"]["state"] == "running"
    assert rows["cam01"]["read"] > rows["cam02"]["read"] + 20  # cam01 went on after cam02 stopped
    assert s["updates"] >= 20 and np.isfinite(s["latency_ms_median"])


@pytest.mark.slow
@pytest.mark.shared_data
def test_a_detector_error_drops_that_frame_and_live_goes_on(take, monkeypatch, caplog):
    """A detection that raises is logged and counted; the worker goes on with the next frames."""
    session, truth = take
    real = helpers.ReplayDetector.__call__

    def flaky(self, image, ms):
        cam, frame = helpers.decode(image)
        if cam == 1 and frame % 10 == 5:
            raise RuntimeError("inference failed")
        return real(self, image, ms)

    monkeypatch.setattr(helpers.ReplayDetector, "__call__", flaky)
    sink = type("Sink", (), {"show": lambda self, img: True, "close": lambda self: None})()
    s = run_live(session, replay(truth), from_videos=True, sink=sink)
    cam = s["cameras"][1]
    assert cam["failed"] >= 1 and cam["detected"] > 20, cam
    assert all(c["detected"] + c["dropped"] + c["failed"] == 45 for c in s["cameras"]), s["cameras"]
    assert any("detection failed on camera" in r.getMessage() for r in caplog.records)


def test_a_recording_takes_the_cameras_own_frame_rate(tmp_path, caplog):
    """A live camera's rate is known once it is open: the recorded session and its videos follow it (a 60 fps
    camera recorded as 30 fps would halve every speed downstream)."""
    import cv2

    from mocap.live.record import Recorder
    from mocap.synth import RigSpec, ring_rig

    rig = ring_rig(RigSpec(n_cameras=2, size=(64, 48)), np.zeros((1, 3)))
    rec = Recorder(tmp_path / "rec", rig, list(rig.names), 30.0, "mjpg")
    img = np.zeros((48, 64, 3), np.uint8)
    for _ in range(3):
        rec.write(0, img, 60.0)
        rec.write(1, img, 50.0)
    rec.close()
    assert (tmp_path / "rec" / "session.toml").read_text().strip() == "fps = 60.0"
    cap = cv2.VideoCapture(str(tmp_path / "rec" / "videos" / f"{rig.names[0]}.avi"))
    assert abs(cap.get(cv2.CAP_PROP_FPS) - 60.0) < 1e-6
    cap.release()
    assert any("different rates" in r.getMessage() for r in caplog.records)
