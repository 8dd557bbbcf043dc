"""``mocap calibration board`` and ``mocap bench calibration`` (registered into the mocap command line
through the ``mocap.commands`` entry point). ``mocap calibrate`` is the calibrate stage's command."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def register(parsers: dict[str, argparse._SubParsersAction]) -> None:
    root, bench = parsers["root"], parsers["bench"]
    tools = root.add_parser("calibration", help="calibration tools")
    tsub = tools.add_subparsers(dest="what", metavar="TOOL", required=True)
    b = tsub.add_parser("board", help="render a printable board at exact physical scale")
    b.add_argument("name", help="board preset (configs/boards) or TOML file")
    b.add_argument("--out", type=Path, required=True, help="PNG or PDF")
    b.add_argument("--dpi", type=float, default=300.0)
    b.add_argument("--paper", help="a4, a3, a2, a1, a0, letter, tabloid (default: board size + 1 cm margin)")
    b.set_defaults(func=cmd_board)
    u = tsub.add_parser("units", help="write a session's rig calibrated in cm or mm as calibration/rig.toml in metres")
    u.add_argument("session", type=Path)
    u.add_argument("unit", choices=("cm", "mm"), help="the unit the given rig's lengths are in")
    u.set_defaults(func=cmd_units)

    bc = bench.add_parser("calibration", help="rig calibration against ground truth and aniposelib")
    bc.add_argument("--board", default="charuco_a1")
    bc.add_argument("--cameras", type=int, default=6)
    bc.add_argument("--frames", type=int, default=300)
    bc.add_argument("--project", action="store_true", help="projected corners with noise instead of rendered images")
    bc.add_argument("--noise-px", type=float, default=0.3, help="noise of projected corners")
    bc.add_argument("--no-peers", action="store_true")
    bc.add_argument("--seed", type=int, default=0)
    bc.add_argument("--json", type=Path)
    bc.set_defaults(func=cmd_bench)


def cmd_board(args) -> int:
    from calibration.boards import load_board, save_board_image

    board = load_board(args.name)
    out = save_board_image(board, args.out, args.dpi, args.paper)
    w, h = board.size_m
    print(f"{board.name}: {w * 1000:.0f} x {h * 1000:.0f} mm pattern at {args.dpi:g} dpi → {out} "
          "(print at 100% / actual size, then measure a square)")
    return 0


def cmd_units(args) -> int:
    from mocap.session import Session
    from mocap.stages.rig_units import convert_rig

    try:
        out = convert_rig(Session(args.session), args.unit)
    except (FileNotFoundError, ValueError) as e:
        print(e, file=sys.stderr)
        return 2
    print(f"{out}: the rig in metres (from {args.unit}); the stages that use it run again on the next mocap run")
    return 0


def cmd_bench(args) -> int:
    from calibration.bench import CalibBenchConfig, run
    from mocap.bench.common import format_table, write_json

    cfg = CalibBenchConfig(args.board, args.cameras, args.frames, not args.project, args.noise_px, seed=args.seed,
                           peers=not args.no_peers)
    result = run(cfg, progress=lambda s: print(f"… {s}", file=sys.stderr, flush=True))
    print(f"calibration benchmark: {cfg.cameras} cameras, {cfg.frames} frames, board {cfg.board}, "
          f"{'rendered images' if cfg.render else f'projected corners σ {cfg.noise_px}px'}; views per camera "
          f"{result['views']}, detection {result['detect_seconds']:.1f}s, final RMS {result['rms_px']:.3f}px")
    print(format_table(result["rows"], [("method", "method", ""), ("centre_mm_mean", "centre mm", ".2f"),
                                        ("centre_mm_max", "max", ".2f"), ("rotation_deg_mean", "rot deg", ".3f"),
                                        ("rotation_deg_max", "max", ".3f"), ("focal_pct_mean", "focal %", ".3f"),
                                        ("focal_pct_max", "max", ".3f"), ("seconds", "time s", ".1f")]))
    for k, v in result.get("ratios", {}).items():
        print(f"mocap / aniposelib {k}: {v:.3f}")
    write_json(result, args.json)
    return 0
