"""``mocap dataset build`` / ``synth``: takes → one HDF5 dataset; workers compute, one writer commits."""

from __future__ import annotations

import hashlib
import json
import logging
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from mocap.dataset import KIND, SCHEMA_VERSION
from mocap.dataset.compat import TakeMismatchError
from mocap.dataset.jobs import daemon_hint, run_jobs
from mocap.dataset.store import Writer, info, new_event, open_dataset, write_arrays, write_index

__all__ = ["BuildConfig", "BuildSummary", "build", "check_output", "info", "take_arrays", "take_id"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildConfig:
    float16_2d: bool = False
    chunk_frames: int = 256
    compression: str = "gzip"
    level: int = 4
    sets: tuple[str, ...] = ()  # pipeline overrides, this build only (never kept in the session)
    commit_every_s: float = 60.0  # rewrite the dataset with the takes done so far at most this often (and at the end)


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
    from mocap.io.hdf5 import read_points3d, read_points3d_info
    from mocap.motion import turn_world
    from mocap.pipeline import run
    from mocap.report.metrics import versions
    from mocap.session import Session
    from mocap.stages import triangulate
    from mocap.stages.sync import read_offsets

    s = Session(Path(session))
    r = run(s, sets=list(sets), progress=False, remember=False,  # the build's own overrides, not the session's
            only=stages_for_a_take())
    rig = s.rig()
    pts = read_points3d(s.points3d("refined"))
    if pts.xyz.shape[1] > 1:  # a take is one performer: its 2D keypoints are one slot, its motion one fit
        raise ValueError(f"{s.root}: {pts.xyz.shape[1]} people in the take; a dataset take holds one performer "
                         "(build it from one-person takes: detect.persons = 1)")
    # the 2D the points were made from, read as triangulate (and refine) read them: the performer picked across
    # views when a view holds several detections (not slot 0 of pose2d.h5), sync offsets and swap repairs applied
    single = read_points3d_info(s.points3d(triangulate.STAGE)).get("config", {}).get("single_performer", True)
    kp = triangulate.session_keypoints(s, rig, single)
    if kp.shape[2] != 1:
        raise ValueError(f"{s.root}: the 2D keypoints, read as the triangulate stage read them, hold {kp.shape[2]} "
                         "people per view; a dataset take holds one performer (detect.persons = 1 and "
                         "triangulate.single_performer = true)")
    fitted = next(p for p in r.outputs["fit"] if p.endswith(".npz"))  # motion/<fit.skeleton>.npz
    motion, extra = read_capture(fitted)
    if "world_from_given" in extra:  # the fit turned the world Z up (fit.world_up): back to the rig's, as the rest
        T = extra["world_from_given"]
        motion = turn_world(motion, T[:3, :3].T, -T[:3, :3].T @ T[:3, 3])
    arrays = {
        "keypoints2d": kp.data[:, :, 0], "points3d": pts.xyz[:, 0], "reproj_err": pts.reproj_err[:, 0],
        "rotations": motion.rotations, "root_positions": motion.root_positions,
        "skeleton/parents": motion.skeleton.parents, "skeleton/offsets": motion.skeleton.offsets,
        "cameras/K": np.stack([c.K for c in rig]), "cameras/dist": np.stack([_dist5(c.dist) for c in rig]),
        "cameras/model": np.array([c.model for c in rig]),
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


def _dist5(dist: np.ndarray) -> np.ndarray:
    """A camera's coefficients padded with zeros to 5 (fisheye: k1..k4, 0; ``cameras/model`` says which)."""
    dist = np.asarray(dist, float).ravel()
    if dist.size > 5:
        raise ValueError(f"{dist.size} distortion coefficients ({dist.tolist()}): a dataset stores at most 5")
    return np.concatenate([dist, np.zeros(5 - dist.size)])


def stages_for_a_take() -> list[str]:
    """The stages up to the fit, what a take keeps. Export and the report are the session's own: the build
    used to run them with its overrides (no formats, no videos), rewriting the session's report with grey crops
    and no overlay videos, and running them again at the next plain ``mocap run``."""
    from mocap.stages import names

    order = list(names())
    return order[: order.index("fit") + 1]


def _task(job: tuple[str, str, tuple[str, ...]]) -> tuple[str, dict | None, str | None, float]:
    """Worker: (take id, arrays or None, error or None, seconds). Never raises."""
    tid, session, sets = job
    t0 = time.perf_counter()
    try:
        return tid, take_arrays(session, sets), None, time.perf_counter() - t0
    except Exception as e:  # noqa: BLE001 — a failed take is recorded and the others go on
        return (tid, None, f"{type(e).__name__}: {e}{daemon_hint(e)}\n{traceback.format_exc(limit=3)}",
                time.perf_counter() - t0)


def _open(out: Path) -> h5py.File:
    """Open (or create) a dataset file for writing in place. Not crash-safe: for scratch files (benchmarks);
    builds go through :class:`mocap.dataset.store.Writer`."""
    if Path(out).exists():
        open_dataset(out).close()
    f = h5py.File(out, "a")
    f.attrs["kind"], f.attrs["schema_version"] = KIND, SCHEMA_VERSION
    f.require_group("takes")
    return f


def write_take(f: h5py.File, tid: str, data: dict, cfg: BuildConfig) -> None:
    """Write one take into an open file (see :func:`_open`)."""
    write_arrays(f["takes"].create_group(tid), data, cfg)


def build_index(f: h5py.File) -> None:
    write_index(f)


def check_output(sessions: Iterable[str | Path], out: str | Path) -> None:
    """Refuse an output that is one of the inputs or lies inside an input session folder."""
    o = Path(out).resolve()
    for s in sessions:
        p = Path(s).resolve()
        if o == p or p in o.parents:
            raise ValueError(f"output {out} is inside input session {s}: the dataset would be written into an "
                             "input; choose an output outside every session folder")


def build(sessions: list[str | Path], out: str | Path, cfg: BuildConfig = BuildConfig(), workers: int = 0,
          scheduler: str | None = None, progress: Callable[[str], None] | None = None) -> BuildSummary:
    """Add every session not already in ``out`` as a take (local process pool, or a Dask cluster).

    Crash-safe (see :mod:`mocap.dataset.store`): killed at any instant, ``out`` holds the takes of its
    last commit, and a re-run skips every take that was complete."""
    out = Path(out)
    check_output(sessions, out)
    missing = [str(s) for s in sessions if not Path(s).is_dir()]
    if missing:
        raise FileNotFoundError(f"dataset build: no session folder {', '.join(missing)}")
    if out.is_dir():
        raise ValueError(f"output {out} is a folder; give a file name such as {out / 'data.h5'}")
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    summary = BuildSummary(out)
    created = not out.exists()
    try:
        _build_into(out, sessions, cfg, workers, scheduler, progress, summary)
    except BaseException:
        if created and not summary.committed and out.is_file():  # e.g. the scheduler did not answer: no empty file
            log.info("removing %s: the build that created it failed before any take was committed", out)
            out.unlink()
        raise
    summary.seconds = time.perf_counter() - t0
    return summary


def _build_into(out: Path, sessions: list[str | Path], cfg: BuildConfig, workers: int, scheduler: str | None,
                progress: Callable[[str], None] | None, summary: BuildSummary) -> None:
    with Writer(out) as w:
        done = w.done()
        jobs, given = [], {}
        for s in sessions:
            tid = take_id(s)
            if tid in given:  # the same folder twice (another path, a link): one job, else both would run on it
                log.warning("dataset build: %s is the session %s given again (take %s): built once", s, given[tid],
                            tid)
                continue
            given[tid] = s
            if tid in done:
                summary.skipped.append(tid)
            else:
                jobs.append((tid, str(Path(s).resolve()), tuple(cfg.sets)))
        for tid, data, err, seconds in run_jobs(_task, jobs, workers, scheduler):
            summary.compute_seconds += seconds
            if err is None:
                try:
                    w.add_take(tid, data, cfg, new_event(take=tid, status="committed", seconds=round(seconds, 2)))
                except TakeMismatchError as e:  # another keypoint set or skeleton than the dataset's
                    err = f"{type(e).__name__}: {e}"
            if err is not None:
                summary.failed[tid] = err.splitlines()[0]
                w.log_event(new_event(take=tid, status="failed", error=err))
                log.warning("take %s failed: %s", tid, err.splitlines()[0])
            else:
                summary.committed.append(tid)
                if w.commit_due(cfg.commit_every_s):
                    w.commit()
            if progress:
                progress(f"{tid}: {'failed' if err else 'committed'}")
        w.commit()
        for tid, why in w.rejected.items():  # waiting takes of an earlier build that the dataset cannot hold
            summary.failed[tid] = f"{TakeMismatchError.__name__}: {why}"
            for kept in (summary.committed, summary.skipped):
                if tid in kept:
                    kept.remove(tid)
