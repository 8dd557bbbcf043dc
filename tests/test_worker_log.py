"""Warnings logged in a detection worker reach the run (mocap/detect/worker_log.py): a pool worker has no logging
set up, so its warnings (a video's damaged frames) went to its stderr unformatted and never into the run's log."""

import logging
import subprocess
import sys

import pytest
from test_detect_pool import fakes, session_with  # noqa: F401 - fakes: a fixture

from mocap.detect.worker_log import kept, said
from mocap.stages import detect


def test_a_workers_warnings_are_kept_from_every_thread_and_said_by_the_run(caplog):
    code = """
import logging, threading
from mocap.detect.worker_log import kept
log = logging.getLogger("mocap.io.video")
with kept([]) as out:
    t = threading.Thread(target=lambda: log.warning("frames %d cannot be decoded", 12))  # a decoding thread
    t.start(); t.join()
    logging.getLogger("mocap.x").info("not kept")
print(out)
log.warning("after the block")  # no handler again: Python's last resort, as before
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "[('mocap.io.video', 30, 'frames 12 cannot be decoded')]"
    assert r.stderr.strip() == "after the block"
    with caplog.at_level(logging.WARNING):
        said([("mocap.io.video", 30, "frames 12 cannot be decoded")])
    assert [(x.name, x.levelname, x.getMessage()) for x in caplog.records] == [
        ("mocap.io.video", "WARNING", "frames 12 cannot be decoded")]


def test_chunks_at_once_in_one_process_say_each_warning_once():
    a, b = [], []
    log = logging.getLogger("mocap.t")
    with kept(a):
        with kept(b):
            log.warning("one")
        log.warning("two")
    assert b == [("mocap.t", 30, "one")] and a == [("mocap.t", 30, "two")]  # each once, with whichever ends first
    assert all(type(h).__name__ != "_Keep" for h in logging.getLogger("mocap").handlers)  # removed with the last


@pytest.mark.slow  # a worker pool (a few seconds)
def test_a_damaged_frame_seen_by_a_pool_worker_is_in_the_runs_log(tmp_path, fakes, caplog, capfd):  # noqa: F811
    session = session_with(tmp_path, [20, 20])
    path = session / "videos" / "cam1.avi"
    data = bytearray(path.read_bytes())
    starts = [i for i in range(len(data) - 2) if data[i:i + 3] == b"\xff\xd8\xff"]
    data[starts[12]:starts[13] - 16] = bytes(starts[13] - 16 - starts[12])  # frame 12 damaged, 13 on
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        detect.main(session, detect.Config(detector="still", workers=2))
    assert detect.last_run["workers"] == 2
    said_ = [(x.name, x.getMessage()) for x in caplog.records if "cannot be decoded" in x.getMessage()]
    assert said_ == [("mocap.io.video", "cam1.avi: frames 12 (1) cannot be decoded (damaged): given as black images, "
                                        "no detection there")]
    assert "cannot be decoded" not in capfd.readouterr().err  # not printed raw by the worker


def test_a_malformed_log_call_in_a_worker_does_not_end_its_chunk():
    """``log.warning("frame %d", "x")`` raised TypeError out of the keeping handler: the detection chunk died (outside
    the block logging reports it and carries on). In a child: pytest's own log handler raises on such calls."""
    code = """
import logging
from mocap.detect.worker_log import kept
with kept([]) as out:
    logging.getLogger("mocap.t").warning("frame %d", "x")
    logging.getLogger("mocap.t").warning("after")
print(out)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "[('mocap.t', 30, 'after')]", r.stderr
    assert "Logging error" in r.stderr  # logging's own report of it
