"""How the detect pool starts its workers (mocap.detect.pool): a fork server with the workers' modules
imported on Linux, spawned interpreters elsewhere or when asked; the same keypoints either way."""

import multiprocessing
import subprocess
import sys

import numpy as np
import pytest

from mocap.detect import pool

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork server: Linux only")


def test_start_method_is_forkserver_on_linux_unless_asked(monkeypatch):
    monkeypatch.delenv(pool.ENV, raising=False)
    assert pool.start_method() == ("forkserver" if sys.platform.startswith("linux") else "spawn")
    monkeypatch.setenv(pool.ENV, "spawn")
    assert pool.start_method() == "spawn"
    assert pool.context().get_start_method() == "spawn"


def test_a_bad_start_method_says_what_is_expected(monkeypatch):
    monkeypatch.setenv(pool.ENV, "fork")
    with pytest.raises(ValueError, match=r"MOCAP_DETECT_START: expected 'spawn' or 'forkserver', got 'fork'"):
        pool.start_method()


@linux
def test_the_preload_imports_everything_and_starts_no_thread():
    """Forking is safe only from a process whose libraries run no thread of their own: importing the
    preload (mediapipe's package, OpenCV, the stage) after numpy must leave the thread count as it was."""
    code = ("import os, threading, numpy, cv2\n"
            "before = len(os.listdir('/proc/self/task'))\n"
            "import mocap.detect.pool_preload as p\n"
            "import sys\n"
            "print(before, len(os.listdir('/proc/self/task')), threading.active_count(), sorted(p.failed),"
            " 'mediapipe' in sys.modules, type(sys.modules['matplotlib.pyplot']).__name__,"
            " 'onnxruntime' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    before, after, python_threads, failed, mediapipe, pyplot, onnxruntime = out
    assert after == before and python_threads == "1"
    assert failed == "[]" and mediapipe == "True"
    assert pyplot == "Deferred"  # mediapipe's plotting import stays a stand-in, as in a spawned worker
    assert onnxruntime == "False"  # it starts a thread when imported: left to the workers


@linux
def test_fork_server_cpu_is_read_and_it_stops():
    pool.stop_server()
    assert pool.server_pid() is None and pool.server_cpu() == (0.0, 0.0)
    ctx = multiprocessing.get_context("forkserver")
    proc = ctx.Process(target=pool.ready)
    proc.start()
    proc.join()
    assert proc.exitcode == 0 and pool.server_pid() is not None
    own, children = pool.server_cpu()
    assert own > 0.0 and children >= 0.0  # the server imported mediapipe: its CPU is read, not (0, 0); its
    # children's CPU (a worker that burns 1 s) is test_scale_edges_bench's run-record test
    pool.stop_server()
    assert pool.server_pid() is None


@linux
@pytest.mark.slow  # two worker pools (a few seconds)
def test_forked_and_spawned_workers_give_the_same_keypoints(tmp_path, monkeypatch):
    from test_detect_pool import session_with

    from mocap.detect import DETECTORS
    from mocap.io.hdf5 import read_keypoints2d
    from mocap.stages import detect

    monkeypatch.setitem(DETECTORS, "tracker", "test_detect_pool:Smoothed")
    session = session_with(tmp_path, [40, 25, 30])
    got = {}
    for method in ("spawn", "forkserver"):
        monkeypatch.setenv(pool.ENV, method)
        got[method] = read_keypoints2d(detect.main(session, detect.Config(detector="tracker", workers=2),
                                                   overwrite=True)).data
        assert detect.last_run["workers"] == 2 and detect.last_run["chunks"] == 3
    assert np.array_equal(got["spawn"], got["forkserver"], equal_nan=True)
    assert pool.server_pid() is not None  # the forked run used the fork server


@linux
def test_only_the_fork_server_skips_its_teardown():
    """The preload's exit shortcut is for the fork server alone: a process that imports it otherwise (a test,
    a tool) exits normally, its exit handlers run."""
    code = ("import atexit\nimport mocap.detect.pool_preload as p\n"
            "atexit.register(print, 'handlers ran')\nprint(p.in_fork_server())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[:2] == ["False", "handlers ran"]
    pool.stop_server()
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["__main__", *pool.PRELOAD])
    proc = ctx.Process(target=_report_preload)
    proc.start()
    proc.join()
    assert proc.exitcode == 0
    own, _ = pool.server_cpu()
    pool.stop_server()  # waits for the server's exit: with the shortcut taken, at once
    assert own > 0.0


def _report_preload() -> None:
    import sys

    preload = sys.modules.get("mocap.detect.pool_preload")
    assert preload is not None and not preload.failed  # forked with the workers' modules imported


@linux
def test_a_fork_server_that_cannot_start_means_spawned_workers(monkeypatch, caplog):
    from multiprocessing import forkserver

    def refuse():
        raise OSError("no AF_UNIX socket here")

    monkeypatch.delenv(pool.ENV, raising=False)
    monkeypatch.setattr(forkserver, "ensure_running", refuse)
    with caplog.at_level("WARNING", logger="mocap.detect.pool"):
        assert pool.context().get_start_method() == "spawn"
    assert "fork server cannot start (no AF_UNIX socket here); they are spawned instead" in caplog.text


class EnvProbe:
    """A detector whose every keypoint is the environment's MOCAP_TEST_VALUE as its worker sees it (-1: unset)."""

    keypoint_set = "blazepose33"
    stateless = True

    def __init__(self, variant="full", model_path=None, num_poses=1):
        self.num_poses = num_poses

    def __call__(self, image_bgr, timestamp_ms):
        import os

        return np.full((self.num_poses, 33, 3), float(os.environ.get("MOCAP_TEST_VALUE", "-1")))

    def close(self):
        pass


@pytest.mark.slow  # a worker pool (a few seconds)
def test_workers_see_the_environment_of_now_not_the_fork_servers(tmp_path, monkeypatch):
    """The fork server keeps the environment it started with; a setting changed since (MOCAP_CACHE, say) must
    reach the workers as it reaches spawned ones."""
    from test_detect_pool import session_with

    from mocap.detect import DETECTORS
    from mocap.io.hdf5 import read_keypoints2d
    from mocap.stages import detect

    monkeypatch.delenv("MOCAP_TEST_VALUE", raising=False)
    pool.context()  # the server starts without it (Linux; elsewhere the workers are spawned)
    monkeypatch.setenv("MOCAP_TEST_VALUE", "7")
    monkeypatch.setitem(DETECTORS, "envprobe", f"{__name__}:EnvProbe")
    session = session_with(tmp_path, [12, 12])
    data = read_keypoints2d(detect.main(session, detect.Config(detector="envprobe", workers=2))).data
    assert np.all(data[..., 0] == 7)


def test_a_run_that_will_detect_starts_the_fork_server_during_its_set_up(tmp_path, monkeypatch):
    """mocap run on a session without 2D keypoints: the workers' fork server is started before the first stage
    (its imports overlap the run's set-up); with the keypoints there, it is not (detection may be up to date)."""
    from pipeline_synth import synthetic_session

    from mocap import pipeline
    from mocap.session import Session
    from mocap.stages import detect as stage

    calls = []

    class StopError(Exception):
        pass

    def fake_main(s, settings, overwrite):
        calls.append("detect")
        raise StopError

    monkeypatch.setattr(pool, "warm", lambda: calls.append("warm"))
    monkeypatch.setattr(stage, "needed", lambda s, settings: None)
    monkeypatch.setattr(stage, "inputs", lambda s, settings: [])
    monkeypatch.setattr(stage, "main", fake_main)
    session = Session(synthetic_session(tmp_path / "s", frames=20))
    with pytest.raises(StopError):
        pipeline.run_stages(session, only=["detect"], force=True, progress=False)
    assert calls == ["detect"]  # its keypoints are there
    session.pose2d_h5.unlink()
    calls.clear()
    with pytest.raises(StopError):
        pipeline.run_stages(session, only=["detect"], progress=False)
    assert calls == ["warm", "detect"]
