"""``mocap bench detect``: detector throughput, decoding cost and parallel efficiency.

The floor ("ideal") is the target's: the decode + inference CPU seconds of every camera, each camera
measured alone on one core, divided by the cores; the parallel figure is ``mocap detect``'s wall on all
cameras, with where the difference went (workers' start-up, the idle tail, CPU beyond decode and
inference). On a shared machine the wall grows with the load the CPU seconds do not see: the load
average is recorded, and ``--repeat`` keeps the best run.

More than the CLI: ``python -m mocap.bench.detect {parallel,warmup,options} --help`` (a subset of
cameras to show an unbalanced split, warm-up frames vs agreement with the unchunked run, the speed
and accuracy of stride and model variants).
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from mocap.bench.common import measure as common_measure
from mocap.detect import pool
from mocap.io.video import find_videos
from mocap.stages import detect
from mocap.threads import cores


@dataclass(frozen=True)
class DetectBenchConfig:
    videos: str = ""  # folder of camera videos (default: the shared Pose2Sim demo)
    variant: str = "full"
    model_path: str = ""
    stop: int | None = None
    repeat: int = 1  # parallel runs; the best (shortest wall) is kept
    cameras: tuple[str, ...] = ()  # a subset (default: every video)
    split: bool = False  # detect.split for the parallel run
    workers: int = 0
    persons: int | str = detect.Config.persons  # detect.persons, the stage's default (auto: new people looked for
    scan_every: int = detect.Config.scan_every  # every scan_every frames; 1: the person detector on every frame)


def default_videos() -> Path | None:
    from mocap.data import shared_data_dir

    root = shared_data_dir()
    return root / "pose2sim_demo" / "videos" if root else None


SAMPLE_S = 0.1  # memory sampling interval of the measured runs


def measure(fn, every: float = SAMPLE_S) -> tuple:
    """:func:`mocap.bench.common.measure` with the memory sampled every ``every`` s instead of 5 ms: reading
    the resident memory of a detection's processes and their threads costs 0.3 ms per process, so sampling
    every 5 ms took 6 % of a core per process (20 % with a pool), counted as inference CPU alone and taking a
    core's share in parallel."""
    return common_measure(fn, every)


def _on_one_core(fn):
    """Run ``fn`` pinned to one core: "pure inference time" then means the work of one core, which is
    what the parallel run divides among the cores (TFLite and decoding would otherwise borrow the others)."""

    def pinned():
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        return fn()

    return pinned


def _videos(cfg: DetectBenchConfig) -> dict[str, Path]:
    videos = find_videos(Path(cfg.videos))
    if cfg.cameras:
        missing = sorted(set(cfg.cameras) - set(videos))
        if missing:
            raise ValueError(f"bench detect: no video for cameras {missing} in {cfg.videos} (found {sorted(videos)})")
        videos = {c: videos[c] for c in cfg.cameras}
    return videos


def _session_rig(root: Path, cameras: list[str], tmp: Path) -> None:
    """The rig of the videos' session (``root``), its ``cameras``, into the temporary session ``tmp``: the detect
    stage's second pass needs it (without it, it warns "no rig" and is skipped, as in no user's session); nothing
    when the session has no rig, or not those cameras."""
    from mocap.io.rig_files import read_rig, write_rig
    from mocap.session import Session

    given = Session(root).given_rig_path() if root.is_dir() else None
    rig = read_rig(given) if given is not None and given.is_file() else None
    if rig is not None and set(cameras) <= set(rig.names):
        (tmp / "calibration").mkdir(exist_ok=True)
        write_rig(rig.subset(cameras), tmp / "calibration" / "rig.toml")


