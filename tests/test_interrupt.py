"""Interrupting ``mocap run`` (Ctrl-C or kill -9) in every stage, then running it again.

What is checked, for every stage that runs on a synthetic session without videos (sync, triangulate,
refine, fit, retarget, export, report) and for both signals:

* SIGINT: ``python -m mocap run`` exits with 130, prints one line starting with "interrupted" (the
  last line of stderr; the log's ``interrupted during <stage>`` warning, which names the stage, goes
  to the log file and to stderr through the logger) and no traceback; no ``.part`` file is left.
  SIGKILL: no message of course; partial files may be left, but only as ``.*.part``.
* After each interruption every file of the session is whole: each ``.h5`` opens and its datasets
  read, each ``.npz`` loads, each ``.json`` and ``.toml`` parses, each ``.bvh``/``.trc`` reads,
  ``report.html`` is complete, and the session lock can be taken at once.
* The next run resumes: every output equals, byte for byte, the one of an uninterrupted run on an
  identical copy of the session, except what legitimately records time or provenance:

  - ``logs/`` (one log per run) and ``.mocap/lock`` (who holds or last held the lock): not compared;
  - ``report/metrics.json``: equal once ``timings_s`` is removed; ``report/report.html``: equal once
    the seconds of its "Stage timings" table are blanked;
  - ``.mocap/settings.json``: byte-identical, unless a step had to be retried with ``--from`` (then
    the ``from`` provenance of a kept setting names that command line; the values must be equal);
  - ``.mocap/state.json``: the same stages, each ``done``, with the same fingerprints; ``seconds`` and
    ``finished`` are timings;
  - ``points3d/refined.h5``, ``config.resolved.toml`` and every other file: byte-identical
    (:func:`test_refined_points_are_byte_reproducible`: the solver's wall time stays in the log).
* Parts of killed runs: every writer holds the session lock, so the next command removes them all
  when it takes the lock (:func:`test_no_part_survives_a_later_run`).
* Two commands on one session at once: the second fails at once (exit 2, "is busy", naming the
  holder's command and pid), and the first one's results are unharmed.
* A Ctrl-C whose handler runs inside a weakref callback (h5py frees object ids through one) would be
  swallowed by Python; the runner notes every Ctrl-C and stops after the stage
  (:func:`test_sigint_in_a_weakref_callback_is_not_lost` makes that race certain).

The stage in progress is found by reading the run's stderr (the pipeline logs ``stage X: running``
right after it marks the stage ``started`` in ``.mocap/state.json``) every 5 ms; a stage that finished
before the signal landed (the short ones take ~0.1 s) is caught again with ``--from STAGE``, and the
hit is confirmed by the state (``started``) after the exit. To keep the file short, each signal/stage
pair is not a run of its own: a chain interrupts one session in sync, then (resuming) in
triangulate, and so on, alternating SIGINT and SIGKILL, each signal sent as soon as the stage
starts; a second chain alternates the other way round, each signal sent halfway through the stage's
uninterrupted time, so that every stage meets both signals.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from interrupt_helpers import (
    ATTEMPTS,
    EXIT_TIMEOUT_S,
    NAME,
    RUN_TIMEOUT_S,
    SETS,
    STAGES,
    Run,
    _command,
    _files,
    _h5_differences,
    check_intact,
    check_lock_free,
    compare_sessions,
)
from pipeline_synth import synthetic_session

# ----- sessions ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """The synthetic session before any run (seed 0)."""
    return synthetic_session(tmp_path_factory.mktemp("pristine") / NAME, seed=0)


def _copy(pristine: Path, parent: Path) -> Path:
    parent.mkdir(parents=True, exist_ok=True)
    root = Path(shutil.copytree(pristine, parent / NAME, symlinks=True))
    assert [p.read_bytes() for p in _files(root)] == [p.read_bytes() for p in _files(pristine)]
    return root


@pytest.fixture(scope="module")
def reference(pristine, tmp_path_factory) -> Path:
    """The uninterrupted run."""
    root = _copy(pristine, tmp_path_factory.mktemp("reference"))
    r = Run(root, _command(), "reference")
    rc = r.wait(RUN_TIMEOUT_S)
    assert rc == 0, r.stderr()
    assert "Traceback" not in r.stderr()
    assert not check_intact(root)
    state = json.loads((root / ".mocap" / "state.json").read_text())
    assert [k for k, v in state.items() if v["status"] == "done"] == list(STAGES)
    return root


# ----- interruptions ----------------------------------------------------------------------------------

def _state(root: Path) -> dict:
    p = root / ".mocap" / "state.json"
    return json.loads(p.read_text()) if p.is_file() else {}


def _check_sigint_exit(r: Run, rc: int) -> None:
    err = r.stderr()
    assert rc == 130, f"SIGINT: exit status {rc}, expected 130\n{err}"
    assert "Traceback" not in err and "Exception ignored" not in err, f"SIGINT:\n{err}"
    lines = [ln for ln in err.splitlines() if ln.strip()]
    said = [ln for ln in lines if ln.startswith("interrupted")]
    assert len(said) == 1 and lines[-1] == said[0], f"SIGINT: expected one 'interrupted' line, last\n{err}"


def interrupt(root: Path, stage: str, sig: int, tag: str, delay: float = 0.0, killed: list[int] | None = None,
              notes: list[str] | None = None) -> int:
    """Start ``mocap run``, send ``sig`` ``delay`` seconds after ``stage`` started, check the exit and the
    files; returns the number of attempts it took: a stage over before the signal landed (or up to date
    after such a miss) is redone with ``--from``, without the delay. The pids of killed runs go to
    ``killed``, what is worth saying about the misses to ``notes``."""
    notes = [] if notes is None else notes
    for attempt in range(1, ATTEMPTS + 1):
        extra = [] if attempt == 1 else ["--from", stage]
        r = Run(root, _command(extra), f"{tag}-{stage}-{attempt}")
        try:
            if not r.wait_for_stage(stage):
                rc = r.wait(EXIT_TIMEOUT_S)
                assert rc == 0, f"the run failed (status {rc}) before stage {stage} started\n{r.stderr()}"
                notes.append(f"{stage}: up to date after an earlier miss")
                continue
            if delay and attempt == 1:
                time.sleep(delay)
            r.proc.send_signal(sig)
            rc = r.wait(EXIT_TIMEOUT_S)
        finally:
            r.kill()
        if rc == 0:  # the whole run was over before the signal landed, or the signal was lost
            swallowed = "KeyboardInterrupt" in r.stderr() and "Exception ignored" in r.stderr()
            notes.append(f"{stage}: the run went on to the end" + (
                " (Ctrl-C swallowed by a weakref callback, see test_sigint_in_a_weakref_callback_is_not_lost)"
                if swallowed else ""))
            continue
        if sig == signal.SIGINT:
            if "total " in r.stdout() and _state(root).get(stage, {}).get("status") == "done":
                # Ctrl-C once the pipeline was done (printing its table, or the interpreter exiting): not
                # this test's subject, but said if it was not the usual one line
                if rc != 130 or "Traceback" in r.stderr():
                    notes.append(f"{stage}: SIGINT after the run was over: exit {rc}\n{r.stderr()[-2000:]}")
                continue
            _check_sigint_exit(r, rc)
        else:
            assert rc == -signal.SIGKILL, f"SIGKILL in {stage}: exit status {rc}\n{r.stderr()}"
            if killed is not None:
                killed.append(r.pid)
        if _state(root).get(stage, {}).get("status") != "started":
            notes.append(f"{stage}: over before the signal landed")
            continue  # the interruption hit a later stage
        if sig == signal.SIGINT:
            assert f"interrupted during {stage};" in r.stderr(), r.stderr()  # the log's warning names it
            log = max((root / "logs").glob("run-*.log"), key=lambda p: p.stat().st_mtime_ns)
            assert f"interrupted during {stage};" in log.read_text(), log
        parts = check_intact(root)
        if sig == signal.SIGINT:
            assert not parts, f"SIGINT in {stage} left partial files {parts}"
        check_lock_free(root)
        return attempt
    pytest.fail(f"could not interrupt stage {stage} in {ATTEMPTS} attempts: {notes}")


def resume(root: Path, tag: str) -> Run:
    r = Run(root, _command(), f"{tag}-resume")
    rc = r.wait(RUN_TIMEOUT_S)
    assert rc == 0, r.stderr()
    assert "Traceback" not in r.stderr() and "Exception ignored" not in r.stderr(), r.stderr()
    return r


INT, KILL = signal.SIGINT, signal.SIGKILL
CHAINS = {  # signal per stage, and when: at the stage's start, or halfway through its uninterrupted time
    "int-kill-at-start": ([(s, INT if i % 2 == 0 else KILL) for i, s in enumerate(STAGES)], 0.0),
    "kill-int-halfway": ([(s, KILL if i % 2 == 0 else INT) for i, s in enumerate(STAGES)], 0.5),
}
_PART_PID = re.compile(r"^\..+\.(\d+)\.[0-9a-f]{8}\.part(\.[A-Za-z0-9]+)?$")


def _grace_s() -> float:
    from mocap.io import atomic

    return float(getattr(atomic, "GRACE_S", 0.0))


@pytest.mark.slow
@pytest.mark.parametrize("chain", list(CHAINS))
def test_interrupt_every_stage_then_resume(chain, pristine, reference, tmp_path):
    steps, fraction = CHAINS[chain]
    seconds = {k: v["seconds"] for k, v in _state(reference).items()}
    root = _copy(pristine, tmp_path)
    attempts, killed, notes = {}, [], []
    t0 = time.monotonic()
    for stage, sig in steps:
        attempts[stage] = interrupt(root, stage, sig, chain, fraction * seconds[stage], killed, notes)
    r = resume(root, chain)
    assert "interrupted" not in r.stderr()
    state = _state(root)
    assert [k for k, v in state.items() if v["status"] == "done"] == list(STAGES), state
    # A part of a killed run is left until a write into its folder after atomic.GRACE_S (the pid could be
    # another machine's): only parts of the runs killed here, and younger than that, may remain.
    parts = check_intact(root)
    for part in parts:
        m = _PART_PID.match(part.name)
        assert m and int(m[1]) in killed, f"partial file {part} of no killed run (killed: {killed})"
        assert time.time() - (root / part).stat().st_mtime < _grace_s(), f"stale partial file {part} kept"
    check_lock_free(root)
    diffs, relaxed = compare_sessions(reference, root, retried=max(attempts.values()) > 1)
    assert not diffs, "resumed run differs from the uninterrupted one:\n" + "\n".join(diffs)
    assert {r for r in relaxed if not r.startswith(".mocap/state.json")} <= {"points3d/refined.h5"}, relaxed
    print(f"\n{chain}: {time.monotonic() - t0:.1f} s, attempts per stage {attempts}; equal but for embedded "
          f"times: {relaxed}; parts of killed runs left (within the grace): {[str(p) for p in parts]}; "
          f"misses: {notes}")


def _dead_pid() -> int:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    return dead.pid


def _plant_part(folder: Path, age_s: float) -> Path:
    from mocap.io.atomic import part_name

    folder.mkdir(parents=True, exist_ok=True)
    p = folder / part_name(folder / "x.json", pid=_dead_pid())
    p.write_text('{"half')
    t = time.time() - age_s
    os.utime(p, (t, t))
    return p


def test_parts_left_by_a_killed_process_go_at_the_next_run(pristine, tmp_path):
    """Every writer in a session holds its lock, so a part found when the next command takes the lock is a
    killed command's, however young, in any folder: it is removed."""
    from mocap.pipeline import run

    root = _copy(pristine, tmp_path)
    parts = [_plant_part(f, 2 * _grace_s() + 1) for f in (root, root / ".mocap")] + [_plant_part(root, 0.0)]
    run(root, sets=SETS, progress=False, only=["sync"])
    assert not any(p.exists() for p in parts)


