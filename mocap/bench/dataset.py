"""``mocap bench dataset``: random window reads from a dataset file (T frames × 33 keypoints).

A file of the requested size is written in the dataset schema (smooth random trajectories), its
pages are dropped from the OS cache (posix_fadvise DONTNEED), and random windows are read: one at a
time (as a DataLoader worker does), then in batches; a second pass shows the warm-cache rate."""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import h5py
import numpy as np

from mocap.dataset.build import BuildConfig, _open, build_index, write_take
from mocap.dataset.reader import Windows


@dataclass(frozen=True)
class DatasetBenchConfig:
    out: str = "bench_dataset.h5"
    size_gb: float = 2.0
    take_frames: int = 3000
    length: int = 32
    reads: int = 50000
    batch: int = 256
    seed: int = 0


def make_file(cfg: DatasetBenchConfig) -> Path:
    out = Path(cfg.out)
    per_frame = 33 * 3 * 4 * 2 + 22 * 4 * 4 * 2  # points3d and rotations, stored per take and in /index
    n_takes = max(1, int(cfg.size_gb * 1e9 / (per_frame * cfg.take_frames)))
    rng = np.random.default_rng(cfg.seed)
    if out.exists():
        out.unlink()
    with _open(out) as f:
        for t in range(n_takes):
            X = np.cumsum(rng.normal(scale=0.002, size=(cfg.take_frames, 33, 3)), axis=0).astype(np.float32)
            q = rng.normal(size=(cfg.take_frames, 22, 4)).astype(np.float32)
            arrays = {"points3d": X, "rotations": q / np.linalg.norm(q, axis=-1, keepdims=True)}
            write_take(f, f"bench_{t:05d}", {"arrays": arrays, "attrs": {"frames": cfg.take_frames, "fps": 60.0,
                                                                         "keypoint_set": "blazepose33"}},
                       BuildConfig(compression="lzf"))
        build_index(f)
    return out


def _drop_cache(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def run(cfg: DatasetBenchConfig) -> dict:
    path = make_file(cfg)
    size = path.stat().st_size
    rng = np.random.default_rng(cfg.seed + 1)
    result = {"config": asdict(cfg), "file_gb": size / 1e9}
    with h5py.File(path, "r") as f:
        result["index_gb"] = (f["index/points3d"].size * 4) / 1e9
    for label in ("cold", "warm"):
        if label == "cold":
            _drop_cache(path)
        w = Windows(path, cfg.length)
        idx = rng.integers(0, len(w), cfg.reads)
        t0 = time.perf_counter()
        acc = 0.0
        for i in idx:
            acc += float(w[i]["points3d"][0, 0, 0])
        single = cfg.reads / (time.perf_counter() - t0)
        if label == "cold":  # the single reads' maps closed first (a mapped page is not dropped), other windows
            w = Windows(path, cfg.length)
            _drop_cache(path)
            idx = rng.integers(0, len(w), cfg.reads)
        t0 = time.perf_counter()
        for k in range(0, cfg.reads, cfg.batch):
            w.batch(idx[k:k + cfg.batch])
        batched = cfg.reads / (time.perf_counter() - t0)
        result[label] = {"windows_per_s_single": single, "windows_per_s_batched": batched}
    result["windows"] = len(w)
    return result
