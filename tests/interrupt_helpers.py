"""Harness of tests/test_interrupt.py: running ``mocap run`` in a child process, checking that every file
of a session is whole, comparing two sessions (timings aside)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import h5py
import numpy as np
import pytest


def sigint_default() -> None:
    """``preexec_fn`` for a child that a test interrupts with SIGINT: Ctrl-C's default disposition. A shell
    without job control (``cmd &`` in a script, ``nohup``) starts its children with SIGINT ignored, and Python
    then never raises KeyboardInterrupt: the test would wait on a child that cannot be interrupted."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)

REPO = Path(__file__).resolve().parents[1]
SETS = ["export.formats=['bvh','trc']", "report.overlay_videos=false"]  # no Blender, no videos
STAGES = ("rig_refine", "sync", "triangulate", "refine", "fit", "retarget", "export", "report")
NAME = "take"
RUN_TIMEOUT_S = 120.0  # a run (or a wait for a stage) longer than this is a hang
EXIT_TIMEOUT_S = 60.0  # after the signal
POLL_S = 0.005
ATTEMPTS = 4  # per stage: a stage that ended before the signal landed is tried again with --from


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in [env.get("PYTHONPATH")] if p])
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[k] = "1"  # the same in every run (and lighter on a shared machine)
    env.pop("MOCAP_SHARED_DATA", None)
    return env


def _command(extra: list[str] = ()) -> list[str]:
    cmd = [sys.executable, "-m", "mocap", "run", NAME]
    for s in SETS:
        cmd += ["--set", s]
    return cmd + list(extra)


class Run:
    """``python -m mocap ...`` in the session's parent folder (so that every run's command line, which
    the session keeps, is the same), its stdout and stderr in files (a pipe could fill and block it)."""

    def __init__(self, root: Path, cmd: list[str], tag: str):
        self.root = root
        logs = root.parent / "test-logs"
        logs.mkdir(exist_ok=True)
        self.out_path, self.err_path = logs / f"{tag}.out", logs / f"{tag}.err"
        self._out, self._err = self.out_path.open("wb"), self.err_path.open("wb")
        self.proc = subprocess.Popen(cmd, cwd=root.parent, env=_env(), stdout=self._out, stderr=self._err,
                                     stdin=subprocess.DEVNULL, preexec_fn=sigint_default)
        self.started = time.monotonic()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace")

    def wait(self, timeout: float) -> int:
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"hang: `{' '.join(self.proc.args)}` still running after {timeout:.0f} s\n{self.stderr()}")
        self._out.close()
        self._err.close()
        return rc

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(10)
        self._out.close()
        self._err.close()

    def wait_for_stage(self, stage: str) -> bool:
        """Until the run logs that it started ``stage`` (True) or ends (False)."""
        pattern = re.compile(rf"INFO mocap\.pipeline: stage {stage}: (running|resuming)")
        while True:
            if pattern.search(self.stderr()):
                return True
            if self.proc.poll() is not None:
                return False
            if time.monotonic() - self.started > RUN_TIMEOUT_S:
                self.kill()
                pytest.fail(f"hang: stage {stage} did not start within {RUN_TIMEOUT_S:.0f} s\n{self.stderr()}")
            time.sleep(POLL_S)


# ----- files ------------------------------------------------------------------------------------------

def _is_part(p: Path) -> bool:
    return p.name.startswith(".") and ".part" in p.name


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def _read_h5(p: Path) -> None:
    with h5py.File(p, "r") as f:
        dict(f.attrs)

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                obj[()]
            dict(obj.attrs)

        f.visititems(visit)


def check_intact(root: Path) -> list[Path]:
    """Every file of the session reads whole; returns the ``.part`` files (not read)."""
    from mocap.io.bvh import read_bvh
    from mocap.io.trc import read_trc

    parts = []
    for p in _files(root):
        rel = p.relative_to(root)
        if _is_part(p):
            parts.append(rel)
            continue
        try:
            if p.suffix == ".h5":
                _read_h5(p)
            elif p.suffix == ".npz":
                with np.load(p, allow_pickle=False) as z:
                    for k in z.files:
                        z[k]
            elif p.suffix == ".json":
                json.loads(p.read_text())
            elif p.suffix == ".toml":
                tomllib.loads(p.read_text())
            elif p.suffix == ".bvh":
                read_bvh(p)
            elif p.suffix == ".trc":
                read_trc(p)
            elif p.suffix == ".html":
                assert p.read_text().rstrip().endswith("</html>"), "incomplete html"
        except Exception as e:  # any failure to read is the finding
            pytest.fail(f"corrupted file {rel}: {type(e).__name__}: {e}")
    return parts


def check_lock_free(root: Path) -> None:
    """The lock a dead or interrupted run held does not block the next command."""
    from mocap.pipeline import session_lock
    from mocap.session import Session

    with session_lock(Session(root), "test_interrupt: lock check"):
        pass


def _drop(obj, key: str):
    if isinstance(obj, dict):
        return {k: _drop(v, key) for k, v in obj.items() if k != key}
    if isinstance(obj, list):
        return [_drop(v, key) for v in obj]
    return obj


