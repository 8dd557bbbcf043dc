"""Command line: ``mocap STAGE SESSION [options]``. The CLI owns all terminal output."""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path

from mocap import __version__

log = logging.getLogger("mocap")

STAGES_HELP = """one command:
  run           every stage below, cached: videos (or 2D keypoints) → animation files + report
pipeline stages (in order):
  calibrate     board videos → calibrated rig (intrinsics, extrinsics, bundle adjustment)
  detect        camera videos → 2D keypoints (BlazePose, resumable)
  triangulate   2D keypoints + rig → 3D points (robust DLT)
  refine        bundle-adjusted smoothing of the 3D points against all 2D evidence
  fit           3D points → subject skeleton + joint rotations (motion/body22.npz)
  retarget      fitted motion → game rig (mixamo, ue5, unity, cmu), feet locked
  export        BVH / FBX / GLB / TRC files
other commands:
  view          3D view of a session (window, or PNG / MP4 when headless)
  synth         synthetic sessions with ground truth
  bench         benchmarks (print a table, write JSON)
  calibration   calibration tools (printable boards)
  blender-addon the Blender add-on as an installable zip
  dataset       many takes into one HDF5 dataset (build, synth, info)
  demo          run the pipeline on the sample session
"""


def _session_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("session", type=Path, help="session folder (see README: session layout)")
    p.add_argument("--overwrite", action="store_true", help="redo the stage even if its output exists")
    p.add_argument("--config", type=Path, help="TOML file with [triangulate] / [refine] tables")


def _load_tables(path: Path | None) -> dict:
    if path is None:
        return {}
    from mocap.config_files import check_keys, read_toml

    table = read_toml(path)
    check_keys(table, {"triangulate", "refine"}, str(path))
    return table


def _triangulate_cfg(args):
    from mocap.config import config_from_dict
    from mocap.stages import triangulate

    cfg = config_from_dict(triangulate.Config, _load_tables(args.config).get("triangulate", {}),
                           f"{args.config} [triangulate]")
    if getattr(args, "max_reproj_px", None) is not None:
        cfg = replace(cfg, max_reproj_px=args.max_reproj_px or None)
    return cfg


def _refine_cfg(args):
    from mocap.config import config_from_dict
    from mocap.optim.refine import RefineConfig
    from mocap.stages import refine

    table = dict(_load_tables(args.config).get("refine", {}))
    stage = {k: table.pop(k) for k in ("min_score", "bones") if k in table}
    solver = config_from_dict(RefineConfig, table, f"{args.config} [refine]")
    over = {k: getattr(args, k) for k in ("noise_px", "accel_sigma", "bone_sigma") if getattr(args, k) is not None}
    base = config_from_dict(refine.Config, stage, f"{args.config} [refine]")
    return replace(base, solver=replace(solver, **over))


def cmd_detect(args) -> int:
    from mocap.stages import detect

    cfg = detect.Config(detector=args.detector, variant=args.variant, model_path=args.model or "",
                        num_poses=args.persons, stride=args.stride, start=args.start, stop=args.stop,
                        workers=args.workers, overlay=args.overlay)
    out = detect.main(args.session, cfg, overwrite=args.overwrite)
    print(f"2D keypoints: {out}")
    return 0


def cmd_triangulate(args) -> int:
    from mocap.stages import triangulate

    out = triangulate.main(args.session, _triangulate_cfg(args), overwrite=args.overwrite)
    print(f"3D points: {out}")
    return 0


def cmd_refine(args) -> int:
    from mocap.io.hdf5 import read_points3d
    from mocap.stages import refine

    out = refine.main(args.session, _refine_cfg(args), overwrite=args.overwrite)
    for s in read_points3d(out).info.get("summaries", []):
        print(f"refine: {s['iterations']} iterations, σ {s['noise_px']:.2f}px, RMS {s['rms_px']:.2f}px, "
              f"{s['rejected']}/{s['observations']} rejected, {'usable' if s['usable'] else 'NOT usable'}: "
              f"{s['message']}")
    print(f"3D points: {out}")
    return 0


def cmd_synth_keypoints(args) -> int:
    from mocap.synth import CorruptionSpec, RigSpec, make_take, write_session

    take = make_take(args.bvh, args.frames, args.fps, RigSpec(n_cameras=args.cameras),
                     CorruptionSpec(args.noise_px, args.outliers, args.dropouts, swaps=args.swaps, seed=args.seed))
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


