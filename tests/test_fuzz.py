"""Issue 13: malformed inputs through the command line (in-process), on a copy of a session that has every
output. For each case (tests/fuzz_cases.py): no exception escapes ``mocap`` (that would be a traceback for
the user), no hang, the return code is 2 with an ``error:`` line naming the file (and the key / camera /
line where the case has one) — or 0 where the input is tolerated —, nothing is written outside the session
folder, and every output that existed before the failing command is byte-identical after it."""

from __future__ import annotations

import hashlib
import resource
import shutil
import signal
import traceback
from pathlib import Path

import pytest
from fuzz_cases import CASES, Ctx, bvh_text, rig, run, to_json, write_qca

from mocap.cli import main as cli

HANG_S = 60
MEMORY = 8 << 30  # bytes of address space a command may use
OUTPUTS = ("points3d", "motion", "export", "report", "pose2d.h5", "pose2d", "sync.json", "calibration")


class Hang(BaseException):  # not an Exception: nothing in the library may swallow it
    pass


def _alarm(signum, frame):
    raise Hang(f"no answer after {HANG_S} s")


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A small synthetic session run once through the whole pipeline (every output present)."""
    from pipeline_synth import synthetic_session

    from mocap.pipeline import run as run_pipeline

    root = tmp_path_factory.mktemp("fuzz_base")
    s = synthetic_session(root / "take")
    run_pipeline(s, sets=["export.formats=['bvh','trc']", "report.overlay_videos=false"], progress=False)
    return s, bvh_text(root)


def _hashes(root: Path, names=OUTPUTS) -> dict[str, str]:
    out = {}
    for n in names:
        p = root / n
        files = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p] if p.is_file() else []
        for q in files:
            out[str(q.relative_to(root))] = hashlib.sha256(q.read_bytes()).hexdigest()
    return out


def _listing(root: Path, skip: Path) -> dict[str, str]:
    out = {}
    for q in root.rglob("*"):
        if q == skip or skip in q.parents:
            continue
        out[str(q.relative_to(root))] = (hashlib.sha256(q.read_bytes()).hexdigest() if q.is_file() and not
                                         q.is_symlink() else "dir" if q.is_dir() else "other")
    return out


def _new_session(base, tmp_path) -> Ctx:
    src, bvh = base
    s = tmp_path / "a" / "b" / src.name  # deep enough that ../../x from motion/ stays under tmp_path
    shutil.copytree(src, s)
    w = tmp_path / "scratch"
    w.mkdir()
    return Ctx(s, w, bvh)


def _call(argv: list[str]) -> tuple[int | None, str | None]:
    """(return code, traceback text or None); a hang fails the test."""
    old = signal.signal(signal.SIGALRM, _alarm)
    limits = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, limits[1]))  # a huge allocation fails here, not the machine
    signal.alarm(HANG_S)
    try:
        return cli(argv), None
    except SystemExit as e:  # argparse: usage line and "error: ..." on stderr, status 2
        return (e.code if isinstance(e.code, int) else 1), None
    except Hang:
        pytest.fail(f"hang: `mocap {' '.join(argv)}` did not return within {HANG_S} s")
    except BaseException:  # noqa: BLE001 - anything escaping cli is a traceback for the user
        return None, traceback.format_exc()
    finally:
        signal.alarm(0)
        resource.setrlimit(resource.RLIMIT_AS, limits)
        signal.signal(signal.SIGALRM, old)


def _params():
    out = []
    for c in CASES:
        marks = []
        if c.xfail:
            marks.append(pytest.mark.xfail(strict=True, reason=c.xfail))
        if c.slow:
            marks.append(pytest.mark.slow)
        out.append(pytest.param(c, id=c.id, marks=marks))
    return out


def test_case_ids_are_unique_and_plenty():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 90


@pytest.mark.slow
@pytest.mark.parametrize("c", _params())
def test_malformed_input(c, base, tmp_path, monkeypatch, capsys):
    ctx = _new_session(base, tmp_path)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)  # a relative path written by mistake lands here, and is seen
    argv = c.make(ctx)
    capsys.readouterr()
    before = _hashes(ctx.s)
    outside = _listing(tmp_path, ctx.s)
    rc, tb = _call(argv)
    out, err = capsys.readouterr()
    command = "mocap " + " ".join(argv)
    assert tb is None, f"traceback from `{command}`:\n{tb}\nstderr:\n{err}"
    assert rc == c.rc, f"`{command}` returned {rc}, expected {c.rc}\nstdout:\n{out[-2000:]}\nstderr:\n{err[-3000:]}"
    if c.rc == 2:
        assert "error:" in err, f"`{command}`: no error line\nstderr:\n{err[-3000:]}"
        lines = [ln for ln in err.splitlines() if ln.startswith("error:") or ": error:" in ln]
        assert lines, f"`{command}`: no error line\nstderr:\n{err[-3000:]}"
        message = lines[-1]
        missing = [n for n in c.names if n not in message]
        assert not missing, f"`{command}`: the error does not name {missing}:\n{message}"
    new = {k: v for k, v in _listing(tmp_path, ctx.s).items() if outside.get(k) != v}
    assert not new, f"`{command}` wrote outside the session: {sorted(new)}"
    if c.keep:
        after = _hashes(ctx.s)
        changed = sorted(k for k in before if after.get(k) != before[k])
        assert not changed, f"`{command}` changed or removed earlier outputs: {changed}\nstderr:\n{err[-2000:]}"
    if c.check:
        c.check(ctx, err)


# ----- the valid variants the cases corrupt are valid ----------------------------------------------------------

def test_baselines_are_valid(base, tmp_path):
    """Each format the cases corrupt reads back as the session's rig / keypoints before corruption, so a
    case fails because of its corruption, not because the baseline was already unreadable."""
    from mocap.io.rig_files import read_rig
    from mocap.session import Session

    ctx = _new_session(base, tmp_path)
    ref = read_rig(rig(ctx))
    for kind in ("anipose", "pose2sim", "yml", "qca"):
        from fuzz_cases import _as_format

        c = _new_session(base, tmp_path / kind)
        path = _as_format(c, kind)
        got = read_rig(path)
        assert got.names == ref.names, kind
        assert Session(c.s).rig_path() == path
    write_qca(ref, tmp_path / "x.qca.txt")
    c = _new_session(base, tmp_path / "json")
    to_json(c)
    s = Session(c.s)
    assert s.keypoints2d().shape[:2] == (120, 4)


def test_untouched_session_is_up_to_date(base, tmp_path):
    """The copy the cases start from is complete: a plain run does nothing and changes nothing."""
    ctx = _new_session(base, tmp_path)
    before = _hashes(ctx.s)
    rc, tb = _call(run(ctx))
    assert tb is None and rc == 0, tb
    assert _hashes(ctx.s) == before
