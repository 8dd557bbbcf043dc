"""``mocap bench detect``: detector throughput, decoding cost and parallel efficiency."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from mocap.bench.common import measure
from mocap.io.video import find_videos
from mocap.stages import detect


@dataclass(frozen=True)
class DetectBenchConfig:
    videos: str = ""  # folder of camera videos (default: the shared Pose2Sim demo)
    variant: str = "full"
    model_path: str = ""
    stop: int | None = None


def default_videos() -> Path | None:
    from mocap.data import shared_data_dir

    root = shared_data_dir()
    return root / "pose2sim_demo" / "videos" if root else None


def _on_one_core(fn):
    """Run ``fn`` pinned to one core: "pure inference time" then means the work of one core, which is
    what the parallel run divides among the cores (TFLite and decoding would otherwise borrow the others)."""

    def pinned():
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        return fn()

    return pinned


def run(cfg: DetectBenchConfig, progress=None) -> dict:
    step = progress or (lambda name: None)
    videos = find_videos(Path(cfg.videos))
    dcfg = detect.Config(variant=cfg.variant, model_path=cfg.model_path, stop=cfg.stop)
    rows = []
    total_infer = 0.0
    for cam, path in videos.items():
        step(f"{cam}: one process")
        (_, data, stats), seconds, mem = measure(_on_one_core(lambda p=path, c=cam: detect.detect_video(c, p, dcfg)))
        n = stats["frames"]
        total_infer += stats["infer_s"]
        rows.append({"camera": cam, "frames": n, "inference_ms": 1000 * stats["infer_s"] / n,
                     "decode_ms": 1000 * stats["decode_s"] / n, "wall_s": seconds, "fps": n / seconds,
                     "peak_mb": mem})
    step("all cameras in parallel (mocap detect)")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "videos").mkdir()
        for path in videos.values():
            (Path(tmp) / "videos" / path.name).symlink_to(path.resolve())
        _, parallel_s, parallel_mb = measure(lambda: detect.main(tmp, dcfg))
        shutil.rmtree(Path(tmp) / "videos")
    frames = sum(r["frames"] for r in rows)
    ideal = total_infer / min(cores, len(rows))
    return {"config": asdict(cfg), "cores": cores, "rows": rows,
            "parallel": {"wall_s": parallel_s, "fps": frames / parallel_s, "peak_mb": parallel_mb,
                         "sum_inference_s": total_infer, "ideal_s": ideal, "wall_over_ideal": parallel_s / ideal,
                         "sequential_wall_s": sum(r["wall_s"] for r in rows)}}
