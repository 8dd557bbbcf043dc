"""Work ``mocap run`` starts ahead (mocap/ahead.py): the export's Blender child, loaded while the stages
before the export run and serving the export on a pipe, never outliving the run; the overlay videos
rendered in the background, joined by the report, keeping the frames its crops show."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import types
from pathlib import Path

import cv2
import numpy as np
import pytest
from body_synth import body_motion

from mocap import ahead
from mocap.io import blender
from mocap.report import crops, overlay
from mocap.synth import RigSpec, ring_rig
from mocap.types import Points3D

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
                            env=env)


def test_no_orphan_child_when_the_parent_is_killed(tmp_path):
    parent = _parent(tmp_path, """
        child = blender.warm()
        print(child.pid, flush=True)
        time.sleep(120)
        """)
    pid = int(parent.stdout.readline())
    parent.kill()  # SIGKILL: no clean-up in the parent at all
    parent.wait()
    assert _ended(pid), "the Blender child outlived its killed parent"


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


def _settings(formats=("bvh", "fbx"), videos=False):
    return types.SimpleNamespace(export=types.SimpleNamespace(formats=formats),
                                 report=types.SimpleNamespace(overlay_videos=videos))


NAMES = ["calibrate", "detect", "rig_refine", "sync", "triangulate", "refine", "fit", "retarget", "export", "report"]


def test_blender_starts_once_a_stage_before_the_export_ran(monkeypatch):
    calls = []
    monkeypatch.setattr(blender, "warm", lambda: calls.append("warm") or object())
    monkeypatch.setattr(blender, "release", lambda: calls.append("release"))
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
                            (_settings(), ["export"])):
        calls.clear()
        a = ahead.Ahead(None, settings, names)
        for n in names:
            a.after(n, "ran")
        assert "warm" not in calls, (settings, names)  # no Blender format, no export, or nothing before it


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


# ----- overlay videos in the background ----------------------------------------------------------------


def _video(path: Path, frames: int, size=(64, 48), fps=10.0) -> Path:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for i in range(frames):
        img = np.zeros((size[1], size[0], 3), np.uint8)
        img[:, : (i * 3) % size[0]] = (10 * i % 255, 255 - 7 * i % 255, 90)
        w.write(img)
    w.release()
    return path


@pytest.fixture
def tiny(tmp_path):
    F = 12
    motion = body_motion(F, fps=10.0)
    _, p = motion.fk()
    X = np.full((F, 1, 33, 3), np.nan)
    X[:, 0, :p.shape[1]] = p
    rig = ring_rig(RigSpec(n_cameras=2, size=(64, 48)), p.reshape(-1, 3))
    (tmp_path / "videos").mkdir()
    for name in rig.names:
        _video(tmp_path / "videos" / f"{name}.mp4", F)
    pts = Points3D(X, np.zeros((F, 1, 33)), np.ones((F, 1, 33, len(rig)), bool), rig.names, "blazepose33", 10.0)
    return types.SimpleNamespace(root=tmp_path, video_sampling=lambda: (0, 1)), rig, pts


def test_a_render_under_way_is_joined_and_keeps_the_frames_asked_for(tiny, monkeypatch):
    session, rig, pts = tiny
    go, rendered = threading.Event(), []
    real = overlay.render

    def held(src, out, *a, **k):
        rendered.append(out.name)
        assert go.wait(30)
        return real(src, out, *a, **k)

    monkeypatch.setattr(overlay, "render", held)
    cam = rig.names[0]
    first = overlay.start(session, rig, pts, {}, threads=2, wanted={cam: {2, 5}})
    second = overlay.start(session, rig, pts, {})  # e.g. the report stage, while mocap run's render is under way
    assert second.jobs == first.jobs and second.pool is None
    go.set()
    assert second.result(progress=False) == first.result(progress=False)
    assert sorted(rendered) == sorted(f"{n}_reprojected.mp4" for n in rig.names)  # each camera once
    src = session.root / "videos" / f"{cam}.mp4"
    assert overlay.captured(session.root / "review", cam, src) == {}  # forgotten once waited for


def test_crops_take_the_frames_the_render_kept_and_decode_only_the_rest(tiny, monkeypatch):
    from mocap.report import _frames_of

    session, rig, pts = tiny
    cam = rig.names[1]
    src = session.root / "videos" / f"{cam}.mp4"
    expected = crops.read_video_frames(src, [2, 5, 7])
    pending = overlay.start(session, rig, pts, {}, threads=2, wanted={cam: {2, 5}})
    decoded = []
    real = crops.read_video_frames
    monkeypatch.setattr(crops, "read_video_frames", lambda path, frames: decoded.append(frames) or real(path, frames))
    got = _frames_of(session)(cam, src, [2, 5, 7])
    pending.result(progress=False)
    assert decoded == [[7]] and sorted(got) == [2, 5, 7]
    for i in (2, 5, 7):
        assert np.array_equal(got[i], expected[i]), i  # the kept frame is the video's, before any drawing


def test_read_video_frames_in_one_pass_or_by_seeking_gives_the_video_frames(tmp_path):
    from mocap.io.video import read_frames

    src = _video(tmp_path / "v.mp4", 40)
    every = dict(read_frames(src))
    want = [30, 3, 12, 13, 39, 55, -1]  # unordered, and two frames the video does not have
    for hop in (250, 5):  # one forward pass; seeks over every jump longer than 5 frames
        got = crops.read_video_frames(src, want, hop=hop)
        assert sorted(got) == [3, 12, 13, 30, 39], hop
        for i, img in got.items():
            assert np.array_equal(img, every[i]), (hop, i)
    with pytest.raises(ValueError, match="cannot open the video"):
        crops.read_video_frames(tmp_path / "missing.mp4", [1])


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


def test_smaller_overlay_videos_on_request_and_a_size_change_renders_again(tiny, monkeypatch):
    from mocap.io.video import probe
    from mocap.report import Config

    session, rig, pts = tiny
    assert overlay.scaled_size((1080, 1920), 960) == (540, 960) and overlay.scaled_size((64, 48), 0) == (64, 48)
    assert overlay.scaled_size((64, 48), 480) == (64, 48)  # never larger than the camera's
    paths = overlay.overlay_videos(session, rig, pts, {})
    rendered = []
    real = overlay.render
    monkeypatch.setattr(overlay, "render", lambda src, out, *a, **k: rendered.append(k["height"]) or real(src, out, *a,
                                                                                                      **k))
    overlay.start(session, rig, pts, {}, height=24).result(progress=False)
    assert rendered == [24, 24] and all(probe(p).size == (32, 24) for p in paths)
    overlay.start(session, rig, pts, {}, height=24).result(progress=False)
    assert rendered == [24, 24]  # up to date at that size
    with pytest.raises(ValueError, match=r"overlay_height must be 0 \(the camera's size\) or an integer ≥ 64 px, "
                                         r"got 10"):
        Config(overlay_height=10)


def test_crops_made_again_from_the_same_inputs_come_from_the_cache(tiny, monkeypatch):
    from mocap.types import Keypoints2D

    session, rig, pts = tiny
    F, J = pts.xyz.shape[0], pts.xyz.shape[2]
    uv = np.moveaxis(rig.project(pts.xyz[:, 0].reshape(-1, 3)).reshape(len(rig), F, J, 2), 0, 1)
    noise = np.random.default_rng(0).normal(0, 2.0, uv.shape)
    data = np.concatenate([uv + noise, np.ones(uv.shape[:-1] + (1,))], axis=-1)[:, :, None]
    kp = Keypoints2D(data, rig.names, "blazepose33", 10.0)
    videos = {n: session.root / "videos" / f"{n}.mp4" for n in rig.names}
    cache = crops.CropCache(session.root / "report" / ".crops")
    decoded = []
    real = crops.read_video_frames
    monkeypatch.setattr(crops, "read_video_frames", lambda path, frames: decoded.append(frames) or real(path, frames))

    def made(cache):  # comparable crops (error_repaired_px is NaN: no repair)
        return [(c.camera, c.frame, c.video_frame, c.error_px, str(c.error_repaired_px), c.repaired, c.jpeg)
                for c in crops.camera_crops(rig, kp, kp, pts, 0, 2, videos, {}, None, cache=cache)]

    first = made(cache)
    assert len(decoded) == 2 and len(first) == 4 and all(c[2] is not None for c in first)
    decoded.clear()
    again = made(crops.CropCache(cache.folder))
    assert decoded == [] and again == first  # nothing decoded, the same crops
    kp.data[:, 0, 0, :, :2] += 3.0  # the detections of one camera changed: its crops are cut again
    other = crops.CropCache(cache.folder)
    changed = made(other)
    assert len(decoded) == 1 and changed[2:] == first[2:] and changed[:2] != first[:2]
    other.prune()
    assert len(list(cache.folder.glob("*.jpg"))) == 4  # the two crops no longer shown are gone


@pytest.mark.slow
def test_mocap_run_exports_through_the_child_started_ahead_and_leaves_none(fake_blender, tmp_path, monkeypatch):
    from pipeline_synth import synthetic_session

    from mocap.pipeline import run
    from mocap.stages import fit

    session = synthetic_session(tmp_path / "take", frames=60)
    children = []
    real_child = blender.Child
    monkeypatch.setattr(blender, "Child", lambda *a, **k: children.append(real_child(*a, **k)) or children[-1])
    sets = ["export.formats=['bvh','fbx']"]
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
        time.sleep(0.05)
        first = len(calls) == 1
        r = pipeline.RunResult(Path(work))
        for n in NAMES:
            ran = first or (from_stage and NAMES.index(n) >= NAMES.index(from_stage))
            r.status[n] = "ran" if ran else "skipped"
            r.timings[n] = 0.02 if n == "detect" and ran else (0.001 if ran else 0.0)
            if ran:
                r.cpu[n] = 0.001
        return r

    monkeypatch.setattr(pipeline, "run", fake_run)
    out = tmp_path / "after.json"
    assert cli(["bench", "after", "--session", str(src), "--work", str(tmp_path / "w"), "--json", str(out)]) == 0
    assert calls == [([], None), (["report.overlay_videos=false"], "rig_refine"), ([], None), ([], None)]
    assert (tmp_path / "w" / "take" / "videos" / "cam01.mp4").is_symlink()
    data = json.loads(out.read_text())
    d = data["runs"]["default"]
    assert data["detection_s"] == 0.02 and d["after_detection_s"] == pytest.approx(d["wall_s"] - 0.02 - 0.001)
    assert d["after_over_detection"] == pytest.approx(d["after_detection_s"] / 0.02)
    assert data.keys() >= {"wall_s", "cpu_s", "load_avg_1_5_15", "cores", "machine"} and d["load_start"]
    text = capsys.readouterr().out
    assert "of detection" in text and "target ≤ 15%" in text and "report stage without videos" in text
    assert after.table_rows(data)[1] == {"stage": "detect", "default_wall": 0.02, "default_cpu": 0.001,
                                         "novid_wall": None, "novid_cpu": None}
    assert cli(["bench", "after", "--session", str(tmp_path / "nothing")]) == 2
    assert "no session with videos" in capsys.readouterr().err
