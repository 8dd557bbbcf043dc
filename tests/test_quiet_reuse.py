"""The native-stderr redirection reuses one file per process: each block forwards exactly its own text
(nothing left over from a longer earlier block, no NUL padding), and detector names are scanned once."""

import logging
import os


def test_each_block_forwards_only_its_own_text(capfd, caplog):
    from mocap import quiet

    logger = logging.getLogger("mocap.test.reuse")
    texts = [b"I0000 a rather long first line of native noise\n", b"I0000 short\n", b"", b"I0000 third\nI0000 4\n"]
    got = []
    with caplog.at_level(logging.DEBUG, logger="mocap.test.reuse"):
        for t in texts:
            caplog.clear()
            with quiet.native_stderr_to_log(logger):
                os.write(2, t)
            got.append([r.getMessage() for r in caplog.records if r.name == "mocap.test.reuse"])
    assert got == [["native: I0000 a rather long first line of native noise"], ["native: I0000 short"], [],
                   ["native: I0000 third", "native: I0000 4"]]
    assert quiet._sink["file"] is not None and quiet._sink["pid"] == os.getpid()
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"


def test_detector_names_scan_once_and_see_registered_detectors(monkeypatch):
    import importlib.metadata

    from mocap import detect

    detect.detector_names()
    calls = []
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **kw: calls.append(kw) or [])
    monkeypatch.setitem(detect.DETECTORS, "extra_test", "x:Y")
    names = detect.detector_names()
    assert "extra_test" in names and "blazepose" in names and calls == []


def test_the_native_stderr_sink_is_closed_as_the_process_ends():
    """The sink file stays open for a process's later blocks: it was left for the interpreter to collect, and every
    run with warnings on (the test suite's end) printed "ResourceWarning: unclosed file <_io.BufferedRandom>"."""
    import subprocess
    import sys

    code = ("import logging\nfrom mocap.quiet import native_stderr_to_log\n"
            "with native_stderr_to_log(logging.getLogger('x')):\n    pass\n")
    done = subprocess.run([sys.executable, "-X", "dev", "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "ResourceWarning" not in done.stderr, done.stderr
