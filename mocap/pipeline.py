"""``mocap run`` and the stage commands: the stages of :mod:`mocap.stages`, in order, cached.

A stage runs when its inputs or its settings changed since its last complete run (fingerprints in
``SESSION/.mocap/state.json``), when its outputs are missing, or from ``--from STAGE`` on; otherwise
it is skipped. ``mocap triangulate SESSION`` and the other stage commands go through the same
runner, so an output a stage command made under other settings is never taken for current. Stages
write their outputs atomically, so an interrupted run leaves no half-written file; detection also
resumes camera by camera. One command at a time works on a session (a lock names who holds it).
Each run logs to ``SESSION/logs/`` (failures included) and saves the resolved configuration as
``SESSION/config.resolved.toml``. Settings: see :mod:`mocap.settings`.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from mocap import blas_threads
from mocap import stages as registry
from mocap.ahead import Ahead
from mocap.io.atomic import atomic_write_text
from mocap.pipeline_state import _fingerprint, _key, _save_state, load_state, settings_digest, why_run  # noqa: F401
from mocap.run_log import log_to_file
from mocap.session import Session
from mocap.session_checks import forget_said
from mocap.settings import Settings, keep, load_config, parse_set, sources, to_toml
from mocap.settings import resolve as resolve_settings
from mocap.stage_code import code_digest
from mocap.warm import WarmUp, first_uses, import_early

log = logging.getLogger(__name__)
# the stages after this one run every OpenBLAS at one thread: more only spin between their calls (mocap.blas_threads)
ONE_BLAS_THREAD_AFTER = "detect"
PipelineConfig = Settings  # the name this class had before the stage contract
__all__ = ["run", "run_stages", "load_config", "parse_set", "PipelineConfig", "Settings", "RunResult"]


def __getattr__(name: str):
    if name == "STAGES":
        return registry.names()
    raise AttributeError(name)


@dataclass
class RunResult:
    session: Path
    status: dict[str, str] = field(default_factory=dict)  # ran | skipped | not needed (reason)
    why: dict[str, str] = field(default_factory=dict)  # why each stage that ran had to run
    timings: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds of this process and its ended children
    # of which its ended children (a Blender child; detection's pool workers, which end in the background and
    # are mostly reaped during the stage after it: mocap bench after gives their CPU back to detection)
    cpu_children: dict[str, float] = field(default_factory=dict)
    finished_at: dict[str, float] = field(default_factory=dict)  # time.perf_counter() as each stage was done
    outputs: dict[str, list[str]] = field(default_factory=dict)
    metrics: dict | None = None
    log_file: Path | None = None
    settings: object = None  # the resolved settings the stages ran with

    @property
    def ran(self) -> list[str]:
        return [k for k, v in self.status.items() if v == "ran"]


# ----- fingerprints and state: mocap.pipeline_state ------------------------------------------------


# ----- one command per session at a time ----------------------------------------------------------

@contextmanager
def session_lock(s: Session, command: str):
    """Hold ``SESSION/.mocap/lock`` for the duration; a second command is told who holds it."""
    import fcntl

    path = s.root / ".mocap" / "lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "another process"
            raise RuntimeError(f"session {s.root} is busy: {holder}; wait for it to finish (or stop it) and "
                               "run this again") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"`{command}` (pid {os.getpid()}, started {datetime.now():%Y-%m-%d %H:%M:%S})".encode(), 0)
        _remove_dead_parts(s.root)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _remove_dead_parts(root: Path) -> None:
    """Every writer in a session holds its lock, so with the lock taken, a temporary ``.*.part`` file
    left in the session is a killed command's: remove it (otherwise a folder nobody writes to again
    would keep it forever)."""
    for part in root.rglob(".*.part"):
        if part.is_file():
            log.debug("removing %s, left by a command that was killed", part)
            part.unlink(missing_ok=True)


@contextmanager
def _ctrl_c_never_lost():
    """A Ctrl-C whose KeyboardInterrupt is raised inside a callback Python cannot propagate from (a weakref finaliser,
    e.g. h5py freeing an object) is printed as "Exception ignored" and lost: noted in a flag too, checked next."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    state = {"hit": False}
    previous_hook = sys.unraisablehook

    def on_sigint(signum, frame):
        state["hit"] = True
        raise KeyboardInterrupt

    def unraisable(info):
        if info.exc_type is KeyboardInterrupt:
            state["hit"] = True
            return
        previous_hook(info)

    previous = signal.signal(signal.SIGINT, on_sigint)
    sys.unraisablehook = unraisable
    _interrupt_flags.append(state)
    try:
        yield
    finally:
        _interrupt_flags.remove(state)
        sys.unraisablehook = previous_hook
        signal.signal(signal.SIGINT, previous)


