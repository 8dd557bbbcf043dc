"""Command line: ``mocap STAGE SESSION [options]``. The CLI owns all terminal output."""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from mocap import __version__
from mocap.persons import NamedFormatter
from mocap.run_log import LOG_FORMAT

log = logging.getLogger("mocap")

OTHER_HELP = """other commands:
  run           every stage, cached: videos (or 2D keypoints) → animation files + report
  config        the settings of a session (mocap config show SESSION)
  view          3D view of a session (window, or PNG / MP4 when headless)
  synth         synthetic sessions with ground truth
  bench         benchmarks (print a table, write JSON)
  calibration   calibration tools (printable boards)
  blender-addon the Blender add-on as an installable zip
  dataset       many takes into one HDF5 dataset (build, synth, info)
  batch         many sessions, each run in full, in parallel on a Dask cluster (resumable)
  live          live 3D preview from the cameras (or the session's videos), optionally recorded
  demo          run the pipeline on the sample session
"""


def _epilog() -> str:
    from mocap import stages

    lines = ["pipeline stages (in order; each is also a command: mocap STAGE SESSION):"]
    lines += [f"  {m.NAME:<13} {getattr(m, 'HELP', '')}" for m in stages.stages()]
    return "\n".join(lines) + "\n" + OTHER_HELP


def cmd_synth_keypoints(args) -> int:
    from mocap.synth import CorruptionSpec, RigSpec, make_take, write_session

    if args.cameras < 2:
        raise SystemExit(f"error: --cameras {args.cameras}: a take needs two cameras or more (a point in 3D is where "
                         "two views' rays meet)")
    if args.people != 1:
        from mocap.cli.products import synth_crowd

        if args.hands:
            raise SystemExit("error: --hands with --people: synthetic takes of several people have body keypoints "
                             "only; leave out one of the two")

        return synth_crowd(args)
    take = make_take(args.bvh, args.frames, args.fps, RigSpec(n_cameras=args.cameras, arc_deg=args.arc_deg,
                                                              zoom=args.zoom),
                     CorruptionSpec(args.noise_px, args.outliers, args.dropouts, swaps=args.swaps, seed=args.seed,
                                    hand_noise_px=args.hand_noise_px if args.hands else None),
                     hands=args.hands)
    out = write_session(take, args.out, json_2d=not args.hdf5)
    print(f"session written: {out} ({take.truth.shape[0]} frames, {len(take.rig)} cameras)")
    return 0


def cmd_bench_triangulation(args) -> int:
    from mocap.bench.common import format_table, write_json
    from mocap.bench.triangulation import BenchConfig, default_bvh, run

    bvh = args.bvh or default_bvh()
    if bvh is None:
        print("no BVH clip: pass --bvh FILE or set MOCAP_SHARED_DATA", file=sys.stderr)
        return 2
    cfg = BenchConfig(str(bvh), args.frames, args.fps, args.cameras, args.noise_px, args.outliers, args.dropouts,
                      args.swaps, args.seed, args.peers)
    result = run(cfg, progress=lambda name: print(f"… {name}", file=sys.stderr, flush=True))
    print(f"triangulation benchmark: {cfg.frames} frames × {cfg.cameras} cameras, σ {cfg.noise_px}px, "
          f"{cfg.outliers:.0%} outliers, {cfg.dropouts:.0%} dropouts, {result['machine']['cpus']} CPUs")
    print(format_table(result["rows"], [("method", "method", ""), ("mpjpe_mm", "MPJPE mm", ".2f"),
                                        ("p95_mm", "P95 mm", ".2f"), ("bone_std_mm", "bone std mm", ".2f"),
                                        ("reconstructed", "recon.", ".1%"), ("seconds", "time s", ".2f"),
                                        ("peak_mb", "peak MB", ".0f")]))
    for k, v in result["ratios"].items():
        print(f"{k}: {v:.3f}")
    write_json(result, args.json)
    if args.json:
        print(f"JSON: {args.json}")
    return 0


