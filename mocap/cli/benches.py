"""``mocap bench after`` and ``mocap bench robustness``: their arguments and printed tables (the runs and
their results live in :mod:`mocap.bench.after` and :mod:`mocap.bench.robustness`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mocap.bench.common import format_table, write_json


def add_bench_commands(bench_parsers, take_args) -> None:
    """Register both; ``take_args`` adds the synthetic take's arguments (frames, cameras, noise, ...)."""
    add_after(bench_parsers)
    add_robustness(bench_parsers, take_args)


def add_after(bench_parsers) -> None:
    """``mocap bench after``."""
    p = bench_parsers.add_parser("after", help="everything after detection against detection, on the real demo")
    p.add_argument("--session", type=Path, help="session with videos/ and calibration/ (default: the shared "
                                                "Pose2Sim demo)")
    p.add_argument("--work", type=Path, help="where to run it (default: a temporary folder)")
    p.add_argument("--set", action="append", default=[], metavar="STAGE.KEY=VALUE", help="for every run")
    p.add_argument("--json", type=Path)
    p.set_defaults(func=cmd_after)


def cmd_after(args) -> int:
    from mocap.bench.after import AfterBenchConfig, run, table_rows

    cfg = AfterBenchConfig(str(args.session or ""), str(args.work or ""), tuple(args.set))
    try:
        result = run(cfg, progress=lambda s: print(f"… {s}", file=sys.stderr, flush=True))
    except FileNotFoundError as e:
        print(e, file=sys.stderr)
        return 2
    print(f"after-detection benchmark: {result['session']}, {os.cpu_count()} CPUs")
    print(format_table(table_rows(result), [
        ("stage", "stage", ""), ("default_wall", "default wall s", ".2f"), ("default_cpu", "CPU s", ".2f"),
        ("novid_wall", "no videos wall s", ".2f"), ("novid_cpu", "CPU s", ".2f"),
        ("fresh_wall", "fresh no videos wall s", ".2f"), ("fresh_cpu", "CPU s", ".2f")]))
    for label, target in (("default", 0.15), ("no-videos", None), ("videos-again", None), ("unchanged", None),
                          ("fresh-no-videos", 0.05)):
        r = result["runs"][label]
        d = r["detection_s"] if label.startswith("fresh") else result["detection_s"]
        goal = f" (target ≤ {target:.0%})" if target else ""
        cpu = r["after_detection_cpu_s"]
        setup = f" (set-up before it {r['set_up_s']:.2f} s)" if r.get("set_up_s") is not None else ""
        print(f"{label:>15}: run {r['wall_s']:.2f} s{setup}, after detection {r['after_detection_s']:.2f} s"
              + (f" ({cpu:.2f} CPU s)" if cpu is not None else "") + " = "
              f"{r['after_over_detection']:.1%} of detection ({d:.2f} s){goal}; "
              f"load {r['load_start']} → {r['load_end']}")
    print(f"report stage without videos: {result['report_no_videos_s']:.2f} s (target ≤ 1 s)")
    write_json(result, args.json)
    if args.json:
        print(f"JSON: {args.json}")
    return 0


def add_robustness(bench_parsers, take_args) -> None:
    """``mocap bench robustness``."""
    br = bench_parsers.add_parser("robustness", help="cost of camera refinement, sync and swap repair next to "
                                  "triangulate + refine on a synthetic take, with their accuracy")
    br.add_argument("--bvh", type=Path, help="motion clip (default: CMU 01_01 from the shared data)")
    take_args(br, frames=2000)  # --swaps: the share of views with left and right exchanged (0.02)
    br.add_argument("--true-rig", action="store_true",
                    help="give the true rig (default: cameras but the first turned 1–2° and moved 5–10 cm)")
    br.add_argument("--shift", type=float, default=0.0, help="the second camera lags by this many frames")
    br.add_argument("--repeats", type=int, default=1, help="each stage timed this many times, the fastest counts")
    br.add_argument("--blas-threads", type=int, default=1,
                    help="OpenBLAS threads while a stage is timed: 1 as mocap run runs the stages after detection "
                         "(default), 0 the libraries' own")
    br.add_argument("--json", type=Path)
    br.set_defaults(func=cmd_robustness)


def cmd_robustness(args) -> int:
    from mocap.bench.robustness import COLUMNS, RobustnessBenchConfig, accuracy_lines, run, table_rows
    from mocap.bench.triangulation import default_bvh

    bvh = args.bvh or default_bvh()
    if bvh is None:
        raise FileNotFoundError("bench robustness: no --bvh given and no shared data to take CMU 01_01 from")
    if not args.bvh:
        bvh = bvh.with_name("cmu_01_01.bvh")
    cfg = RobustnessBenchConfig(str(bvh), args.frames, args.fps, args.cameras, args.noise_px, args.outliers,
                                args.dropouts, args.swaps, args.seed, move_rig=not args.true_rig,
                                shift_frames=args.shift, repeats=args.repeats,
                                blas_threads=args.blas_threads)
    result = run(cfg, progress=lambda text: print(f"… {text}", file=sys.stderr, flush=True))
    print(f"robustness benchmark: {cfg.frames} frames × {cfg.cameras} cameras, σ {cfg.noise_px}px, "
          f"{cfg.outliers:.0%} outliers, {cfg.dropouts:.0%} dropouts, {cfg.swaps:.0%} swaps, "
          f"{'moved' if cfg.move_rig else 'true'} rig, shift {cfg.shift_frames:g} frames; {bvh.name}; OpenBLAS "
          f"{'at ' + str(cfg.blas_threads) + ' thread(s) in the stages' if cfg.blas_threads else 'as is'}")
    print(format_table(table_rows(result), COLUMNS))
    print("\n".join(accuracy_lines(result)))
    write_json(result, args.json)
    return 0
