"""After detection out of the way: exports batched per run (one Blender start for every FBX / GLB),
overlay videos rendered in parallel and only when their inputs changed, and benchmarks that say how
and where they were measured."""

import json
import os
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from body_synth import body_motion
from test_overlay_background import tiny_session

from mocap.bench import common
from mocap.io import blender, exporters
from mocap.report import overlay

RUN_KEYS = {"wall_s", "cpu_s", "load_avg_1_5_15", "cores", "machine"}


@pytest.fixture
def fake_formats(monkeypatch):
    """Three formats: two sharing one write_many (like FBX and GLB), one written file by file."""
    calls = {"one": [], "many": []}

    def one(motion, extra, path, opt):
        calls["one"].append(Path(path).name)
        Path(path).write_text("one")
        return path

    def many(jobs):
        calls["many"].append([Path(p).name for _, _, p, _ in jobs])
        for _, _, p, _ in jobs:
            Path(p).write_text("many")
        return [p for _, _, p, _ in jobs]

    exporters.exporters()
    registry = dict(exporters._REGISTRY)
    monkeypatch.setattr(exporters, "_REGISTRY", registry)
    exporters.register("xa", ".xa", write_many=many)(one)
    exporters.register("xb", ".xb", write_many=many)(one)
    exporters.register("xc", ".xc")(one)
    return calls


def test_write_files_batches_formats_sharing_write_many(fake_formats, tmp_path):
    opt, motion = exporters.Options(), body_motion(5, fps=30.0)
    jobs = [(fmt, motion, {}, tmp_path / f"{m}.{fmt}", opt) for m in ("m1", "m2") for fmt in ("xa", "xc", "xb")]
    out = exporters.write_files(jobs)
    assert out == [j[3] for j in jobs]  # in the jobs' order
    assert fake_formats["many"] == [["m1.xa", "m1.xb", "m2.xa", "m2.xb"]]  # one call for both formats
    assert fake_formats["one"] == ["m1.xc", "m2.xc"]
    assert exporters.get("xa").write(None, {}, tmp_path / "single.xa", opt) == tmp_path / "single.xa"  # the contract


def test_blender_batch_installs_what_the_child_finished_and_names_the_rest(monkeypatch, tmp_path):
    motion = body_motion(5, fps=30.0)
    monkeypatch.setattr(blender, "_require_bpy", lambda suffix: None)
    runs = []

    def child(cmd, **kw):  # finishes file 0, fails on file 1
        runs.append(cmd)
        spec = json.loads(Path(cmd[-1]).read_text())
        Path(spec[0]["out"]).write_bytes(b"fbx")
        return subprocess.CompletedProcess(cmd, 1, stdout="FBX export\nmocap-export-done 0\n", stderr="boom")

    monkeypatch.setattr(blender.subprocess, "run", child)
    (tmp_path / "b.glb").write_bytes(b"old")
    with pytest.raises(RuntimeError, match=r"b\.glb failed: boom"):
        blender.blender_export_many([(motion, tmp_path / "a.fbx", "y"), (motion, tmp_path / "b.glb", "z")])
    assert len(runs) == 1 and runs[0][-2] == "export-many"
    assert (tmp_path / "a.fbx").read_bytes() == b"fbx"
    assert (tmp_path / "b.glb").read_bytes() == b"old"  # never half-replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.fbx", "b.glb"]  # no parts left


@pytest.mark.slow
def test_export_stage_starts_blender_once_for_every_fbx_and_glb(tmp_path, monkeypatch):
    pytest.importorskip("bpy")
    from body_synth import blazepose_keypoints
    from test_export import _positions

    from mocap.fit import fit_motion
    from mocap.io.capture import write_capture
    from mocap.retarget import load_target_rig, retarget_to_rig
    from mocap.settings import load_config
    from mocap.stages import export

    truth = body_motion(40, fps=30.0)
    fitted, _ = fit_motion(blazepose_keypoints(truth), "blazepose33", truth.fps)
    session = tmp_path / "take"
    write_capture(session / "motion" / "body22.npz", fitted)
    write_capture(session / "motion" / "mixamo.npz", retarget_to_rig(fitted, load_target_rig("mixamo")))
    real, children = subprocess.run, []
    monkeypatch.setattr(blender.subprocess, "run", lambda cmd, **kw: children.append(cmd) or real(cmd, **kw))
    settings = load_config(session, sets=["export.formats=['bvh','fbx','glb']", "export.motions=['body22','mixamo']",
                                          "export.up=y", "export.fbx_writer='blender'"])[0]
    outs = export.main(session, settings, overwrite=True)
    assert len(children) == 1 and len(outs) == 6 and all(p.is_file() for p in outs)
    from mocap.io.capture import read_capture

    for p in outs:
        if p.suffix == ".bvh":
            continue
        m = read_capture(session / "motion" / f"{p.stem.split('_', 1)[1]}.npz")[0]
        names, pos = _positions(p, tmp_path, m.fps)
        _, fk = m.fk()
        assert pos.shape[0] == m.n_frames  # frame 1 first, every frame
        assert np.abs(pos[:, [names.index(n) for n in m.skeleton.joint_names]] - fk).max() < 1e-3, p.name


