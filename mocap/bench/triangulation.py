"""``mocap bench triangulation``: accuracy and cost of 3D reconstruction on synthetic ground truth.

One take is generated (CMU clip → BlazePose keypoints → ring of cameras → noise, outliers,
dropouts) and every method runs on the identical 2D input: plain DLT, robust subset search,
robust + 6 Hz Butterworth (Pose2Sim's recipe), refine, the oracle (refine started from the truth
with the injected outliers removed) and, when installed, aniposelib's triangulate,
triangulate_ransac and triangulate_optim.
"""

from __future__ import annotations

import logging
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mocap.bench.common import SyntheticTakeConfig, bone_std_mm, measure, position_errors
from mocap.filters import butterworth, interpolate_gaps
from mocap.keypoint_sets import get_keypoint_set
from mocap.optim.refine import RefineConfig
from mocap.stages import refine, triangulate
from mocap.types import Points3D

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BenchConfig(SyntheticTakeConfig):
    peers: str = "all"  # none | fast (triangulate, optim) | all (+ ransac, optim after ransac)
    butterworth_hz: float = 6.0


def _quiet_peers() -> None:
    """aniposelib's numba kernels fall back to object mode with pages of warnings; keep the table readable."""
    import warnings

    try:
        from numba.core.errors import NumbaWarning

        warnings.simplefilter("ignore", NumbaWarning)
    except ImportError:
        pass
    for name in ("numba", "jax"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _anipose_ransac(group, flat: np.ndarray):
    """aniposelib 0.8.0's triangulate_ransac crashes on a point no camera sees ("need at least one
    array to stack"), so it gets the points with two or more views; the rest stay NaN."""
    seen = np.sum(np.isfinite(flat[..., 0]), axis=0) >= 2
    X = np.full((flat.shape[1], 3), np.nan)
    p2ds = np.full(flat.shape, np.nan)
    X[seen], _, p2ds[:, seen], _ = group.triangulate_ransac(flat[:, seen])
    return X, p2ds


def _anipose_group(rig):
    from aniposelib.cameras import Camera as ACamera
    from aniposelib.cameras import CameraGroup, FisheyeCamera

    from mocap.geometry.rotations import matrix_to_axis_angle

    cams = []
    for c in rig.cameras:
        cls = FisheyeCamera if c.model == "fisheye" else ACamera
        cams.append(cls(matrix=c.K, dist=c.dist, size=c.size, rvec=matrix_to_axis_angle(c.R), tvec=c.t, name=c.name))
    return CameraGroup(cams)


def _after(warm, fn):
    """``fn`` timed alone after an untimed ``warm`` (its first-call compilation), both in the measured process:
    returns (its result, its wall seconds)."""
    def run():
        warm()
        t0 = time.perf_counter()
        return fn(), time.perf_counter() - t0
    return run


def _row(name: str, X: np.ndarray, truth: np.ndarray, bones, seconds: float, mem: float, **extra) -> dict:
    return {"method": name, **position_errors(X, truth), "bone_std_mm": bone_std_mm(X, bones),
            "seconds": seconds, "peak_mb": mem, **extra}


def run(cfg: BenchConfig, progress=None) -> dict:
    take = cfg.take()
    rig, kp, truth = take.rig, take.keypoints, take.truth
    bones = get_keypoint_set(kp.keypoint_set).bones
    rows = []
    step = progress or (lambda name: None)

    # every method runs once untimed on a few frames first, here (the measured runs fork from this process): a first
    # call pays its imports and compilations (scipy.signal: 2.7 s against 0.06 s of filtering; aniposelib's numba)
    few = type(kp)(kp.data[:20], kp.camera_names, kp.keypoint_set, kp.fps)
    warm = triangulate.run(rig, few, triangulate.Config())
    butterworth(interpolate_gaps(warm.xyz[:, 0], 30), cfg.fps, cfg.butterworth_hz)
    refine.run(rig, few, warm, refine.Config())
    step("DLT")
    plain, s, m = measure(lambda: triangulate.run(rig, kp, triangulate.Config(max_reproj_px=None)))
    rows.append(_row("DLT (all views, weighted)", plain.xyz[:, 0], truth, bones, s, m))
    step("robust")
    robust, s, m = measure(lambda: triangulate.run(rig, kp, triangulate.Config()))
    rows.append(_row("robust (camera-subset search)", robust.xyz[:, 0], truth, bones, s, m))
    step("robust + Butterworth")
    smooth, s2, m2 = measure(lambda: butterworth(interpolate_gaps(robust.xyz[:, 0], 30), cfg.fps, cfg.butterworth_hz))
    rows.append(_row(f"robust + Butterworth {cfg.butterworth_hz:g} Hz", smooth, truth, bones, s + s2, max(m, m2)))
    step("refine")
    (refined, summaries), s3, m3 = measure(lambda: refine.run(rig, kp, robust, refine.Config()))
    rows.append(_row("refine (robust init, excl. init)", refined.xyz[:, 0], truth, bones, s3, m3,
                     iterations=summaries[0].iterations, noise_px_estimated=summaries[0].noise_px,
                     usable=summaries[0].usable))
    rows.append(_row("refine incl. robust init", refined.xyz[:, 0], truth, bones, s + s3, max(m, m3)))
    step("oracle")
    clean = kp.data.copy()
    clean[:, :, 0][take.masks["outlier"]] = np.nan
    from mocap.types import Keypoints2D

    kp_clean = Keypoints2D(clean, kp.camera_names, kp.keypoint_set, kp.fps)
    F, J = truth.shape[:2]
    gt_init = Points3D(truth[:, None], np.zeros((F, 1, J)), np.ones((F, 1, J, len(rig)), bool), rig.names,
                       kp.keypoint_set, kp.fps)
    oracle_cfg = refine.Config(solver=RefineConfig(noise_px=cfg.noise_px, loss="l2"))
    (oracle, _), s4, m4 = measure(lambda: refine.run(rig, kp_clean, gt_init, oracle_cfg))
    rows.append(_row("oracle (refine from truth, outliers known)", oracle.xyz[:, 0], truth, bones, s4, m4))

    peers = {}
    if cfg.peers != "none":
        _quiet_peers()
        try:
            group = _anipose_group(rig)
        except ImportError:
            log.warning("aniposelib is not installed (pip install -e '.[bench]'): peer rows skipped")
            group = None
        if group is not None:
            pts = np.moveaxis(kp.xy[:, :, 0], 1, 0)  # (C, F, J, 2)
            pts = np.where(triangulate.observation_weights(kp, 0.2)[:, :, 0][..., None].transpose(1, 0, 2, 3) > 0,
                           pts, np.nan)
            flat = pts.reshape(len(rig), -1, 2)
            kw = {"constraints": [list(b) for b in bones]}
            # their first calls compile (numba): run untimed first in the measured child (not here: a fork after
            # numba's threads start can hang), as ours ran above
            first = (lambda: group.triangulate(flat[:, :J * 5]),
                     lambda: group.triangulate_optim(pts[:, :5], init_ransac=False, **kw))
            step("aniposelib triangulate")
            (X, s), _, m = measure(_after(first[0], lambda: group.triangulate(flat)))
            rows.append(_row("aniposelib triangulate", X.reshape(F, J, 3), truth, bones, s, m))
            step("aniposelib triangulate_optim")
            (X, s), _, m = measure(_after(first[1], lambda: group.triangulate_optim(pts, init_ransac=False, **kw)))
            rows.append(_row("aniposelib triangulate_optim", X, truth, bones, s, m))
            peers["optim_seconds"], peers["optim_mpjpe"] = s, rows[-1]["mpjpe_mm"]
            if cfg.peers == "all":
                step("aniposelib triangulate_ransac")
                ((X, p2ds), s), _, m = measure(_after(first[0], lambda: _anipose_ransac(group, flat)))
                rows.append(_row("aniposelib triangulate_ransac", X.reshape(F, J, 3), truth, bones, s, m))
                step("aniposelib optim after ransac")
                (X2, s2), _, m2 = measure(_after(first[1], lambda: group.optim_points(p2ds.reshape(pts.shape),
                                                                                     X.reshape(F, J, 3), **kw)))
                rows.append(_row("aniposelib triangulate_optim (RANSAC init, excl. init)", X2, truth, bones, s2, m2))
                if rows[-1]["mpjpe_mm"] < peers["optim_mpjpe"]:
                    peers["optim_seconds"], peers["optim_mpjpe"] = s2, rows[-1]["mpjpe_mm"]
    ref = next(r for r in rows if r["method"].startswith("refine (robust"))
    orc = next(r for r in rows if r["method"].startswith("oracle"))
    ratios = {"refine_over_oracle": ref["mpjpe_mm"] / orc["mpjpe_mm"]}
    if peers:
        ratios["refine_over_best_anipose_optim_mpjpe"] = ref["mpjpe_mm"] / peers["optim_mpjpe"]
        ratios["refine_over_best_anipose_optim_time"] = (ref["seconds"]) / peers["optim_seconds"]
    return {"config": asdict(cfg), "machine": {"python": platform.python_version(), "cpus": _cpus()},
            "rows": rows, "ratios": ratios, "refine_summary": asdict(summaries[0])}


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_bvh() -> Path | None:
    from mocap.data import shared_data_dir

    root = shared_data_dir()
    return root / "bvh" / "cmu_01_03.bvh" if root else None
