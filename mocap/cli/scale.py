"""Commands for scale and speed: ``mocap run --scheduler``, ``mocap batch``, ``mocap live``."""

from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager
from pathlib import Path


def add_scheduler_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="send detection to this Dask scheduler (tcp://host:8786); results are those of a local run")
    p.add_argument("--chunk-frames", type=int, default=0, metavar="N",
                   help="with --scheduler: split each camera into chunks of N frames (default: one chunk per "
                        "camera, identical to a local run for every detector)")
    p.add_argument("--connect-timeout", type=float, default=10.0, metavar="S",
                   help="with --scheduler: give up after S seconds when the scheduler cannot be reached")


@contextmanager
def scheduler_from_args(args):
    from mocap.distributed import ClusterOptions, use_scheduler

    if not getattr(args, "scheduler", None):
        yield None
        return
    with use_scheduler(args.scheduler, ClusterOptions(chunk_frames=args.chunk_frames),
                       timeout_s=args.connect_timeout) as client:
        yield client


def cmd_batch(args) -> int:
    from mocap.batch import check_sessions, display_names, run_batch, summary_rows
    from mocap.bench.common import format_table

    names = display_names(check_sessions(args.sessions))

    def progress(r) -> None:
        name = names.get(r.session, Path(r.session).name)
        print(f"… {name}: {r.status}" + (f" ({r.error})" if r.error else ""), file=sys.stderr, flush=True)

    try:
        results = run_batch(args.sessions, args.scheduler, args.workers, tuple(args.set), args.config,
                            args.connect_timeout, progress)
    except KeyboardInterrupt:
        print(interrupted_message(args.scheduler), file=sys.stderr)
        print(where_stopped(names), file=sys.stderr)
        return 130
    print(format_table(summary_rows(results), [("session", "session", "s"), ("status", "status", "s"),
                                               ("ran", "stages ran", "s"), ("verdict", "verdict", "s"),
                                               ("seconds", "seconds", ".1f")]))
    failed = [r for r in results if r.status != "done" and r.status != "up to date"]
    counts = {s: sum(r.status == s for r in results) for s in ("done", "up to date", "failed", "not run")}
    rejected = [r for r in results if r.verdict.startswith("FAIL")]
    print(", ".join(f"{n} {s}" for s, n in counts.items() if n)
          + (f"; {len(rejected)} whose report's verdict is FAIL" if rejected else ""))
    if failed:
        print("failures:")
        for r in failed:
            print(f"  {r.session}: {r.error}" + (f"\n    log: {r.log_file}" if r.log_file else ""))
    if rejected:
        print("verdict FAIL (the run worked, the take did not pass: see its report):")
        for r in rejected:
            print(f"  {names.get(r.session, r.session)}: {r.verdict[len('FAIL: '):] or 'FAIL'}")
    return 1 if failed else 3 if rejected and args.strict else 0


def where_stopped(names: dict) -> str:
    """After a Ctrl-C: which sessions' last run finished every stage (from their ``.mocap/state.json``; one that
    was about to end may have finished as the cluster closed) and which did not."""
    from mocap.pipeline_state import load_state
    from mocap.session import Session

    done, left = [], []
    for session, name in names.items():
        try:
            state = load_state(Session(Path(session)))
        except (OSError, ValueError):
            state = {}
        finished = bool(state) and "report" in state and all(isinstance(v, dict) and v.get("status") == "done"
                                                               for v in state.values())
        (done if finished else left).append(name)
    return f"finished: {', '.join(done) or 'none'}; not finished: {', '.join(left) or 'none'}"


def interrupted_message(scheduler: str | None) -> str:
    """What ``mocap batch`` says on Ctrl-C. A task cannot be stopped midway on Dask: on a cluster of its own the
    batch closes it (its workers end, the sessions with them); on a ``--scheduler`` cluster only the sessions not
    started are cancelled, the running ones go on there to the end of their run."""
    if not scheduler:
        return "interrupted: finished sessions stay finished; run the same command again to do the others"
    return (f"interrupted: sessions not started are cancelled, but those already running on the cluster at "
            f"{scheduler} finish their current run there (a running Dask task cannot be stopped) and hold their "
            "session's lock until then; finished sessions stay finished; run the same command again to do the "
            "others (one still running there fails as busy)")


def add_scale_commands(sub: argparse._SubParsersAction, bsub: argparse._SubParsersAction) -> None:
    b = sub.add_parser("batch", help="many sessions in parallel on Dask (LocalCluster by default), resumable",
                       description="Run every stage of each session (in order, cached), the sessions in parallel "
                                   "on a Dask cluster; a re-run redoes only what did not finish.")
    b.add_argument("sessions", type=Path, nargs="+")
    b.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler (default: a LocalCluster here)")
    b.add_argument("--workers", type=int, default=0, help="LocalCluster processes (default: one per core)")
    b.add_argument("--connect-timeout", type=float, default=10.0, metavar="S",
                   help="give up after S seconds when the scheduler cannot be reached")
    b.add_argument("--config", type=Path, help="TOML settings applied to every session")
    b.add_argument("--set", action="append", default=[], metavar="STAGE.KEY=VALUE",
                   help="override one setting in every session (kept for later commands on each)")
    b.add_argument("--strict", action="store_true",
                   help="exit with status 3 when a session's report verdict is FAIL (1 when a session failed to run)")
    b.set_defaults(func=cmd_batch)
    from mocap.live.cli import add_bench_live, add_live_command

    add_live_command(sub)
    add_bench_live(bsub)