def _video(path: Path, frames: int, size=(64, 48), fps=10.0) -> Path:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for i in range(frames):
        w.write(np.full((size[1], size[0], 3), 20 * i % 255, np.uint8))
    w.release()
    return path


@pytest.fixture
def tiny(tmp_path):
    return tiny_session(tmp_path, 3, video=_video)


def test_overlay_videos_render_in_parallel_only_when_inputs_change(tiny, monkeypatch):
    session, rig, pts = tiny
    rendered = []
    real = overlay.render
    monkeypatch.setattr(overlay, "render", lambda src, out, *a, **k: rendered.append(out.name) or real(src, out, *a,
                                                                                                     **k))
    paths = overlay.overlay_videos(session, rig, pts, {}, threads=3)
    assert sorted(rendered) == sorted(p.name for p in paths) and len(paths) == 3
    assert all(p.is_file() and overlay.key_path(p).is_file() for p in paths)
    rendered.clear()
    assert overlay.overlay_videos(session, rig, pts, {}) == paths and rendered == []  # unchanged: nothing
    cam = rig.names[1]
    overlay.overlay_videos(session, rig, pts, {cam: 1.0})  # one camera's offset
    assert rendered == [f"{cam}_reprojected.mp4"]
    rendered.clear()
    src = session.root / "videos" / f"{rig.names[2]}.mp4"
    os.utime(src, ns=(src.stat().st_atime_ns, src.stat().st_mtime_ns + 10**9))  # the source video changed
    overlay.overlay_videos(session, rig, pts, {cam: 1.0})
    assert rendered == [f"{rig.names[2]}_reprojected.mp4"]
    rendered.clear()
    paths[0].write_bytes(b"edited")  # the output changed by hand
    overlay.overlay_videos(session, rig, pts, {cam: 1.0})
    assert rendered == [paths[0].name]
    rendered.clear()
    pts.xyz[3, 0, 0] += 0.05  # the points moved
    overlay.overlay_videos(session, rig, pts, {cam: 1.0})
    assert sorted(rendered) == sorted(p.name for p in paths)


def test_overlay_failure_keeps_the_old_video_and_no_record(tiny, monkeypatch):
    session, rig, pts = tiny
    paths = overlay.overlay_videos(session, rig, pts, {})
    before = paths[0].read_bytes()
    pts.xyz[:, 0, 0] += 0.1

    def broken(source, out, *a, **k):
        raise ValueError(f"{source}: corrupt")

    monkeypatch.setattr(overlay, "render", broken)
    with pytest.raises(ValueError, match="corrupt"):
        overlay.overlay_videos(session, rig, pts, {}, threads=1)
    assert paths[0].read_bytes() == before and not overlay.key_path(paths[0]).exists()
    monkeypatch.undo()
    stop = overlay.start(session, rig, pts, {}, threads=1)
    stop.cancel()  # a cancelled render leaves no part behind
    assert not [p for p in (session.root / "review").iterdir() if ".part" in p.name]


def test_bench_json_records_time_load_cores_and_machine(tmp_path):
    path = tmp_path / "b.json"
    common.write_json({"rows": [], "machine": {"cpus": 3}}, path)
    data = json.loads(path.read_text())
    assert data.keys() >= RUN_KEYS
    assert data["wall_s"] > 0 and data["cpu_s"] > 0 and data["cores"] >= 1 and len(data["load_avg_1_5_15"]) == 3
    assert data["machine"]["cpus"] == 3 and data["machine"]["cpu"] and data["machine"]["platform"]


@pytest.mark.slow
@pytest.mark.shared_data
def test_bench_fit_json_has_the_run_record(shared_data, tmp_path):
    from mocap.cli import main as cli

    out = tmp_path / "fit.json"
    assert cli(["bench", "fit", "--frames", "60", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data.keys() >= RUN_KEYS and data["cpu_s"] > 0 and "frames_per_second" in data