_interrupt_flags: list[dict] = []


def _check_interrupt() -> None:
    if any(f["hit"] for f in _interrupt_flags):
        raise KeyboardInterrupt


def _ctrl_c_in(e: BaseException | None) -> bool:
    """Whether a KeyboardInterrupt caused the error ``e`` (its causes and contexts), or a Ctrl-C was noted."""
    while e is not None and not isinstance(e, KeyboardInterrupt):
        e = e.__cause__ or e.__context__
    return e is not None or any(f["hit"] for f in _interrupt_flags)


INTERRUPTED = "interrupted during %s; nothing half-written is left behind: run the same command again to resume"


# ----- the runner ---------------------------------------------------------------------------------

def _producers(s: Session, settings) -> dict[Path, str]:
    out = {}
    for m in registry.stages():
        try:
            for p in m.outputs(s, settings):
                out.setdefault(Path(p), m.NAME)
        except (FileNotFoundError, ValueError):
            continue
    return out


def _check_inputs(module, s: Session, settings, inputs: list[Path]) -> None:
    missing = [p for p in inputs if not Path(p).exists()]
    if not missing:
        return
    made_by = _producers(s, settings)
    p = missing[0]
    maker = made_by.get(Path(p))
    hint = (f"; the {maker} stage makes it: run `mocap {maker} {s.root}` or `mocap run {s.root}`" if maker
            else getattr(module, "missing_hint", lambda *a: "")(s, Path(p), settings))
    raise FileNotFoundError(f"{module.NAME}: input {p} is missing{hint}")


def _command_line() -> str:
    return " ".join(["mocap"] + sys.argv[1:]) if sys.argv and sys.argv[0].endswith("mocap") else "mocap (Python)"


