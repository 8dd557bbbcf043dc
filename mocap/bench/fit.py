"""``mocap bench fit``: skeleton fit accuracy and speed against mocap ground truth.

A CMU clip gives the truth: its joints → BlazePose-like 3D keypoints (the synthetic marker map),
then Gaussian noise (σ per coordinate) and dropouts in runs. The fit's joint centres are compared
with the noiseless keypoints' joint centres (same mapping), and its local joint rotations with the
clip's own, carried onto the fitted skeleton by retargeting (rest directions aligned, see
:mod:`mocap.retarget`): the geodesic angle per joint and frame.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mocap import blas_threads
from mocap.fit import FitConfig, combine_keypoints, fit_motion
from mocap.geometry.rotations import geodesic_deg, quat_to_matrix
from mocap.io.bvh import read_bvh
from mocap.motion import change_axes
from mocap.retarget import load_target_rig, retarget
from mocap.skeletons import load_skeleton
from mocap.synth.groundtruth import _runs, keypoints_from_motion, load_marker_map
from mocap.threads import cores

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitBenchConfig:
    bvh: str = ""
    frames: int = 0  # 0: the whole clip
    noise_mm: float = 10.0  # σ per coordinate
    dropouts: float = 0.10
    dropout_mean_frames: float = 10.0
    seed: int = 0
    workers: int = 0  # fit.workers: threads for the first solve (0: one per core)


def truth_motion(bvh: str, n_frames: int = 0):
    """The clip (its first ``n_frames``; 0: all) and the marker map. A first frame that is not part of the
    motion (the T-pose mocap converters put before the take: on CMU's clips a joint moves 0.7-1.1 m into frame 1,
    where the take's own steps are at most 0.05-0.17 m) is left out: scored, it made the fit's smoothing blur
    that jump into frames 1-3 (hands 200-750 mm off)."""
    mm = load_marker_map()
    clip = read_bvh(bvh, scale=mm.scale)
    if clip.n_frames > 2:
        _, p = clip.fk()
        step = np.linalg.norm(np.diff(p[: min(clip.n_frames, 2000)], axis=0), axis=2).max(axis=1)
        if step[0] > 3 * step[1:].max():
            log.info("%s: frame 0 jumps %.2f m into frame 1 (the take's steps: at most %.2f m): a pose before the "
                     "take, left out", Path(bvh).name, step[0], step[1:].max())
            clip = type(clip)(clip.skeleton, clip.rotations[1:], clip.root_positions[1:], clip.fps)
    if n_frames:
        clip = type(clip)(clip.skeleton, clip.rotations[:n_frames], clip.root_positions[:n_frames], clip.fps)
    return clip, mm


def run(cfg: FitBenchConfig) -> dict:
    clip, mm = truth_motion(cfg.bvh, cfg.frames)
    kp = keypoints_from_motion(clip, mm)
    F, K = kp.shape[:2]
    rng = np.random.default_rng(cfg.seed)
    noisy = kp + rng.normal(scale=cfg.noise_mm / 1000, size=kp.shape)
    for k in range(K):
        noisy[_runs(rng, F, cfg.dropouts, cfg.dropout_mean_frames), k] = np.nan
    spec = load_skeleton("body22")
    W, mapped = spec.mapping_matrix(mm.keypoint_set)
    truth_c = combine_keypoints(W, kp)[:, mapped]
    noisy_c = combine_keypoints(W, noisy)[:, mapped]
    t0, c0 = time.perf_counter(), time.process_time()
    with blas_threads.limited(1):  # as the pipeline runs the fit stage (mocap.pipeline.ONE_BLAS_THREAD_AFTER)
        motion, summary = fit_motion(noisy, mm.keypoint_set, clip.fps, FitConfig(workers=cfg.workers), spec)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    _, p = motion.fk()
    err = np.linalg.norm(p[:, mapped] - truth_c, axis=2)
    in_err = np.linalg.norm(noisy_c - truth_c, axis=2)
    # truth rotations on the fitted skeleton: the clip (Z up) retargeted through the CMU rig's map
    cmu = load_target_rig("cmu")
    body_from_cmu = {s: t for t, s in cmu.source.items() if t in clip.skeleton.joint_names}
    truth = retarget(change_axes(clip, mm.to_world), motion.skeleton, body_from_cmu, scale_root=False)
    names = list(body_from_cmu)
    idx = [motion.skeleton.index(n) for n in names]
    ok = np.flatnonzero(np.isfinite(motion.rotations[:, 0, 0]))
    Gf, _ = motion.fk()
    Gt, _ = truth.fk()
    raw_local = geodesic_deg(quat_to_matrix(motion.rotations[ok][:, idx]), quat_to_matrix(truth.rotations[ok][:, idx]))
    raw_world = geodesic_deg(Gf[ok][:, idx], Gt[ok][:, idx])
    # Rest-pose definitions differ between rigs (e.g. the CMU skeleton's elbow axis is tilted 30° from
    # ours, so its upper arm is twisted 30° at rest): a constant rotation per joint, estimated on the
    # first half of the frames, is taken out and the error measured on the second half.
    half = ok[: len(ok) // 2], ok[len(ok) // 2:]
    C = _mean_rotation(np.swapaxes(Gt[half[0]], -1, -2) @ Gf[half[0]])  # (J, 3, 3)
    Ga = Gt[half[1]] @ C
    par = motion.skeleton.parents
    loc_a = Ga.copy()
    loc_a[:, 1:] = np.swapaxes(Ga[:, par[1:]], -1, -2) @ Ga[:, 1:]
    loc_f = Gf[half[1]].copy()
    loc_f[:, 1:] = np.swapaxes(Gf[half[1]][:, par[1:]], -1, -2) @ Gf[half[1]][:, 1:]
    ang = geodesic_deg(loc_f[:, idx], loc_a[:, idx])
    # the tails a skinned character shows: a joint turning over 45° between consecutive fitted frames (a flip)
    fitted = quat_to_matrix(motion.rotations[ok])
    steps = geodesic_deg(fitted[1:], fitted[:-1])[np.diff(ok) == 1]
    gang = geodesic_deg(Gf[half[1]][:, idx], Ga[:, idx])
    per_joint = {n: {"local_deg_median": float(np.median(ang[:, i])), "world_deg_median": float(np.median(gang[:, i])),
                     "raw_local_deg_median": float(np.median(raw_local[:, i])),
                     "rest_offset_deg": float(geodesic_deg(C[idx[i]], np.eye(3)))}
                 for i, n in enumerate(names)}
    return {
        "config": asdict(cfg), "frames": F, "fps_clip": clip.fps,
        "input_mpjpe_mm": float(np.nanmean(in_err) * 1000),
        "mpjpe_mm": float(np.mean(err) * 1000), "p95_mm": float(np.percentile(err, 95) * 1000),
        "ratio_to_sigma": float(np.mean(err) * 1000 / cfg.noise_mm),
        "ratio_to_input_mpjpe": float(np.mean(err) / np.nanmean(in_err)),
        "joint_angle_deg_median": float(np.median(ang)), "joint_angle_deg_mean": float(np.mean(ang)),
        "world_angle_deg_median": float(np.median(gang)),
        "joint_frames_over_45deg": int((steps > 45).sum()), "max_step_deg": float(steps.max(initial=0.0)),
        "over_45deg_by_joint": {motion.skeleton.joint_names[j]: int(c) for j, c in enumerate((steps > 45).sum(0)) if c},
        "raw_joint_angle_deg_median": float(np.median(raw_local)),
        "raw_world_angle_deg_median": float(np.median(raw_world)),
        "frames_per_second": F / seconds, "seconds": seconds,  # threads: the first solve's, one per chunk at most
        "threads": min(cfg.workers or cores(), -(-summary.fitted_frames // FitConfig().chunk_frames)),
        # the fit's own CPU time (all threads): above the wall time, its threads at work; below, a loaded machine
        "cpu_seconds": cpu, "frames_per_cpu_second": F / cpu,
        "per_joint_mm": {n: float(e) for n, e in zip(np.array(spec.skeleton.joint_names)[mapped], err.mean(0) * 1000,
                                                     strict=True)},
        "per_joint_angle": per_joint, "fit_summary": asdict(summary),
    }


def _mean_rotation(R: np.ndarray) -> np.ndarray:
    """Chordal mean over axis 0 of (N, J, 3, 3) rotations → (J, 3, 3)."""
    U, _, Vt = np.linalg.svd(R.mean(axis=0))
    D = np.ones((R.shape[1], 3))
    D[:, 2] = np.sign(np.linalg.det(U @ Vt))
    return (U * D[:, None, :]) @ Vt


@dataclass(frozen=True)
class FingersBenchConfig:
    bvh: str = ""
    frames: int = 0  # 0: the whole clip
    noise_mm: float = 10.0  # σ per coordinate on the body keypoints
    hand_noise_mm: float = 4.0  # σ per coordinate on the hand keypoints (refined hands: ~3-5 mm)
    dropouts: float = 0.10
    dropout_mean_frames: float = 10.0
    seed: int = 0
    repeats: int = 3  # timing: the best of this many fits of each kind
    workers: int = 0  # fit.workers: threads for the first solves (0: one per core)


def run_fingers(cfg: FingersBenchConfig) -> dict:
    """The fingers variant: a CMU clip's BlazePose-33 body plus 42 hand keypoints with procedural finger
    motion (:func:`mocap.synth.groundtruth.hands_on_body`), noisy 3D with dropouts, fitted with ``body52``.
    Finger flexion (each finger joint's rotation about its flexion axis) and fingertip errors against the
    truth, and the fit's time with fingers against the body-only fit (body22 on the 33 body points)."""
    from mocap.synth.fingers import add_fingers, finger_curls, flexion_angles, hand_keypoints
    from mocap.synth.groundtruth import hands_on_body
    from mocap.types import Motion

    clip, mm = truth_motion(cfg.bvh, cfg.frames)
    body = keypoints_from_motion(clip, mm)
    F = len(body)
    curls = finger_curls(F, clip.fps, cfg.seed)
    hands = hands_on_body(body, curls)
    kp = np.concatenate([body, hands], axis=1)
    rng = np.random.default_rng(cfg.seed)
    sigma = np.r_[np.full(33, cfg.noise_mm), np.full(42, cfg.hand_noise_mm)] / 1000
    noisy = kp + rng.normal(size=kp.shape) * sigma[None, :, None]
    for k in range(kp.shape[1]):
        noisy[_runs(rng, F, cfg.dropouts, cfg.dropout_mean_frames), k] = np.nan

    def timed(fn):
        best, cpu, out = np.inf, np.inf, None
        for _ in range(max(cfg.repeats, 1)):
            t0, c0 = time.perf_counter(), time.process_time()
            with blas_threads.limited(1):  # as the pipeline runs the fit stage
                out = fn()
            best, cpu = min(best, time.perf_counter() - t0), min(cpu, time.process_time() - c0)
        return out, best, cpu

    (_, s22), t22, c22 = timed(lambda: fit_motion(noisy[:, :33], mm.keypoint_set, clip.fps,
                                                  FitConfig(workers=cfg.workers)))
    (m52, s52), t52, c52 = timed(lambda: fit_motion(noisy, "blazepose33_hands", clip.fps,
                                                    FitConfig(skeleton="body52", workers=cfg.workers)))
    sk22 = load_skeleton("body22").skeleton
    rest = Motion(sk22, np.tile([1.0, 0, 0, 0], (F, len(sk22.joint_names), 1)), np.zeros((F, 3)), clip.fps)
    ft, ff = flexion_angles(add_fingers(rest, curls)), flexion_angles(m52)
    ok = np.isfinite(m52.rotations[:, 0, 0])
    per_joint = {n: float(np.median(np.degrees(np.abs(ff[n][ok] - ft[n][ok])))) for n in ft}
    flex = np.degrees(np.abs(np.concatenate([ff[n][ok] - ft[n][ok] for n in ft])))
    tips = [4, 8, 12, 16, 20, 25, 29, 33, 37, 41]
    fitted = hand_keypoints(m52)
    tip_err = np.linalg.norm(fitted[ok][:, tips] - hands[ok][:, tips], axis=2) * 1000
    all_err = np.linalg.norm(fitted[ok] - hands[ok], axis=2) * 1000
    in_tip = np.linalg.norm(noisy[:, 33:][:, tips] - hands[:, tips], axis=2) * 1000
    return {
        "config": asdict(cfg), "frames": F, "fps_clip": clip.fps,
        "flexion_deg_median": float(np.median(flex)), "flexion_deg_p95": float(np.percentile(flex, 95)),
        "fingertip_mm_median": float(np.median(tip_err)), "fingertip_mm_p95": float(np.percentile(tip_err, 95)),
        "hand_keypoints_mm_median": float(np.median(all_err)), "input_fingertip_mm_median": float(np.nanmedian(in_tip)),
        "per_joint_flexion_deg_median": per_joint,
        "seconds_body22": t22, "seconds_body52": t52, "time_ratio": t52 / t22,
        "cpu_seconds_body22": c22, "cpu_seconds_body52": c52, "cpu_ratio": c52 / c22,
        "fit_summary_body22": asdict(s22), "fit_summary_body52": asdict(s52),
    }