def cmd_bench_detect(args) -> int:
    from mocap.bench.common import format_table, write_json
    from mocap.bench.detect import DetectBenchConfig, default_videos, run

    videos = args.videos or default_videos()
    if videos is None:
        print("no videos: pass --videos FOLDER or set MOCAP_SHARED_DATA", file=sys.stderr)
        return 2
    cfg = DetectBenchConfig(str(videos), args.variant, args.model or "", args.stop)
    result = run(cfg, progress=lambda s: print(f"… {s}", file=sys.stderr, flush=True))
    print(f"detection benchmark: BlazePose {cfg.variant}, {result['cores']} cores, videos {videos}; "
          "per-camera rows run alone on one core")
    print(format_table(result["rows"], [("camera", "camera", ""), ("frames", "frames", "d"),
                                        ("inference_ms", "inference ms/frame", ".1f"),
                                        ("decode_ms", "decode ms/frame", ".1f"), ("fps", "frames/s", ".1f"),
                                        ("wall_s", "wall s", ".2f"), ("peak_mb", "peak MB", ".0f")]))
    p = result["parallel"]
    print(f"all cameras in parallel: {p['wall_s']:.2f} s ({p['fps']:.1f} frames/s, peak {p['peak_mb']:.0f} MB); "
          f"ideal (sum of inference ÷ cores) {p['ideal_s']:.2f} s → {p['wall_over_ideal']:.2f}×; "
          f"one process after the other {p['sequential_wall_s']:.2f} s")
    write_json(result, args.json)
    return 0


def cmd_fit(args) -> int:
    from mocap.fit import FitConfig
    from mocap.stages import fit

    solver = FitConfig(skeleton=args.skeleton, symmetric=args.symmetric)
    out = fit.main(args.session, fit.Config(solver=solver, source=args.source, person=args.person), args.overwrite)
    print(f"motion: {out}")
    return 0


def cmd_retarget(args) -> int:
    from mocap.stages import retarget

    out = retarget.main(args.session, retarget.Config(target=args.target, foot_lock=not args.no_foot_lock),
                        args.overwrite)
    print(f"motion: {out}")
    return 0


def cmd_export(args) -> int:
    from mocap.stages import export

    formats = tuple(f.strip() for f in args.format.split(",") if f.strip())
    bad = [f for f in formats if f not in export.FORMATS]
    if bad:
        raise ValueError(f"--format: unknown {bad} (expected some of {', '.join(export.FORMATS)})")
    motion = args.target or "body22"
    if args.target:
        from mocap.retarget import load_target_rig

        motion = load_target_rig(args.target).name
        from mocap.stages import retarget

        retarget.main(args.session, retarget.Config(target=args.target))
    outs = export.main(args.session, export.Config(formats=formats, motions=(motion,), units=args.units, up=args.up),
                       args.overwrite)
    print("\n".join(str(o) for o in outs))
    return 0


def cmd_bench_fit(args) -> int:
    from mocap.bench.common import format_table, write_json
    from mocap.bench.fit import FitBenchConfig, run
    from mocap.bench.triangulation import default_bvh

    bvh = args.bvh or default_bvh()
    if bvh is None:
        raise FileNotFoundError("no --bvh given and no shared data folder (../shared/data) to take CMU 01_03 from")
    cfg = FitBenchConfig(bvh=str(bvh), frames=args.frames or 0, noise_mm=args.noise_mm, dropouts=args.dropouts,
                         seed=args.seed)
    r = run(cfg)
    print(f"fit benchmark: {r['frames']} frames at {r['fps_clip']:.0f} fps, 3D noise σ {cfg.noise_mm} mm per "
          f"coordinate, {cfg.dropouts:.0%} dropouts")
    names = list(r["per_joint_angle"]) + [n for n in r["per_joint_mm"] if n not in r["per_joint_angle"]]
    rows = [{"joint": n, "mm": r["per_joint_mm"].get(n),
             "local": r["per_joint_angle"].get(n, {}).get("local_deg_median"),
             "world": r["per_joint_angle"].get(n, {}).get("world_deg_median")} for n in names]
    print(format_table(rows, [("joint", "joint", "s"), ("mm", "position mm", ".1f"),
                              ("local", "joint angle °", ".1f"), ("world", "segment angle °", ".1f")]))
    print(f"\ninput error {r['input_mpjpe_mm']:.1f} mm → fit {r['mpjpe_mm']:.1f} mm (P95 {r['p95_mm']:.1f}); "
          f"{r['ratio_to_sigma']:.2f} × σ, {r['ratio_to_input_mpjpe']:.2f} × the input error")
    print(f"joint angle median {r['joint_angle_deg_median']:.1f}° (raw, rest definitions not aligned: "
          f"{r['raw_joint_angle_deg_median']:.1f}°); segment orientation median {r['world_angle_deg_median']:.1f}°")
    print(f"speed {r['frames_per_second']:.0f} frames/s ({r['seconds']:.2f} s)")
    write_json(r, args.json)
    return 0


