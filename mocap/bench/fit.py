"""``mocap bench fit``: skeleton fit accuracy and speed against mocap ground truth.

A CMU clip gives the truth: its joints → BlazePose-like 3D keypoints (the synthetic marker map),
then Gaussian noise (σ per coordinate) and dropouts in runs. The fit's joint centres are compared
with the noiseless keypoints' joint centres (same mapping), and its local joint rotations with the
clip's own, carried onto the fitted skeleton by retargeting (rest directions aligned, see
:mod:`mocap.retarget`): the geodesic angle per joint and frame.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from mocap.fit import FitConfig, combine_keypoints, fit_motion
from mocap.geometry.rotations import geodesic_deg, quat_to_matrix
from mocap.io.bvh import read_bvh
from mocap.motion import change_axes
from mocap.retarget import load_target_rig, retarget
from mocap.skeletons import load_skeleton
from mocap.synth.groundtruth import _runs, keypoints_from_motion, load_marker_map


@dataclass(frozen=True)
class FitBenchConfig:
    bvh: str = ""
    frames: int = 0  # 0: the whole clip
    noise_mm: float = 10.0  # σ per coordinate
    dropouts: float = 0.10
    dropout_mean_frames: float = 10.0
    seed: int = 0


def truth_motion(bvh: str, n_frames: int = 0):
    mm = load_marker_map()
    clip = read_bvh(bvh, scale=mm.scale)
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
    t0 = time.perf_counter()
    motion, summary = fit_motion(noisy, mm.keypoint_set, clip.fps, FitConfig(), spec)
    seconds = time.perf_counter() - t0
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
        "raw_joint_angle_deg_median": float(np.median(raw_local)),
        "raw_world_angle_deg_median": float(np.median(raw_world)),
        "frames_per_second": F / seconds, "seconds": seconds,
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
