"""The stage contract: one list of stage modules, one settings dialect, kept flags, stale outputs,
the session lock, failures logged, names checked before they become paths."""

import json
import subprocess
import sys

import numpy as np
import pytest
from pipeline_synth import synthetic_session

from mocap import stages
from mocap.cli import main as cli
from mocap.config import keys
from mocap.io.hdf5 import read_points3d
from mocap.pipeline import run, session_lock
from mocap.session import Session
from mocap.settings import Settings, load_config

FAST = ["export.formats=['bvh', 'trc']", "report.overlay_videos=false"]


@pytest.fixture
def session(tmp_path):
    return synthetic_session(tmp_path / "take")


def test_every_stage_module_holds_the_contract_and_its_flags_name_real_keys(session):
    s = Session(session)
    settings = Settings()
    assert stages.names() == stages.ORDER
    for m in stages.stages():
        assert set(stages.REQUIRED) <= set(dir(m)), m.__name__
        assert hasattr(settings, m.NAME)
        for flag in getattr(m, "FLAGS", ()):
            assert flag.key in keys(m.Config), f"{m.NAME} {flag.flag} → unknown key {flag.key}"
        assert all(isinstance(p, type(session)) for p in m.outputs(s, settings))


def test_one_dialect_for_stage_commands_and_run(session, tmp_path, capsys):
    cfg = tmp_path / "x.toml"
    cfg.write_text("[refine]\naccel_sigma = 12.0\n[triangulate]\nmin_views = 3\n")
    for stage in ("rig_refine", "sync", "triangulate", "refine"):
        assert cli([stage, str(session), "--config", str(cfg)]) == 0
    assert read_points3d(session / "points3d" / "triangulated.h5").info["config"]["min_views"] == 3
    assert read_points3d(session / "points3d" / "refined.h5").info["config"]["solver"]["accel_sigma"] == 12.0
    r = run(session, config_path=cfg, sets=FAST, progress=False)  # the same file means the same thing
    assert r.status["sync"] == r.status["triangulate"] == r.status["refine"] == "skipped"
    assert r.ran == ["fit", "retarget", "export", "report"]


def test_flags_are_keys_and_are_kept_for_later_commands(session, capsys):
    assert cli(["triangulate", str(session), "--max-reproj-px", "9"]) == 0
    assert load_config(Session(session))[0].triangulate.max_reproj_px == 9.0
    kept = json.loads((session / ".mocap" / "settings.json").read_text())
    assert kept["triangulate.max_reproj_px"]["value"] == 9.0 and "--max-reproj-px 9" in kept[
        "triangulate.max_reproj_px"]["from"]
    r = run(session, sets=FAST, progress=False)
    assert r.status["triangulate"] == "ran"  # sync ran first and wrote its offsets; the kept setting is used
    assert read_points3d(session / "points3d" / "triangulated.h5").info["config"]["max_reproj_px"] == 9.0
    capsys.readouterr()
    assert cli(["run", str(session), *sum([["--set", x] for x in FAST], [])]) == 0  # a kept setting is said
    out = capsys.readouterr().out  # (a quick test's detect.stop=40 cut every later run to 40 frames, unsaid)
    assert "kept from earlier commands: triangulate.max_reproj_px = 9.0 (from `" in out, out
    assert f"drop one with: mocap config forget {session} KEY" in out
    assert "kept from earlier commands: export" not in out  # given again by this command
    assert cli(["config", "show", str(session)]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.strip().startswith("triangulate.max_reproj_px"))
    assert "15.0" in line and "9.0" in line and "settings.json" in line
    assert "refine.accel_sigma" in out and "detect.persons" in out and "export.formats" in out
    for typo, said in (("triangulat.max_reproj_px", "no stage 'triangulat'"),
                       ("triangulate.max_reproj", "[triangulate] has no key 'max_reproj'")):
        assert cli(["config", "forget", str(session), typo]) == 2  # a typo forgets nothing, and says so
        assert said in capsys.readouterr().err
    assert load_config(Session(session))[0].triangulate.max_reproj_px == 9.0
    assert cli(["config", "forget", str(session), "triangulate"]) == 0
    assert load_config(Session(session))[0].triangulate.max_reproj_px == 15.0


