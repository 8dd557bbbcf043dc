"""The rendered-take benchmarks (``mocap bench e2e`` / ``people-e2e``) copy the session before running it:
a session that is no rendered take is refused before anything is copied, and ``--work`` never removes the
session itself, a folder around it, or an unrelated folder."""

from pathlib import Path

import pytest

from mocap.bench.e2e import working_copy
from mocap.cli import main


def _session(root: Path, truth: bool) -> Path:
    s = root / "take"
    (s / "videos").mkdir(parents=True)
    (s / "videos" / "cam01.mp4").write_bytes(b"not a video")
    if truth:
        (s / "groundtruth").mkdir()
        (s / "groundtruth" / "points3d.h5").write_bytes(b"x")
    return s


def test_real_take_refused_before_copying(tmp_path, capsys):
    s = _session(tmp_path, truth=False)
    work = tmp_path / "w"
    assert main(["bench", "people-e2e", str(s), "--work", str(work)]) == 2
    err = capsys.readouterr().err
    assert "is not a rendered take" in err and "groundtruth/points3d.h5" in err and "synth render" in err
    assert not work.exists()  # nothing copied
    with pytest.raises(FileNotFoundError, match="not a rendered take"):
        working_copy(s, None, "_e2e", truth=True)
    assert not (tmp_path / "take_e2e").exists()


def test_work_never_the_session_or_around_it(tmp_path):
    s = _session(tmp_path, truth=True)
    for work in (s, s / "inside", tmp_path):
        with pytest.raises(ValueError, match="choose a folder outside it"):
            working_copy(s, work, "_e2e", truth=True)
    assert (s / "videos" / "cam01.mp4").read_bytes() == b"not a video"
    assert (s / "groundtruth" / "points3d.h5").is_file()


def test_work_unrelated_folder_kept(tmp_path):
    s = _session(tmp_path, truth=True)
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a session"):
        working_copy(s, other, "_e2e", truth=True)
    assert (other / "notes.txt").read_text() == "keep me"


def test_work_earlier_copy_replaced(tmp_path):
    s = _session(tmp_path, truth=True)
    first = working_copy(s, None, "_e2e", truth=True)
    assert first == tmp_path / "take_e2e" and (first / "groundtruth" / "points3d.h5").is_file()
    (first / ".mocap").mkdir()
    (first / "stale.txt").write_text("old run")
    again = working_copy(s, None, "_e2e", truth=True)
    assert again == first and not (again / "stale.txt").exists() and (again / "videos" / "cam01.mp4").is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (working_copy(s, empty, "_e2e") / "videos").is_dir()


def test_bench_e2e_on_the_embedded_sample_runs_in_the_current_folder(tmp_path, monkeypatch):
    """Without --session the embedded sample was copied beside itself, into the installed package
    (mocap/samples/rendered_e2e: a read-only site-packages fails, an editable checkout gets an untracked folder)."""
    import mocap
    from mocap.cli.products import e2e_folders
    from mocap.demo import SAMPLE

    if not (SAMPLE / "calibration").is_dir():
        pytest.skip("no embedded sample")
    monkeypatch.chdir(tmp_path)
    session, work = e2e_folders(None, None)
    assert session == SAMPLE and work == tmp_path / "bench_e2e"
    assert Path(mocap.__file__).parent not in work.parents
    assert e2e_folders(None, tmp_path / "w") == (SAMPLE, tmp_path / "w")
    assert e2e_folders(tmp_path / "s", None) == (tmp_path / "s", None)