def run_stages(session: str | Path | Session, settings=None, *, only: list[str] | None = None,
               from_stage: str | None = None, force: bool = False, progress: bool = True,
               command: str | None = None) -> RunResult:
    """Run (or skip) the stages of a session: all of them, or ``only`` those named (stage commands).
    ``force`` redoes the named stages even when they are up to date."""
    s = session if isinstance(session, Session) else Session(Path(session))
    settings = settings if settings is not None else load_config(s)[0]
    names = registry.names()
    for n in list(only or []) + ([from_stage] if from_stage else []):
        if n not in names:
            raise ValueError(f"unknown stage {n!r} (stages: {', '.join(names)})")
    first_forced = names.index(from_stage) if from_stage else len(names)
    result = RunResult(s.root, settings=settings)
    with session_lock(s, command or _command_line()), _ctrl_c_never_lost():
        handler = log_to_file(s.root)
        result.log_file = Path(handler.baseFilename)
        state = _State(s, load_state(s))
        from tqdm import tqdm

        todo = [m for m in registry.stages() if only is None or m.NAME in only]
        if any(m.NAME == "detect" for m in todo):  # a detection to run here: its workers' fork server imports
            from mocap.detect.pool import warm_for  # during the run's set-up (the stage's own call finds it running)

            warm_for(s.pose2d_h5)
        bar = tqdm(todo, desc="pipeline", unit="stage", disable=None if progress and len(todo) > 1 else True)
        current, ahead, small, one_thread = "the run's set-up", None, ExitStack(), False
        try:
            # the Blender child, the overlay videos; the later stages' imports on detection's free core
            ahead = _RunAhead(s, settings, [m.NAME for m in todo])
            atomic_write_text(s.root / "config.resolved.toml", to_toml(settings))
            for module in bar:
                current = module.NAME
                bar.set_postfix_str(module.NAME)
                if not one_thread and names.index(module.NAME) > names.index(ONE_BLAS_THREAD_AFTER):
                    small.enter_context(blas_threads.limited(1))  # given back when the run ends
                    one_thread = True
                _one_stage(module, s, settings, state, result,
                           forced=force or names.index(module.NAME) >= first_forced)
                result.finished_at[module.NAME] = time.perf_counter()
                current = f"the work started ahead after {module.NAME}"  # the Blender child, the overlays
                ahead.after(module.NAME, result.status[module.NAME])
            current = "the overlay videos"
            ahead.close(failed=False)
            ahead.warm.join()
        except Exception as e:  # a Ctrl-C wrapped in another error (CPython 3.11 wraps one raised while a class
            if ahead is not None:  # is made, e.g. during an import: "Error calling __set_name__") is a Ctrl-C
                ahead.close(failed=True)
            if not _ctrl_c_in(e):
                log.error("%s failed: %s", f"stage {current}" if current in names else current, e)
                raise
            log.warning(INTERRUPTED, current)
            raise KeyboardInterrupt from e
        except KeyboardInterrupt:
            if ahead is not None:
                ahead.close(failed=True)
            log.warning(INTERRUPTED, current)
            raise
        finally:
            small.close()
            _flush(state)  # the last stage's record (also after an error or a Ctrl-C in a later stage's checks)
            bar.close()
            for name in ("mocap", "calibration"):
                logging.getLogger(name).removeHandler(handler)
            handler.close()
    return result


class _RunAhead(Ahead):
    """:class:`mocap.ahead.Ahead`, and once detection leaves a core free (its last chunks), the modules the
    stages after it import on first use are imported there (:mod:`mocap.warm`), off the run's critical path."""

    def __init__(self, *args):
        super().__init__(*args)
        import_early(self.names, several_people=self.settings.detect.persons != 1)
        self.warm = WarmUp(calls=first_uses(self.settings, self.names))

    def core_free(self) -> None:
        super().core_free()
        self.warm.start()


class _State(dict):
    """``state.json``'s content, and when to write it. A stage's "started" record is written before it runs
    (with every record not written yet); its "done" record then, or at the end of the run (an error and a
    Ctrl-C included): one write per stage instead of two (each replaces the file: 0.5-4 ms on a busy disk). A
    stage that resumes (detection) has its "done" written at once. Only a process killed outright between a
    stage's end and the next one's start (the checks of the stages skipped in between: milliseconds) loses that
    stage's record, and the next run redoes it."""

    def __init__(self, s: Session, state: dict):
        super().__init__(state)
        self.session, self.pending = s, False

    def save(self) -> None:
        _save_state(self.session, self)
        self.pending = False

    def flush(self) -> None:
        if self.pending:
            self.save()


def _flush(state: _State) -> None:
    """:meth:`_State.flush` at the end of a run; while an error or a Ctrl-C ends it, a failed write is logged
    and that error is the one raised."""
    unwinding = sys.exc_info()[1] is not None
    try:
        state.flush()
    except OSError as e:
        if not unwinding:
            raise
        log.error("the run's state could not be written (%s): its last stages will run again", e)


def _save(s: Session, state: dict, later: bool = False) -> None:
    """Write ``state`` now, or (a :class:`_State`, ``later``) with its next write."""
    if not isinstance(state, _State):
        _save_state(s, state)
    elif later:
        state.pending = True
    else:
        state.save()


