"""``mocap dataset build`` / ``synth``: takes → one HDF5 dataset; workers compute, one writer commits."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import traceback
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import h5py
import numpy as np

from mocap.dataset import KIND, SCHEMA_VERSION

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildConfig:
    float16_2d: bool = False
    chunk_frames: int = 256
    compression: str = "gzip"
    level: int = 4
    sets: tuple[str, ...] = ("export.formats=[]", "report.overlay_videos=false")  # pipeline overrides


@dataclass
class BuildSummary:
    out: Path
    committed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    compute_seconds: float = 0.0  # summed over tasks (core-seconds)


def take_id(session: str | Path) -> str:
    p = Path(session).resolve()
    return f"{p.name}-{hashlib.sha1(str(p).encode()).hexdigest()[:8]}"


def take_arrays(session: str | Path, sets: Iterable[str] = ()) -> dict:
    """Run the pipeline on a session (cached stages are skipped) and gather what a dataset keeps."""
    from mocap import __version__
    from mocap.io.capture import read_capture
    from mocap.io.hdf5 import read_points3d
    from mocap.pipeline import run
    from mocap.report.metrics import versions
    from mocap.session import Session
    from mocap.stages.sync import read_offsets

    s = Session(Path(session))
    run(s, sets=list(sets), progress=False)
    rig = s.rig()
    kp = s.keypoints2d(rig)
    pts = read_points3d(s.points3d("refined"))
    motion, _ = read_capture(s.motion("body22"))
    arrays = {
        "keypoints2d": kp.data[:, :, 0], "points3d": pts.xyz[:, 0], "reproj_err": pts.reproj_err[:, 0],
        "rotations": motion.rotations, "root_positions": motion.root_positions,
        "skeleton/parents": motion.skeleton.parents, "skeleton/offsets": motion.skeleton.offsets,
        "cameras/K": np.stack([c.K for c in rig]), "cameras/dist": np.stack([np.resize(c.dist, 5) for c in rig]),
        "cameras/cam_from_world": np.stack([c.cam_from_world for c in rig]),
        "cameras/size": np.array([c.size for c in rig]),
    }
    gt = s.groundtruth_dir / "points3d.h5"
    if gt.is_file():
        arrays["groundtruth/points3d"] = read_points3d(gt).xyz[:, 0]
    joints = s.groundtruth_dir / "rig_joints.npz"
    if joints.is_file():
        z = np.load(joints)
        arrays["groundtruth/rig_joints"] = z["positions"]
        arrays["groundtruth/rig_visible"] = z["visible"]
    from mocap.keypoint_sets import get_keypoint_set

    attrs = {"fps": float(kp.fps), "keypoint_set": kp.keypoint_set,
             "keypoint_names": json.dumps(list(get_keypoint_set(kp.keypoint_set).joints)),
             "camera_names": json.dumps(list(rig.names)), "joint_names": json.dumps(list(motion.skeleton.joint_names)),
             "session": str(s.root.resolve()), "frames": int(kp.shape[0]),
             "config": (s.root / "config.resolved.toml").read_text(),
             "versions": json.dumps(versions() | {"mocap": __version__}),
             "sync_offsets_frames": json.dumps(read_offsets(s))}
    if joints.is_file():
        attrs["rig_joint_names"] = json.dumps([str(n) for n in np.load(joints)["names"]])
    return {"arrays": arrays, "attrs": attrs}


def _task(job: tuple[str, str, tuple[str, ...]]) -> tuple[str, dict | None, str | None, float]:
    """Worker: (take id, arrays or None, error or None, seconds). Never raises."""
    tid, session, sets = job
    t0 = time.perf_counter()
    try:
        return tid, take_arrays(session, sets), None, time.perf_counter() - t0
    except Exception as e:  # noqa: BLE001 — a failed take is recorded and the others go on
        return tid, None, f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}", time.perf_counter() - t0


def _open(out: Path) -> h5py.File:
    f = h5py.File(out, "a")
    if f.attrs.get("kind", KIND) != KIND:
        f.close()
        raise ValueError(f"{out}: not a mocap dataset (kind {f.attrs.get('kind')!r})")
    version = int(f.attrs.get("schema_version", SCHEMA_VERSION))
    if version > SCHEMA_VERSION:
        f.close()
        raise ValueError(f"{out}: dataset schema version {version} is newer than this mocap writes ({SCHEMA_VERSION})")
    f.attrs["kind"], f.attrs["schema_version"] = KIND, SCHEMA_VERSION
    f.require_group("takes")
    if "_incomplete" in f:  # leftovers of an interrupted build
        del f["_incomplete"]
    return f


def log_event(f: h5py.File, event: dict) -> None:
    line = json.dumps(event | {"time": time.strftime("%Y-%m-%dT%H:%M:%S")})
    if "log" not in f:
        f.create_dataset("log", (0,), maxshape=(None,), dtype=h5py.string_dtype(), chunks=(64,))
    ds = f["log"]
    ds.resize((ds.shape[0] + 1,))
    ds[-1] = line


def write_take(f: h5py.File, tid: str, data: dict, cfg: BuildConfig) -> None:
    """Write under /_incomplete/<id>, then move to /takes/<id> (the commit)."""
    tmp = f.require_group("_incomplete").create_group(tid)
    for name, arr in data["arrays"].items():
        arr = np.asarray(arr)
        if name == "keypoints2d" and cfg.float16_2d:
            arr = arr.astype(np.float16)
        elif arr.dtype.kind == "f":
            arr = arr.astype(np.float32)
        kw = {}
        if arr.ndim >= 1 and arr.shape[0] > 1 and name.split("/")[0] not in ("cameras", "skeleton"):
            kw = {"chunks": (min(cfg.chunk_frames, arr.shape[0]),) + arr.shape[1:],
                  "compression": cfg.compression, "compression_opts": cfg.level if cfg.compression == "gzip" else None}
        tmp.create_dataset(name, data=arr, **kw)
    for k, v in data["attrs"].items():
        tmp.attrs[k] = v
    f.flush()
    f.move(f"_incomplete/{tid}", f"takes/{tid}")
    if len(f["_incomplete"]) == 0:
        del f["_incomplete"]
    f.flush()


def build(sessions: list[str | Path], out: str | Path, cfg: BuildConfig = BuildConfig(), workers: int = 0,
          scheduler: str | None = None, progress: Callable[[str], None] | None = None) -> BuildSummary:
    """Add every session not already in ``out`` as a take (local process pool, or a Dask cluster)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    summary = BuildSummary(out)
    with _open(out) as f:
        done = set(f["takes"])
    jobs = []
    for s in sessions:
        tid = take_id(s)
        if tid in done:
            summary.skipped.append(tid)
        else:
            jobs.append((tid, str(Path(s).resolve()), tuple(cfg.sets)))
    results = _run_jobs(jobs, workers, scheduler)
    with _open(out) as f:
        for tid, data, err, seconds in results:
            summary.compute_seconds += seconds
            if err is not None:
                summary.failed[tid] = err.splitlines()[0]
                log_event(f, {"take": tid, "status": "failed", "error": err})
                log.warning("take %s failed: %s", tid, err.splitlines()[0])
            else:
                write_take(f, tid, data, cfg)
                summary.committed.append(tid)
                log_event(f, {"take": tid, "status": "committed", "seconds": round(seconds, 2)})
            if progress:
                progress(f"{tid}: {'failed' if err else 'committed'}")
        build_index(f)
    summary.seconds = time.perf_counter() - t0
    return summary


