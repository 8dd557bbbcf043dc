"""``mocap batch``: many sessions, each one's stages in order, the sessions in parallel on Dask.

Each session is one task that runs :func:`mocap.pipeline.run` on it, on a worker of the given scheduler
or of a ``LocalCluster`` (one single-threaded process per core by default). Resumable through the
pipeline's own cache: a stage whose inputs and settings are unchanged and whose outputs are in place is
skipped, so after an interrupt a re-run redoes only the sessions (and, in them, the stages) that had not
finished; a finished session comes back "up to date" in about a second. A failing session does not stop
the others: it is listed with its error and its log file.
"""

from __future__ import annotations

import logging
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass
class SessionResult:
    session: str
    status: str  # done | up to date | failed | not run (interrupted)
    ran: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str = ""
    log_file: str = ""
    worker: str = ""
    verdict: str = ""  # the take's report: PASS, or FAIL: why (report/metrics.json); "" without one


def run_session(session: str, sets: tuple[str, ...] = (), config_path: str | None = None,
                detectors: dict[str, str] | None = None) -> SessionResult:
    """Task: every stage of one session, in order (cached). Never raises: a failure is recorded.
    ``detectors``: the client's detector registry (detectors registered there reach the worker)."""
    import socket

    from mocap.detect import DETECTORS
    from mocap.pipeline import run

    for name, target in (detectors or {}).items():
        DETECTORS.setdefault(name, target)

    t0, started = time.perf_counter(), time.time()
    worker = socket.gethostname()
    try:
        r = run(session, config_path=config_path, sets=list(sets), progress=False, command="mocap batch")
    except Exception as e:  # noqa: BLE001 — one failed session is reported and the others go on
        return SessionResult(session, "failed", seconds=time.perf_counter() - t0, worker=worker,
                             error=f"{type(e).__name__}: {e}".splitlines()[0], log_file=failure_log(session, started))
    except KeyboardInterrupt:
        return SessionResult(session, "not run", seconds=time.perf_counter() - t0, worker=worker,
                             error="interrupted")
    return SessionResult(session, "done" if r.ran else "up to date", r.ran, time.perf_counter() - t0,
                         log_file=str(r.log_file or ""), worker=worker, verdict=take_verdict(session))


def take_verdict(session: str | Path) -> str:
    """The verdict of the session's report (``report/metrics.json``): ``PASS``, or ``FAIL: ...`` with why; "" when
    there is no report (a run that ended before it, or a report that cannot be read)."""
    import json

    path = Path(session) / "report" / "metrics.json"
    try:
        verdict = json.loads(path.read_text()).get("verdict") if path.is_file() else None
    except (OSError, ValueError):
        return ""
    if not isinstance(verdict, dict):
        return ""
    return str(verdict.get("summary") or ("FAIL" if verdict.get("failed") else "PASS"))


def failure_log(session: str, started: float) -> str:
    """The log of a session's run that failed (``started``: its wall-clock start): the run's own log file when it
    opened one, else ``logs/batch-<time>.log`` written here with the error's traceback (a run that failed before
    its log opened, on a misspelt ``--set`` say, named the newest log there, an earlier run's that did not say
    it); "" when neither can be had."""
    folder = Path(session) / "logs"
    own = [p for p in folder.glob("run-*.log") if p.stat().st_mtime >= started - 1]
    if own:
        return str(max(own, key=lambda p: p.stat().st_mtime))
    try:
        folder.mkdir(exist_ok=True)
        path = folder / time.strftime("batch-%Y%m%d-%H%M%S.log", time.localtime(started))
        path.write_text(traceback.format_exc())
        return str(path)
    except OSError:
        return ""


def check_sessions(sessions: list[str | Path]) -> list[str]:
    """Resolved session folders, each once; a clear error naming the missing ones."""
    missing = [str(s) for s in sessions if not Path(s).is_dir()]
    if missing:
        raise FileNotFoundError(f"batch: no session folder {', '.join(missing)}")
    out: list[str] = []
    for s in sessions:
        p = str(Path(s).resolve())
        if p not in out:
            out.append(p)
    if not out:
        raise ValueError("batch: no sessions given")
    return out


def local_workers(asked: int, sessions: int) -> int:
    """The LocalCluster's processes: one per core (or ``asked``), never more than the sessions (a session is one
    task: more workers than sessions only started idle processes, eight for two sessions with ``--workers 8``)."""
    return max(1, min(asked or os.cpu_count() or 1, sessions))


def run_batch(sessions: list[str | Path], scheduler: str | None = None, workers: int = 0, sets: tuple[str, ...] = (),
              config_path: str | Path | None = None, timeout_s: float = 10.0,
              progress: Callable[[SessionResult], None] | None = None) -> list[SessionResult]:
    """Run every session (see the module). Returns one result per session, in the order given; on Ctrl-C the
    tasks are cancelled and KeyboardInterrupt carries on (finished sessions stay finished). Cancelling stops
    only the sessions not started: on a cluster of its own (no ``scheduler``) the running ones end as it is
    closed; on a ``scheduler``'s cluster they go on to the end of their run (a running Dask task cannot be
    stopped), holding their session's lock until then."""
    from distributed import as_completed

    from mocap.detect import DETECTORS
    from mocap.distributed import client_for, quiet_after_ctrl_c

    paths = check_sessions(sessions)
    results = {p: SessionResult(p, "not run") for p in paths}
    with quiet_after_ctrl_c(), client_for(scheduler, local_workers(workers, len(paths)), timeout_s) as client:
        futures = {client.submit(run_session, p, tuple(sets), str(Path(config_path).resolve()) if config_path else None,
                                 dict(DETECTORS), key=f"mocap-session-{i}-{Path(p).name}-{time.time_ns()}",
                                 pure=False): p
                   for i, p in enumerate(paths)}
        try:
            for fut in as_completed(list(futures), loop=client.loop):
                p = futures[fut]
                try:
                    results[p] = fut.result()
                except Exception as e:  # noqa: BLE001 — e.g. the worker died repeatedly (KilledWorker)
                    results[p] = SessionResult(p, "failed", error=f"{type(e).__name__}: {e}".splitlines()[0])
                    log.debug("session %s: %s", p, traceback.format_exc())
                if progress:
                    progress(results[p])
        except BaseException:
            client.cancel(list(futures))
            raise
    return [results[p] for p in paths]


def display_names(sessions: list[str | Path]) -> dict[str, str]:
    """Each session's name in the table and the progress lines: its folder's name, or where that clashes with
    another session's, the shortest end of its path that tells them apart (``p1/take``, ``p2/take``)."""
    parts = {str(s): Path(s).parts for s in sessions}
    out = {}
    for s, mine in parts.items():
        k = 1
        while k < len(mine) and any(other[-k:] == mine[-k:] for o, other in parts.items() if o != s):
            k += 1
        out[s] = str(Path(*mine[-k:]))
    return out


def summary_rows(results: list[SessionResult]) -> list[dict]:
    names = display_names([r.session for r in results])
    return [{"session": names[r.session], "status": r.status, "ran": ",".join(r.ran) or "—",
             "verdict": "FAIL" if r.verdict.startswith("FAIL") else "PASS" if r.verdict else "—",
             "seconds": r.seconds} for r in results]