def test_a_bad_kept_value_names_its_remedy_and_a_set_of_the_same_key_replaces_it(session):
    """A value kept by an earlier command that a check now refuses (kept before the check existed): the error names
    the command that kept it and how to drop it, and the command that gives the key again is not refused by it."""
    (session / ".mocap").mkdir(exist_ok=True)
    (session / ".mocap" / "settings.json").write_text(json.dumps(
        {"fit.workers": {"value": -1, "from": "mocap fit take --set fit.workers=-1"}}))
    with pytest.raises(ValueError, match=r"settings.json \(from mocap fit take --set fit.workers=-1\) \[fit\]: fit."
                                         r"workers must be 0 .*, got -1; `mocap config forget .*take fit.workers` "
                                         r"drops it"):
        load_config(Session(session))
    assert load_config(Session(session), sets=["fit.workers=1"])[0].fit.solver.workers == 1
    with pytest.raises(ValueError, match="fit.workers must be 0 .one thread per core. or more, got -2"):
        load_config(Session(session), sets=["fit.workers=-2"])  # refused before any stage runs


def test_a_failing_command_keeps_nothing(session, capsys):
    assert cli(["triangulate", str(session), "--set", "triangulate.min_views=1"]) == 2
    assert "min_views must be ≥ 2" in capsys.readouterr().err
    assert not (session / ".mocap" / "settings.json").exists()


def test_an_output_made_under_other_settings_is_stale(session, capsys):
    run(session, sets=FAST, progress=False)
    assert cli(["refine", str(session), "--overwrite", "--accel-sigma", "3"]) == 0
    r = run(session, progress=False)  # the kept accel_sigma: refine is current, what follows is redone
    assert r.status["refine"] == "skipped" and r.status["fit"] == "ran"
    assert "accel_sigma = 3.0" in (session / "config.resolved.toml").read_text()
    r = run(session, sets=["refine.accel_sigma=15"], progress=False)
    assert r.status["refine"] == "ran"


def test_session_metadata_is_in_the_fingerprint(session):
    run(session, sets=FAST, progress=False)
    bvh = session / "export" / "take_body22.bvh"
    assert "Frame Time: 0.033333333" in bvh.read_text()
    meta = session / "session.toml"
    lines = [x for x in meta.read_text().splitlines() if not x.startswith("description")]
    meta.write_text("\n".join(lines + ['description = "take 2"', ""]))
    r = run(session, progress=False)  # every stage that reads the keypoints depends on session.toml
    assert r.status["sync"] == r.status["triangulate"] == r.status["refine"] == "ran"


def test_openpose_session_follows_session_toml_fps(tmp_path):
    from mocap.io.hdf5 import read_keypoints2d
    from mocap.io.openpose import write_openpose

    root = synthetic_session(tmp_path / "op")
    kp = read_keypoints2d(root / "pose2d.h5")
    (root / "pose2d.h5").unlink()
    write_openpose(kp, root / "pose2d")
    (root / "session.toml").write_text('fps = 30.0\nkeypoint_set = "blazepose33"\n')
    run(root, sets=FAST, progress=False)
    assert "Frame Time: 0.033333333" in (root / "export" / "op_body22.bvh").read_text()
    (root / "session.toml").write_text('fps = 60.0\nkeypoint_set = "blazepose33"\n')
    r = run(root, progress=False)
    assert {"sync", "triangulate", "refine", "fit", "export"} <= set(r.ran)
    assert "Frame Time: 0.016666667" in (root / "export" / "op_body22.bvh").read_text()


def test_skeleton_and_target_flow_to_retarget_and_export(session):
    r = run(session, sets=FAST + ["retarget.target=ue5"], progress=False)
    assert r.status["export"] == "ran"
    assert (session / "motion" / "ue5.npz").is_file() and (session / "export" / "take_ue5.bvh").is_file()
    assert (session / "export" / "take_body22.trc").is_file()


def test_files_of_earlier_settings_are_moved_aside(session):
    """A mixamo export and motion stayed beside the ue5 ones made after `retarget.target=ue5` (and a format dropped
    stayed too), passing for current: they go to export/previous/ and motion/previous/, said."""
    assert run(session, sets=FAST, progress=False).status["export"] == "ran"
    assert (session / "export" / "take_mixamo.bvh").is_file() and (session / "motion" / "mixamo.npz").is_file()
    run(session, sets=["export.formats=['bvh']", "report.overlay_videos=false", "retarget.target=ue5"], progress=False)
    export = sorted(p.name for p in (session / "export").iterdir() if p.is_file())
    assert export == ["take_body22.bvh", "take_ue5.bvh"], export
    previous = sorted(p.name for p in (session / "export" / "previous").iterdir())
    assert previous == ["take_body22.trc", "take_mixamo.bvh", "take_mixamo.trc"], previous
    assert not (session / "motion" / "mixamo.npz").exists()
    assert (session / "motion" / "previous" / "mixamo.npz").is_file()