def cmd_synth_render(args) -> int:
    from mocap.bench.triangulation import default_bvh
    from mocap.synth.render import RenderSpec, render_session

    bvh = args.bvh or default_bvh()
    if bvh is None:
        raise FileNotFoundError("no --bvh given and no shared data folder to take CMU 01_03 from")
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size: expected WIDTHxHEIGHT, got {args.size!r}") from None
    spec = RenderSpec(str(bvh), start_s=args.start, seconds=args.seconds, fps=args.fps, cameras=args.cameras,
                      radius=args.radius, size=(w, h), samples=args.samples, board_frames=args.board_frames,
                      seed=args.seed)
    out = render_session(spec, args.out)
    print(f"session: {out} (run: mocap run {out})")
    return 0


def cmd_run(args) -> int:
    from mocap.bench.common import format_table
    from mocap.pipeline import run

    r = run(args.session, config_path=args.config, sets=args.set or [], from_stage=args.from_stage)
    rows = [{"stage": k, "status": v, "s": r.timings.get(k, 0.0)} for k, v in r.status.items()]
    print(format_table(rows, [("stage", "stage", "s"), ("status", "status", "s"), ("s", "seconds", ".2f")]))
    print(f"total {sum(r.timings.values()):.2f} s; log {r.log_file}")
    for stage in ("export", "report"):
        for path in r.outputs.get(stage, []):
            print(f"{stage}: {path}")
    m = r.metrics
    if m:
        rp = m["reprojection_px"]
        print(f"quality: reprojection median {rp['median']:.2f} px, bone-length CV {m['bone_length_cv']['mean']:.2%}, "
              f"{m['reconstructed']['frames_all_joints']:.0%} of frames complete")
    return 0


def cmd_view(args) -> int:
    from mocap.view import view

    out = view(args.session, out=args.out, frames=args.frames, turntable=args.turntable)
    if out:
        print(f"rendered: {out}")
    return 0


def cmd_dataset(args) -> int:
    import json

    from mocap.dataset.build import BuildConfig, build, info

    if args.what == "info":
        i = info(args.file)
        per = i.pop("per_take_frames")
        print(json.dumps(i, indent=1))
        print(f"{len(per)} takes: " + ", ".join(f"{k} ({v} frames)" for k, v in list(per.items())[:20])
              + (" ..." if len(per) > 20 else ""))
        return 0
    cfg = BuildConfig(float16_2d=args.float16)
    if args.what == "build":
        s = build(args.sessions, args.out, cfg, args.workers, args.scheduler, progress=print)
    else:
        from mocap.bench.triangulation import default_bvh
        from mocap.dataset.synth import synth

        bvhs = args.bvh or ([default_bvh().parent / n for n in ("cmu_01_01.bvh", "cmu_01_03.bvh")]
                            if default_bvh() else [])
        if not bvhs:
            raise FileNotFoundError("no --bvh clips given and no shared data folder with CMU clips")
        s = synth(args.takes, args.out, bvhs, args.seed, args.pixels, args.workers, args.scheduler, cfg)
    hours = s.compute_seconds / 3600
    rate = len(s.committed) / hours if hours > 0 else float("nan")
    print(f"{args.out}: {len(s.committed)} takes committed, {len(s.skipped)} already there, {len(s.failed)} failed "
          f"in {s.seconds:.1f} s ({rate:.0f} takes per hour per core)")
    for tid, err in s.failed.items():
        print(f"  failed {tid}: {err}")
    return 0 if not s.failed else 1


