"""Work ``mocap run`` starts ahead (mocap/ahead.py): the export's Blender child, loaded while the stages
before the export run and serving the export on a pipe, never outliving the run; the overlay videos
rendered in the background, joined by the report (their rendering: tests/test_overlay_background.py)."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import pytest
from body_synth import body_motion
from interrupt_helpers import sigint_default
from test_overlay_background import _video

from mocap import ahead
from mocap.io import blender

FAKE = Path(__file__).with_name("fake_blender_child.py")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def fake_blender(monkeypatch, tmp_path):
    """Blender children are tests/fake_blender_child.py; one-shot children are counted (and fake too)."""
    pids = tmp_path / "pids.txt"
    monkeypatch.setattr(blender, "SERVE", [sys.executable, str(FAKE)])
    monkeypatch.setattr(blender, "bpy_available", lambda: True)
    monkeypatch.setattr(blender, "_require_bpy", lambda suffix: None)
    monkeypatch.setenv("FAKE_BLENDER_PIDS", str(pids))
    one_shots = []

    def one_shot(spec, tmp):
        one_shots.append(len(spec))
        for job in spec:
            Path(job["out"]).write_bytes(b"one-shot")
        return set(range(len(spec))), ""

    monkeypatch.setattr(blender, "_one_shot", one_shot)
    yield types.SimpleNamespace(pids=pids, one_shots=one_shots)
    blender.release()


def _ended(pid: int, within: float = 15.0) -> bool:
    """Whether process ``pid`` is gone (or a zombie nobody reaped) within ``within`` seconds."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


def test_warm_child_serves_every_file_of_the_export_then_ends(fake_blender, tmp_path):
    motion = body_motion(5, fps=30.0)
    child = blender.warm()
    assert child is not None and blender.warm() is child  # one child, however often asked
    out = blender.blender_export_many([(motion, tmp_path / "a.fbx", "y"), (motion, tmp_path / "b.glb", "z")])
    assert out == [tmp_path / "a.fbx", tmp_path / "b.glb"] and fake_blender.one_shots == []
    assert all(p.read_bytes()[:2] == b"PK" for p in out)  # the fake copies the capture (an npz) through
    assert child.proc.poll() is not None and blender._warm is None  # it served its run and ended
    assert child.ready_s is not None and 0 < child.ready_s < 30


def test_warm_child_failure_names_the_missing_files_and_keeps_the_finished_ones(fake_blender, tmp_path,
                                                                                  monkeypatch):
    monkeypatch.setenv("FAKE_BLENDER_FAIL_AT", "1")
    motion = body_motion(5, fps=30.0)
    (tmp_path / "b.glb").write_bytes(b"old")
    child = blender.warm()
    with pytest.raises(RuntimeError, match=r"b\.glb failed: ValueError: cannot export"):
        blender.blender_export_many([(motion, tmp_path / "a.fbx", "y"), (motion, tmp_path / "b.glb", "z")])
    assert (tmp_path / "a.fbx").is_file() and (tmp_path / "b.glb").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix in (".fbx", ".glb")) == ["a.fbx", "b.glb"]
    assert _ended(child.pid)