def test_missing_input_names_the_stage_that_makes_it(session, capsys):
    assert cli(["fit", str(session)]) == 2
    assert "refined.h5 is missing; the refine stage makes it: run `mocap refine" in capsys.readouterr().err
    assert cli(["export", str(session)]) == 2
    assert "the fit stage makes it" in capsys.readouterr().err


def test_c3d_export_holds_keypoints_and_joint_centres(session):
    from mocap.io.c3d import read_c3d
    from mocap.io.capture import read_capture

    run(session, sets=["export.formats=['c3d']", "report.overlay_videos=false"], progress=False)
    labels, xyz, fps = read_c3d(session / "export" / "take_body22.c3d")
    motion, extra = read_capture(session / "motion" / "body22.npz")
    names = list(extra["point_names"])
    assert fps == motion.fps == 30.0 and labels[: len(names)] == names
    assert labels[len(names):] == [f"J_{n}" for n in motion.skeleton.joint_names]
    _, joints = motion.fk()
    assert np.allclose(xyz[:, len(names):], joints, atol=1e-4, equal_nan=True)
    assert np.allclose(xyz[:, : len(names)], extra["points"], atol=1e-4, equal_nan=True)
    assert np.isnan(xyz).any() == np.isnan(extra["points"]).any()
    labels, xyz, _ = read_c3d(session / "export" / "take_mixamo.c3d")  # a retargeted rig: joint centres only
    assert all(n.startswith("J_") for n in labels)


def test_unknown_format_and_detector_come_from_the_registries(session, capsys):
    assert cli(["export", str(session), "--format", "bvh,obj"]) == 2
    err = capsys.readouterr().err
    assert "unknown format 'obj'" in err and "c3d" in err
    with pytest.raises(SystemExit):
        cli(["detect", str(session), "--detector", "openpose"])
    err = capsys.readouterr().err
    assert "invalid choice: 'openpose'" in err and "blazepose" in err and "onnx" in err


def test_target_rig_names_cannot_leave_the_session(session, tmp_path, capsys):
    run(session, sets=FAST, progress=False)
    for name in ("../../x", "/tmp/abs", ".hidden", "a/b"):
        rig = tmp_path / "evil.toml"
        rig.write_text((__import__("mocap").config_files.configs_dir() / "rigs" / "mixamo.toml").read_text()
                       .replace('name = "mixamo"', f'name = "{name}"'))
        assert cli(["retarget", str(session), "--target", str(rig)]) == 2
        assert "cannot be used in a file name" in capsys.readouterr().err
    assert not (tmp_path / "x.npz").exists() and not list(tmp_path.glob("*.npz"))


def test_a_second_command_on_a_busy_session_is_refused(session, capsys):
    with session_lock(Session(session), "mocap run (test)"):
        assert cli(["triangulate", str(session)]) == 2
    err = capsys.readouterr().err
    assert "is busy: `mocap run (test)` (pid" in err
    assert cli(["triangulate", str(session)]) == 0  # released


