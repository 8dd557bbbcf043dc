"""Benchmark measuring edges: a measured process that dies ends measure() with an error (it waited forever), the
run record's CPU counts the detect pool's workers under the fork server, and ``--work`` never deletes a file."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mocap.bench.e2e import working_copy
from mocap.cli import main

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork, /proc: Linux only")


def _run(code: str, tmp_path: Path, timeout: float = 30) -> str:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(code))
    try:
        done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running after {timeout} s: a hang")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@linux
def test_measure_of_a_killed_process_raises_naming_its_exit_code(tmp_path):
    out = _run("""
        import os, signal, sys, time
        from mocap.bench.common import measure
        for fn in (lambda: os.kill(os.getpid(), signal.SIGKILL), lambda: sys.exit(3), lambda: os._exit(5)):
            t0 = time.perf_counter()
            try:
                measure(fn)
            except RuntimeError as e:
                print(f"{e} | {time.perf_counter() - t0 < 5}")
        """, tmp_path)
    assert out.splitlines() == [
        "benchmarked method's process died without a result: exit code -9 (SIGKILL) | True",
        "benchmarked method failed: SystemExit: 3 | True",
        "benchmarked method's process died without a result: exit code 5 | True"]


@linux
def test_measure_still_returns_the_result():
    from mocap.bench.common import measure

    out, seconds, mem = measure(lambda: sum(range(1000)))
    assert out == 499500 and seconds >= 0.0 and mem >= 0.0


@linux
def test_run_record_cpu_counts_the_fork_servers_workers(tmp_path):
    """The detect pool's workers are the fork server's children: os.times() of the bench counts none of their
    CPU; the run record's cpu_s does (fork_server_cpu_s is that part), running or ended."""
    out = _run("""
        import json, multiprocessing, os, time
        from mocap.bench.common import run_record

        def burn(go, burnt):
            t = time.process_time()
            while time.process_time() - t < 1.0:
                pass
            burnt.set()
            go.wait()

        def own():
            t = os.times()
            return t.user + t.system + t.children_user + t.children_system

        if __name__ == "__main__":
            ctx = multiprocessing.get_context("forkserver")
            go, burnt = ctx.Event(), ctx.Event()
            p = ctx.Process(target=burn, args=(go, burnt))
            p.start()
            assert burnt.wait(120)  # its second of CPU spent (however loaded the machine), it waits
            alive = (own(), run_record())
            go.set()
            p.join()  # reaped by the fork server
            ended = (own(), run_record())
            print(json.dumps([[o, r["cpu_s"], r["fork_server_cpu_s"]] for o, r in (alive, ended)]))
        """, tmp_path)
    for own, cpu_s, server in json.loads(out):
        assert server >= 0.9 and cpu_s >= own + 0.9 and abs(cpu_s - own - server) < 0.05


def _session(root: Path) -> Path:
    s = root / "take"
    (s / "videos").mkdir(parents=True)
    (s / "videos" / "cam01.mp4").write_bytes(b"not a video")
    (s / "groundtruth").mkdir()
    (s / "groundtruth" / "points3d.h5").write_bytes(b"x")
    return s


def test_work_that_is_a_file_is_refused_and_kept(tmp_path, capsys):
    s = _session(tmp_path)
    notes = tmp_path / "results.json"
    notes.write_text('{"my": "earlier results"}')
    msg = f"--work {notes}: it exists and is not a folder (a file or a link)"
    with pytest.raises(FileExistsError, match="it exists and is not a folder") as e:
        working_copy(s, notes, "_e2e", truth=True)
    assert str(e.value).startswith(msg)
    assert notes.read_text() == '{"my": "earlier results"}'
    for bench in ("e2e", "people-e2e"):
        args = ["bench", bench, "--session", str(s)] if bench == "e2e" else ["bench", bench, str(s)]
        assert main(args + ["--work", str(notes)]) == 2
        assert msg in capsys.readouterr().err
    assert notes.read_text() == '{"my": "earlier results"}'
    beside = tmp_path / "take_e2e"  # the default working copy's place, a file there
    beside.write_text("mine")
    with pytest.raises(FileExistsError, match="take_e2e: it exists and is not a folder"):
        working_copy(s, None, "_e2e", truth=True)
    assert beside.read_text() == "mine"


def test_work_that_is_a_link_is_refused(tmp_path):
    s = _session(tmp_path)
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "keep.txt").write_text("keep")
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(FileExistsError, match="it exists and is not a folder"):
        working_copy(s, link, "_e2e", truth=True)
    assert link.is_symlink() and (target / "keep.txt").read_text() == "keep"