def _run_jobs(jobs: list, workers: int, scheduler: str | None):
    """Yield task results as they finish: Dask distributed when a scheduler is given, else processes."""
    if not jobs:
        return
    if scheduler:
        from distributed import Client
        from distributed import as_completed as dask_completed

        with Client(scheduler) as client:
            futures = client.map(_task, jobs, pure=False)
            for fut in dask_completed(futures):
                yield fut.result()
        return
    n = workers or min(len(jobs), os.cpu_count() or 1)
    if n == 1:
        for job in jobs:
            yield _task(job)
        return
    with ProcessPoolExecutor(max_workers=n, mp_context=get_context("spawn")) as pool:
        for fut in as_completed([pool.submit(_task, j) for j in jobs]):
            yield fut.result()


def build_index(f: h5py.File) -> None:
    """Contiguous copies of points3d and rotations over all takes (sorted by id) for the reader."""
    if "index" in f:
        del f["index"]
    ids = sorted(f["takes"])
    g = f.create_group("index")
    g.create_dataset("take_ids", data=np.array(ids, dtype=h5py.string_dtype()))
    lengths = [f["takes"][t]["points3d"].shape[0] for t in ids]
    g.create_dataset("take_start", data=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))
    for name in ("points3d", "rotations"):
        if not ids:
            continue
        shape = (int(sum(lengths)),) + f["takes"][ids[0]][name].shape[1:]
        ds = g.create_dataset(name, shape=shape, dtype=np.float32)  # contiguous: memory-mapped by readers
        pos = 0
        for t, n in zip(ids, lengths, strict=True):
            ds[pos:pos + n] = f["takes"][t][name][()]
            pos += n


def info(path: str | Path) -> dict:
    with h5py.File(path, "r") as f:
        if f.attrs.get("kind") != KIND:
            raise ValueError(f"{path}: not a mocap dataset")
        takes = f["takes"]
        frames = {t: int(takes[t].attrs["frames"]) for t in takes}
        events = [json.loads(x) for x in f["log"].asstr()[()]] if "log" in f else []
        return {"schema_version": int(f.attrs["schema_version"]), "takes": len(frames),
                "frames": int(sum(frames.values())),
                "fps": sorted({float(takes[t].attrs["fps"]) for t in takes}),
                "keypoint_sets": sorted({str(takes[t].attrs["keypoint_set"]) for t in takes}),
                "synthetic": sum("groundtruth" in takes[t] for t in takes),
                "failed": [e for e in events if e.get("status") == "failed"],
                "size_mb": Path(path).stat().st_size / 1e6, "per_take_frames": frames}
