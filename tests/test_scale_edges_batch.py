"""mocap batch edges: sessions with the same folder name are told apart in the table and the progress lines, and
a Ctrl-C with a --scheduler cluster says truthfully that the running sessions finish their run there."""

from pathlib import Path

import pytest

pytest.importorskip("distributed")

import mocap.batch  # noqa: E402
from mocap.batch import SessionResult  # noqa: E402
from mocap.cli import main as cli  # noqa: E402


def test_display_names_are_the_shortest_distinguishing_ends():
    from mocap.batch import display_names

    assert display_names(["/t/p1/take", "/t/p2/take", "/t/p3/other"]) == {
        "/t/p1/take": "p1/take", "/t/p2/take": "p2/take", "/t/p3/other": "other"}
    assert display_names(["/a/x/take", "/b/x/take", "/c/y/take"]) == {
        "/a/x/take": "a/x/take", "/b/x/take": "b/x/take", "/c/y/take": "y/take"}
    assert display_names(["/a/take", "/x/a/take"]) == {"/a/take": "/a/take", "/x/a/take": "x/a/take"}
    assert display_names(["/s/take"]) == {"/s/take": "take"}


def _sessions(root: Path) -> list[Path]:
    out = [root / p / "take" for p in ("p1", "p2", "p3")] + [root / "p4" / "other"]
    for s in out:
        s.mkdir(parents=True)
    return out


def test_batch_table_and_progress_tell_same_named_sessions_apart(tmp_path, monkeypatch, capsys):
    sessions = _sessions(tmp_path)

    def fake_run_batch(paths, scheduler, workers, sets, config, timeout, progress):
        results = [SessionResult(str(Path(p).resolve()), "done", ["fit"], 1.0) for p in paths]
        results[2] = SessionResult(results[2].session, "failed", error="boom")
        for r in reversed(results):
            progress(r)
        return results

    monkeypatch.setattr(mocap.batch, "run_batch", fake_run_batch)
    assert cli(["batch", *map(str, sessions)]) == 1
    captured = capsys.readouterr()
    assert captured.err.splitlines() == ["… other: done", "… p3/take: failed (boom)", "… p2/take: done",
                                         "… p1/take: done"]
    rows = [line.split()[0] for line in captured.out.splitlines()[2:6]]
    assert rows == ["p1/take", "p2/take", "p3/take", "other"]


def _interrupted(*args, **kwargs):
    raise KeyboardInterrupt


def test_ctrl_c_with_a_scheduler_says_running_sessions_finish_there(tmp_path, monkeypatch, capsys):
    s = _sessions(tmp_path)[0]
    monkeypatch.setattr(mocap.batch, "run_batch", _interrupted)
    assert cli(["batch", str(s), "--scheduler", "tcp://127.0.0.1:8786"]) == 130
    err = capsys.readouterr().err
    assert ("interrupted: sessions not started are cancelled, but those already running on the cluster at "
            "tcp://127.0.0.1:8786 finish their current run there (a running Dask task cannot be stopped) and hold "
            "their session's lock until then") in err
    assert "run the same command again to do the others" in err
    assert cli(["batch", str(s)]) == 130  # a cluster of its own: closed, its sessions end with it
    assert capsys.readouterr().err.strip().splitlines() == [
        "interrupted: finished sessions stay finished; run the same command again to do the others",
        "finished: none; not finished: take"]


def test_ctrl_c_says_which_sessions_finished(tmp_path, monkeypatch, capsys):
    """The interrupted batch said only "finished sessions stay finished": which ones, from their state files."""
    import json

    sessions = _sessions(tmp_path)
    (sessions[1] / ".mocap").mkdir()
    (sessions[1] / ".mocap" / "state.json").write_text(json.dumps(
        {"detect": {"status": "done"}, "fit": {"status": "done"}, "report": {"status": "done"}}))
    (sessions[2] / ".mocap").mkdir()
    (sessions[2] / ".mocap" / "state.json").write_text(json.dumps(
        {"detect": {"status": "done"}, "fit": {"status": "started"}}))
    monkeypatch.setattr(mocap.batch, "run_batch", _interrupted)
    assert cli(["batch", *map(str, sessions)]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "finished: p2/take; not finished: p1/take, p3/take, other")
