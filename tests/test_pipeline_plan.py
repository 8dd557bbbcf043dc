"""``mocap run --dry-run``: which stages would run and why, nothing run or written."""

import pytest
from pipeline_synth import synthetic_session

from mocap.cli import main as cli
from mocap.pipeline import run
from mocap.pipeline_plan import plan

FAST = ["export.formats=['bvh']"]


def _files(root):
    return sorted((p.relative_to(root).as_posix(), p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    return synthetic_session(tmp_path_factory.mktemp("plan") / "take")


def test_a_dry_run_says_what_would_run_and_writes_nothing(session):
    before = _files(session)
    rows = {r["stage"]: r for r in plan(session, sets=FAST)}
    assert _files(session) == before
    assert rows["detect"]["would"] == "not needed"
    assert all(rows[k]["would"] == "run" and rows[k]["why"] == "no earlier run"
               for k in ("rig_refine", "sync", "triangulate", "refine", "fit", "retarget", "export", "report")), rows

    r = run(session, sets=FAST, progress=False)
    assert set(r.ran) == {k for k, v in rows.items() if v["would"] == "run"}
    state = (session / ".mocap" / "state.json").read_bytes()
    assert {r["would"] for r in plan(session, sets=FAST) if r["stage"] != "calibrate" and r["stage"] != "detect"} \
        == {"skip"}

    rows = {r["stage"]: r for r in plan(session, sets=FAST + ["refine.accel_sigma=25"])}
    assert [rows[k]["would"] for k in ("triangulate", "refine", "fit")] == ["skip", "run", "skip or run"], rows
    assert rows["refine"]["why"] == "its inputs or settings changed"
    assert rows["fit"]["why"] == "if refine changes what it reads"
    rows = {r["stage"]: r for r in plan(session, sets=FAST, from_stage="retarget")}
    assert rows["fit"]["would"] == "skip" and rows["retarget"]["why"] == "asked for (--from, --overwrite)"
    assert (session / ".mocap" / "state.json").read_bytes() == state  # the settings were not kept either
    assert run(session, sets=FAST, progress=False).ran == []


def test_detect_persons_re_runs_the_stages_that_read_it_when_the_2d_keypoints_were_given(session):
    """The session brings its 2D keypoints (detection not needed): ``detect.persons``, read by rig_refine, sync and
    triangulate to pick one performer or follow several people, was in none of their keys, and changing it re-ran
    nothing (triangulated.h5 kept two people after ``--set detect.persons=1``)."""
    run(session, sets=FAST, progress=False)
    rows = {r["stage"]: r for r in plan(session, sets=FAST + ["detect.persons=2"])}
    assert rows["detect"]["would"] == "not needed"
    assert all(rows[k]["would"] == "run" and rows[k]["why"] == "its inputs or settings changed"
               for k in ("rig_refine", "sync", "triangulate")), rows


def test_the_cli_dry_run_prints_the_plan(session, capsys):
    (session / "export" / "take_mixamo.bvh").unlink(missing_ok=True)
    assert cli(["run", str(session), "--dry-run", "--set", FAST[0]]) == 0
    out = capsys.readouterr().out
    assert "dry run: nothing ran" in out and "an output is missing" in out
    assert not (session / "export" / "take_mixamo.bvh").exists()


def test_a_dry_run_stops_where_a_run_would_with_the_same_message(tmp_path):
    session = synthetic_session(tmp_path / "take")
    (session / "calibration" / "rig.toml").rename(session / "calibration" / "rig.moved")
    with pytest.raises(FileNotFoundError, match="missing calibration: put a rig file in"):
        plan(session, sets=FAST)
    with pytest.raises(FileNotFoundError, match="missing calibration: put a rig file in"):
        run(session, sets=FAST, progress=False)


def test_a_one_off_mode_is_not_kept(session):
    """`mocap calibrate S --intrinsics-only` was kept like a setting: every later plain `mocap run` calibrated
    intrinsics only and failed further on ("rig_refine: input calibration/rig.toml is missing")."""
    from mocap.settings import read_kept

    run(session, sets=FAST + ["calibrate.intrinsics_only=true", "triangulate.max_reproj_px=9"], only=["triangulate"],
        progress=False)
    kept = read_kept(session)
    assert kept["triangulate.max_reproj_px"]["value"] == 9 and "calibrate.intrinsics_only" not in kept, kept


def test_a_kept_relative_path_is_kept_absolute(session, tmp_path, monkeypatch):
    """`mocap retarget S --target configs/rigs/mixamo.toml` kept the path as given; `mocap run S --from retarget`
    from another folder then failed ("retarget: input configs/rigs/mixamo.toml is missing")."""
    from mocap.settings import read_kept

    (tmp_path / "rigs").mkdir()
    rig = tmp_path / "rigs" / "mine.toml"
    rig.write_text("")
    monkeypatch.chdir(tmp_path)
    run(session, sets=FAST + ["retarget.target=rigs/mine.toml", "detect.variant=full"], only=["triangulate"],
        progress=False)
    kept = read_kept(session)
    assert kept["retarget.target"]["value"] == str(rig) and kept["detect.variant"]["value"] == "full"