def _parallel(videos: dict[str, Path], settings) -> tuple[dict, float]:
    """``mocap detect`` on ``videos`` in a temporary session: (its timeline with the CPU seconds of this process
    as ``parent_cpu_s``, the CPU seconds of it and its workers). ``settings`` are made before, as the command
    line makes them before the stage starts (importing every stage's module: 0.5 CPU s)."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "videos").mkdir()
        for path in videos.values():
            (Path(tmp) / "videos" / path.name).symlink_to(path.resolve())
        _session_rig(next(iter(videos.values())).resolve().parent.parent, list(videos), Path(tmp))
        t, t0 = os.times(), time.perf_counter()
        detect.main(tmp, settings)
        stage_s = time.perf_counter() - t0
        for child in multiprocessing.active_children():  # the workers exit after the stage: their CPU counts too
            child.join()
        # a fork server's workers are its children, not ours: stopped (and reaped) here, its CPU and that of the
        # workers it reaped count in ours; every run starts its own, as a first detection in a process does
        server_cpu_s = pool.server_cpu()[0]
        pool.stop_server()
        u = os.times()
        shutil.rmtree(Path(tmp) / "videos")
    parent = u.user + u.system - t.user - t.system
    return dict(detect.last_run) | {"parent_cpu_s": parent, "server_cpu_s": server_cpu_s, "command_s": stage_s,
                                    "workers_exited_s": time.perf_counter() - t0}, (
        parent + u.children_user + u.children_system - t.children_user - t.children_system)


def run(cfg: DetectBenchConfig, progress=None) -> dict:
    step = progress or (lambda name: None)
    videos = _videos(cfg)
    dcfg = detect.Config(variant=cfg.variant, model_path=cfg.model_path, stop=cfg.stop, split=cfg.split,
                         workers=cfg.workers, persons=cfg.persons, scan_every=cfg.scan_every)
    rows = []
    for cam, path in videos.items():
        step(f"{cam}: one process")
        (_, data, stats), seconds, mem = measure(_on_one_core(lambda p=path, c=cam: detect.detect_video(c, p, dcfg)))
        n = stats["frames"]
        loop_s = stats["end"] - stats["start"] - stats["setup_s"]
        rows.append({"camera": cam, "frames": n, "inference_ms": 1000 * stats["infer_cpu_s"] / n,
                     "decode_ms": 1000 * stats["decode_cpu_s"] / n, "loop_ms": 1000 * loop_s / n,
                     "setup_s": stats["setup_s"], "wall_s": seconds, "fps": n / seconds, "peak_mb": mem})
    n_cores = cores()
    from mocap.settings import as_settings

    settings = as_settings(dcfg)
    runs = []
    for k in range(max(1, cfg.repeat)):
        step(f"all cameras in parallel (mocap detect), run {k + 1} of {max(1, cfg.repeat)}")
        (timeline, cpu_s), wall, mb = measure(lambda: _parallel(videos, settings))
        # wall: mocap detect's stage from its call to its return (pose2d.h5 written); the workers then exit in
        # the background (workers_exited_s); stage_wall_s: from the pool's start
        runs.append(timeline | {"wall_s": timeline["command_s"], "stage_wall_s": timeline["wall_s"],
                                "measured_wall_s": wall, "cpu_s": cpu_s, "peak_mb": mb,
                                "load_avg_1": os.getloadavg()[0]})
    best = min(runs, key=lambda r: r["wall_s"])
    frames = sum(r["frames"] for r in rows)
    work_s = sum(r["frames"] * (r["inference_ms"] + r["decode_ms"]) / 1000 for r in rows)
    ideal = work_s / n_cores
    ideal_wall = sum(r["frames"] * r["loop_ms"] / 1000 for r in rows) / n_cores
    return {"config": asdict(cfg), "cores": n_cores, "rows": rows, "runs": runs,
            "parallel": {"wall_s": best["wall_s"], "fps": frames / best["wall_s"], "peak_mb": best["peak_mb"],
                         "sum_inference_s": sum(r["frames"] * r["inference_ms"] / 1000 for r in rows),
                         "sum_decode_s": sum(r["frames"] * r["decode_ms"] / 1000 for r in rows),
                         "ideal_s": ideal, "wall_over_ideal": best["wall_s"] / ideal,
                         "ideal_wall_s": ideal_wall, "wall_over_ideal_wall": best["wall_s"] / ideal_wall,
                         "startup_s": best["startup_s"], "tail_s": best["tail_s"], "workers": best["workers"],
                         "chunks": best["chunks"], "cpu_s": best["cpu_s"], "cpu_beyond_work_s": best["cpu_s"] - work_s,
                         # the lowest wall ÷ floor this CPU allows (every core busy throughout); load does not raise it
                         "cpu_over_work": best["cpu_s"] / work_s,
                         "beyond": beyond(best) | {  # decoding + inference in the pool against alone on one core
                             "work_in_pool_cpu_s": best["decode_cpu_s"] + best["infer_cpu_s"] - work_s},
                         "sequential_wall_s": sum(r["wall_s"] for r in rows)}}


def beyond(run: dict) -> dict:
    """Where a parallel run's CPU seconds beyond its own decoding and inference went: the main process, the
    fork server (:mod:`mocap.detect.pool`: its interpreter and the workers' imports, once), the workers before
    their first chunk (a spawned one's interpreter and imports; the first detector), the proxies for the
    report's videos, the rest of the chunks (later detectors, probing, results), and the workers' exits with
    what else is not in a chunk (the total less the rest: also all of a worker that got no chunk, as on a short
    take where one worker ran every chunk before the other was ready)."""
    work = run["decode_cpu_s"] + run["infer_cpu_s"]
    in_chunks = run["worker_cpu_s"] - run["worker_startup_cpu_s"] - work - run["proxy_cpu_s"]
    server = run.get("server_cpu_s", 0.0)
    return {"parent_cpu_s": run["parent_cpu_s"], "fork_server_cpu_s": server,
            "worker_startup_cpu_s": run["worker_startup_cpu_s"],
            "proxy_cpu_s": run["proxy_cpu_s"], "chunks_other_cpu_s": in_chunks,
            "worker_exit_cpu_s": run["cpu_s"] - run["parent_cpu_s"] - server - run["worker_cpu_s"]}


def warmup_sweep(video: Path, starts: tuple[int, ...], warmups: tuple[int, ...], span: int,
                 dcfg: detect.Config | None = None) -> list[dict]:
    """How far a chunk cut at each of ``starts`` (``span`` frames long) is from the unchunked run, for each
    number of warm-up frames: median, P95 and max pixel distance over its keypoints."""
    dcfg = dcfg or detect.Config()
    _, ref, _ = detect.detect_video(video.stem, video, dcfg)
    rows = []
    for s in starts:
        for k in warmups:
            a = max(0, s - k)
            _, got, _ = detect.detect_video(video.stem, video, replace(dcfg, start=a, stop=s + span))
            e = np.linalg.norm(got[s - a:, ..., :2] - ref[s:s + span, ..., :2], axis=-1)
            e = e[np.isfinite(e)]
            rows.append({"camera": video.stem, "start": s, "warmup": k, "median_px": float(np.median(e)),
                         "p95_px": float(np.percentile(e, 95)), "max_px": float(e.max())})
    return rows


def speed_options(video: Path, options: dict[str, detect.Config], reference: detect.Config) -> list[dict]:
    """Each option's CPU per output frame (pinned to one core) and its pixel distance to ``reference`` on
    the frames both detect (a stride-2 run is compared on the even frames)."""
    out = {}
    rows = []
    for name, cfg in ({"reference": reference} | options).items():
        (_, data, stats), wall, _ = measure(_on_one_core(lambda c=cfg: detect.detect_video(video.stem, video, c)))
        out[name] = (cfg, data)
        cpu_s = stats["infer_cpu_s"] + stats["decode_cpu_s"]
        row = {"camera": video.stem, "option": name, "frames": stats["frames"], "wall_s": wall, "cpu_s": cpu_s,
               "cpu_ms": 1000 * cpu_s / stats["frames"], "inference_ms": 1000 * stats["infer_cpu_s"] / stats["frames"],
               "speedup": rows[0]["cpu_s"] / cpu_s if rows else 1.0}
        ref_cfg, ref = out["reference"]
        idx = np.arange(cfg.start, cfg.start + len(data) * cfg.stride, cfg.stride)
        common = (idx - ref_cfg.start) // ref_cfg.stride
        ok = (common < len(ref)) & ((idx - ref_cfg.start) % ref_cfg.stride == 0)
        k = min(data.shape[1], ref.shape[1])  # persons = auto against 1: the first person slots
        e = np.linalg.norm(data[ok, :k, ..., :2] - ref[common[ok], :k, ..., :2], axis=-1)
        e = e[np.isfinite(e)]
        row |= {"median_px": float(np.median(e)) if e.size else float("nan"),
                "p95_px": float(np.percentile(e, 95)) if e.size else float("nan")}
        rows.append(row)
    return rows


def proxy_study(video: Path, frames: int = 60, height: int = 540, seed: int = 0) -> list[dict]:
    """What a cheaper proxy (:mod:`mocap.io.proxy`) costs in what the user sees: for each way of shrinking
    (``shrink``, the report's own; ``quick_shrink``, detection's), its CPU ms per frame just decoded, and the
    report's overlay video drawn from that proxy (decoded: what the user sees) against the same drawing on the
    full-size frames, not encoded (``ideal_*``: the first row's is what the two codecs lose), against the overlay
    drawn from the video itself (``video_*``: the first row's is what the proxy's codec loses), and against the
    first row's overlay (``from_first_mse``). A random-walk skeleton is drawn (the same on every video)."""
    from unittest import mock

    from mocap.detect import overlay as drawn
    from mocap.detect.overlay import OverlayWriter
    from mocap.io import proxy
    from mocap.io.video import probe, read_frames
    from mocap.report.overlay import _draw

    info = probe(video)
    n = min(frames, info.frames)
    size = proxy.scaled_size(info.size, height)
    rng = np.random.default_rng(seed)
    w, h = info.size
    uv = rng.uniform([0.3 * w, 0.2 * h], [0.7 * w, 0.8 * h], (33, 2)) + np.cumsum(rng.normal(0, 3, (n, 33, 2)), 0)
    limbs = [(j, j + 1) for j in range(32)]

    def overlay(source, out: Path) -> list[np.ndarray]:
        _draw(source, out, uv, limbs, info.fps or 30.0, info.size, "cam", None, 0.0, (0, 1), None, height)
        return [img for _, img in read_frames(out)]

    class Kept:  # the overlay's frames as drawn, not encoded
        frames: list = []

        def __init__(self, *args):
            Kept.frames = []

        def write(self, img: np.ndarray) -> None:
            Kept.frames.append(img.copy())

        def close(self, ok: bool = True) -> None:
            pass

    def psnr(e: float) -> float:
        return float(10 * np.log10(255 ** 2 / e)) if e else float("inf")

    def mse(a: list, b: list) -> float:
        return float(np.mean([np.mean((x.astype(float) - y.astype(float)) ** 2) for x, y in zip(a, b, strict=True)]))

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        reference = overlay(read_frames(video, stop=n), Path(tmp) / "reference.mp4")
        with mock.patch.object(drawn, "OverlayWriter", Kept):
            _draw(read_frames(video, stop=n), Path(tmp) / "ideal.mp4", uv, limbs, 30.0, info.size, "cam", None, 0.0,
                  (0, 1), None, height)
        ideal = Kept.frames
        for name, shrink in (("shrink", proxy.shrink), ("quick_shrink", proxy.quick_shrink)):
            writer, cpu = OverlayWriter(Path(tmp) / f"{name}.mp4", info.fps or 30.0, size), 0.0
            for _, img in read_frames(video, stop=n):
                c = time.thread_time()
                small = shrink(img, size)
                cpu += time.thread_time() - c
                writer.write(small)
            writer.close()
            seen = overlay(read_frames(Path(tmp) / f"{name}.mp4"), Path(tmp) / f"overlay_{name}.mp4")
            e, v = mse(seen, ideal), mse(seen, reference)
            rows.append({"proxy": name, "shrink_ms": 1000 * cpu / n, "ideal_mse": e, "ideal_psnr_db": psnr(e),
                         "video_mse": v, "video_psnr_db": psnr(v),
                         "from_first_mse": mse(seen, rows[0]["seen"]) if rows else 0.0, "seen": seen})
    for r in rows:
        del r["seen"]
    return rows


PARALLEL_COLUMNS = [("camera", "camera", ""), ("frames", "frames", "d"), ("inference_ms", "inference CPU ms", ".1f"),
                    ("decode_ms", "decode CPU ms", ".1f"), ("loop_ms", "wall ms/frame", ".1f"),
                    ("setup_s", "detector set-up s", ".2f"), ("wall_s", "wall s", ".2f")]


def summary(result: dict) -> str:
    """The parallel run against the floor, in one paragraph."""
    p = result["parallel"]
    return (f"all cameras in parallel: {p['wall_s']:.2f} s ({p['workers']} workers, {p['chunks']} chunks, "
            f"{p['fps']:.1f} frames/s); floor (decode + inference CPU ÷ {result['cores']} cores) {p['ideal_s']:.2f} s "
            f"→ {p['wall_over_ideal']:.2f}× (against the one-core walls: {p['wall_over_ideal_wall']:.2f}×); "
            f"CPU {p['cpu_s']:.1f} s = {p['cpu_over_work']:.2f}× decode + inference (the least wall ÷ floor it "
            f"allows); start-up {p['startup_s']:.2f} s, idle tail {p['tail_s']:.2f} s, CPU beyond decode + inference "
            f"{p['cpu_beyond_work_s']:.1f} s (" + ", ".join(f"{k.removesuffix('_cpu_s').replace('_', ' ')} {v:.2f}"
                                                           for k, v in p["beyond"].items())
            + f"); load average {[round(r['load_avg_1'], 1) for r in result['runs']]}")


if __name__ == "__main__":  # the studies' command line lives with the other benches' (mocap/cli/detect_studies.py)
    from mocap.cli.detect_studies import main

    raise SystemExit(main())
