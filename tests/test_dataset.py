import hashlib
import json

import h5py
import numpy as np
import pytest
from pipeline_synth import synthetic_session

from mocap.cli import main as cli
from mocap.dataset.build import BuildConfig, build, info, take_id
from mocap.dataset.reader import Windows, iter_batches, torch_dataset
from mocap.dataset.store import pending_dir


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    root = tmp_path_factory.mktemp("takes")
    good = [synthetic_session(root / f"take{i}", frames=60 + 20 * i, seed=i) for i in range(2)]
    broken = root / "broken"
    (broken / "calibration").mkdir(parents=True)
    return good, broken


def _content(path):
    out = {}
    with h5py.File(path, "r") as f:
        for t in f["takes"]:
            g = f["takes"][t]
            out[t] = {k: g[k][()] for k in ("keypoints2d", "points3d", "rotations", "groundtruth/points3d")}
            out[t]["attrs"] = {k: v for k, v in g.attrs.items() if k != "versions"}
    return out


def test_build_commits_takes_logs_failures_and_reads_back(sessions, tmp_path):
    good, broken = sessions
    out = tmp_path / "ds.h5"
    s = build(good + [broken], out, BuildConfig(float16_2d=True), workers=1)
    assert sorted(s.committed) == sorted(take_id(g) for g in good)
    assert list(s.failed) == [take_id(broken)] and "missing calibration" in s.failed[take_id(broken)]
    i = info(out)
    assert i["takes"] == 2 and i["frames"] == 60 + 80 and i["synthetic"] == 2 and i["schema_version"] == 1
    assert i["failed"][0]["take"] == take_id(broken)
    with h5py.File(out, "r") as f:
        g = f["takes"][take_id(good[1])]
        assert g["keypoints2d"].dtype == np.float16 and g["keypoints2d"].shape == (80, 4, 33, 3)
        assert g["points3d"].chunks[0] == 80 and g["points3d"].compression == "gzip"
        assert json.loads(g.attrs["camera_names"]) == ["cam01", "cam02", "cam03", "cam04"]
        assert g.attrs["fps"] == 30.0 and "[refine]" in g.attrs["config"]
        assert np.nanmean(np.linalg.norm(g["points3d"][()] - g["groundtruth/points3d"][()], axis=-1)) < 0.03
        first = f["takes"][sorted(f["takes"])[0]]["points3d"][()]
    # windows: every window inside one take, equal to the take's own frames
    w = Windows(out, length=32)
    assert len(w) == (60 - 31) + (80 - 31)
    assert np.allclose(w[0]["points3d"], first[:32], equal_nan=True)
    b = next(iter_batches(out, 32, batch=8))
    assert b["points3d"].shape == (8, 32, 33, 3)
    ds = torch_dataset(out, 16, fields=("points3d", "rotations"))
    item = ds[3]
    assert tuple(item["points3d"].shape) == (16, 33, 3) and tuple(item["rotations"].shape) == (16, 22, 4)
    # a second build skips what is there
    again = build(good, out, workers=1)
    assert again.committed == [] and sorted(again.skipped) == sorted(take_id(g) for g in good)


def test_interrupted_build_gives_the_same_file_content(sessions, tmp_path):
    good, _ = sessions
    whole, parts = tmp_path / "whole.h5", tmp_path / "parts.h5"
    build(good, whole, workers=1)
    build(good[:1], parts, workers=1)
    with h5py.File(parts, "a") as f:  # a file of an earlier version whose writer died half-way through a take
        g = f.require_group("_incomplete").create_group(take_id(good[1]))
        g.create_dataset("points3d", data=np.zeros((3, 33, 3)))
    pending = pending_dir(parts)  # and what a writer killed now leaves: half a take file, half a dataset
    pending.mkdir()
    (pending / f".{take_id(good[1])}.h5.tmp-99").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    (tmp_path / ".parts.h5.tmp-99").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    with h5py.File(parts, "r") as f:
        assert take_id(good[1]) not in f["takes"]  # never visible before its commit
    build(good, parts, workers=1)
    a, b = _content(whole), _content(parts)
    assert a.keys() == b.keys() and len(a) == 2
    for t in a:
        for k in a[t]:
            if k == "attrs":
                assert a[t][k].keys() == b[t][k].keys()
            else:
                assert np.array_equal(a[t][k], b[t][k], equal_nan=True), (t, k)
    with h5py.File(parts, "r") as f:
        assert "_incomplete" not in f
    assert not pending.exists() and not (tmp_path / ".parts.h5.tmp-99").exists()


def test_dask_local_cluster(sessions, tmp_path):
    distributed = pytest.importorskip("distributed")
    good, _ = sessions
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        s = build(good, tmp_path / "dask.h5", scheduler=c.scheduler_address)
    assert sorted(s.committed) == sorted(take_id(g) for g in good)


