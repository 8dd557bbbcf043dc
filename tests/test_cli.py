import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import toy_take

from mocap.cli import main
from mocap.io.hdf5 import read_points3d, write_points3d
from mocap.io.openpose import write_openpose
from mocap.io.rig_files import write_rig
from mocap.io.trc import read_trc
from mocap.types import Points3D


@pytest.fixture
def session(tmp_path):
    rig, kp, truth, _ = toy_take(frames=120, seed=5)
    root = tmp_path / "take"
    write_rig(rig, root / "calibration" / "rig.toml")
    write_openpose(kp, root / "pose2d")
    (root / "session.toml").write_text('fps = 60.0\nkeypoint_set = "coco17"\n')
    F, J = truth.shape[:2]
    write_points3d(Points3D(truth[:, None], np.zeros((F, 1, J)), np.ones((F, 1, J, 4), bool), rig.names, "coco17",
                            60.0), root / "groundtruth" / "points3d.h5")
    return root, truth


def test_help_lists_the_stages():
    out = subprocess.run([sys.executable, "-m", "mocap", "--help"], capture_output=True, text=True, check=True).stdout
    for word in ("triangulate", "refine", "bench", "demo", "synth"):
        assert word in out


def test_triangulate_then_refine_writes_hdf5_and_trc(session, capsys):
    root, truth = session
    assert main(["refine", str(root)]) == 2  # a stage never runs another: it names the one that makes its input
    assert "triangulated.h5 is missing; the triangulate stage makes it: run `mocap triangulate" in \
        capsys.readouterr().err
    assert main(["triangulate", str(root)]) == 0
    assert main(["refine", str(root)]) == 0
    out = capsys.readouterr().out
    assert "usable" in out and "refined.h5" in out
    tri = read_points3d(root / "points3d" / "triangulated.h5")
    ref = read_points3d(root / "points3d" / "refined.h5")
    e_tri = np.nanmean(np.linalg.norm(tri.xyz[:, 0] - truth, axis=-1))
    e_ref = np.nanmean(np.linalg.norm(ref.xyz[:, 0] - truth, axis=-1))
    assert e_ref < e_tri and e_ref < 0.01
    xyz, names, fps = read_trc(root / "points3d" / "refined.trc")
    assert names[0] == "nose" and fps == 60.0 and np.allclose(xyz, ref.xyz[:, 0], atol=1e-6)
    stamp = (root / "points3d" / "refined.h5").stat().st_mtime_ns
    assert main(["refine", str(root)]) == 0  # up to date: skipped
    assert "up to date" in capsys.readouterr().out
    assert (root / "points3d" / "refined.h5").stat().st_mtime_ns == stamp
    assert main(["refine", str(root), "--overwrite", "--accel-sigma", "5"]) == 0
    assert read_points3d(root / "points3d" / "refined.h5").info["config"]["solver"]["accel_sigma"] == 5.0


