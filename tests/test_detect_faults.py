"""The detect stage when it fails or is stopped: a failing camera keeps the previous 2D (the new run waits in the
partial file and resumes), Ctrl-C stops every worker with one line (the stage contract:
tests/test_stage_contract.py)."""

import subprocess
import sys

import pytest


def test_a_failing_detection_keeps_the_previous_2d(tmp_path, monkeypatch):
    from test_detect import _InlinePool, blank_video

    from mocap.stages import detect

    (tmp_path / "videos").mkdir()
    for cam in ("a", "b"):
        blank_video(tmp_path / "videos" / f"{cam}.avi")
    out = detect.main(tmp_path, detect.Config(workers=1))
    before = out.read_bytes()
    real = detect.detect_video

    def second_camera_fails(cam, *a, **k):
        if cam == "b":
            raise ValueError("camera 'b': decoder gave up")
        return real(cam, *a, **k)

    monkeypatch.setattr(detect, "ProcessPoolExecutor", _InlinePool)
    monkeypatch.setattr(detect, "detect_video", second_camera_fails)
    with pytest.raises(ValueError, match="decoder gave up"):
        detect.main(tmp_path, detect.Config(workers=1, stride=2), overwrite=True)
    assert out.read_bytes() == before  # the earlier 2D is untouched; the new run waits in the partial file
    partial = tmp_path / ".mocap" / "pose2d.partial.h5"
    assert partial.is_file()
    monkeypatch.setattr(detect, "detect_video", real)
    detect.main(tmp_path, detect.Config(workers=1, stride=2))  # resumes with camera b, then replaces pose2d.h5
    assert not partial.exists()
    from mocap.io.hdf5 import read_keypoints2d

    assert read_keypoints2d(out).shape[0] == 6


def test_a_camera_that_fails_does_not_cost_the_others(tmp_path, monkeypatch):
    """A video cut short mid-file failed its chunk and with it the whole detection: the cameras done by then, and
    those not started, were dropped, and every run again redid them all before failing the same way. Now the
    other cameras are detected and kept, the error says so, and the next run detects only the one that failed."""
    from concurrent.futures import Future

    from test_detect import _InlinePool, blank_video

    from mocap.io.hdf5 import keypoints2d_status
    from mocap.stages import detect

    class Pool(_InlinePool):  # a chunk's error in its future, as a process pool gives it
        def submit(self, fn, *args):
            fut = Future()
            try:
                fut.set_result(fn(*args))
            except Exception as e:  # noqa: BLE001
                fut.set_exception(e)
            return fut

    (tmp_path / "videos").mkdir()
    for cam in ("a", "b", "c"):
        blank_video(tmp_path / "videos" / f"{cam}.avi")
    real, calls = detect.detect_video, []

    def first_camera_cut_short(cam, *a, **k):
        calls.append(cam)
        if cam == "a":
            raise ValueError("videos/a.avi: truncated or corrupt video: frame 3 of 6 cannot be read (last good 2)")
        return real(cam, *a, **k)

    monkeypatch.setattr(detect, "ProcessPoolExecutor", Pool)
    monkeypatch.setattr(detect, "detect_video", first_camera_cut_short)
    with pytest.raises(ValueError) as e:
        detect.main(tmp_path, detect.Config(workers=1))
    assert str(e.value).startswith("videos/a.avi: truncated or corrupt video: frame 3 of 6 cannot be read")
    assert "the other cameras' detections are kept" in str(e.value) and "detects only a again" in str(e.value)
    assert calls == ["a", "b", "c"]  # b and c were not dropped
    assert keypoints2d_status(tmp_path / ".mocap" / "pose2d.partial.h5")[0].tolist() == [False, True, True]
    calls.clear()
    monkeypatch.setattr(detect, "detect_video", lambda cam, *a, **k: calls.append(cam) or real(cam, *a, **k))
    detect.main(tmp_path, detect.Config(workers=1))  # the file mended: only a is detected
    assert calls == ["a"] and (tmp_path / "pose2d.h5").is_file()