def cmd_bench_hands(args) -> int:
    from mocap.bench.common import format_table, write_json
    from mocap.bench.hands import HandsBenchConfig, run
    from mocap.bench.triangulation import default_bvh

    bvh = args.bvh or default_bvh()
    if bvh is None:
        print("no BVH clip: pass --bvh FILE or set MOCAP_SHARED_DATA", file=sys.stderr)
        return 2
    cfg = HandsBenchConfig(str(bvh), args.frames, args.fps, args.cameras, args.noise_px, args.hand_noise_px,
                           args.outliers, args.dropouts, args.seed, args.hand_missing)
    result = run(cfg, progress=lambda s: print(f"… {s}", file=sys.stderr, flush=True))
    print(f"hands benchmark: {cfg.frames} frames × {cfg.cameras} cameras, σ {cfg.noise_px}px body, "
          f"{cfg.hand_noise_px}px hands (hands {result['hand_px']:.0f}px wrist → middle tip), "
          f"{cfg.outliers:.0%} outliers, {cfg.dropouts:.0%} dropouts")
    print(format_table(result["rows"], [("method", "method", ""), ("finger_mpjpe_mm", "fingers mm", ".2f"),
                                        ("finger_median_mm", "median", ".2f"), ("fingertip_mm", "tips mm", ".2f"),
                                        ("flexion_median_deg", "flexion °", ".2f"),
                                        ("flexion_p90_deg", "P90 °", ".1f"), ("body_mpjpe_mm", "body mm", ".2f"),
                                        ("body_only_mpjpe_mm", "body-only mm", ".2f")]))
    t = result["times"]
    print(f"triangulate + refine (CPU): {t['body_s']:.2f}s body only, {t['hands_s']:.2f}s with hands "
          f"({t['ratio']:.2f}x)")
    write_json(result, args.json)
    if args.json:
        print(f"JSON: {args.json}")
    return 0


def cmd_bench_detect(args) -> int:
    from mocap.bench.common import format_table, write_json
    from mocap.bench.detect import DetectBenchConfig, default_videos, run, summary

    videos = args.videos or default_videos()
    if videos is None:
        print("no videos: pass --videos FOLDER or set MOCAP_SHARED_DATA", file=sys.stderr)
        return 2
    from mocap.stages.detect import persons_arg

    cfg = DetectBenchConfig(str(videos), args.variant, args.model or "", args.stop, args.repeat,
                            tuple(args.cameras or ()), args.split, args.workers,
                            DetectBenchConfig.persons if args.persons is None else persons_arg(args.persons),
                            DetectBenchConfig.scan_every if args.scan_every is None else args.scan_every)
    result = run(cfg, progress=lambda s: print(f"… {s}", file=sys.stderr, flush=True))
    print(f"detection benchmark: BlazePose {cfg.variant}, {result['cores']} cores, videos {videos}; "
          "per-camera rows run alone on one core")
    print(format_table(result["rows"], [("camera", "camera", ""), ("frames", "frames", "d"),
                                        ("inference_ms", "inference ms/frame", ".1f"),
                                        ("decode_ms", "decode ms/frame", ".1f"), ("fps", "frames/s", ".1f"),
                                        ("wall_s", "wall s", ".2f"), ("peak_mb", "peak MB", ".0f")]))
    print(summary(result))
    write_json(result, args.json)
    return 0


