"""GLB (and FBX with ``export.fbx_writer = "blender"``; the default FBX writer is :mod:`mocap.io.fbx`, no
Blender) through Blender's exporters (bpy) in a child process, so bpy's state never touches this
process: an armature with the animation baked on every frame, no leaf bones, frame 1 first.

Starting Blender (importing bpy) costs far more than an export (about 1 s of CPU against 0.06 s for a
100-frame take), so every file of an export run that Blender writes goes to one child
(:func:`blender_export_many`, the exporters' ``write_many``), and ``mocap run`` starts that child ahead
of the export stage, while the stages before it run (:func:`warm`, :mod:`mocap.ahead`): it loads bpy and
waits for its jobs on a pipe (:mod:`mocap.io.blender_serve`). Without a warm child an export starts its
own. Each file is still moved into place atomically, and only once the child said it is done. The child
runs with a fixed hash seed, so that Blender's FBX object ids, and so the files, are the same from run to
run (the FBX creation time aside), whichever child wrote them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from mocap.io.atomic import atomic_write
from mocap.io.blender_serve import DONE, END, FAILED, OWN_TMP, READY, TMP_PREFIX
from mocap.io.capture import write_capture
from mocap.io.exporters import Options, register
from mocap.types import Motion

log = logging.getLogger(__name__)
SERVE = [sys.executable, "-m", "mocap.io.blender_serve"]  # the warm child's command
CLOSE_TIMEOUT_S = 10.0  # for a child told to end (end of input) before it is killed


def _require_bpy(suffix: str) -> None:
    if not bpy_available():
        raise RuntimeError(f"exporting {suffix} needs Blender's Python module: pip install 'mocap[blender]' "
                           "(bpy 5.0.1, Python 3.11)")


def bpy_available() -> bool:
    return importlib.util.find_spec("bpy") is not None


def _env(tmp: str, own: bool = False) -> dict[str, str]:
    """The child's environment: a fixed hash seed (Blender's FBX ids are hashes: the same in every run) and
    ``TMPDIR`` a folder of ours that the parent removes afterwards. Blender makes its session folder
    (``/tmp/blender_XXXXXX``) under it and removes it only on a full exit: the warm child ends with
    ``os._exit`` and a child may be killed, which left one empty folder in /tmp per run. ``own``: the warm
    child removes that folder itself when its input ends (the parent may have been killed outright)."""
    env = dict(os.environ, PYTHONHASHSEED="0", TMPDIR=tmp)
    if own:
        env[OWN_TMP] = tmp
    return env


class Child:
    """One Blender child serving export lists (:mod:`mocap.io.blender_serve`); loads bpy from the start.
    Its own session (a Ctrl-C in the terminal reaches the parent, which ends it: :meth:`close`); its
    stderr in a temporary file (a pipe nobody reads could fill and block it)."""

    def __init__(self, command: list[str] | None = None):
        self._err = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self.tmp = tempfile.mkdtemp(prefix=TMP_PREFIX)  # the child's TMPDIR, removed by close() (and by the child)
        self.started = time.time()
        self.ready_s: float | None = None  # seconds from the start to bpy loaded (once seen)
        try:
            self.proc = subprocess.Popen(command or SERVE, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=self._err, text=True, env=_env(self.tmp, own=True),
                                         start_new_session=True)
        except BaseException:
            self._err.close()
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stderr_tail(self, chars: int = 1500) -> str:
        try:
            self._err.seek(0)
            return self._err.read().decode(errors="replace").strip()[-chars:]
        except (OSError, ValueError):
            return ""

    def export(self, spec: list[dict]) -> tuple[set[int], str | None]:
        """Send one list of jobs; returns the indices of the files written and the error (None: all done)."""
        done: set[int] = set()
        try:
            self.proc.stdin.write(json.dumps(spec) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            return done, f"the Blender child ended (exit status {self.proc.poll()}): {self.stderr_tail()}"
        for line in self.proc.stdout:
            word, _, rest = line.strip().partition(" ")
            if word == READY:
                with contextlib.suppress(ValueError):
                    self.ready_s = float(rest) - self.started
            elif word == DONE and rest.isdigit():
                done.add(int(rest))
            elif word == END:
                return done, None
            elif word == FAILED:
                return done, f"{rest}\n{self.stderr_tail()}"
        self.proc.wait()
        return done, f"the Blender child ended (exit status {self.proc.returncode}): {self.stderr_tail()}"

    def close(self, kill: bool = False) -> None:
        """End the child: end of its input (it finishes the file it writes, then exits), killed after
        :data:`CLOSE_TIMEOUT_S`; ``kill``: at once (an error or a Ctrl-C in the parent)."""
        try:
            if self.proc.stdin and not self.proc.stdin.closed:
                self.proc.stdin.close()
        except OSError:
            pass
        if kill:
            self.proc.kill()
        try:
            self.proc.wait(timeout=CLOSE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log.warning("the Blender child (pid %d) did not end; killing it", self.proc.pid)
            self.proc.kill()
            self.proc.wait()
        finally:
            if self.proc.stdout:
                self.proc.stdout.close()
            self._err.close()
            shutil.rmtree(self.tmp, ignore_errors=True)


_warm: Child | None = None


def warm() -> Child | None:
    """Start the Blender child the next exports will use, if none is running and bpy is installed."""
    global _warm
    if _warm is not None and _warm.alive():
        return _warm
    if _warm is not None:  # ended early: reaped, and its pipes and error file closed, before another starts
        dead, _warm = _warm, None
        log.warning("the Blender child started ahead ended early (%s)", dead.stderr_tail(300))
        dead.close()
    if not bpy_available():
        return None
    _warm = Child()
    log.debug("Blender child started ahead of the export (pid %d)", _warm.pid)
    return _warm


def release() -> None:
    """End the warm child, if any: it has no job (an export takes it), so it is killed at once."""
    global _warm
    child, _warm = _warm, None
    if child is not None:
        log.debug("ending the unused Blender child (pid %d)", child.pid)
        child.close(kill=True)


@contextmanager
def warm_child():
    """A block whose exports use one Blender child started now (:func:`warm`); the child ends with the block,
    at the latest, whether it raises or not, so that no child outlives it."""
    warm()
    try:
        yield
    finally:
        release()


def _take_warm() -> Child | None:
    """The warm child for one export list (it then serves no other: each run's exports are one list)."""
    global _warm
    child, _warm = _warm, None
    if child is not None and not child.alive():
        log.warning("the Blender child started ahead ended early (%s); starting another", child.stderr_tail(300))
        child.close()
        return None
    return child


def blender_export_many(jobs: list[tuple]) -> list[Path]:
    """Write every (motion, path, up) or (motion, path, up, units) through one Blender child (the warm one, if
    started); returns the paths. ``units`` (:data:`mocap.retarget.UNITS`, "m" when not given) is an FBX
    file's, written as the native writer does (lengths in the unit, ``UnitScaleFactor`` in centimetres per
    unit); glTF is in metres by its specification. Files the child finished are in place even when a later one
    failed (which then raises, naming the files missing)."""
    if not jobs:
        return []
    for _, path, *_ in jobs:
        _require_bpy(Path(path).suffix)
    scales = [_unit_scale(job[3] if len(job) > 3 else "m") for job in jobs]
    with tempfile.TemporaryDirectory() as tmp:
        spec = []
        for i, (motion, path, up, *_) in enumerate(jobs):
            cap = write_capture(Path(tmp) / f"motion{i}.npz", motion)
            # exporters insist on the extension; the temporary folder may be on another file system
            spec.append({"capture": str(cap), "out": str(Path(tmp) / f"out{i}{Path(path).suffix}"), "up": up,
                         "name": "Armature",  # as the native FBX writer's (it was the temporary file's, out3)
                         "scale": scales[i]})
        child = _take_warm()
        t0 = time.time()
        if child is not None:
            try:
                done, error = child.export(spec)
            except BaseException:
                child.close(kill=True)
                raise
            child.close(kill=error is not None)
            waited = max(0.0, child.started + (child.ready_s or 0.0) - t0)
            log.info("Blender export of %d files in %.2f s by the child started ahead (%.2f s of its start-up "
                     "waited for)", len(jobs), time.time() - t0, waited)
        else:
            done, error = _one_shot(spec, Path(tmp))
            log.info("Blender export of %d files in %.2f s (Blender started for it)", len(jobs), time.time() - t0)
        missing = []
        for i, (_, path, *_) in enumerate(jobs):
            target = Path(spec[i]["out"])
            if i in done and target.is_file():
                atomic_write(Path(path), lambda part, target=target: shutil.move(target, part))
            else:
                missing.append(Path(path).name)
        if missing:
            raise RuntimeError(f"Blender export of {', '.join(missing)} failed: {(error or '').strip()[-1500:]}")
    return [Path(path) for _, path, *_ in jobs]


def _unit_scale(units: str) -> float:
    from mocap.retarget import UNITS

    if units not in UNITS:
        raise ValueError(f"export: units must be one of {', '.join(UNITS)}, got {units!r}")
    return float(UNITS[units])


def _one_shot(spec: list[dict], tmp: Path) -> tuple[set[int], str]:
    listing = tmp / "jobs.json"
    listing.write_text(json.dumps(spec))
    (tmp / "tmp").mkdir()  # the child's TMPDIR, inside the export's temporary folder that is removed after
    r = subprocess.run([sys.executable, "-m", "blender_addon.headless", "export-many", str(listing)],
                       capture_output=True, text=True, env=_env(str(tmp / "tmp")))
    done = {int(line.split()[1]) for line in r.stdout.splitlines()
            if line.startswith(DONE + " ") and line.split()[1].isdigit()}
    return done, r.stderr


def blender_export(motion: Motion, path: Path, up: str = "y", units: str = "m") -> Path:
    return blender_export_many([(motion, Path(path), up, units)])[0]


def write_many(jobs: list[tuple[Motion, dict, Path, Options]]) -> list[Path]:
    """The GLB files of a run and its FBX files for Blender, any mix, in one Blender child."""
    return blender_export_many([(motion, Path(path), opt.up, opt.units) for motion, _, path, opt in jobs])


@register("glb", ".glb", "glTF binary with the armature and baked animation (Blender's glTF exporter)", write_many,
          takes_absent=True)
def glb(motion: Motion, extra: dict, path: Path, opt: Options) -> Path:
    return blender_export(motion, path, opt.up)


def needs_blender(formats, fbx_writer: str = "native") -> bool:
    """Whether any of these export formats is written through Blender (FBX: with ``fbx_writer`` "blender")."""
    from mocap.io import exporters

    options = Options(fbx_writer=fbx_writer)
    return any(exporters.get(f).write_many is write_many and exporters.get(f).goes_to_many(options) for f in formats)
