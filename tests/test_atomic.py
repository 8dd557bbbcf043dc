"""Atomic writes: the user's umask applies, and parts left by killed processes are cleaned up."""

import os
import stat
import subprocess
import sys
import time

import pytest

from mocap.io import atomic
from mocap.io.atomic import atomic_write, atomic_write_text, part_name, remove_stale_parts


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    assert not atomic.pid_alive(p.pid)
    return p.pid


@pytest.fixture
def umask():
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_get_the_umask_mode(tmp_path, umask, mask, mode):
    umask(mask)
    out = atomic_write_text(tmp_path / "a.json", "{}")
    assert stat.S_IMODE(out.stat().st_mode) == mode
    out = atomic_write(tmp_path / "sub" / "b.bin", lambda p: p.write_bytes(b"x"))  # a writer that truncates
    assert stat.S_IMODE(out.stat().st_mode) == mode
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.json", "b.bin", "sub"]


def test_failed_write_leaves_nothing(tmp_path):
    def fail(p):
        p.write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "x.txt", fail)
    assert list(tmp_path.iterdir()) == []


def test_part_names_carry_the_pid(tmp_path):
    name = part_name(tmp_path / "take.fbx")
    assert name.startswith(f".take.fbx.{os.getpid()}.") and name.endswith(".part")
    assert atomic._PART.match(name)["pid"] == str(os.getpid())
    name = part_name(tmp_path / "cam1_pose2d.mp4", keep_suffix=True)
    assert name.startswith(f".cam1_pose2d.{os.getpid()}.") and name.endswith(".part.mp4")
    assert atomic._PART.match(name)


def test_stale_parts_of_dead_processes_are_removed(tmp_path):
    target = tmp_path / "take.h5"
    old = time.time() - atomic.GRACE_S - 5

    def stale(path, content):
        path.write_bytes(content)
        os.utime(path, (old, old))
        return path

    dead = stale(tmp_path / part_name(target, pid=_dead_pid()), b"half a file")
    dead_video = stale(tmp_path / part_name(tmp_path / "cam1.mp4", pid=_dead_pid(), keep_suffix=True), b"half")
    dead_recent = tmp_path / part_name(target, pid=_dead_pid())  # maybe another machine's pid, still writing
    dead_recent.write_bytes(b"recent")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = stale(tmp_path / part_name(target, pid=sleeper.pid), b"in progress")  # another process
        own = stale(tmp_path / part_name(target), b"in progress")  # this process, e.g. another thread
        legacy_old = tmp_path / ".take.h5.ab_cd123.part"  # tempfile.mkstemp name of earlier versions
        legacy_old.write_bytes(b"old")
        older = time.time() - atomic.LEGACY_MAX_AGE_S - 60
        os.utime(legacy_old, (older, older))
        legacy_new = tmp_path / ".take.h5.zz_yy987.part"
        legacy_new.write_bytes(b"recent")
        unrelated = tmp_path / ".hidden.part.notes"
        unrelated.write_text("mine")

        atomic_write_text(target, "data")
        assert target.read_text() == "data"
        assert not dead.exists() and not dead_video.exists() and not legacy_old.exists()
        assert live.exists() and own.exists() and legacy_new.exists() and unrelated.exists() and dead_recent.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    assert remove_stale_parts(tmp_path) == [live]  # its process is gone now
    os.utime(dead_recent, (old, old))
    assert remove_stale_parts(tmp_path) == [dead_recent]


def test_ctrl_c_as_the_part_is_created_leaves_no_part(tmp_path, monkeypatch):
    """Ctrl-C landing just after the part file exists, before the writer got its name back: the part is removed
    (its name was known before it existed; a SIGINT test under load left `.sync.json.<pid>.part`)."""
    real = atomic._create_part

    def create(path, names):
        real(path, names)
        raise KeyboardInterrupt  # Ctrl-C right then (as Python raises it from its SIGINT handler)

    monkeypatch.setattr(atomic, "_create_part", create)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(tmp_path / "sync.json", "{}")
    assert not list(tmp_path.glob(".*part*")) and not (tmp_path / "sync.json").exists()