def _attr(v):
    if isinstance(v, bytes):
        v = v.decode()
    if isinstance(v, str) and v[:1] in "{[":
        try:
            return _drop(json.loads(v), "seconds")
        except json.JSONDecodeError:
            return v
    return np.asarray(v).tolist()


def _h5_differences(a: Path, b: Path) -> list[str]:
    """Datasets and attributes (JSON attributes without their ``seconds`` fields) of two HDF5 files."""
    out = []
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        def attrs(x, y, name):
            if set(x.attrs) != set(y.attrs):
                out.append(f"{name}: attributes {sorted(x.attrs)} != {sorted(y.attrs)}")
            for k in set(x.attrs) & set(y.attrs):
                if _attr(x.attrs[k]) != _attr(y.attrs[k]):
                    out.append(f"{name}: attribute {k} differs")

        names_a, names_b = [], []
        fa.visit(names_a.append)
        fb.visit(names_b.append)
        if names_a != names_b:
            return [f"objects {names_a} != {names_b}"]
        attrs(fa, fb, "/")
        for n in names_a:
            x, y = fa[n], fb[n]
            attrs(x, y, n)
            if isinstance(x, h5py.Dataset):
                u, v = x[()], y[()]
                if u.dtype != v.dtype or u.shape != v.shape or not np.array_equal(
                        u, v, equal_nan=u.dtype.kind in "fc"):
                    out.append(f"dataset {n} differs")
                elif x.compression != y.compression or x.chunks != y.chunks:
                    out.append(f"dataset {n}: storage differs")
    return out


_TIMINGS = re.compile(r"<h2>Stage timings</h2><table>.*?</table>", re.S)


def _without_timings(html: str) -> str:
    return _TIMINGS.sub(lambda m: re.sub(r"<td>[0-9.]+ s</td>", "<td>- s</td>", m[0]), html)


def compare_sessions(ref: Path, got: Path, retried: bool) -> tuple[list[str], list[str]]:
    """(differences, files that were equal only after removing times) between two sessions."""
    def skip(rel: Path) -> bool:  # parts of killed runs are checked on their own
        return rel.parts[0] == "logs" or rel == Path(".mocap/lock") or _is_part(rel)

    fa = {p.relative_to(ref) for p in _files(ref) if not skip(p.relative_to(ref))}
    fb = {p.relative_to(got) for p in _files(got) if not skip(p.relative_to(got))}
    diffs = [f"only in the uninterrupted run: {sorted(map(str, fa - fb))}"] if fa - fb else []
    diffs += [f"only in the interrupted one: {sorted(map(str, fb - fa))}"] if fb - fa else []
    relaxed = []
    for rel in sorted(fa & fb):
        a, b = (ref / rel).read_bytes(), (got / rel).read_bytes()
        if a == b:
            continue
        name = str(rel)
        if name == ".mocap/state.json":
            continue  # below, once the relaxed files are known
        if name == ".mocap/settings.json" and retried:
            va = {k: v["value"] for k, v in json.loads(a).items()}
            vb = {k: v["value"] for k, v in json.loads(b).items()}
            if va != vb:
                diffs.append(f"{name}: {va} != {vb}")
        elif name == "report/metrics.json":
            ma, mb = json.loads(a), json.loads(b)
            if set(ma.get("timings_s", {})) != set(mb.get("timings_s", {})):
                diffs.append(f"{name}: timings of {sorted(ma['timings_s'])} != {sorted(mb['timings_s'])}")
            ma.pop("timings_s", None)
            mb.pop("timings_s", None)
            if ma != mb:
                diffs.append(f"{name}: differs (timings aside): " + ", ".join(k for k in ma if ma[k] != mb.get(k)))
        elif name == "report/report.html":
            if _without_timings(a.decode()) != _without_timings(b.decode()):
                diffs.append(f"{name}: differs (stage timings aside)")
        elif rel.suffix == ".h5":
            d = _h5_differences(ref / rel, got / rel)
            if d:
                diffs.append(f"{name}: " + "; ".join(d))
            else:
                relaxed.append(name)
        else:
            diffs.append(f"{name}: bytes differ ({len(a)} vs {len(b)} bytes)")
    diffs += _state_differences(ref, got, relaxed)
    return diffs, relaxed


def _state_differences(ref: Path, got: Path, relaxed: list[str]) -> list[str]:
    """The same stages, all done, with the same fingerprints, except that a fingerprint covers its
    inputs' bytes: a stage reading a file that differs only by an embedded time has another."""
    from mocap import stages as registry
    from mocap.session import Session
    from mocap.settings import load_config

    sa, sb = (json.loads((r / ".mocap" / "state.json").read_text()) for r in (ref, got))
    if {k: v.get("status") for k, v in sa.items()} != {k: v.get("status") for k, v in sb.items()}:
        return [f".mocap/state.json: stages {sa} != {sb}"]
    s = Session(got)
    settings = load_config(s)[0]
    out = []
    for stage in sa:
        if sa[stage].get("key") != sb[stage].get("key"):
            paths = registry.get(stage).inputs(s, settings)
            inputs = {os.path.relpath(Path(p).resolve(), got.resolve()) for p in paths}
            if not inputs & set(relaxed):
                out.append(f".mocap/state.json: the fingerprint of {stage} differs (its inputs: {sorted(inputs)})")
            else:
                relaxed.append(f".mocap/state.json[{stage}].key")
    return out