def cmd_blender_addon(args) -> int:
    from mocap.addon import build_zip

    out = build_zip(args.zip)
    print(f"add-on: {out} (Blender 4.2+: Edit > Preferences > Add-ons > Install from Disk)")
    return 0


def cmd_bench_e2e(args) -> int:
    from mocap.bench.common import write_json
    from mocap.bench.e2e import E2EConfig, run

    session = args.session
    if session is None:
        from mocap.demo import SAMPLE

        if not (SAMPLE / "calibration").is_dir():
            raise FileNotFoundError("no --session given and no embedded sample: render one with mocap synth render")
        session = SAMPLE
    r = run(E2EConfig(str(session), str(args.work) if args.work else ""))
    c = r["calibration_summary"]
    print(f"end to end from pixels: {r['frames']} frames × {r['cameras']} cameras, {r['seconds_total']:.1f} s")
    print(f"  calibration: centres {c['centre_mm']:.1f} mm, rotations {c['rotation_deg']:.3f}°, focal "
          f"{c['focal_pct']:.2f} % (mean over cameras)")
    print(f"  3D keypoints: MPJPE raw {r['mpjpe_raw_mm']:.1f} mm, bias-corrected {r['mpjpe_bias_corrected_mm']:.1f} mm"
          f"; reprojection median {r['reprojection_px_median']:.2f} px")
    print(f"  joint angles (limb segments): median {r['joint_angle_deg_median']:.1f}°")
    for k, v in r["per_keypoint_raw_mm"].items():
        print(f"    {k:>15}: {v:.1f} mm")
    write_json(r, args.json)
    return 0


def cmd_bench_dataset(args) -> int:
    from mocap.bench.common import write_json
    from mocap.bench.dataset import DatasetBenchConfig, run

    cfg = DatasetBenchConfig(out=str(args.file), size_gb=args.size_gb, length=args.length, reads=args.reads)
    r = run(cfg)
    print(f"dataset reader: {r['file_gb']:.2f} GB file ({r['index_gb']:.2f} GB of 3D keypoints), {r['windows']} "
          f"windows of {cfg.length} frames × 33 keypoints")
    for label in ("cold", "warm"):
        print(f"  {label:>4} cache: {r[label]['windows_per_s_single']:,.0f} windows/s one by one, "
              f"{r[label]['windows_per_s_batched']:,.0f} windows/s in batches of {cfg.batch}")
    write_json(r, args.json)
    if not args.keep:
        Path(cfg.out).unlink(missing_ok=True)
    return 0


