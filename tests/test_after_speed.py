"""The fixed costs cut from the stages after detection (issue 17) keep their results: the rig and the number of
people read once per file content and never stale, the report's fast median and polylines equal to NumPy's and
to the per-point drawing, the FBX encoder's repeated properties encoded once into the same bytes."""

import struct
import warnings
from dataclasses import replace

import numpy as np
import pytest
from conftest import count_calls
from test_swaps import swapped_take

from mocap import session as session_module
from mocap.io import fbx_binary, hdf5
from mocap.io.fbx_binary import Int64, Node, Raw, encode, encode_property
from mocap.io.hdf5 import write_points3d
from mocap.io.rig_files import write_rig
from mocap.report import svg
from mocap.report.stats import nanmedian
from mocap.session import Session
from mocap.types import Points3D, Rig


@pytest.fixture
def session(tmp_path):
    rig = swapped_take(20)[0]
    (tmp_path / "calibration").mkdir()
    write_rig(rig, tmp_path / "calibration" / "rig.toml")
    session_module._rigs.clear()
    session_module._persons.clear()
    return Session(tmp_path), rig


def test_rig_is_read_once_per_content_each_caller_gets_a_copy_and_an_edit_is_read(session, monkeypatch):
    s, rig = session
    reads = count_calls(monkeypatch, session_module, "read_rig")
    a, b = s.rig(), s.rig()
    assert len(reads) == 1 and a is not b
    assert np.array_equal(a.cameras[0].K, rig.cameras[0].K)
    a.cameras[0].K[0, 0] = -1.0  # a caller changing its copy changes nobody else's
    assert s.rig().cameras[0].K[0, 0] == rig.cameras[0].K[0, 0]
    moved = Rig(tuple(replace(c, cam_from_world=_shifted(c.cam_from_world)) for c in rig.cameras))
    write_rig(moved, s.rig_path())  # same size, rewritten in place by the atomic writer
    again = s.rig()
    assert len(reads) == 2
    assert np.allclose(again.cameras[0].t, np.asarray(rig.cameras[0].t) + 0.5)


def _shifted(T: np.ndarray) -> np.ndarray:
    T = np.array(T, float)
    T[:3, 3] += 0.5
    return T


def _points(P: int) -> Points3D:
    F, J = 5, 17
    return Points3D(np.zeros((F, P, J, 3)), np.zeros((F, P, J)), np.ones((F, P, J, 2), bool), ("a", "b"),
                    "coco17", 30.0)


def test_person_count_is_read_once_per_file_and_a_new_file_is_read(session, monkeypatch):
    s, _ = session
    assert s.person_count() is None
    write_points3d(_points(1), s.points3d("triangulated"))
    reads = count_calls(monkeypatch, hdf5, "points3d_persons")
    assert [s.person_count() for _ in range(3)] == [1, 1, 1] and len(reads) == 1
    write_points3d(_points(3), s.points3d("triangulated"))
    assert s.person_count() == 3 and len(reads) == 2
    write_points3d(_points(2), s.points3d("refined"))  # the refined points win once they exist
    assert s.person_count() == 2 and s.person_count("triangulated") == 3