def test_config_file_unknown_key_is_named(session, tmp_path, capsys):
    root, _ = session
    cfg = tmp_path / "cfg.toml"
    cfg.write_text("[refine]\naccel_sigma = 10.0\nsmoothness = 3\n")
    assert main(["refine", str(root), "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "cfg.toml [refine]: unknown key 'smoothness'" in err
    cfg.write_text("[triangulate]\nmax_reproj_px = 'big'\n")
    assert main(["triangulate", str(root), "--config", str(cfg)]) == 2
    assert "max_reproj_px: expected float" in capsys.readouterr().err
    cfg.write_text("[triangulate]\nmin_views = 3\n")
    assert main(["triangulate", str(root), "--config", str(cfg)]) == 0
    assert read_points3d(root / "points3d" / "triangulated.h5").info["config"]["min_views"] == 3


def test_missing_inputs_are_clear_errors(tmp_path, capsys):
    assert main(["triangulate", str(tmp_path / "nowhere")]) == 2
    assert "session folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["triangulate", str(tmp_path / "empty")]) == 2
    assert "calibration/rig.toml is missing; the calibrate stage makes it" in capsys.readouterr().err


@pytest.mark.shared_data
def test_bench_triangulation_prints_table_and_json(shared_data, tmp_path, capsys):
    import json

    out = tmp_path / "bench.json"
    assert main(["bench", "triangulation", "--frames", "120", "--peers", "none", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "refine (robust init" in text and "oracle" in text and "refine_over_oracle" in text
    data = json.loads(out.read_text())
    rows = {r["method"]: r for r in data["rows"]}
    assert rows["refine (robust init, excl. init)"]["mpjpe_mm"] < rows["robust (camera-subset search)"]["mpjpe_mm"]


@pytest.mark.slow
def test_bench_calibration_runs_on_projected_corners(tmp_path, capsys):
    out = tmp_path / "calib.json"
    assert main(["bench", "calibration", "--project", "--frames", "60", "--cameras", "4", "--no-peers",
                 "--json", str(out)]) == 0
    assert "mocap (intrinsics + full bundle adjustment)" in capsys.readouterr().out
    assert out.stat().st_size > 0
    # too few frames for the rig: the advice is the bench's (more frames), not a studio's (record the board again)
    assert main(["bench", "calibration", "--project", "--frames", "6", "--cameras", "4", "--no-peers"]) == 2
    assert "6 frames are too few for 4 cameras, try --frames 100" in capsys.readouterr().err


def test_session_given_as_dot_names_files_by_its_folder(tmp_path, monkeypatch):
    """``mocap run .`` inside a session: the export files carry the folder's name, not an empty one."""
    from mocap.session import Session
    from mocap.stages.export import path_of

    take = tmp_path / "take_07"
    take.mkdir()
    monkeypatch.chdir(take)
    s = Session(".")
    assert s.name == "take_07"
    assert path_of(s, "body22", "bvh").name == "take_07_body22.bvh"
    monkeypatch.chdir(take / ".")
    assert Session(take / "..").name == tmp_path.name


CTRL_C_PROBE = """
import signal
import sys

import mocap.cli as cli

signal.signal(signal.SIGINT, signal.default_int_handler)  # a background job starts with SIGINT ignored
build = cli.build_parser
CTRL_C = "import os, signal\\nos.kill(os.getpid(), signal.SIGINT)\\nfor _ in range(10 ** 7): pass"


def parser():
    if WHERE == "parser":  # while the commands' modules are imported
        exec(CTRL_C)
    p = build()
    # the KeyboardInterrupt is raised inside exec(), as when a dataclass is being made
    p.set_defaults(func=lambda args: exec(CTRL_C))
    return p


cli.build_parser = parser
sys.exit(cli.main([]))
"""


@pytest.mark.parametrize("where", ["command", "parser"])
def test_ctrl_c_handled_inside_exec_still_exits_130(tmp_path, where):
    """CPython marks a KeyboardInterrupt that leaves an exec() of a string as unhandled (until the next such
    exec()) and, for ``python -m``, kills the process with SIGINT at exit although the CLI caught it: the exit
    status must still be 130 after the one "interrupted" line and no traceback (this was ``test_interrupt``'s
    occasional -2 when the Ctrl-C landed while the report stage imported a module that makes dataclasses).
    The same while the parser is being built (the commands' modules imported: about a second)."""
    (tmp_path / "ctrl_c_probe").mkdir()
    (tmp_path / "ctrl_c_probe" / "__main__.py").write_text(f"WHERE = {where!r}\n" + CTRL_C_PROBE)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))  # this checkout's mocap
    r = subprocess.run([sys.executable, "-m", "ctrl_c_probe"], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.stderr.strip().splitlines()[-1].startswith("interrupted"), r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 130, f"exit status {r.returncode}\n{r.stderr}"


def test_a_session_path_that_is_a_file_is_said_to_be_one(tmp_path, capsys):
    """`mocap run afile` said "session folder afile does not exist" of a file that exists."""
    (tmp_path / "take.mp4").write_bytes(b"")
    assert main(["run", str(tmp_path / "take.mp4")]) == 2
    assert f"{tmp_path / 'take.mp4'} is a file, not a session folder" in capsys.readouterr().err
    assert main(["config", "show", str(tmp_path / "take.mp4")]) == 2
    assert "is a file, not a session folder" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "nothing")]) == 2
    assert f"session folder {tmp_path / 'nothing'} does not exist" in capsys.readouterr().err


def test_output_piped_into_a_reader_that_stops_is_no_error(tmp_path):
    """`mocap config show S | head` said "error: [Errno 32] Broken pipe" and exited 2."""
    r = subprocess.run(f"'{sys.executable}' -m mocap config show | head -1", shell=True, capture_output=True,
                       text=True, executable="/bin/bash", cwd=Path(__file__).parent.parent,
                       env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert r.stdout.startswith("key") and "Broken pipe" not in r.stderr and "error" not in r.stderr, r.stderr


def test_a_stage_flag_given_to_run_says_whose_it_is(tmp_path, capsys):
    """``mocap run S --persons 2`` was "unrecognized arguments: --persons 2" under the top-level usage: the flag is
    the detect command's, and ``mocap run`` takes it as ``--set detect.persons=2``."""
    from mocap.cli import main as cli

    with pytest.raises(SystemExit) as e:
        cli(["run", str(tmp_path), "--persons", "2"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --persons 2; --persons is a stage command's flag (mocap detect SESSION " \
           "--persons 2); with mocap run: --set detect.persons=2" in err, err
    with pytest.raises(SystemExit):
        cli(["run", str(tmp_path), "--overlay"])
    assert "with mocap run: --set detect.overlay=true" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli(["run", str(tmp_path), "--bogus"])
    assert capsys.readouterr().err.strip().endswith("unrecognized arguments: --bogus")


def test_a_stage_command_up_to_date_says_an_earlier_stage_is_not(tmp_path, capsys):
    """`mocap fit S` after the 2D keypoints changed: the fit's own inputs did not, so it said "up to date" while a
    run would redo the stages before it (a helper replaced a video: `mocap fit` said up to date, detection stale).
    It now names them."""
    from pipeline_synth import synthetic_session

    from mocap.io.hdf5 import read_keypoints2d, write_keypoints2d
    from mocap.types import Keypoints2D

    s = synthetic_session(tmp_path / "take", frames=40)
    assert main(["run", str(s), "--set", "export.formats=['bvh']", "--no-videos"]) == 0
    capsys.readouterr()
    assert main(["fit", str(s)]) == 0
    out = capsys.readouterr().out
    assert "fit: up to date" in out and "out of date" not in out
    kp = read_keypoints2d(s / "pose2d.h5")
    data = np.array(kp.data)
    data[5, 0, 0, 0, :2] += 3.0  # one keypoint moved: the stages that read the keypoints are out of date
    write_keypoints2d(Keypoints2D(data, kp.camera_names, kp.keypoint_set, kp.fps), s / "pose2d.h5")
    assert main(["fit", str(s)]) == 0
    out = capsys.readouterr().out
    assert "fit: up to date" in out and "but earlier stages are out of date: rig_refine (" in out
    assert f"`mocap run {s}` redoes them and this" in out