def cmd_demo(args) -> int:
    from mocap.demo import run_demo

    lines, ok = run_demo(args.out)
    print("\n".join(lines))
    return 0 if ok else 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mocap", description="Multi-camera markerless motion capture.",
                                epilog=STAGES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"mocap {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    dt = sub.add_parser("detect", help="camera videos → 2D keypoints (BlazePose)")
    dt.add_argument("session", type=Path, help="session folder with videos/<camera>.mp4")
    dt.add_argument("--overwrite", action="store_true", help="start again instead of resuming")
    dt.add_argument("--detector", choices=["blazepose", "onnx"], default="blazepose")
    dt.add_argument("--variant", choices=["lite", "full", "heavy"], default="full", help="BlazePose model")
    dt.add_argument("--model", help="BlazePose lite/heavy landmark .tflite, or the RTMPose / RTMO .onnx file")
    dt.add_argument("--persons", type=int, default=1, help="people detected per frame")
    dt.add_argument("--stride", type=int, default=1)
    dt.add_argument("--start", type=int, default=0)
    dt.add_argument("--stop", type=int)
    dt.add_argument("--workers", type=int, default=0, help="processes (default: one per camera, ≤ cores)")
    dt.add_argument("--overlay", action="store_true", help="also write review/<camera>_pose2d.mp4")
    dt.set_defaults(func=cmd_detect)

    t = sub.add_parser("triangulate", help="2D keypoints + rig → 3D points")
    _session_arg(t)
    t.add_argument("--max-reproj-px", type=float, help="drop views beyond this error (0: plain DLT)")
    t.set_defaults(func=cmd_triangulate)

    r = sub.add_parser("refine", help="bundle-adjusted smoothing of the 3D points")
    _session_arg(r)
    r.add_argument("--noise-px", type=float, help="2D noise σ in pixels (default: estimated)")
    r.add_argument("--accel-sigma", type=float, help="typical joint acceleration, m/s² (smaller: smoother)")
    r.add_argument("--bone-sigma", type=float, help="allowed bone-length variation, m")
    r.set_defaults(func=cmd_refine)

    rn = sub.add_parser("run", help="the whole pipeline, cached (see README: mocap run)")
    rn.add_argument("session", type=Path)
    rn.add_argument("--config", type=Path, help="TOML with one table per stage (overrides SESSION/mocap.toml)")
    rn.add_argument("--set", action="append", metavar="STAGE.KEY=VALUE", help="override one setting (repeatable)")
    rn.add_argument("--from", dest="from_stage", metavar="STAGE", help="redo this stage and every later one")
    rn.set_defaults(func=cmd_run)

    vw = sub.add_parser("view", help="3D view of the session's skeleton (headless: PNG frames / MP4)")
    vw.add_argument("session", type=Path)
    vw.add_argument("--out", type=Path, help="render to this .mp4 or folder of PNGs instead of a window")
    vw.add_argument("--frames", type=int, default=0, help="frames to render (default: all)")
    vw.add_argument("--turntable", action="store_true", help="orbit the camera around one frame")
    vw.set_defaults(func=cmd_view)

    ft = sub.add_parser("fit", help="3D points → skeleton motion (motion/body22.npz)")
    ft.add_argument("session", type=Path)
    ft.add_argument("--overwrite", action="store_true")
    ft.add_argument("--skeleton", default="body22", help="skeleton preset or TOML file")
    ft.add_argument("--source", default="refined", choices=["refined", "triangulated"])
    ft.add_argument("--person", type=int, default=0)
    ft.add_argument("--symmetric", action="store_true", help="left and right bones share one length")
    ft.set_defaults(func=cmd_fit)

    rt = sub.add_parser("retarget", help="fitted motion → game rig (motion/<rig>.npz)")
    rt.add_argument("session", type=Path)
    rt.add_argument("--target", default="mixamo", help="mixamo | ue5 | unity | cmu | rig TOML")
    rt.add_argument("--no-foot-lock", action="store_true")
    rt.add_argument("--overwrite", action="store_true")
    rt.set_defaults(func=cmd_retarget)

    ex = sub.add_parser("export", help="BVH / FBX / GLB / TRC files (export/)")
    ex.add_argument("session", type=Path)
    ex.add_argument("--format", default="bvh,fbx", help="comma-separated: bvh,fbx,glb,trc")
    ex.add_argument("--target", help="export the motion retargeted to this rig (default: the fitted skeleton)")
    ex.add_argument("--units", choices=["m", "cm", "cmu"], help="BVH units (default: the rig's)")
    ex.add_argument("--up", choices=["y", "z"], help="up axis (default: the rig's; y for the fitted skeleton)")
    ex.add_argument("--overwrite", action="store_true")
    ex.set_defaults(func=cmd_export)

    s = sub.add_parser("synth", help="synthetic sessions with ground truth")
    ssub = s.add_subparsers(dest="what", metavar="WHAT", required=True)
    k = ssub.add_parser("keypoints", help="BVH clip → virtual ring rig → corrupted 2D keypoints session")
    k.add_argument("out", type=Path)
    k.add_argument("--bvh", type=Path, required=True)
    _take_args(k, frames=None)
    k.add_argument("--hdf5", action="store_true", help="write pose2d.h5 instead of OpenPose JSON")
    k.set_defaults(func=cmd_synth_keypoints)
    rr = ssub.add_parser("render", help="BVH clip → realistic character rendered by a camera ring (bpy, Cycles)")
    rr.add_argument("out", type=Path)
    rr.add_argument("--bvh", type=Path, help="motion clip (default: CMU 01_03 from the shared data)")
    rr.add_argument("--start", type=float, default=0.0, help="seconds into the clip")
    rr.add_argument("--seconds", type=float, default=2.5)
    rr.add_argument("--fps", type=float, default=30.0)
    rr.add_argument("--cameras", type=int, default=4)
    rr.add_argument("--radius", type=float, default=3.0, help="camera ring radius (m)")
    rr.add_argument("--size", default="640x480", help="image size WxH")
    rr.add_argument("--samples", type=int, default=12, help="Cycles samples per pixel")
    rr.add_argument("--board-frames", type=int, default=40, help="frames of the calibration take")
    rr.add_argument("--seed", type=int, default=0)
    rr.set_defaults(func=cmd_synth_render)

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
    bd.add_argument("--model", help="landmark .tflite for lite/heavy")
    bd.add_argument("--stop", type=int, help="frames per camera")
    bd.add_argument("--json", type=Path)
    bd.set_defaults(func=cmd_bench_detect)

    bf = bsub.add_parser("fit", help="skeleton fit against mocap ground truth (position, joint angles, speed)")
    bf.add_argument("--bvh", type=Path, help="motion clip (default: CMU 01_03 from the shared data)")
    bf.add_argument("--frames", type=int, help="frames (default: the whole clip)")
    bf.add_argument("--noise-mm", type=float, default=10.0, help="3D noise σ per coordinate")
    bf.add_argument("--dropouts", type=float, default=0.10)
    bf.add_argument("--seed", type=int, default=0)
    bf.add_argument("--json", type=Path)
    bf.set_defaults(func=cmd_bench_fit)

    ds = sub.add_parser("dataset", help="HDF5 datasets of many takes")
    dsub = ds.add_subparsers(dest="what", metavar="WHAT", required=True)
    db = dsub.add_parser("build", help="sessions (real or synthetic) → one HDF5 file")
    db.add_argument("sessions", nargs="+", type=Path)
    dy = dsub.add_parser("synth", help="randomised synthetic takes straight into a dataset")
    dy.add_argument("--takes", type=int, required=True)
    dy.add_argument("--bvh", type=Path, action="append", help="clips to sample (default: the shared CMU clips)")
    dy.add_argument("--pixels", action="store_true", help="render each take (bpy) instead of synthetic 2D")
    dy.add_argument("--seed", type=int, default=0)
    for p_ in (db, dy):
        p_.add_argument("--out", type=Path, required=True)
        p_.add_argument("--float16", action="store_true", help="store 2D keypoints as float16")
        p_.add_argument("--workers", type=int, default=0, help="local processes (default: one per core)")
        p_.add_argument("--scheduler", help="Dask scheduler address (tcp://host:8786): run the takes on that cluster")
        p_.set_defaults(func=cmd_dataset)
    di = dsub.add_parser("info", help="summary of a dataset file")
    di.add_argument("file", type=Path)
    di.set_defaults(func=cmd_dataset)

    ba = sub.add_parser("blender-addon", help="package the Blender add-on")
    ba.add_argument("--zip", type=Path, default=Path("mocap_importer.zip"), help="where to write the zip")
    ba.set_defaults(func=cmd_blender_addon)

    be = bsub.add_parser("e2e", help="pipeline from pixels on a rendered take against its ground truth")
    be.add_argument("--session", type=Path, help="rendered session (default: the embedded sample)")
    be.add_argument("--work", type=Path, help="where to run it (default: SESSION_e2e beside it)")
    be.add_argument("--json", type=Path)
    be.set_defaults(func=cmd_bench_e2e)

    bs = bsub.add_parser("dataset", help="random window reads from a dataset file larger than memory caches")
    bs.add_argument("--file", type=Path, default=Path("bench_dataset.h5"), help="where to write the test file")
    bs.add_argument("--size-gb", type=float, default=2.0)
    bs.add_argument("--length", type=int, default=32)
    bs.add_argument("--reads", type=int, default=50000)
    bs.add_argument("--keep", action="store_true", help="keep the file")
    bs.add_argument("--json", type=Path)
    bs.set_defaults(func=cmd_bench_dataset)

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
    p.add_argument("--frames", type=int, default=frames, help="number of frames (default: whole clip)")
    p.add_argument("--fps", type=float, default=60.0)
    p.add_argument("--cameras", type=int, default=4)
    p.add_argument("--noise-px", type=float, default=2.0)
    p.add_argument("--outliers", type=float, default=0.05)
    p.add_argument("--dropouts", type=float, default=0.10)
    p.add_argument("--swaps", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, KeyError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