def image_size(text: str) -> tuple[int, int]:
    """'1280x720' → (1280, 720)."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() for p in parts) or min(int(p) for p in parts) < 64:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT of at least 64x64, like 1280x720; got {text!r}")
    return int(parts[0]), int(parts[1])


def cmd_view(args) -> int:
    from mocap.view import view

    out = view(args.session, out=args.out, frames=args.frames, turntable=args.turntable, size=args.size,
               grid=args.grid, start=args.start)
    if out:
        print(f"rendered: {out}")
    return 0


def cmd_demo(args) -> int:
    from mocap.demo import run_demo

    lines, ok = run_demo(args.out)
    print("\n".join(lines))
    return 0 if ok else 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mocap", description="Multi-camera markerless motion capture.",
                                epilog=_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"mocap {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    from mocap.cli.stages import add_stage_commands

    add_stage_commands(sub)

    vw = sub.add_parser("view", help="3D view of the take (window; or an MP4 / PNG when headless or with --out)",
                        description="The performers in 3D, framed automatically, with the floor grid and the "
                        "cameras. Window keys: space play/pause, <- -> step, drag to orbit, wheel to zoom, "
                        "trackbar to scrub, q to quit.")
    vw.add_argument("session", type=Path)
    vw.add_argument("--out", type=Path, help="render to this .mp4, .png (one frame) or folder of PNGs instead of a "
                    "window")
    vw.add_argument("--grid", action="store_true", help="the 3D view beside every camera's video with the skeleton "
                    "reprojected over it")
    vw.add_argument("--start", type=int, help="first frame (default: the first; the middle one for a .png or "
                    "--turntable)")
    vw.add_argument("--frames", type=int, default=0, help="frames to render (default: all; with --turntable, the "
                    "orbit's images, default 120)")
    vw.add_argument("--size", type=image_size, help="WIDTHxHEIGHT (default 1280x720; 1920x1080 with --grid)")
    vw.add_argument("--turntable", action="store_true", help="orbit the camera around one frame")
    vw.set_defaults(func=cmd_view)

    s = sub.add_parser("synth", help="synthetic sessions with ground truth")
    ssub = s.add_subparsers(dest="what", metavar="WHAT", required=True)
    k = ssub.add_parser("keypoints", help="BVH clip → virtual ring rig → corrupted 2D keypoints session")
    k.add_argument("out", type=Path)
    k.add_argument("--bvh", type=Path, required=True)
    _take_args(k, frames=None)
    k.add_argument("--hdf5", action="store_true", help="write pose2d.h5 instead of OpenPose JSON")
    k.add_argument("--hands", action="store_true",
                   help="42 hand keypoints with procedural finger motion too (keypoint set blazepose33_hands)")
    k.add_argument("--hand-noise-px", type=float, default=1.0, help="σ of the hand keypoints (with --hands)")
    k.add_argument("--people", type=int, default=1,
                   help="several people on crossing paths, occluding one another (writes pose2d.h5)")
    k.add_argument("--arc-deg", type=float, default=360.0,
                   help="the cameras spread over this arc (360: a ring; 120: all on one side, as on one wall)")
    k.add_argument("--zoom", type=float, default=1.0,
                   help="focal length × this over the framing that shows the whole motion (2: people leave the "
                        "images at their edges, feet and heads cut, seen by fewer cameras)")
    k.set_defaults(func=cmd_synth_keypoints)

    b = sub.add_parser("bench", help="benchmarks")
    bsub = b.add_subparsers(dest="what", metavar="NAME", required=True)
    bt = bsub.add_parser("triangulation", help="triangulation and refine against ground truth and peers")
    bt.add_argument("--bvh", type=Path, help="motion clip (default: CMU 01_03 from the shared data)")
    _take_args(bt, frames=2000)
    bt.add_argument("--peers", choices=["none", "fast", "all"], default="all",
                    help="aniposelib rows: fast skips RANSAC (minutes at 2,000 frames)")
    bt.add_argument("--json", type=Path, help="write the results here")
    bt.set_defaults(func=cmd_bench_triangulation)

    bd = bsub.add_parser("detect", help="detector throughput and parallel efficiency")
    bd.add_argument("--videos", type=Path, help="folder of camera videos (default: the shared Pose2Sim demo)")
    bd.add_argument("--variant", choices=["lite", "full", "heavy"], default="full")
    bd.add_argument("--model-path", "--model", dest="model", help="landmark .tflite for lite/heavy")
    bd.add_argument("--stop", type=int, help="frames per camera")
    bd.add_argument("--repeat", type=int, default=1, help="parallel runs; the shortest is kept")
    bd.add_argument("--cameras", nargs="+", help="a subset of the cameras")
    bd.add_argument("--split", action="store_true", help="detect.split for the parallel run")
    bd.add_argument("--workers", type=int, default=0, help="worker processes (default: one per core)")
    bd.add_argument("--persons", help="detect.persons: a number or auto (default: the detect stage's, auto)")
    bd.add_argument("--scan-every", type=int, help="detect.scan_every with persons = auto (default: the stage's)")
    bd.add_argument("--json", type=Path)
    bd.set_defaults(func=cmd_bench_detect)

    bh = bsub.add_parser("hands", help="hand keypoints: synthetic 2D → triangulate → refine against the truth")
    bh.add_argument("--bvh", type=Path, help="motion clip (default: CMU 01_03 from the shared data)")
    _take_args(bh, frames=600)
    bh.add_argument("--hand-noise-px", type=float, default=1.0, help="σ of the hand keypoints")
    bh.add_argument("--hand-missing", type=float, default=0.0,
                    help="share of the views each hand is missing from as a whole (runs of 10 frames)")
    bh.add_argument("--json", type=Path)
    bh.set_defaults(func=cmd_bench_hands, cameras=6)

    from mocap.cli.products import add_commands
    from mocap.cli.scale import add_scale_commands

    add_commands(sub, ssub, bsub)
    add_scale_commands(sub, bsub)
    from mocap.cli.benches import add_bench_commands

    add_bench_commands(bsub, _take_args)

    d = sub.add_parser("demo", help="run the pipeline on the sample session")
    d.add_argument("--out", type=Path, default=Path("demo_output"), help="where to write the session")
    d.set_defaults(func=cmd_demo)
    _load_plugins({"root": sub, "bench": bsub})
    return p


def _load_plugins(parsers: dict) -> None:
    """Commands of other packages (``calibration``) registered through the ``mocap.commands`` entry point,
    so that ``mocap`` itself never imports them."""
    from importlib.metadata import entry_points

    for ep in entry_points(group="mocap.commands"):
        try:
            ep.load()(parsers)
        except ImportError as e:
            log.warning("command plugin %s unavailable: %s", ep.name, e)


def _take_args(p: argparse.ArgumentParser, frames: int | None) -> None:
    p.add_argument("--frames", type=int, default=frames,
                   help=f"number of frames (default: {frames})" if frames else "number of frames (default: whole clip)")
    p.add_argument("--fps", type=float, default=60.0)
    p.add_argument("--cameras", type=int, default=4)
    p.add_argument("--noise-px", type=float, default=2.0)
    p.add_argument("--outliers", type=float, default=0.05)
    p.add_argument("--dropouts", type=float, default=0.10)
    p.add_argument("--swaps", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)


def _ours_or_warnings(record: logging.LogRecord) -> bool:
    """The terminal's filter: this project's records at any level, other libraries' from WARNING up."""
    return record.levelno >= logging.WARNING or record.name.split(".")[0] in ("mocap", "calibration")


