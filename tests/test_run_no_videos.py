"""``mocap run SESSION --no-videos`` (as ``mocap report --no-videos``) is the key report.overlay_videos=false; it
was refused by the run command ("unrecognized arguments: --no-videos")."""

from pipeline_synth import synthetic_session

from mocap.cli import build_parser, main
from mocap.settings import load_config


def test_run_takes_no_videos_as_its_key(tmp_path, capsys):
    args = build_parser().parse_args(["run", str(tmp_path), "--no-videos"])
    assert args.no_videos and not build_parser().parse_args(["run", str(tmp_path)]).no_videos
    root = synthetic_session(tmp_path / "take", frames=40)
    (root / "videos").mkdir(exist_ok=True)
    assert main(["run", str(root), "--no-videos", "--set", "export.formats=['bvh']"]) == 0
    assert "report: " in capsys.readouterr().out
    assert load_config(root)[0].report.overlay_videos is False  # kept, as a --set would be
    assert not (root / "review").exists()


def test_load_config_of_a_folder_reads_its_settings(tmp_path):
    """A session given as its folder (a Path: whose ``.root`` is "/") has its mocap.toml and kept settings read
    (``mocap bench e2e`` read its copy's settings this way and got the defaults)."""
    from mocap.session import Session
    from mocap.settings import keep

    (tmp_path / "mocap.toml").write_text("[refine]\naccel_sigma = 21.0\n")
    keep(tmp_path, [("report.overlay_videos=false", "mocap run")])
    for session in (tmp_path, str(tmp_path), Session(tmp_path)):
        cfg = load_config(session)[0]
        assert cfg.refine.solver.accel_sigma == 21.0 and cfg.report.overlay_videos is False, session
