"""The fixed costs of a run after detection: presets parsed once per content, the later stages' lazy imports
done on detection's free core, and ``mocap bench after``'s run from scratch in a new process."""

import importlib.util
import sys

import pytest

from mocap import config_files, pipeline, warm
from mocap.bench import after


def test_read_toml_parses_once_per_content_and_hands_out_copies(tmp_path, monkeypatch):
    path = tmp_path / "rig.toml"
    path.write_text('name = "a"\n[joints.hip]\noffset = [0, 0, 1]\n')
    calls = []
    loads = config_files.tomllib.loads
    monkeypatch.setattr(config_files.tomllib, "loads", lambda text: calls.append(1) or loads(text))
    first = config_files.read_toml(path)
    first["joints"]["hip"]["offset"].append(9)  # a caller changing its table changes no other's
    second = config_files.read_toml(path)
    assert second == {"name": "a", "joints": {"hip": {"offset": [0, 0, 1]}}}
    assert len(calls) == 1
    path.write_text('name = "b"\n[joints.hip]\noffset = [0, 0, 1]\n')  # same size, new content: parsed again
    assert config_files.read_toml(path)["name"] == "b"
    assert len(calls) == 2


def test_read_toml_errors_are_unchanged(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(ValueError, match="not valid TOML"):
        config_files.read_toml(bad)
    with pytest.raises(FileNotFoundError, match="no such file"):
        config_files.read_toml(tmp_path / "missing.toml")


def test_load_target_rig_twice_gives_equal_independent_rigs():
    from mocap.retarget import load_target_rig

    a, b = load_target_rig("mixamo"), load_target_rig("mixamo")
    assert a.name == b.name and a.source == b.source and a.skeleton.joint_names == b.skeleton.joint_names
    assert a.source is not b.source


def test_warm_up_imports_its_modules_once_and_records_failures(monkeypatch):
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    w = warm.WarmUp(("colorsys", "mocap.no_such_module_here"))
    w.start()
    thread = w.thread
    w.start()  # started at most once
    assert w.thread is thread
    w.join(30)
    assert "colorsys" in sys.modules
    assert list(w.failed) == ["mocap.no_such_module_here"]
    assert "ModuleNotFoundError" in w.failed["mocap.no_such_module_here"]
    assert w.seconds is not None and w.seconds >= 0


def test_warm_up_modules_exist():
    for name in warm.MODULES:
        assert importlib.util.find_spec(name) is not None, f"{name} (in mocap.warm.MODULES) is not a module"


def test_building_the_parser_leaves_scipy_to_the_run(monkeypatch):
    """Every command builds the parser (importing every stage's module): scipy.optimize (0.4-0.5 s), scipy.linalg and
    scipy.sparse (0.25-0.35 s) are not imported then; a run imports them as it starts when its stages need them
    (``warm.EARLY``), and only then."""
    import subprocess

    code = ("import sys, mocap.cli as c; c.build_parser(); "
            "print(sorted(m for m in ('scipy.optimize', 'scipy.linalg', 'scipy.sparse') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"building the parser imported {out.strip()} (every command pays for it)"
    assert {"scipy.optimize", "scipy.linalg", "scipy.sparse"} <= set(warm.EARLY)
    assert all(importlib.util.find_spec(name) is not None for name in warm.EARLY)
    monkeypatch.setattr(warm, "EARLY", {"colorsys": ("fit",)})
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    warm.import_early(["retarget", "export"])
    assert "colorsys" not in sys.modules
    warm.import_early(["triangulate", "fit"])
    assert "colorsys" in sys.modules
    monkeypatch.setattr(warm, "PEOPLE_ONLY", ("colorsys",))  # a module only several people need
    monkeypatch.delitem(sys.modules, "colorsys")
    warm.import_early(["triangulate", "fit"], several_people=False)
    assert "colorsys" not in sys.modules
    warm.import_early(["triangulate", "fit"], several_people=True)
    assert "colorsys" in sys.modules


def test_one_person_runs_never_import_scipy_optimize(tmp_path):
    """The fit's bone lengths are solved by the project's own Levenberg-Marquardt driver, and the association (the
    only user of scipy.optimize in a run) needs several people: a single-person run from 2D keypoints through
    the fit, the export and the report leaves scipy.optimize unimported (0.3-0.5 s a process need not pay)."""
    import subprocess

    from pipeline_synth import synthetic_session

    session = synthetic_session(tmp_path / "take", frames=40)
    code = ("import sys; from mocap.pipeline import run; "
            "run(sys.argv[1], sets=['detect.persons=1', 'report.overlay_videos=false'], progress=False); "
            "print('scipy.optimize' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(session)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_the_run_warms_imports_when_detection_frees_a_core(monkeypatch, tmp_path):
    from mocap import ahead
    from mocap.session import Session
    from mocap.settings import Settings

    started = []
    monkeypatch.setattr(warm.WarmUp, "start", lambda self: started.append(self))
    run_ahead = pipeline._RunAhead(Session(tmp_path), Settings(), ["calibrate", "detect", "sync", "report"])
    try:
        assert started == []  # nothing before detection says a core is free
        ahead.core_free()  # what detection calls once its last chunks leave a worker idle
        assert started == [run_ahead.warm]
    finally:
        run_ahead.close(failed=True)


def test_bench_fresh_run_names_the_childs_failure(tmp_path):
    with pytest.raises(RuntimeError, match="the fresh run exited"):
        after.fresh_run(tmp_path / "no-session-here", ["report.overlay_videos=false"], timeout_s=120)


def test_bench_table_has_the_fresh_run_columns():
    def one(wall):
        return {"stages": [{"stage": "report", "status": "ran", "wall_s": wall, "cpu_s": wall / 2},
                           {"stage": "detect", "status": "skipped", "wall_s": 0.0, "cpu_s": None}]}

    rows = after.table_rows({"runs": {"default": one(1.0), "no-videos": one(0.5), "fresh-no-videos": one(0.25)}})
    report = next(r for r in rows if r["stage"] == "report")
    assert (report["default_wall"], report["novid_wall"], report["fresh_wall"], report["fresh_cpu"]) == \
        (1.0, 0.5, 0.25, 0.125)
    assert next(r for r in rows if r["stage"] == "detect")["fresh_wall"] is None


def test_bvh_rows_are_written_as_num_writes_each_value():
    import numpy as np

    from mocap.io.bvh import _num, _rows

    rng = np.random.default_rng(3)
    values = rng.normal(size=(20, 9)) * 50
    values[1, :4] = [-1e-9, -0.0, 4e-7, -4e-7]  # negative zeros once rounded
    values[2, 0], values[2, 1] = np.nan, 123456.7891234
    for decimals in (6, 3, 0):
        assert _rows(values, decimals) == [" ".join(_num(v, decimals) for v in row) for row in values]
    assert _rows(values, 6)[1].split()[:4] == ["0.000000", "0.000000", "0.000000", "0.000000"]


def test_trc_rows_with_and_without_gaps(tmp_path):
    import numpy as np

    from mocap.io.trc import read_trc, write_trc

    rng = np.random.default_rng(4)
    xyz = rng.normal(size=(5, 3, 3))
    xyz[2, 1] = np.nan  # a missing marker: empty fields
    path = write_trc(tmp_path / "t.trc", xyz, ["a", "b", "c"], 30.0)
    rows = path.read_text().splitlines()[6:]
    assert rows[0].split("\t")[:3] == ["1", "0.000000", f"{xyz[0, 0, 0]:.6f}"]
    assert rows[2].split("\t")[5:8] == ["", "", ""]
    back, names, fps = read_trc(path)
    assert names == ["a", "b", "c"] and fps == 30.0
    np.testing.assert_allclose(back, xyz, atol=1e-6)


@pytest.mark.parametrize(("persons", "recover", "warming", "imports"),
                         [("auto", "auto", True, True), (2, "auto", True, True), (1, "on", True, True),
                          (1, "auto", True, False), ("auto", "off", True, False), ("auto", "auto", False, False)])
def test_detect_alone_imports_its_second_pass_while_the_fork_server_starts(tmp_path, monkeypatch, persons, recover,
                                                                            warming, imports):
    """``mocap detect`` on its own: the second pass's association needs scipy.optimize (0.4 s to import), imported
    as the workers' fork server starts (the parent waits for it anyway), not after the pool when every core is
    free and the stage only waits on it; only when that pass will run and a detection does."""
    from mocap.detect import pool
    from mocap.stages import detect

    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "cam01.mp4").write_bytes(b"")

    class ReachedError(Exception):
        pass

    calls = []
    monkeypatch.setattr(pool, "warm_for", lambda *a, **k: warming)
    monkeypatch.setattr(detect, "import_second_pass", lambda: calls.append(warm.SECOND_PASS))

    def probed(path):
        raise ReachedError  # what comes next: the videos probed

    monkeypatch.setattr(detect, "probe_key", probed)
    with pytest.raises(ReachedError):
        detect.main(tmp_path, detect.Config(persons=persons, recover=recover))
    assert calls == ([("scipy.optimize",)] if imports else [])
    assert "detect" not in warm.EARLY["scipy.optimize"]  # a run whose detection is skipped does not import it


def test_a_session_that_cannot_be_written_says_what_to_do(tmp_path, monkeypatch, capsys):
    """A read-only session folder said "error: [Errno 13] Permission denied: 'ro/.mocap'": what, not why."""
    from mocap.cli import main as cli

    def refused(*a, **k):
        raise PermissionError(13, "Permission denied", str(tmp_path / ".mocap"))

    monkeypatch.setattr(pipeline, "run", refused)
    assert cli(["run", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / '.mocap'}: permission denied: mocap reads its inputs and writes its "
                          "results (in a session: .mocap/"), err
    assert "copy the session where you can write" in err and "Errno" not in err


def test_the_refined_rig_line_names_the_cameras_it_speaks_of():
    """"moved up to 2.61° / 143 mm" put cam03's turn beside cam04's shift, read as one camera's."""
    from mocap.cli.stages import refined_line

    cal = {"moves_deg": {"cam02": 1.9, "cam03": 2.61, "cam04": 2.0}, "moves_mm": {"cam02": 96, "cam03": 130,
                                                                                   "cam04": 143},
           "error_px": {"heldout_given": 9.27, "heldout_refined": 7.05}}
    assert refined_line(cal).startswith("cameras refined from the performer: moved up to cam03 2.61°, cam04 143 mm "
                                        "(held-out error 9.27 → 7.05 px)")
    cal["moves_mm"]["cam03"] = 150
    assert "moved up to cam03 2.61° / 150 mm (" in refined_line(cal)
    assert "moved up to 0° / 0 mm" in refined_line({})
    assert refined_line(cal | {"persons": 3}).startswith("cameras refined from the people: ")  # a take of three