def test_fast_nanmedian_is_numpys_exactly():
    rng = np.random.default_rng(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's all-NaN slices
        for _ in range(400):
            shape = tuple(rng.integers(1, 8, size=rng.integers(1, 4)))
            x = rng.normal(size=shape) * 10.0 ** rng.integers(-3, 4)
            if rng.random() < 0.5:
                x = np.round(x, 1)  # ties
            x[rng.random(shape) < rng.random()] = np.nan
            for axis in range(x.ndim):
                want, got = np.nanmedian(x, axis=axis), nanmedian(x, axis)
                assert got.shape == want.shape and np.array_equal(got, want, equal_nan=True)
        x = np.array([[1.0, np.inf, 2.0, np.nan], [np.nan] * 4])  # infinities: NumPy's own function
        assert np.array_equal(nanmedian(x, 1), np.nanmedian(x, axis=1), equal_nan=True)


def _polylines_per_point(xs, ys, L, h, B, sx, sy, top):
    """The drawing as it was: one point at a time, a NaN closing the polyline."""
    out, seg = [], []
    for f, y in zip(list(xs) + [0.0], list(ys) + [np.nan], strict=True):
        if np.isfinite(y):
            seg.append(f"{L + f * sx:.1f},{h - B - min(y, top) * sy:.1f}")
        elif seg:
            out.append(" ".join(seg))
            seg = []
    return out


def test_polylines_are_the_per_point_drawing():
    rng = np.random.default_rng(2)
    for n in (1, 7, 300, 5000):  # 5000: the envelope of bins
        v = rng.gamma(2.0, 3.0, n)
        v[rng.random(n) < 0.1] = np.nan
        v[: min(3, n)] = np.nan
        xs, ys = svg.envelope(v, 1600)
        top, sx, sy = float(np.nanmax(v)) * 0.8 if np.isfinite(v).any() else 1.0, 0.37, 1.9
        want = _polylines_per_point(xs, ys, 50, 280, 34, sx, sy, top)
        assert svg._runs(50 + np.asarray(xs) * sx, 280 - 34 - np.minimum(ys, top) * sy, np.isfinite(ys)) == want
    page = svg.lines({"a": v, "a b": v * 2}, "t", "x", "y", dashed=frozenset({"a b"}))
    assert page.count("<polyline") == 2 * len(want)


def _encode_plainly(nodes, version=7400, level=1):
    """The encoder without its caches: every property encoded where it stands."""
    fmt = "<3Q" if version >= 7500 else "<3I"
    null = bytes(struct.calcsize(fmt) + 1)

    def node_bytes(node, out):
        start = len(out)
        out += bytes(len(null) - 1)
        name = node.name.encode()
        out += bytes((len(name),)) + name
        props_start = len(out)
        for p in node.props:
            out += encode_property(p, level)
        props_len = len(out) - props_start
        if node.children or not node.props or node.name in fbx_binary.ALWAYS_BLOCK:
            for child in node.children:
                node_bytes(child, out)
            out += null
        struct.pack_into(fmt, out, start, len(out), len(node.props), props_len)

    out = bytearray(fbx_binary.MAGIC + struct.pack("<I", version))
    for node in nodes:
        node_bytes(node, out)
    out += null + fbx_binary.FOOTER_ID + bytes(4)
    out += bytes(16 - len(out) % 16)
    out += struct.pack("<I", version) + bytes(120) + fbx_binary.FOOTER_MAGIC
    return bytes(out)


@pytest.mark.parametrize("version", [7400, 7500])
def test_fbx_encoder_with_repeats_encoded_once_writes_the_same_bytes(version):
    times = np.arange(200, dtype=np.int64) * 1539538600
    root = Node("Objects")
    for k in range(30):  # the same times and strings in every curve, values of their own
        curve = root.add("AnimationCurve", Int64(1000 + k), "\x00\x01AnimCurve", "")
        curve.add("KeyTime", times)
        curve.add("KeyValueFloat", np.sin(np.arange(200) * 0.1 + k).astype(np.float32))
        curve.add("Flags", True, 1, 1.0, -0.0, 0.0, Int64(1), b"raw", Raw(b"raw"), "1")
        curve.add("Small", np.array([k], np.int32))
    nodes = [Node("Header", "x"), root, Node("Empty"), Node("AnimationStack")]
    assert encode(nodes, version) == _encode_plainly(nodes, version)


def test_points3d_are_read_once_per_content_each_caller_gets_a_copy(tmp_path, monkeypatch):
    path = tmp_path / "points3d" / "refined.h5"
    first = _points(2)
    first.info["stage"] = "refine"
    write_points3d(first, path)
    hdf5._POINTS_MEMO.clear()
    reads = count_calls(monkeypatch, hdf5, "_read_points3d")
    a, b = hdf5.read_points3d(path), hdf5.read_points3d(path)
    assert len(reads) == 1 and a.xyz is not b.xyz and a.info == {"stage": "refine"}
    a.xyz[:] = 7.0
    a.info["stage"] = "changed"  # the caller's copy only
    c = hdf5.read_points3d(path)
    assert np.all(c.xyz == 0.0) and c.info == {"stage": "refine"} and len(reads) == 1
    second = _points(2)
    second.xyz[:] = 1.5
    write_points3d(second, path)  # same size and shape, another file
    assert np.all(hdf5.read_points3d(path).xyz == 1.5) and len(reads) == 2


def test_report_projection_is_kept_for_the_same_rig_and_points_only():
    from mocap.report import metrics
    from mocap.types import Keypoints2D

    rig, kp, truth, _ = swapped_take(30)
    xyz = np.asarray(truth, float)[:, None]  # (F, 1, J, 3)
    pts = Points3D(xyz, np.zeros(xyz.shape[:3]), np.ones(xyz.shape[:3] + (len(rig),), bool), rig.names,
                   kp.keypoint_set, kp.fps)
    metrics._PROJECTED.clear()
    first = metrics.reprojection(rig, kp, pts)
    assert len(metrics._PROJECTED) == 1
    assert np.array_equal(metrics.reprojection(rig, kp, pts), first, equal_nan=True) and len(metrics._PROJECTED) == 1
    moved = Points3D(xyz + 0.01, pts.reproj_err, pts.views, rig.names, kp.keypoint_set, kp.fps)
    metrics._PROJECTED.clear()
    want = metrics.reprojection(rig, kp, moved)
    metrics._PROJECTED.clear()
    metrics.reprojection(rig, kp, pts)
    assert np.array_equal(metrics.reprojection(rig, kp, moved), want, equal_nan=True)  # other points: projected
    shifted = Rig(tuple(replace(c, cam_from_world=_shifted(c.cam_from_world)) for c in rig.cameras))
    assert not np.allclose(metrics.reprojection(rig, kp, pts), metrics.reprojection(shifted, kp, pts),
                           equal_nan=True)  # another rig: projected again
    raw = Keypoints2D(kp.data + 1.0, kp.camera_names, kp.keypoint_set, kp.fps)
    assert not np.allclose(metrics.reprojection(rig, raw, pts), first, equal_nan=True)


def test_warm_up_makes_the_runs_first_uses_and_records_a_failure(monkeypatch):
    from mocap import warm
    from mocap.report import metrics
    from mocap.settings import Settings

    metrics._versions.cache_clear()
    settings = Settings()
    calls = warm.first_uses(settings, ["fit", "retarget", "export", "report"])
    assert [what for what, _ in calls] == ["the packages' versions", "the fit's skeleton", "the target rig"]
    assert warm.first_uses(settings, ["export"]) == []  # only what the run's stages use
    w = warm.WarmUp((), calls + [("a broken preset", lambda: 1 / 0)])
    w.start()
    w.join(60)
    assert metrics._versions.cache_info().currsize == 1  # the report finds the versions read
    assert list(w.failed) == ["a broken preset"] and "ZeroDivisionError" in w.failed["a broken preset"]


def test_state_is_written_once_per_stage_and_kept_when_a_later_stage_fails(tmp_path, monkeypatch):
    import json

    from pipeline_synth import synthetic_session

    from mocap import pipeline, pipeline_state
    from mocap.stages import retarget

    take = synthetic_session(tmp_path / "take", frames=60)
    fast = ["export.formats=['bvh']"]
    writes = count_calls(monkeypatch, pipeline, "_save_state")
    r = pipeline.run(take, sets=fast, progress=False)
    assert len(r.ran) == 8 and len(writes) == len(r.ran) + 1  # each stage's start, and the end (was 2 per stage)
    state = pipeline_state.load_state(Session(take))
    assert all(state[n]["status"] == "done" for n in r.ran)
    metrics = json.loads((take / "report" / "metrics.json").read_text())
    assert "export" in metrics["timings_s"]  # the report reads the stage before it, written with its own start

    def broken(*a, **k):
        raise ValueError("retarget: a broken input")

    monkeypatch.setattr(retarget, "inputs", broken)
    with pytest.raises(ValueError, match="broken input"):
        pipeline.run(take, sets=fast + ["fit.person=0", "refine.accel_sigma=25"], progress=False)
    state = pipeline_state.load_state(Session(take))
    assert state["fit"]["status"] == "done"  # written when the next stage failed before it started
    monkeypatch.undo()
    again = pipeline.run(take, sets=fast + ["refine.accel_sigma=25"], progress=False)
    assert again.status["fit"] == "skipped" and again.ran == ["retarget", "export", "report"]


def test_a_state_write_failing_at_the_end_does_not_hide_the_runs_error(tmp_path, monkeypatch):
    from mocap import pipeline

    def full(*a):
        raise OSError("No space left on device")

    monkeypatch.setattr(pipeline, "_save_state", full)
    state = pipeline._State(Session(tmp_path), {})
    state.pending = True
    with pytest.raises(ValueError, match="the stage's own error"):
        try:
            raise ValueError("the stage's own error")
        finally:
            pipeline._flush(state)
    with pytest.raises(OSError, match="No space"):  # on the normal path the failed write is the error
        pipeline._flush(state)