@pytest.mark.slow  # the reference run
def test_no_part_survives_a_later_run(reference, tmp_path):
    root = Path(shutil.copytree(reference, tmp_path / NAME, symlinks=True))
    parts = [_plant_part(root / d, 2 * _grace_s() + 1) for d in ("export", "points3d", "motion", "report")]
    r = resume(root, "later")
    assert "stage export: running" not in r.stderr()  # nothing to do
    assert [str(p.relative_to(root)) for p in parts if p.exists()] == []


@pytest.mark.slow
def test_second_run_on_a_busy_session_fails_fast(pristine, reference, tmp_path):
    root = _copy(pristine, tmp_path)
    first = Run(root, _command(), "first")
    others = []
    try:
        assert first.wait_for_stage("sync"), first.stderr()
        os.kill(first.pid, signal.SIGSTOP)  # holds the lock for as long as the others need
        others = [Run(root, _command(), "second"),
                  Run(root, [sys.executable, "-m", "mocap", "triangulate", NAME], "stage-command")]
        for other in others:
            rc = other.wait(RUN_TIMEOUT_S)
            err = other.stderr()
            assert rc == 2, f"{other.proc.args}: exit {rc}\n{err}"
            assert "Traceback" not in err, err
            busy = [ln for ln in err.splitlines() if "is busy" in ln]
            assert len(busy) == 1 and busy[0].startswith("error: session"), err
            assert f"(pid {first.pid}," in busy[0] and "`mocap run take --set" in busy[0], busy[0]
        assert len(list((root / "logs").glob("*.log"))) == 1  # a refused command starts no log
        os.kill(first.pid, signal.SIGCONT)
        assert first.wait(RUN_TIMEOUT_S) == 0, first.stderr()
    finally:
        for r in [first, *others]:
            r.kill()
    check_lock_free(root)
    diffs, _ = compare_sessions(reference, root, retried=False)
    assert not diffs, "\n".join(diffs)


