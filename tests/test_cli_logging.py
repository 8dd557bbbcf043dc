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