def _terminal_stream() -> tuple[TextIO, bool]:
    """(the terminal handler's stream, whether it is ours to close): a duplicate of the descriptor behind
    ``sys.stderr`` where it has one, so that the lines of this process's threads reach the terminal while
    another thread has descriptor 2 sent to the log around a noisy native call (:mod:`mocap.quiet`: a live
    camera opening); otherwise ``sys.stderr`` itself (a test's captured stream)."""
    try:
        sys.stderr.flush()
        fd = os.dup(sys.stderr.fileno())
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both of the last two
        return sys.stderr, False
    encoding = getattr(sys.stderr, "encoding", None) or "utf-8"
    return open(fd, "w", buffering=1, encoding=encoding, errors="backslashreplace"), True  # noqa: SIM115


@contextmanager
def _logging(verbose: bool):
    """The terminal gets this project's INFO lines (DEBUG with -v) and other libraries' warnings; the
    run's log file (SESSION/logs) also gets the DEBUG lines, e.g. the native libraries' chatter. Undone
    when the command returns (``main`` may be called many times in one process)."""
    stream, own = _terminal_stream()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.DEBUG if verbose else logging.INFO)
    # several people: the lines of a stage's work on one person name them (mocap.persons.speaking_of)
    handler.setFormatter(NamedFormatter(LOG_FORMAT, "%H:%M:%S"))
    if not verbose:  # a library that sets its own logger to INFO (Dask's scheduler, nannies) stays off the terminal
        handler.addFilter(_ours_or_warnings)
    root = logging.getLogger()
    ours = [logging.getLogger(n) for n in ("mocap", "calibration")]
    saved = (root.level, [lg.level for lg in ours])
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    for lg in ours:
        lg.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(handler)
        if own:
            stream.close()
        root.setLevel(saved[0])
        for lg, level in zip(ours, saved[1], strict=True):
            lg.setLevel(level)


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:  # also while the commands' modules are imported to build the parser
        print("interrupted: nothing half-written was left; run the same command again to resume", file=sys.stderr)
        return 130
    finally:
        _forget_handled_interrupts()


def _forget_handled_interrupts() -> None:
    """CPython 3.11 notes a KeyboardInterrupt that leaves an ``exec()`` of a string in a process-wide
    flag (``_Py_UnhandledKeyboardInterrupt``, until the next such ``exec()``), even when a caller catches
    it, and at exit from ``python -m mocap`` kills the process with SIGINT whenever the flag is set,
    whatever status ``main`` returned. Dataclasses and namedtuples make their methods with ``exec``, so a
    Ctrl-C that landed while one was being created (a lazy import in the report stage, say) made ``mocap
    run`` die by SIGINT instead of exiting 130 after its "interrupted" line. Every interrupt has been
    handled by now (one escaping ``main`` sets the flag again on its way out): clear it. Python 3.12 keeps
    the flag where ctypes cannot reach it; there this does nothing (the project needs 3.11, and
    ``test_cli`` would show it)."""
    try:
        flag = ctypes.c_int.in_dll(ctypes.pythonapi, "_Py_UnhandledKeyboardInterrupt")
    except (ValueError, AttributeError):
        return
    flag.value = 0


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        from mocap.cli.stages import stage_flag_hint

        parser.error(f"unrecognized arguments: {' '.join(extra)}{stage_flag_hint(args, extra)}")
    args.command_line = " ".join(["mocap"] + list(sys.argv[1:] if argv is None else argv))
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        with _logging(args.verbose):
            return args.func(args)
    except BrokenPipeError:  # `mocap config show S | head`: the reader has what it wanted (it said "error: [Errno 32]")
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error as Python flushes at exit
        return 0
    except PermissionError as e:  # "[Errno 13] Permission denied: 'take/.mocap'" said what, not why or what to do
        print(f"error: {e.filename or e}: permission denied: mocap reads its inputs and writes its results (in a "
              "session: .mocap/, pose2d.h5, points3d/, motion/, export/, report/, logs/); make that readable, and the "
              "folder written to writable, for you, or copy the session where you can write", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError, KeyError, RuntimeError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