class NotByteIdenticalError(AssertionError):
    pass


def test_refined_points_are_byte_reproducible(pristine, tmp_path):
    from mocap.settings import load_config
    from mocap.stages import refine, sync, triangulate

    root = _copy(pristine, tmp_path)
    settings = load_config(root, sets=SETS)[0]
    sync.main(root, settings, True)
    triangulate.main(root, settings, True)
    out = refine.main(root, settings, True)
    first = tmp_path / "first.h5"
    shutil.copyfile(out, first)
    refine.main(root, settings, True)
    assert _h5_differences(first, out) == []  # the same points: a real failure if not
    if out.read_bytes() != first.read_bytes():
        raise NotByteIdenticalError(f"{out} differs from one run of refine to the next")


# A Ctrl-C whose handler runs while a weakref callback runs (h5py frees its object ids through one:
# WeakValueDictionary.remove, e.g. under ``f[name]`` in mocap.io.hdf5) cannot propagate: Python prints
# "Exception ignored in: <function WeakValueDictionary...remove>", a traceback ending in
# KeyboardInterrupt, and the run goes on. The race is seen at the start of refine (read_points3d) about one
# time in three; this child makes it certain: when the pipeline logs "stage refine: running", an object
# with such a callback dies, and the callback raises SIGINT (the signal's handler runs inside it).
_SWALLOWED_SIGINT = """
import logging, runpy, signal, sys, weakref

class Victim:
    pass

def trip(_ref):
    signal.raise_signal(signal.SIGINT)

class Trigger(logging.Filter):
    def filter(self, record):
        if record.getMessage().startswith("stage refine: running"):
            v = Victim()
            ref = weakref.ref(v, trip)
            del v
            assert ref() is None
        return True

logging.getLogger("mocap.pipeline").addFilter(Trigger())
sys.argv = ["mocap"] + sys.argv[1:]
runpy.run_module("mocap", run_name="__main__", alter_sys=True)
"""


def test_sigint_in_a_weakref_callback_is_not_lost(pristine, tmp_path):
    root = _copy(pristine, tmp_path)
    r = Run(root, [sys.executable, "-c", _SWALLOWED_SIGINT] + _command()[3:], "swallowed")
    rc = r.wait(RUN_TIMEOUT_S)
    err = r.stderr()
    assert "stage refine: running" in err, err
    assert "Exception ignored" not in err and "Traceback" not in err, err
    assert rc == 130, err
    _check_sigint_exit(r, rc)
    assert "stage fit: running" not in err, err  # stopped in refine (or right after it)
