"""Commands for the products of a capture: the Blender add-on, rendered synthetic takes, datasets,
and benchmarks (parsers added by :func:`add_commands`). The stage commands (fit, retarget, export, ...)
are made from the stage modules in :mod:`mocap.cli.stages`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def cmd_bench_fit(args) -> int:
    from mocap.bench.common import format_table, write_json
    from mocap.bench.fit import FitBenchConfig, run
    from mocap.bench.triangulation import default_bvh

    bvh = args.bvh or default_bvh()
    if bvh is None:
        raise FileNotFoundError("no --bvh given and no shared data folder (../shared/data) to take CMU 01_03 from")
    if args.fingers:
        return _bench_fit_fingers(args, str(bvh))
    cfg = FitBenchConfig(bvh=str(bvh), frames=args.frames or 0, noise_mm=args.noise_mm, dropouts=args.dropouts,
                         seed=args.seed, workers=args.workers)
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
    print(f"joints turning over 45° in one frame (flips): {r['joint_frames_over_45deg']} joint-frames; largest turn "
          f"in one frame {r['max_step_deg']:.0f}°")
    print(f"speed {r['frames_per_second']:.0f} frames/s ({r['seconds']:.2f} s wall, {r['cpu_seconds']:.2f} CPU s: "
          f"{r['frames_per_cpu_second']:.0f} frames per CPU second; first solve on {r['threads']} threads)")
    write_json(r, args.json)
    return 0


def _bench_fit_fingers(args, bvh: str) -> int:
    """``mocap bench fit --fingers``: body52 fitted to noisy body and hand keypoints with procedural fingers."""
    from mocap.bench.common import format_table, write_json
    from mocap.bench.fit import FingersBenchConfig, run_fingers

    cfg = FingersBenchConfig(bvh, args.frames or 0, args.noise_mm, args.hand_noise_mm, args.dropouts, seed=args.seed,
                             repeats=args.repeats, workers=args.workers)
    r = run_fingers(cfg)
    print(f"fit benchmark, fingers: {r['frames']} frames at {r['fps_clip']:.0f} fps, 3D noise σ {cfg.noise_mm} mm "
          f"body, {cfg.hand_noise_mm} mm hands, {cfg.dropouts:.0%} dropouts")
    rows = [{"joint": n, "deg": v} for n, v in r["per_joint_flexion_deg_median"].items() if n.startswith("Left")]
    print(format_table(rows, [("joint", "joint (left hand)", "s"), ("deg", "flexion error ° (median)", ".1f")]))
    print(f"\nflexion median {r['flexion_deg_median']:.1f}° (P95 {r['flexion_deg_p95']:.1f}); fingertips median "
          f"{r['fingertip_mm_median']:.1f} mm (P95 {r['fingertip_mm_p95']:.1f}; input "
          f"{r['input_fingertip_mm_median']:.1f})")
    print(f"fit time: body22 {r['seconds_body22']:.2f} s, body52 {r['seconds_body52']:.2f} s → {r['time_ratio']:.2f}× "
          f"(CPU {r['cpu_ratio']:.2f}×)")
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
                      seed=args.seed, hands=args.hands, people=args.people, spacing=args.spacing,
                      person_offset_s=args.person_offset, frame=args.frame)
    out = render_session(spec, args.out, parts=("take",) if args.no_board else ("take", "board"))
    print(f"session: {out} (run: mocap run {out})")
    return 0


def cmd_bench_people_e2e(args) -> int:
    from mocap.bench.common import write_json
    from mocap.bench.people_e2e import PeopleE2EConfig, run

    base = PeopleE2EConfig(str(args.session))
    r = run(PeopleE2EConfig(str(args.session), str(args.work) if args.work else "", sets=(*base.sets, *args.set)))
    print(f"people from pixels: {r['frames']} frames × {r['cameras']} cameras, {r['true_people']} true people, "
          f"{r['reconstructed_people']} reconstructed, {r['seconds_total']:.1f} s")
    print(f"  every person reconstructed in {r['both_frames'] * 100:.1f} % of frames; frames with 0/1/2/... people "
          f"detected per camera: {r['detections']}")
    for p in r["people"]:
        if p["reconstructed"] < 0:
            print(f"  true person {p['true_person']}: not reconstructed")
            continue
        print(f"  true person {p['true_person']} → person {p['reconstructed']}: {p['frames'] * 100:.1f} % of frames, "
              f"{p['swapped_frames']} swapped, MPJPE raw {p['mpjpe_raw_mm']:.1f} mm, bias-corrected "
              f"{p['mpjpe_bias_corrected_mm']:.1f} mm (P95 {p['mpjpe_bias_corrected_p95_mm']:.0f})")
        fitted = p.get("fitted") or {}
        if "mpjpe_bias_corrected_mm" in fitted:
            print(f"    fitted skeleton: bias-corrected {fitted['mpjpe_bias_corrected_mm']:.1f} mm "
                  f"(P95 {fitted['mpjpe_bias_corrected_p95_mm']:.0f}), {fitted['fit_to_refined_mm']:.1f} mm from the "
                  f"refined points")
    write_json(r, args.json)
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

    session, work = e2e_folders(args.session, args.work)
    r = run(E2EConfig(str(session), str(work) if work else ""))
    c = r["calibration_summary"]
    print(f"end to end from pixels: {r['frames']} frames × {r['cameras']} cameras, {r['seconds_total']:.1f} s")
    print(f"  calibration: centres {c['centre_mm']:.1f} mm, rotations {c['rotation_deg']:.3f}°, focal "
          f"{c['focal_pct']:.2f} % (mean over cameras)")
    print(f"  3D keypoints: MPJPE raw {r['mpjpe_raw_mm']:.1f} mm, bias-corrected {r['mpjpe_bias_corrected_mm']:.1f} mm"
          f" ({r['mpjpe_body_bias_corrected_mm']:.1f} mm with the offsets in the body's frame); reprojection"
          f" median {r['reprojection_px_median']:.2f} px")
    print(f"  joint angles (limb segments): median {r['joint_angle_deg_median']:.1f}°")
    for k, v in r["per_keypoint_raw_mm"].items():
        print(f"    {k:>15}: {v:.1f} mm")
    if r["hands"]:
        _print_e2e_hands(r["hands"])
    write_json(r, args.json)
    return 0


def e2e_folders(session: Path | None, work: Path | None) -> tuple[Path, Path | None]:
    """The session ``bench e2e`` scores and where it runs: without ``--session``, the embedded sample, run in
    ``./bench_e2e`` (the current folder, as ``mocap demo``; beside the sample it wrote into the installed
    package)."""
    if session is not None:
        return session, work
    from mocap.demo import SAMPLE

    if not (SAMPLE / "calibration").is_dir():
        raise FileNotFoundError("no --session given and no embedded sample: render one with mocap synth render")
    return SAMPLE, work if work else Path("bench_e2e").resolve()


def _print_e2e_hands(h: dict) -> None:
    print(f"  hands ({h['hand_px_median']:.0f} px long in the image, median; P10 {h['hand_px_p10']:.0f}): detected in "
          f"{h['detected_share'] * 100:.1f} % of the {h['visible_views']} views where visible "
          f"({h['detected_in_place_share'] * 100:.1f} % in the right place), {h['found_where_not_visible']} found "
          "where none is visible")
    for cam, row in h["per_camera"].items():
        print("    " + cam + ": " + ", ".join(
            f"{side} {v['visible_frames']} visible, detected {_pct(v['detected'])} (in place "
            f"{_pct(v['detected_in_place'])}), 2D {_num(v['keypoint_px_median'])} px, hand {v['hand_px_median']:.0f} px"
            for side, v in row.items()))
    for name in ("refined", "fit"):
        if name in h:
            m = h[name]
            print(f"    {name:>7}: fingers {m['finger_mpjpe_mm']:.1f} mm, fingertips {m['fingertip_mm']:.1f} mm raw, "
                  f"{m['fingertip_hand_bias_corrected_mm']:.1f} mm bias-corrected in the hand's frame "
                  f"({m['fingertip_world_bias_corrected_mm']:.1f} mm in the world's), flexion median "
                  f"{m['flexion_median_deg']:.1f}° (P90 {m['flexion_p90_deg']:.1f}°)")
            if "flexion_median_per_joint_deg" in m:
                print("             flexion per joint: " + ", ".join(
                    f"{k} {v:.0f}°" for k, v in m["flexion_median_per_joint_deg"].items()))


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.0f} %"


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


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


def synth_crowd(args) -> int:
    """``mocap synth keypoints OUT --bvh FILE --people N``: a multi-person take (see mocap.synth.multiperson)."""
    from mocap.synth import CorruptionSpec, RigSpec
    from mocap.synth.multiperson import CrowdSpec, load_motions, make_crowd, write_crowd_session

    if args.people < 1:
        raise ValueError(f"--people must be at least 1, got {args.people}")
    frames = args.frames or 2000
    motions, ks = load_motions(args.bvh, args.people, frames, args.fps)
    take = make_crowd(motions, ks, args.fps, CrowdSpec(people=args.people, seed=args.seed),
                      RigSpec(n_cameras=args.cameras, arc_deg=args.arc_deg, zoom=args.zoom),
                      CorruptionSpec(args.noise_px, args.outliers, args.dropouts, swaps=args.swaps, seed=args.seed))
    out = write_crowd_session(take, args.out, json_2d=False)
    st = take.stats
    print(f"session written: {out} ({st['frames']} frames, {st['cameras']} cameras, {st['people']} people, closest "
          f"approach {st['closest_approach_m']:.2f} m, {st['missed_views']} views hidden, {st['merged_detections']} "
          f"merged detections, {st['clutter_views']} detections that are not people; mocap.toml sets detect.persons)")
    return 0


def cmd_bench_multiperson(args) -> int:
    from mocap.bench.common import format_table, write_json
    from mocap.bench.multiperson import MultiBenchConfig, run

    cfg = MultiBenchConfig(str(args.bvh or ""), args.frames, people=tuple(args.people),
                           scale_people=tuple(args.scale_people), scale_cameras=tuple(args.scale_cameras),
                           scale_frames=args.scale_frames, refine=not args.no_refine, seed=args.seed)
    result = run(cfg, progress=lambda text: print(f"… {text}", file=sys.stderr, flush=True))
    print(f"multi-person benchmark: {cfg.frames} frames, 4 cameras, σ {cfg.noise_px}px, {cfg.outliers:.0%} outliers, "
          f"{cfg.dropouts:.0%} dropouts, motion: {cfg.bvh or 'synthetic walker'}")
    rows = []
    for r in result["accuracy"]:
        for p in r["persons"]:
            rows.append({"people": r["people"], "person": p["person"] + 1, "accuracy": 100 * r["accuracy"],
                         "switches": r["identity_switches"], "identities": r["identities"],
                         "ms": r["ms_per_frame"], "cpu": r["cpu_ms_per_frame"], "mpjpe": p["mpjpe_mm"],
                         "given": p["given_mpjpe_mm"],
                         "ratio": p["ratio"]})
    print(format_table(rows, [("people", "people", "d"), ("person", "person", "d"), ("accuracy", "assoc %", ".2f"),
                              ("switches", "ID switches", "d"), ("identities", "identities", "d"),
                              ("ms", "ms/frame", ".2f"), ("cpu", "CPU ms/frame", ".2f"), ("mpjpe", "MPJPE mm", ".1f"),
                              ("given", "given-assoc mm", ".1f"), ("ratio", "ratio", ".2f")]))
    print(format_table(result["scaling"], [("people", "people", "d"), ("cameras", "cameras", "d"),
                                           ("ms_per_frame", "ms/frame", ".2f"),
                                           ("cpu_ms_per_frame", "CPU ms/frame", ".2f"), ("accuracy", "assoc", ".3f"),
                                           ("identity_switches", "ID switches", "d"),
                                           ("identities", "identities", "d")]))
    write_json(result, args.json)
    return 0


def add_commands(sub: argparse._SubParsersAction, ssub: argparse._SubParsersAction,
                 bsub: argparse._SubParsersAction) -> None:
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
    rr.add_argument("--hands", action="store_true",
                    help="procedural finger motion on the character's fingers; ground truth with 42 hand keypoints")
    rr.add_argument("--people", type=int, default=1,
                    help="copies of the character, each playing a later segment of the clip, passing each other")
    rr.add_argument("--spacing", type=float, default=1.2, help="metres between neighbouring people (--people > 1)")
    rr.add_argument("--person-offset", type=float, default=4.0,
                    help="seconds of clip between one person's segment and the next's")
    rr.add_argument("--frame", choices=("body", "upper"), default="body",
                    help="what every camera keeps in view: the whole body, or the hips up (close-range hands)")
    rr.add_argument("--no-board", action="store_true",
                    help="no calibration take: the session gets the true rig as calibration/rig.toml")
    rr.set_defaults(func=cmd_synth_render)

    bf = bsub.add_parser("fit", help="skeleton fit against mocap ground truth (position, joint angles, speed)")
    bf.add_argument("--bvh", type=Path, help="motion clip (default: CMU 01_03 from the shared data)")
    bf.add_argument("--frames", type=int, help="frames (default: the whole clip)")
    bf.add_argument("--noise-mm", type=float, default=10.0, help="3D noise σ per coordinate")
    bf.add_argument("--dropouts", type=float, default=0.10)
    bf.add_argument("--seed", type=int, default=0)
    bf.add_argument("--json", type=Path)
    bf.add_argument("--fingers", action="store_true", help="the fingers variant: body52 on body + hand keypoints")
    bf.add_argument("--hand-noise-mm", type=float, default=4.0, help="with --fingers: 3D noise σ of the hand keypoints")
    bf.add_argument("--repeats", type=int, default=3, help="with --fingers: timing is the best of this many fits")
    bf.add_argument("--workers", type=int, default=0,
                    help="fit.workers: threads for the first solve (default 0: one per core; 1: one thread)")
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
    be.add_argument("--work", type=Path, help="where to run it (default: SESSION_e2e beside it; for the embedded "
                    "sample ./bench_e2e)")
    be.add_argument("--json", type=Path)
    be.set_defaults(func=cmd_bench_e2e)
    bp = bsub.add_parser("people-e2e", help="several people from pixels on a take of mocap synth render --people N")
    bp.add_argument("session", type=Path, help="rendered session (mocap synth render --people N)")
    bp.add_argument("--work", type=Path, help="where to run it (default: SESSION_people_e2e beside it)")
    bp.add_argument("--json", type=Path)
    bp.add_argument("--set", action="append", default=[], metavar="STAGE.KEY=VALUE",
                    help="for the run, repeatable (--set detect.variant=heavy --set detect.model_path=FILE)")
    bp.set_defaults(func=cmd_bench_people_e2e)

    bs = bsub.add_parser("dataset", help="random window reads from a dataset file larger than memory caches")
    bs.add_argument("--file", type=Path, default=Path("bench_dataset.h5"), help="where to write the test file")
    bs.add_argument("--size-gb", type=float, default=2.0)
    bs.add_argument("--length", type=int, default=32)
    bs.add_argument("--reads", type=int, default=50000)
    bs.add_argument("--keep", action="store_true", help="keep the file")
    bs.add_argument("--json", type=Path)
    bs.set_defaults(func=cmd_bench_dataset)

    bm = bsub.add_parser("multiperson", help="association and tracking of several people (accuracy, ID switches, "
                                            "MPJPE, time vs people and cameras)")
    bm.add_argument("--bvh", type=Path, help="motion clip cut into one motion per person (default: a synthetic walker)")
    bm.add_argument("--frames", type=int, default=2000)
    bm.add_argument("--people", type=int, nargs="+", default=[3, 5], help="accuracy runs (4 cameras, with refine)")
    bm.add_argument("--scale-people", type=int, nargs="+", default=[1, 2, 3, 5, 8, 10])
    bm.add_argument("--scale-cameras", type=int, nargs="+", default=[4, 8, 16])
    bm.add_argument("--scale-frames", type=int, default=300)
    bm.add_argument("--no-refine", action="store_true", help="score the triangulated points (faster)")
    bm.add_argument("--seed", type=int, default=0)
    bm.add_argument("--json", type=Path)
    bm.set_defaults(func=cmd_bench_multiperson)
