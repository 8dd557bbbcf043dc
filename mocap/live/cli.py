"""``mocap live SESSION``: the command (terminal output lives here)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def add_live_command(sub: argparse._SubParsersAction) -> None:
    lv = sub.add_parser("live", help="live 3D preview from the cameras (or the session's videos), optionally recorded",
                        description="Detect (fast model) and triangulate every camera's frames as they come, show "
                                    "the skeleton and each camera's health; the cameras are SESSION/live.toml's "
                                    "[cameras] (device index or stream URL), or the session's videos with "
                                    "--from-videos. Ctrl-C (or q in the window) ends.")
    lv.add_argument("session", type=Path, help="session with a rig (calibration/)")
    lv.add_argument("--from-videos", action="store_true", help="play SESSION/videos at their real rate")
    lv.add_argument("--loop", action="store_true", help="with --from-videos: start the videos again at their end")
    lv.add_argument("--seconds", type=float, help="stop after this long (default: until the streams end / Ctrl-C)")
    lv.add_argument("--record", type=Path, metavar="OUT", help="also write every frame into a new session OUT")
    lv.add_argument("--codec", choices=("mjpg", "ffv1", "mp4v"), default="mjpg",
                    help="--record codec (ffv1: lossless, slow; mjpg: JPEG 95, fast)")
    out = lv.add_mutually_exclusive_group()
    out.add_argument("--window", action="store_true", help="an OpenCV window (default when a display is present)")
    out.add_argument("--mjpeg", type=int, metavar="PORT", help="serve the preview at http://127.0.0.1:PORT/")
    out.add_argument("--png", type=Path, metavar="FILE", help="keep the latest preview in this PNG")
    out.add_argument("--no-preview", action="store_true", help="measure only")
    lv.add_argument("--detector", default="blazepose")
    lv.add_argument("--variant", choices=("lite", "full", "heavy"), default="full",
                    help="BlazePose model (lite needs its file: --model-path)")
    lv.add_argument("--model-path", "--model", dest="model", default="",
                    help="landmark .tflite, or the .onnx of --detector onnx (detect.model_path)")
    lv.add_argument("--workers", type=int, default=0, help="detections at once (default: one per core)")
    lv.add_argument("--persons", type=int, default=None,
                    help="people to follow (default: the session's detect.persons when it is a number, else 1)")
    lv.add_argument("--json", type=Path, help="write the measurements here")
    lv.set_defaults(func=cmd_live)


def live_persons(session, given: int | None) -> int:
    """The people live follows: ``given`` (--persons), else the session's ``detect.persons`` when it is a number
    (a take of N people configured for ``mocap run``), else 1 ('auto' counts people over a whole take: offline's)."""
    if given is not None:
        return given
    import logging

    from mocap.settings import load_config

    try:
        persons = load_config(session)[0].detect.persons
    except (ValueError, OSError) as e:  # a broken mocap.toml is mocap run's to refuse: live follows one person
        logging.getLogger(__name__).warning("live: the session's settings are unreadable (%s): following one person "
                                            "(--persons N to choose)", e)
        return 1
    return persons if isinstance(persons, int) and not isinstance(persons, bool) and persons >= 1 else 1


def cmd_live(args) -> int:
    from mocap.bench.common import write_json
    from mocap.display import window_possible
    from mocap.live import LiveConfig, run_live
    from mocap.live.display import MjpegSink, PngSink, WindowSink
    from mocap.live.sources import session_sources
    from mocap.session import Session

    session = Session(args.session)  # no rig, no live.toml: said before a preview is announced or a port opened
    session_sources(session, session.rig().names, args.from_videos)
    cfg = LiveConfig(detector=args.detector, variant=args.variant, model_path=args.model, workers=args.workers,
                     persons=live_persons(args.session, args.persons))
    if args.mjpeg is not None:
        sink = MjpegSink(args.mjpeg)
        print(f"preview: {sink.address}", file=sys.stderr)
    elif args.png:
        sink = PngSink(args.png)
    elif args.no_preview:
        sink = None
    elif (args.window or os.environ.get("DISPLAY")) and window_possible():
        sink = WindowSink()
    elif args.window:  # Qt would abort the process (SIGABRT) on a display it cannot open
        raise ValueError(f"--window: no display to open it on (DISPLAY={os.environ.get('DISPLAY', '')!r} cannot be "
                         "reached); use --png FILE or --mjpeg PORT for the preview")
    else:
        sink = PngSink(args.session / "live" / "preview.png")
        why = f"display {os.environ['DISPLAY']} cannot be reached" if os.environ.get("DISPLAY") else "no display"
        print(f"{why}: preview in {sink.path} (--mjpeg PORT for a stream)", file=sys.stderr)
    s = run_live(args.session, cfg, from_videos=args.from_videos, loop=args.loop, seconds=args.seconds,
                 record=args.record, codec=args.codec, sink=sink)
    print(_camera_table(s, ("state", "state", "s")))
    latency = (f"latency exposure → skeleton median {s['latency_ms_median']:.0f} ms, P95 {s['latency_ms_p95']:.0f} ms"
               if s["updates"] else "no latency (no 3D update)")
    print(f"3D updates {s['updates']} at {s['update_fps']:.1f} /s; {latency}; {s['cores']} cores, CPU "
          f"{s['cpu_s']:.1f} s in {s['seconds']:.1f} s, load {[round(v, 2) for v in s['load_avg'] or []]}")
    if "persons" in s:
        from mocap.live.people import FORGET_S

        n = s["person_numbers"]
        print(f"people: up to {s['people_most']} at once of {s['persons']} followed; numbered "
              f"{', '.join(str(k) for k in n) or 'none'} ({len(n)} identities: a person lost for {FORGET_S:g} s comes "
              "back under a new number; mocap run on the recording associates the take offline)")
    stopped = [f"{c['camera']} ({c['state']})" for c in s["cameras"]
               if c["state"].startswith(("stopped", "stalled", "no frame"))]
    if stopped:
        print(f"cameras that stopped or never delivered: {', '.join(stopped)}")
    note = late_note(s)
    if note:
        print(note)
    if s.get("recorded"):
        kept = s.get("recorded_cameras", [])
        if len(kept) >= 2:
            left = [c["camera"] for c in s["cameras"] if c["camera"] not in kept]
            print(f"recorded: {s['recorded']} (process it with: mocap run {s['recorded']})"
                  + (f"; without {', '.join(left)}, which delivered no frame" if left else ""))
        else:
            print(f"recorded: {s['recorded']}, but {'only ' + kept[0] if kept else 'no camera'} delivered frames: "
                  "mocap run needs the videos of two cameras", file=sys.stderr)
    write_json(s, args.json)
    if not any(c["read"] for c in s["cameras"]):  # nothing to show, nothing measured: not a run that worked
        print(f"error: no camera delivered a frame ({', '.join(c['camera'] for c in s['cameras'])}; each one's "
              "reason in the table above): check " + ("the session's videos" if args.from_videos else
                                                   "the devices and stream URLs of live.toml"), file=sys.stderr)
        return 2
    delivered = [c["camera"] for c in s["cameras"] if c["read"]]
    if len(delivered) < 2 and not s["updates"]:  # one camera cannot place a point in 3D
        print(f"no 3D: only {delivered[0]} delivered frames, and a point needs two cameras (the others' reasons in "
              "the table above)", file=sys.stderr)
    return 0


def late_note(summary: dict, most_s: float = 0.5) -> str | None:
    """A sentence when the videos' readers (--from-videos) fell behind their rate by more than ``most_s``: the
    latency then counts the wait for decoding, not the detection (seconds, on full-size videos on a busy machine)."""
    late = max((c.get("late_s") or 0.0 for c in summary["cameras"]), default=0.0)
    if late <= most_s:
        return None
    return (f"the video readers fell up to {late:.1f} s behind the videos' rate (decoding them is more than this "
            "machine does in real time): the latency counts that wait; smaller videos or fewer cameras keep up "
            "(mocap bench live plays 640x480)")


def _camera_table(summary: dict, last: tuple[str, str, str]) -> str:
    """Per camera: frames read, detected, dropped, failed, share with a person, and ``last``."""
    from mocap.bench.common import format_table

    people = [("recent_people", "people", "d")] if "persons" in summary else []  # several: detected at the end
    return format_table(summary["cameras"], [("camera", "camera", "s"), ("read", "read", "d"),
                                             ("detected", "detected", "d"), ("dropped", "dropped", "d"),
                                             ("failed", "failed", "d"), ("found", "person", ".0%"), *people, last])


def add_bench_live(bsub: argparse._SubParsersAction) -> None:
    bl = bsub.add_parser("live", help="live preview rate and latency on the demo's cameras resized (640x480, 30 fps)")
    bl.add_argument("--session", type=Path, help="a session with videos and a rig (default: the shared Pose2Sim demo)")
    bl.add_argument("--size", default="640x480", help="camera size WxH (frames are scaled and padded to it)")
    bl.add_argument("--fps", type=float, default=30.0)
    bl.add_argument("--seconds", type=float, default=10.0)
    bl.add_argument("--variant", choices=("lite", "full", "heavy"), default="full")
    bl.add_argument("--model-path", "--model", dest="model", default="")
    bl.add_argument("--workers", type=int, default=0, help="detections at once (default: one per core)")
    bl.add_argument("--persons", type=int, default=1, help="people to follow (the detectors' several-pose mode)")
    bl.add_argument("--json", type=Path)
    bl.set_defaults(func=cmd_bench_live)


def cmd_bench_live(args) -> int:
    import tempfile

    from mocap.bench.common import write_json
    from mocap.data import shared_data_dir
    from mocap.io.video import find_videos
    from mocap.live import LiveConfig, run_live
    from mocap.live.display import MjpegSink
    from mocap.live.rehearse import rehearsal_session
    from mocap.session import Session

    src = args.session
    with tempfile.TemporaryDirectory() as tmp:
        if src is None:
            shared = shared_data_dir()
            if shared is None:
                print("no session: pass --session or set MOCAP_SHARED_DATA", file=sys.stderr)
                return 2
            src = Path(tmp) / "demo"
            (src / "calibration").mkdir(parents=True)
            (src / "calibration" / "Calib.qca.txt").symlink_to(shared / "pose2sim_demo/calibration/Calib.qca.txt")
            (src / "videos").symlink_to(shared / "pose2sim_demo/videos")
        rig = Session(src).rig()
        w, h = (int(v) for v in args.size.lower().split("x"))
        print(f"… preparing {len(rig)} cameras at {w}x{h}, {args.fps:g} fps", file=sys.stderr, flush=True)
        session = rehearsal_session(find_videos(Path(src) / "videos", rig.names), rig, Path(tmp) / "live", (w, h),
                                    args.fps)
        sink = MjpegSink(0)  # the preview is encoded as for a viewer (nobody connected)
        print(f"… live for {args.seconds:g} s (preview {sink.address})", file=sys.stderr, flush=True)
        cfg = LiveConfig(variant=args.variant, model_path=args.model, workers=args.workers, persons=args.persons)
        s = run_live(session, cfg, from_videos=True, loop=True, seconds=args.seconds, sink=sink)
    print(_camera_table(s, ("late_s", "reader late s", ".2f")))
    print(f"3D update rate {s['update_fps']:.1f} /s (target ≥ 15); exposure → skeleton latency median "
          f"{s['latency_ms_median']:.0f} ms, P95 {s['latency_ms_p95']:.0f} ms (target ≤ 200); CPU {s['cpu_s']:.1f} s "
          f"in {s['seconds']:.1f} s on {s['cores']} cores, load {[round(v, 2) for v in s['load_avg']]}")
    if "persons" in s:
        print(f"people: up to {s['people_most']} at once of {s['persons']} followed, numbers "
              f"{', '.join(str(k) for k in s['person_numbers']) or 'none'}")
    cpu_per_update = s["cpu_s"] / max(s["updates"], 1)
    projected = s["cores"] / cpu_per_update
    print(f"CPU per 3D update {1000 * cpu_per_update:.0f} ms (4 detections, decoding, fusion, preview): "
          f"{projected:.1f} updates/s if this process had all {s['cores']} cores (a projection, not a measurement)")
    write_json(s | {"size": [w, h], "fps": args.fps, "cpu_ms_per_update": 1000 * cpu_per_update,
                    "projected_update_fps_all_cores": projected}, args.json)
    return 0