def test_cli_info_and_bad_file(sessions, tmp_path, capsys):
    good, _ = sessions
    out = tmp_path / "c.h5"
    assert cli(["dataset", "build", str(good[0]), "--out", str(out), "--workers", "1"]) == 0
    assert cli(["dataset", "info", str(out)]) == 0
    assert '"takes": 1' in capsys.readouterr().out
    bad = tmp_path / "x.h5"
    with h5py.File(bad, "w") as f:
        f.attrs["kind"] = "something-else"
    assert cli(["dataset", "info", str(bad)]) == 2
    assert "not a mocap dataset" in capsys.readouterr().err


def _digest(path):
    return hashlib.sha1(path.read_bytes()).hexdigest()


def test_an_output_inside_an_input_is_refused(sessions, tmp_path, capsys):
    good, _ = sessions
    target = good[0] / "pose2d.h5"
    before = _digest(target)
    with pytest.raises(ValueError, match="inside input session") as e:
        build(good, target, workers=1)
    assert str(target) in str(e.value) and str(good[0]) in str(e.value)
    with pytest.raises(ValueError, match="inside input session"):
        build([target], target, workers=1)  # the output is an input file
    with pytest.raises(ValueError, match="inside input session"):
        build(good, good[1] / "sub" / ".." / "new.h5", workers=1)
    assert cli(["dataset", "build", str(good[0]), "--out", str(target), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert str(target) in err and str(good[0]) in err and "Traceback" not in err
    assert _digest(target) == before and not pending_dir(target).exists()
    assert not (good[1] / "new.h5").exists()


def test_an_existing_file_that_is_not_a_dataset_is_never_overwritten(sessions, tmp_path):
    good, _ = sessions
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.arange(3)
    before = _digest(other)
    with pytest.raises(ValueError, match="not a mocap dataset"):
        build(good, other, workers=1)
    assert _digest(other) == before


@pytest.mark.parametrize("kind", ["random", "empty", "hdf5", "no_takes", "truncated"])
def test_info_on_a_file_that_is_not_a_dataset(tmp_path, capsys, kind):
    bad = tmp_path / f"{kind}.h5"
    if kind == "random":
        bad.write_bytes(np.random.default_rng(0).bytes(5000))
    elif kind == "empty":
        bad.write_bytes(b"")
    elif kind in ("hdf5", "no_takes"):
        with h5py.File(bad, "w") as f:
            f["points"] = np.zeros(3)
            if kind == "no_takes":
                f.attrs["kind"], f.attrs["schema_version"] = "mocap-dataset", 1
    else:
        with h5py.File(bad, "w") as f:
            f.attrs["kind"], f.attrs["schema_version"] = "mocap-dataset", 1
            f.create_group("takes").create_group("t").attrs["frames"] = 3
            f["pad"] = np.zeros(10000)
        bad.write_bytes(bad.read_bytes()[:3000])
    with pytest.raises(ValueError, match=str(bad)):
        info(bad)
    with pytest.raises(ValueError, match=str(bad)):
        Windows(bad, 8)
    assert cli(["dataset", "info", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "Traceback" not in err


def test_unreachable_scheduler_is_a_clear_error_not_a_hang(sessions, tmp_path):
    import socket
    import time

    good, _ = sessions
    with socket.socket() as srv:  # accepts connections, never answers: a plain Dask Client would wait forever
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        t0 = time.monotonic()
        with pytest.raises(RuntimeError, match="could not reach the Dask scheduler"):
            build(good, tmp_path / "x.h5", scheduler=f"tcp://127.0.0.1:{srv.getsockname()[1]}")
    assert time.monotonic() - t0 < 60
    assert not (tmp_path / "x.h5").exists()  # no empty dataset left behind to be mistaken for a result


def test_a_build_leaves_the_sessions_animation_files_and_report_as_they_were(tmp_path):
    """The build runs the stages a take keeps (up to the fit); it used to run export and the report with its
    own overrides, rewriting the session's report without its videos and its resolved configuration."""
    s = synthetic_session(tmp_path / "take", frames=40, seed=3)
    assert cli(["run", str(s)]) == 0
    kept = {p: p.read_bytes() for p in [s / "config.resolved.toml", s / "report" / "report.html",
                                        *sorted((s / "export").iterdir())]}
    out = tmp_path / "ds.h5"
    assert build([s], out, workers=1).committed == [take_id(s)]
    assert {p: p.read_bytes() for p in kept} == kept
    assert not (s / ".mocap" / "settings.json").exists() or "export" not in (s / ".mocap" / "settings.json").read_text()