def _one_stage(module, s: Session, settings, state: dict, result: RunResult, forced: bool) -> None:
    _check_interrupt()
    name = module.NAME
    needed = getattr(module, "needed", None)
    reason = needed(s, settings) if needed else None
    if reason:
        result.status[name], result.timings[name] = f"not needed ({reason})", 0.0
        return
    inputs = module.inputs(s, settings)
    _check_inputs(module, s, settings, inputs)
    key = _key(module, settings, inputs, s.root)
    maybe = tuple(getattr(module, "MAYBE_UNUSED", ()))
    outs = module.outputs(s, settings)
    prev = state.get(name, {})
    why = why_run(module, s, settings, inputs, key, state, forced)
    if why is None:
        result.status[name], result.timings[name] = "skipped", 0.0
        result.outputs[name] = [str(p) for p in outs]
        return
    result.why[name] = why
    # resumed: an interrupted run of the same key; of a stage that checks some inputs itself (``checked_inputs``:
    # detection, each camera's video), of the same key but for those (one video replaced: that camera again)
    checked = getattr(module, "checked_inputs", None)
    rest = _key(module, settings, [p for p in inputs if p not in set(checked(s, settings))], s.root) if checked else key
    resume = getattr(module, "RESUMABLE", False) and not forced and prev.get("status") == "started" and (
        prev.get("key") == key or checked is not None and prev.get("unchecked") == rest)
    state[name] = {"key": key, "unchecked": rest, "status": "started"}
    _save(s, state)
    log.info("stage %s: %s (%s)", name, "resuming" if resume else "running", why)
    t0, c0, k0 = time.perf_counter(), _cpu_s(), _children_cpu_s()
    out = module.main(s, settings, not resume)
    _check_interrupt()  # a Ctrl-C swallowed inside the stage stops here, before the stage is marked done
    dt = time.perf_counter() - t0
    result.status[name], result.timings[name] = "ran", dt
    result.cpu[name] = _cpu_s() - c0
    result.cpu_children[name] = _children_cpu_s() - k0
    result.outputs[name] = [str(p) for p in module.outputs(s, settings)]
    if name == "report" and isinstance(out, dict):
        result.metrics = out
    full = key
    if maybe and (drop := tuple(k for k in module.unused(s, settings) if k in maybe)):
        key = _key(module, settings, inputs, s.root, drop)  # what the outputs did not depend on: not in the key
    state[name] = {"key": key, "code": code_digest(module.__name__), "status": "done", "seconds": dt,
                   "finished": datetime.now().isoformat(), "outputs": _fingerprint(module.outputs(s, settings), s.root),
                   "settings": settings_digest(module, settings)}
    if key != full:
        state[name]["confirmed"] = [full]  # the full keys the outputs are known to be right under
    _save(s, state, later=not getattr(module, "RESUMABLE", False))  # later: with the next stage's start, or at the end
    log.info("stage %s done in %.2f s", name, dt)


def _cpu_s() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _children_cpu_s() -> float:
    t = os.times()
    return t.children_user + t.children_system


def run(session: str | Path | Session, cfg=None, *, config_path: str | Path | None = None,
        sets: list[str] = (), from_stage: str | None = None, progress: bool = True,
        only: list[str] | None = None, force: bool = False, remember: bool = True,
        command: str | None = None) -> RunResult:
    """Run (or skip) every stage of a session (or ``only`` some). Python equivalent of ``mocap run``. The
    ``sets`` of a run that succeeds (or is interrupted) are kept for later commands on this session
    (``remember=False``: this run only)."""
    s = session if isinstance(session, Session) else Session(Path(session))
    forget_said()  # what a run says once about its inputs, each run says (one process runs many sessions in a batch)
    remembered = []
    if cfg is None:
        cfg, _ = resolve_settings(sources(s.root, config_path, list(sets)))
        remembered = [(item, command or _command_line()) for item in sets] if remember else []
    try:
        result = run_stages(s, cfg, only=only, from_stage=from_stage, force=force, progress=progress,
                            command=command)
    except KeyboardInterrupt:
        keep(s.root, remembered)  # so that the same command, or a plain one, resumes with these settings
        raise
    keep(s.root, remembered)  # a command that failed leaves the kept settings as they were
    return result