@pytest.mark.slow
def test_ctrl_c_during_detection_stops_every_worker_with_one_line(tmp_path):
    import os
    import signal
    import time

    from test_detect import blank_video

    (tmp_path / "videos").mkdir()
    for cam in ("a", "b"):
        blank_video(tmp_path / "videos" / f"{cam}.avi", n=600)
    p = subprocess.Popen([sys.executable, "-m", "mocap", "detect", str(tmp_path), "--workers", "2"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    partial = tmp_path / ".mocap" / "pose2d.partial.h5"
    deadline = time.time() + 60
    while not partial.exists() and time.time() < deadline and p.poll() is None:
        time.sleep(0.05)
    time.sleep(3.0)  # the workers are detecting
    os.killpg(p.pid, signal.SIGINT)  # what a terminal does: the whole process group
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("interrupted")
    assert not (tmp_path / "pose2d.h5").exists()
    r = subprocess.run([sys.executable, "-m", "mocap", "detect", str(tmp_path), "--workers", "2"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "pose2d.h5").is_file() and not partial.exists()


def _hold_open(path) -> subprocess.Popen:
    """Another process that opens ``path`` for writing (HDF5 locks it), says so, and keeps it until a line comes
    on its stdin (or the stdin closes)."""
    code = ("import sys, h5py\nf = h5py.File(sys.argv[1], 'r+')\nprint('open', flush=True)\n"
            "sys.stdin.readline()\nf.close()\n")
    p = subprocess.Popen([sys.executable, "-c", code, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
    assert p.stdout.readline().strip() == "open"
    return p


def test_a_file_another_ending_process_holds_is_waited_for(tmp_path):
    """A run interrupted a moment ago may still hold the partial file's lock as its processes end: the next
    run's open waits for it instead of failing with HDF5's 'unable to lock file'."""
    import threading
    import time

    import numpy as np

    from mocap.io.hdf5 import create_keypoints2d, keypoints2d_status, write_camera

    path = create_keypoints2d(tmp_path / "p.h5", 4, ["a", "b"], 1, "coco17", 30.0)
    holder = _hold_open(path)
    t0 = time.monotonic()
    threading.Timer(0.7, lambda: holder.communicate("close\n", timeout=30)).start()  # the holder ends 0.7 s on
    write_camera(path, 1, np.zeros((4, 1, 17, 3)))
    assert time.monotonic() - t0 > 0.6  # it did wait for the other process
    assert keypoints2d_status(path)[0].tolist() == [False, True]
    holder.wait(timeout=30)


def test_a_file_open_in_another_process_is_a_clear_error(tmp_path, monkeypatch):
    from pathlib import Path

    import numpy as np

    from mocap.io import h5lock, hdf5

    path = hdf5.create_keypoints2d(tmp_path / "p.h5", 4, ["a", "b"], 1, "coco17", 30.0)
    monkeypatch.setattr(h5lock, "LOCK_WAIT_S", 0.3)
    holder = _hold_open(path)
    try:
        write, read = lambda: hdf5.write_camera(path, 0, np.zeros((4, 1, 17, 3))), lambda: hdf5.keypoints2d_status(path)
        for call in (write, read):
            with pytest.raises(hdf5.FileInUseError, match=r"p\.h5 is open in another process.*: another mocap command "
                                                          r"on this session\? Let it end \(or stop it\) and run again"
                               ) as e:
                call()
            if Path("/proc/self/fd").is_dir():  # Linux: the holder named
                assert f"(process {holder.pid}: " in str(e.value) and " -c import sys, h5py " in str(e.value)
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_a_file_system_without_locks_is_not_waited_for(monkeypatch):
    """Only another process's lock (errno 11) is waited for: HDF5's other lock failure, a file system without
    locks ("No locks available", errno 37), comes at once as HDF5 gives it."""
    import errno
    import time

    from mocap.io import h5lock

    calls = []

    def no_locks(path, mode):
        calls.append(mode)
        raise OSError(errno.ENOLCK, "Unable to synchronously open file (unable to lock file, errno = 37, error "
                                    "message = 'No locks available')")

    monkeypatch.setattr(h5lock.h5py, "File", no_locks)
    t0 = time.monotonic()
    with pytest.raises(OSError, match="No locks available") as e:
        h5lock.open_h5("x.h5", "r")
    assert not isinstance(e.value, h5lock.FileInUseError) and calls == ["r"] and time.monotonic() - t0 < 1
