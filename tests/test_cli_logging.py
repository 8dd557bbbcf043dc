"""What a command prints on the terminal: this project's INFO lines, other libraries' warnings only (Dask's
scheduler and nannies set their own loggers to INFO, which used to fill `mocap batch`'s terminal)."""

import logging

from mocap.cli import _logging


def test_other_libraries_info_stays_off_the_terminal_their_warnings_do_not(capsys):
    lib = logging.getLogger("distributed.scheduler")
    saved = lib.level
    lib.setLevel(logging.INFO)  # as Dask's logging config does
    try:
        with _logging(verbose=False):
            lib.info("Register worker addr: tcp://127.0.0.1:1")
            lib.warning("a worker was lost")
            logging.getLogger("mocap.pipeline").info("stage detect: running")
            logging.getLogger("calibration.detect").info("camera cam01: board in 18 of 36 frames")
        err = capsys.readouterr().err
        assert "Register worker" not in err
        assert "a worker was lost" in err and "stage detect: running" in err and "board in 18 of 36" in err
        with _logging(verbose=True):  # -v shows everything
            lib.info("Register worker addr: tcp://127.0.0.1:2")
        assert "Register worker addr: tcp://127.0.0.1:2" in capsys.readouterr().err
    finally:
        lib.setLevel(saved)


def test_lines_reach_the_terminal_while_another_thread_sends_native_stderr_to_the_log(capfd, caplog, monkeypatch):
    """A live camera opening on its own thread sends descriptor 2 to the log (mocap.quiet); the warnings the
    other threads log meanwhile used to be written there too and forwarded as DEBUG 'native:' lines."""
    import os
    import threading

    from mocap import quiet

    terminal = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115 - sys.stderr as a command has it: on fd 2
    monkeypatch.setattr("sys.stderr", terminal)
    inside, done = threading.Event(), threading.Event()

    def opening_camera() -> None:
        with quiet.native_stderr_to_log(logging.getLogger("mocap.live.sources")):
            os.write(2, b"I0000 native noise while opening\n")
            inside.set()
            done.wait(10)

    with caplog.at_level(logging.DEBUG, logger="mocap.live.sources"), _logging(verbose=False):
        t = threading.Thread(target=opening_camera)
        t.start()
        assert inside.wait(10)
        logging.getLogger("mocap.live.session").warning("camera cam02: stream stopped")
        done.set()
        t.join(10)
    err = capfd.readouterr().err
    assert "WARNING mocap.live.session: camera cam02: stream stopped" in err
    assert "native noise" not in err  # the native line still goes to the log, not the terminal
    forwarded = [r.getMessage() for r in caplog.records if r.name == "mocap.live.sources"]
    assert forwarded == ["native: I0000 native noise while opening"]
