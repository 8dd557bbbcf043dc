"""The export's Blender child starts on the core detection's last chunks leave free (mocap.ahead.core_free,
called by the detect stage once fewer chunks are left than workers), not beside the stages after it."""

import types
from concurrent.futures import Future

import numpy as np

from mocap import ahead
from mocap.detect import collect
from mocap.io import blender
from mocap.io.hdf5 import create_keypoints2d
from mocap.stages import detect

NAMES = ["calibrate", "detect", "rig_refine", "sync", "triangulate", "refine", "fit", "retarget", "export", "report"]


def _settings(formats=("bvh", "fbx"), fbx_writer="blender"):
    return types.SimpleNamespace(export=types.SimpleNamespace(formats=formats, fbx_writer=fbx_writer),
                                 report=types.SimpleNamespace(overlay_videos=False))


def test_blender_starts_when_a_core_is_free_once_and_only_for_a_run_that_exports_through_it(monkeypatch):
    import weakref

    calls = []
    monkeypatch.setattr(blender, "warm", lambda: calls.append("warm") or object())
    monkeypatch.setattr(blender, "release", lambda: calls.append("release"))
    monkeypatch.setattr(ahead, "_running", weakref.WeakSet())  # runs other tests left unclosed
    ahead.core_free()  # no run in progress: nothing
    a = ahead.Ahead(None, _settings(), NAMES)
    a.after("calibrate", "ran")
    ahead.core_free()
    assert calls == ["warm"]
    a.after("detect", "ran")
    a.after("rig_refine", "ran")
    assert calls == ["warm"]  # started once
    a.close(failed=False)
    ahead.core_free()  # the run ended
    assert calls == ["warm", "release"]
    for settings, names in ((_settings(("bvh",)), NAMES), (_settings(), ["detect"]),
                            (_settings(fbx_writer="native"), NAMES)):
        calls.clear()
        a = ahead.Ahead(None, settings, names)
        ahead.core_free()
        a.close(failed=True)
        assert calls == ["release"], (settings, names)


def _done(cam: str, F: int) -> Future:
    f = Future()
    f.set_result((cam, 0, F, np.ones((F, 1, 33, 3)), {"frames": F, "decode_s": 0.1, "infer_s": 0.1}))
    return f


def test_detection_says_a_core_is_free_once_fewer_chunks_are_left_than_workers(tmp_path, monkeypatch):
    F, names = 4, ["a", "b", "c"]
    work = create_keypoints2d(tmp_path / "pose2d.partial.h5", F, names, 1, "blazepose33", 30.0)
    free = []
    pending = [Future() for _ in names]
    monkeypatch.setattr(ahead, "core_free", lambda: free.append(sum(not f.done() for f in pending)))

    def finish_in_order(futures):
        for cam, f in zip(names, futures, strict=True):
            f.set_result(_done(cam, F).result())
            yield f

    monkeypatch.setattr(collect, "as_completed", finish_in_order)  # the gathering moved to mocap.detect.collect
    plan = [(c, 0, F) for c in names]
    detect._collect(pending, work, names, F, types.SimpleNamespace(update=lambda n: None), plan, {}, {}, 2)
    assert free == [1]  # told once: with 1 chunk left of 3, on 2 workers


def test_a_blender_child_that_cannot_start_ahead_does_not_fail_detection(monkeypatch, caplog):
    """core_free runs inside the detect stage: a child that cannot start (Popen's OSError) is a warning, and the
    export starts its own child later (where a failure is the export's)."""
    import weakref

    def no_fork():
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(blender, "warm", no_fork)
    monkeypatch.setattr(blender, "release", lambda: None)
    monkeypatch.setattr(ahead, "_running", weakref.WeakSet())
    a = ahead.Ahead(None, _settings(), NAMES)
    with caplog.at_level("WARNING", logger="mocap.ahead"):
        ahead.core_free()
    assert "could not start ahead ([Errno 12] Cannot allocate memory); the export starts it" in caplog.text
    assert not a.blender  # not tried again beside the next stages
    a.close(failed=False)
    caplog.clear()
    a = ahead.Ahead(None, _settings(), NAMES)  # started ahead after a stage instead: the same warning
    with caplog.at_level("WARNING", logger="mocap.ahead"):
        a.after("rig_refine", "ran")
    assert "could not start ahead ([Errno 12] Cannot allocate memory); the export starts it" in caplog.text
    a.close(failed=False)
