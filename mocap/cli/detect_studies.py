"""``python -m mocap.bench.detect parallel | warmup | options``: the detection studies' command line and printed
tables (the measurements live in :mod:`mocap.bench.detect`; ``mocap bench detect`` is the parallel one)."""

from __future__ import annotations

import argparse
import logging
from dataclasses import replace
from pathlib import Path

from mocap.bench import detect as bench_detect
from mocap.bench.common import format_table, write_json
from mocap.bench.detect import (
    PARALLEL_COLUMNS,
    DetectBenchConfig,
    default_videos,
    run,
    speed_options,
    summary,
    warmup_sweep,
)
from mocap.io.video import find_videos
from mocap.stages import detect


def main(argv: list[str] | None = None) -> int:

    ap = argparse.ArgumentParser(prog="python -m mocap.bench.detect", description=bench_detect.__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    for name in ("parallel", "warmup", "options"):
        p = sub.add_parser(name)
        p.add_argument("--videos", type=Path, help="folder of camera videos (default: the shared Pose2Sim demo)")
        p.add_argument("--json", type=Path)
        p.add_argument("--stop", type=int)
        if name == "parallel":
            p.add_argument("--cameras", nargs="+", default=(), help="a subset, e.g. 3 of the 4 demo cameras")
            p.add_argument("--repeat", type=int, default=3)
            p.add_argument("--split", action="store_true", help="detect.split")
            p.add_argument("--workers", type=int, default=0)
        elif name == "warmup":
            p.add_argument("--cameras", nargs="+", default=("cam01",))
            p.add_argument("--starts", type=int, nargs="+", default=(25, 50, 75))
            p.add_argument("--warmups", type=int, nargs="+", default=(0, 10, 20, 30, 40))
            p.add_argument("--span", type=int, default=25)
        else:
            p.add_argument("--cameras", nargs="+", default=("cam01",))
            p.add_argument("--heavy", type=Path, help="pose_landmark_heavy.tflite (default: the shared one)")
            p.add_argument("--lite", type=Path, help="pose_landmark_lite.tflite (not shipped: only with this)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    folder = args.videos or default_videos()
    if folder is None:
        ap.error("no videos: pass --videos FOLDER or set MOCAP_SHARED_DATA")
    if args.what == "parallel":
        cfg = DetectBenchConfig(str(folder), stop=args.stop, repeat=args.repeat, cameras=tuple(args.cameras),
                                split=args.split, workers=args.workers)
        result = run(cfg)
        print(format_table(result["rows"], PARALLEL_COLUMNS))
        print(summary(result))
    else:
        videos = find_videos(folder)
        rows = []
        for cam in args.cameras:
            if args.what == "warmup":
                rows += warmup_sweep(videos[cam], tuple(args.starts), tuple(args.warmups), args.span,
                                     detect.Config(stop=args.stop))
            else:
                ref = detect.Config(stop=args.stop)
                heavy = args.heavy or (Path(folder).parents[1] / "models" / "pose_landmark_heavy.tflite")
                options = {"stride 2": replace(ref, stride=2), "stride 3": replace(ref, stride=3)}
                if heavy.is_file():
                    options["heavy"] = replace(ref, variant="heavy", model_path=str(heavy))
                if args.lite:
                    options["lite"] = replace(ref, variant="lite", model_path=str(args.lite))
                rows += speed_options(videos[cam], options, ref)
        cols = ([("camera", "camera", ""), ("start", "cut at", "d"), ("warmup", "warm-up", "d")]
                if args.what == "warmup" else
                [("camera", "camera", ""), ("option", "option", ""), ("cpu_ms", "CPU ms/frame", ".1f"),
                 ("inference_ms", "inference ms", ".1f"), ("speedup", "speed-up (CPU)", ".2f")])
        print(format_table(rows, cols + [("median_px", "median px", ".2f"), ("p95_px", "P95 px", ".2f")]
                           + ([("max_px", "max px", ".1f")] if args.what == "warmup" else [])))
        result = {"what": args.what, "videos": str(folder), "rows": rows}
    write_json(result, args.json)
    return 0