def test_failures_reach_the_log_and_ctrl_c_is_one_line(session, monkeypatch, capsys):
    from mocap.stages import refine

    def boom(*a, **k):
        raise ValueError("refine exploded on purpose")

    monkeypatch.setattr(refine, "main", boom)
    assert cli(["run", str(session), *sum([["--set", x] for x in FAST], [])]) == 2
    log = max((session / "logs").glob("run-*.log")).read_text()
    assert "stage refine failed: refine exploded on purpose" in log

    def interrupt(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(refine, "main", interrupt)
    assert cli(["run", str(session)]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("interrupted") and not any("Traceback" in x for x in err)


def test_run_help_lists_stages_and_points_to_the_keys():
    out = subprocess.run([sys.executable, "-m", "mocap", "run", "--help"], capture_output=True, text=True,
                         check=True).stdout
    stages = "calibrate, detect, rig_refine, sync, triangulate, refine, fit, retarget, export, report"
    assert stages in " ".join(out.split())
    assert "mocap config show" in out and "export.formats=['bvh','glb']" in " ".join(out.split())


NEW_STAGE = '''
from dataclasses import dataclass
from mocap.stages import Flag
from mocap.stages.fit import skeleton_name

NAME = "hello"
HELP = "writes a greeting beside the fitted motion"

@dataclass(frozen=True)
class Config:
    greeting: str = "hello"

FLAGS = (Flag("--greeting", "greeting", "what to write", str),)

def inputs(session, settings):
    return [session.motion(skeleton_name(settings))]

def outputs(session, settings):
    return [session.root / "hello.txt"]

def run(text):
    return text.upper()

def main(session, settings=None, overwrite=False):
    out = session.root / "hello.txt"
    out.write_text(run(settings.hello.greeting))
    return out
'''


def test_a_new_stage_is_one_module_and_one_line(session):
    """The module above, and its name in ORDER: the command, the settings table, the fingerprint and its
    place in mocap run follow (in a child process, as the Settings class is built at import)."""
    code = f'''
import sys, types
import mocap.stages as st
module = types.ModuleType("mocap.stages.hello")
exec({NEW_STAGE!r}, module.__dict__)
sys.modules["mocap.stages.hello"] = module
st.ORDER = st.ORDER[:-1] + ("hello",) + st.ORDER[-1:]
from mocap.cli import main
assert main(["run", sys.argv[1], "--set", "export.formats=['bvh']", "--set", "report.overlay_videos=false"]) == 0
assert open(sys.argv[1] + "/hello.txt").read() == "HELLO"
assert main(["hello", sys.argv[1], "--greeting", "bonjour"]) == 0
assert open(sys.argv[1] + "/hello.txt").read() == "BONJOUR"
from mocap.pipeline import run
r = run(sys.argv[1], progress=False)
assert r.status["hello"] == "skipped" and list(r.status)[-2:] == ["hello", "report"], r.status
'''
    p = subprocess.run([sys.executable, "-c", code, str(session)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]


def test_an_output_remade_around_the_runner_is_not_taken_for_current(session):
    from mocap.stages import refine

    run(session, sets=FAST, progress=False)
    refine.main(session, refine.Config(bones=False), overwrite=True)  # Python code, other settings
    r = run(session, progress=False)
    assert r.status["refine"] == "ran"  # its output is the same file again, so fit may stay as it was
    assert read_points3d(session / "points3d" / "refined.h5").info["config"]["bones"] is True


def test_a_failure_of_the_work_started_ahead_is_not_blamed_on_a_stage(session, monkeypatch):
    from mocap import ahead

    def boom(self, name, status):
        if name == "triangulate":
            raise RuntimeError("the ahead work broke on purpose")

    monkeypatch.setattr(ahead.Ahead, "after", boom)
    assert cli(["run", str(session), *sum([["--set", x] for x in FAST], [])]) == 2
    log = max((session / "logs").glob("run-*.log")).read_text()
    assert "the work started ahead after triangulate failed: the ahead work broke on purpose" in log
    assert "stage triangulate failed" not in log


@pytest.mark.parametrize("item, said", [
    ("export.units=furlong", "export: units must be one of m, cm, cmu, got 'furlong'"),
    ("export.bvh_order=ZXX", "export: bvh_order must be a permutation of XYZ"),
    ("triangulate.min_score=5", "triangulate: min_score must be in [0, 1], got 5"),
    ("sync.max_offset_s=-3", "sync: max_offset_s must be ≥ 0 s, got -3"),
    ("fit.source=refind", "fit.source must be one of refined, triangulated, got 'refind'"),  # ran up to the fit
    ("detect.variant=hevy", "detect: variant must be one of lite, full, heavy, got 'hevy'"),  # caught at detection
    ("calibrate.world=floor", "calibrate: world must be 'camera', 'camera:NAME' or 'board:FRAME'"),  # ignored
])
def test_bad_values_are_refused_before_any_stage_runs(session, capsys, item, said):
    """``export.units=furlong`` ran every stage, then failed with "error: 'furlong'" (a KeyError); the others were
    taken silently (a min_score of 5 keeps no detection: "nothing to fit" at the fit)."""
    assert cli(["run", str(session), "--set", item]) == 2
    assert said in capsys.readouterr().err


def test_an_unknown_retarget_target_is_refused_before_any_stage_runs(session, capsys):
    """`--set retarget.target=nosuch` ran triangulate, refine and fit, then failed."""
    assert cli(["run", str(session), "--set", "retarget.target=nosuch"]) == 2
    assert "retarget.target: unknown rig 'nosuch': expected one of ['cmu', 'mixamo', 'ue5', 'unity']" in \
        capsys.readouterr().err
    assert not (session / "points3d").exists()


def test_a_motion_no_stage_makes_now_is_named_with_the_setting_that_makes_it(session, capsys):
    """`mocap export S --motions ue5` (retarget made mixamo) said only "input motion/ue5.npz is missing"."""
    assert cli(["run", str(session), "--set", "export.formats=['bvh']"]) == 0
    capsys.readouterr()
    assert cli(["export", str(session), "--motions", "ue5"]) == 2
    assert (f"motion/ue5.npz is missing; the retarget stage makes it with that rig: `mocap retarget {session} "
            "--target ue5`") in capsys.readouterr().err


def test_flags_are_named_as_their_keys_and_former_names_still_read():
    """One setting, one name: `detect --model` set detect.model_path, `export --format` export.formats,
    `rig_refine --intrinsics` rig_refine.refine_intrinsics (and calibrate's --intrinsics is another setting)."""
    from mocap.cli import build_parser
    from mocap.cli.stages import _flag_sets
    from mocap.stages import get

    parser = build_parser()
    for stage, new, old, value, key in [("detect", "--model-path", "--model", "m.onnx", "detect.model_path"),
                                        ("export", "--formats", "--format", "bvh", "export.formats"),
                                        ("rig_refine", "--refine-intrinsics", "--intrinsics", None,
                                         "rig_refine.refine_intrinsics")]:
        assert new == "--" + key.split(".")[1].replace("_", "-")
        for flag in (new, old):
            args = parser.parse_args([stage, "S", flag] + ([value] if value else []))
            sets = _flag_sets(get(stage), args)
            assert len(sets) == 1 and sets[0].startswith(key + "="), (flag, sets)


def test_strict_run_exits_3_on_a_failed_verdict(session, capsys):
    """`mocap run` exits 0 whatever the verdict (the run worked); `--strict` makes a FAIL verdict status 3, which a
    batch script can tell from a success."""
    bad = [*sum([["--set", x] for x in FAST], []), "--set", "report.max_bone_length_cv=0.00001"]
    assert cli(["run", str(session), *bad]) == 0
    assert cli(["run", str(session), *bad, "--strict"]) == 3
    assert "verdict: FAIL" in capsys.readouterr().out
    assert cli(["run", str(session), *sum([["--set", x] for x in FAST], []), "--set",
                "report.max_bone_length_cv=0.05", "--strict"]) == 0


def test_the_fits_thread_count_reruns_nothing_another_fit_setting_reruns_the_fit(session):
    """``fit.workers`` gives the same motion bit for bit (tests/test_fit_threads.py): not in the stage's cache key."""
    assert run(session, sets=FAST, progress=False).status["fit"] == "ran"
    again = run(session, sets=FAST + ["fit.workers=1"], progress=False)
    assert again.status["fit"] == "skipped", again.status
    assert run(session, sets=FAST + ["fit.workers=1", "fit.iterations=15"], progress=False).status["fit"] == "ran"


def test_a_kept_export_motions_that_a_new_target_leaves_behind_is_named_with_how_to_drop_it(session, capsys):
    """`mocap export S --motions body22,mixamo` (the README's example) kept export.motions; a later run with
    retarget.target=ue5 failed at the export on the missing mixamo motion, and the hint only said how to make it
    (undoing the new target): the kept setting and `mocap config forget` are named too."""
    assert cli(["run", str(session), "--set", "export.formats=['bvh']"]) == 0
    assert cli(["export", str(session), "--motions", "body22,mixamo"]) == 0
    capsys.readouterr()
    assert cli(["run", str(session), "--set", "retarget.target=ue5"]) != 0
    err = capsys.readouterr().err
    assert "motion/mixamo.npz is missing; the retarget stage makes it with that rig" in err
    assert (f"export.motions = ['body22', 'mixamo'] names it while retarget.target is 'ue5': to export what the run "
            f"makes, `mocap config forget {session} export.motions`") in err
    assert cli(["config", "forget", str(session), "export.motions"]) == 0
    assert cli(["run", str(session), "--set", "retarget.target=ue5"]) == 0
    assert (session / "export" / f"{session.name}_ue5.bvh").is_file()


def test_a_kept_setting_says_which_value_of_the_sessions_own_file_it_overrides(session):
    """`mocap run S --set detect.persons=auto` once, then mocap.toml edited to persons = 2: the runs went on with auto,
    and the kept note did not say it overrode the file the user had just edited."""
    from mocap.cli.stages import kept_lines

    assert cli(["triangulate", str(session), "--max-reproj-px", "9"]) == 0
    (session / "mocap.toml").write_text("[triangulate]\nmax_reproj_px = 12.0\n")
    lines = kept_lines(session, [])
    assert any(x.startswith("kept from earlier commands: triangulate.max_reproj_px = 9.0 (from `") and
               x.endswith("; it overrides mocap.toml's 12.0") for x in lines), lines
    (session / "mocap.toml").write_text("[triangulate]\nmax_reproj_px = 9.0\n")  # the same value: nothing to say
    assert not any("overrides" in x for x in kept_lines(session, []))