def test_a_child_that_dies_mid_export_is_an_error_naming_its_exit(fake_blender, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_BLENDER_DIE_AT", "0")
    blender.warm()
    with pytest.raises(RuntimeError, match=r"a\.fbx failed: the Blender child ended \(exit status 3\)"):
        blender.blender_export_many([(body_motion(5, fps=30.0), tmp_path / "a.fbx", "y")])


def test_a_child_that_cannot_start_leaves_no_temporary_file(monkeypatch):
    opened = []
    real = blender.tempfile.TemporaryFile

    def tracked(*a, **k):
        opened.append(real(*a, **k))
        return opened[-1]

    monkeypatch.setattr(blender.tempfile, "TemporaryFile", tracked)
    with pytest.raises(FileNotFoundError):
        blender.Child(["/nonexistent/blender-child"])
    assert len(opened) == 1 and opened[0].closed


def test_a_warm_child_that_ended_early_is_replaced_by_a_one_shot_child(fake_blender, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(blender, "SERVE", [sys.executable, "-c", "import sys; sys.exit('no bpy here')"])
    child = blender.warm()
    assert _ended(child.pid)
    out = blender.blender_export_many([(body_motion(5, fps=30.0), tmp_path / "a.fbx", "y")])
    assert out[0].read_bytes() == b"one-shot" and fake_blender.one_shots == [1]
    assert "ended early" in caplog.text and "no bpy here" in caplog.text


def _parent(tmp_path: Path, body: str) -> subprocess.Popen:
    """A Python process that starts a fake warm child, prints its pid, then runs ``body``."""
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        from mocap.io import blender
        blender.SERVE = [sys.executable, {str(FAKE)!r}]
        blender.bpy_available = lambda: True
        """) + textwrap.dedent(body))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    return subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, preexec_fn=sigint_default)


def test_no_orphan_child_when_the_parent_is_killed(tmp_path):
    parent = _parent(tmp_path, """
        child = blender.warm()
        print(child.pid, child.tmp, flush=True)
        time.sleep(120)
        """)
    pid, tmp = parent.stdout.readline().split()
    assert Path(tmp).is_dir()
    parent.kill()  # SIGKILL: no clean-up in the parent at all
    parent.wait()
    assert _ended(int(pid)), "the Blender child outlived its killed parent"
    # the child removed its temporary folder (Blender's session folder in it), which the parent could not
    deadline = time.time() + 5
    while Path(tmp).exists() and time.time() < deadline:
        time.sleep(0.05)
    assert not Path(tmp).exists(), f"{tmp} was left behind"


@pytest.mark.skipif(not blender.bpy_available(), reason="needs bpy (Blender's Python module)")
def test_the_real_blender_child_removes_its_folder_when_its_parent_is_killed(tmp_path):
    script = tmp_path / "parent.py"  # the real child (python -m mocap.io.blender_serve), killed while it loads bpy
    script.write_text("import time\nfrom mocap.io import blender\nc = blender.warm()\nprint(c.pid, c.tmp, flush=True)\n"
                      "time.sleep(120)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
    pid, tmp = parent.stdout.readline().split()
    parent.kill()
    parent.wait()
    parent.stdout.close()
    assert _ended(int(pid), within=60.0), "the Blender child outlived its killed parent"
    deadline = time.time() + 10
    while Path(tmp).exists() and time.time() < deadline:
        time.sleep(0.05)
    assert not Path(tmp).exists(), f"{tmp} was left behind"


def test_the_child_removes_only_the_folder_its_parent_made_for_it(tmp_path, monkeypatch):
    from mocap.io import blender_serve

    ours, users = tmp_path / (blender_serve.TMP_PREFIX + "x"), tmp_path / "users-tmp"
    for d in (ours, users):
        (d / "blender_1").mkdir(parents=True)
    monkeypatch.setenv(blender_serve.OWN_TMP, str(users))  # not a folder of the parent's: kept
    blender_serve._remove_own_tmp()
    monkeypatch.delenv(blender_serve.OWN_TMP)  # not named at all (TMPDIR alone): nothing removed
    monkeypatch.setenv("TMPDIR", str(ours))
    blender_serve._remove_own_tmp()
    assert users.is_dir() and ours.is_dir()
    monkeypatch.setenv(blender_serve.OWN_TMP, str(ours))
    blender_serve._remove_own_tmp()
    assert not ours.exists() and users.is_dir()


def test_ctrl_c_ends_the_child_at_once(tmp_path):
    parent = _parent(tmp_path, """
        with blender.warm_child():
            print(blender._warm.pid, flush=True)
            time.sleep(120)
        """)
    pid = int(parent.stdout.readline())
    time.sleep(0.3)
    parent.send_signal(signal.SIGINT)
    _, err = parent.communicate(timeout=30)
    assert "KeyboardInterrupt" in err
    assert _ended(pid, within=2.0), "the Blender child outlived a Ctrl-C"


def _settings(formats=("bvh", "fbx"), videos=False, fbx_writer="blender"):
    return types.SimpleNamespace(export=types.SimpleNamespace(formats=formats, fbx_writer=fbx_writer),
                                 report=types.SimpleNamespace(overlay_videos=videos))


NAMES = ["calibrate", "detect", "rig_refine", "sync", "triangulate", "refine", "fit", "retarget", "export", "report"]


@pytest.fixture
def blender_calls(monkeypatch):
    """The Blender child's start and release, recorded instead of done."""
    calls = []
    monkeypatch.setattr(blender, "warm", lambda: calls.append("warm") or object())
    monkeypatch.setattr(blender, "release", lambda: calls.append("release"))
    return calls


def test_blender_starts_once_a_stage_before_the_export_ran(blender_calls):
    calls = blender_calls
    a = ahead.Ahead(None, _settings(), NAMES)
    a.after("calibrate", "not needed (rig given)")
    a.after("detect", "skipped")
    assert calls == []  # nothing ran: the export may well be skipped too
    a.after("rig_refine", "ran")
    a.after("sync", "ran")
    assert calls == ["warm"]
    a.close(failed=False)
    assert calls == ["warm", "release"]
    for settings, names in ((_settings(("bvh", "trc")), NAMES), (_settings(), ["fit", "retarget"]),
                            (_settings(), ["export"]), (_settings(fbx_writer="native"), NAMES)):
        calls.clear()
        a = ahead.Ahead(None, settings, names)
        for n in names:
            a.after(n, "ran")
        assert "warm" not in calls, (settings, names)  # no Blender format (FBX written natively), no export,
        # or nothing before it


def test_blender_does_not_start_after_calibration_with_detection_still_to_run(blender_calls):
    calls = blender_calls
    a = ahead.Ahead(None, _settings(), NAMES)
    a.after("calibrate", "ran")
    assert calls == []  # detection next keeps every core busy: bpy would load during it
    a.after("detect", "ran")
    assert calls == ["warm"]
    a.close(failed=False)

def test_overlays_start_after_refine_when_a_stage_ran(monkeypatch):
    from mocap import report

    started = []
    monkeypatch.setattr(report, "prestart", lambda session, cfg: started.append(session) or None)
    a = ahead.Ahead("s", _settings(("bvh",), videos=True), NAMES)
    for n in NAMES[:5]:
        a.after(n, "skipped")
    assert started == []
    a.after("refine", "ran")
    assert started == ["s"]
    a = ahead.Ahead("s", _settings(("bvh",), videos=True), NAMES)
    for n in NAMES:
        a.after(n, "skipped")  # nothing ran: the report stage (if it runs) makes its videos
    assert started == ["s"]
    a = ahead.Ahead("s", _settings(("bvh",), videos=False), NAMES)
    for n in NAMES:
        a.after(n, "ran")
    assert started == ["s"]


def _fbx_without_creation_time(data: bytes) -> bytes:
    """An FBX file's bytes less its header's creation time (the one thing that differs between exports)."""
    i = data.index(b"CreationTimeStamp")
    j = data.index(b"Creator", i)
    return data[:i] + data[j:]


@pytest.mark.slow
def test_the_warm_child_writes_the_same_files_as_a_child_started_for_the_export(tmp_path):
    pytest.importorskip("bpy")
    motion = body_motion(30, fps=30.0)
    jobs = lambda folder: [(motion, folder / "a.fbx", "y"), (motion, folder / "a.glb", "z")]  # noqa: E731
    (tmp_path / "one").mkdir()
    (tmp_path / "warm").mkdir()
    blender.blender_export_many(jobs(tmp_path / "one"))
    child = blender.warm()
    try:
        blender.blender_export_many(jobs(tmp_path / "warm"))
    finally:
        blender.release()
    assert child.ready_s is not None and _ended(child.pid)
    one, warm = (tmp_path / "one" / "a.fbx").read_bytes(), (tmp_path / "warm" / "a.fbx").read_bytes()
    assert len(one) == len(warm) and _fbx_without_creation_time(one) == _fbx_without_creation_time(warm)
    assert (tmp_path / "one" / "a.glb").read_bytes() == (tmp_path / "warm" / "a.glb").read_bytes()


@pytest.mark.slow
def test_mocap_run_exports_through_the_child_started_ahead_and_leaves_none(fake_blender, tmp_path, monkeypatch):
    from pipeline_synth import synthetic_session

    from mocap.pipeline import run
    from mocap.stages import fit

    session = synthetic_session(tmp_path / "take", frames=60)
    children = []
    real_child = blender.Child
    monkeypatch.setattr(blender, "Child", lambda *a, **k: children.append(real_child(*a, **k)) or children[-1])
    sets = ["export.formats=['bvh','fbx']", "export.fbx_writer='blender'"]
    r = run(session, sets=sets, progress=False)
    assert len(children) == 1 and fake_blender.one_shots == []  # started ahead, and it wrote the FBX files
    assert all(p.is_file() for p in session.glob("export/*.fbx")) and len(list(session.glob("export/*.fbx"))) == 2
    assert r.status["export"] == "ran" and _ended(children[0].pid)
    assert run(session, sets=sets, progress=False).ran == [] and len(children) == 1  # nothing to do: no Blender

    def boom(*a, **k):  # a Ctrl-C after the child was started, before the export
        raise KeyboardInterrupt

    monkeypatch.setattr(fit, "main", boom)
    with pytest.raises(KeyboardInterrupt):
        run(session, sets=sets + ["refine.accel_sigma=25"], progress=False)
    assert len(children) == 2 and _ended(children[1].pid, within=2.0)
    assert blender._warm is None


def test_bench_after_ratios_table_and_json(tmp_path, monkeypatch, capsys):
    from mocap import pipeline
    from mocap.bench import after
    from mocap.cli import main as cli

    src = tmp_path / "src"
    (src / "videos").mkdir(parents=True)
    _video(src / "videos" / "cam01.mp4", 3)
    (src / "calibration").mkdir()
    (src / "calibration" / "rig.toml").write_text("# rig")
    calls = []

    def fake_run(work, sets=(), from_stage=None, **kw):
        calls.append((list(sets), from_stage))
        t = time.perf_counter() + 0.03  # the run's set-up: 30 ms before its first stage
        time.sleep(0.05)
        first = len(calls) == 1 or calls[-2] == "fresh"  # from scratch: detection runs
        r = pipeline.RunResult(Path(work))
        for n in NAMES:
            ran = first or (from_stage and NAMES.index(n) >= NAMES.index(from_stage))
            r.status[n] = "ran" if ran else "skipped"
            r.timings[n] = 0.02 if n == "detect" and ran else (0.001 if ran else 0.0)
            t += r.timings[n]
            r.finished_at[n] = t
            if ran:
                r.cpu[n] = 0.001
        return r

    def fake_fresh(work, sets):  # the new process's run, here in this one (where pipeline.run is faked)
        calls.append("fresh")
        return after._one(work, sets)

    monkeypatch.setattr(pipeline, "run", fake_run)
    monkeypatch.setattr(after, "fresh_run", fake_fresh)
    out = tmp_path / "after.json"
    assert cli(["bench", "after", "--session", str(src), "--work", str(tmp_path / "w"), "--json", str(out)]) == 0
    assert calls == [([], None), (["report.overlay_videos=false"], "rig_refine"), ([], None), ([], None),
                     "fresh", (["report.overlay_videos=false"], None)]
    assert (tmp_path / "w" / "fresh" / "videos" / "cam01.mp4").is_symlink()
    assert (tmp_path / "w" / "take" / "videos" / "cam01.mp4").is_symlink()
    data = json.loads(out.read_text())
    d = data["runs"]["default"]
    # after detection: from its end; the set-up before the first stage reported beside it, not counted in it
    assert data["detection_s"] == 0.02 and d["set_up_s"] == pytest.approx(0.03, abs=0.01)
    assert d["after_detection_s"] == pytest.approx(d["wall_s"] - d["set_up_s"] - 0.02 - 0.001)
    assert d["after_detection_s"] < d["wall_s"] - 0.05
    assert data["runs"]["no-videos"]["set_up_s"] is None  # no detection ran: its whole wall time counts
    assert data["runs"]["no-videos"]["after_detection_s"] == data["runs"]["no-videos"]["wall_s"]
    assert d["after_over_detection"] == pytest.approx(d["after_detection_s"] / 0.02)
    assert data.keys() >= {"wall_s", "cpu_s", "load_avg_1_5_15", "cores", "machine"} and d["load_start"]
    text = capsys.readouterr().out
    assert "of detection" in text and "target ≤ 15%" in text and "report stage without videos" in text
    assert "fresh-no-videos" in text and "target ≤ 5%" in text and "set-up before it 0.0" in text
    assert data["targets_checked"]["no_videos_after_over_detection"] == "fresh-no-videos"
    f = data["runs"]["fresh-no-videos"]
    assert f["after_over_detection"] == pytest.approx(f["after_detection_s"] / f["detection_s"])
    assert after.table_rows(data)[1] == {"stage": "detect", "default_wall": 0.02, "default_cpu": 0.001,
                                         "novid_wall": None, "novid_cpu": None, "fresh_wall": 0.02,
                                         "fresh_cpu": 0.001}
    assert cli(["bench", "after", "--session", str(tmp_path / "nothing")]) == 2
    assert "no session with videos" in capsys.readouterr().err
