"""``mocap bench hands``: hand keypoints from synthetic 2D through triangulate and refine, against the truth.

A CMU clip's BlazePose-33 body plus 42 hand keypoints with procedural finger motion
(:func:`mocap.synth.groundtruth.hands_on_body`), seen by a ring of 1920x1080 cameras 3-4 m away, with
σ ``noise_px`` on the body, σ ``hand_noise_px`` on the hands, outliers and dropouts. Rows: the triangulated
and the refined points; columns: finger keypoint MPJPE (the 40 finger points, wrists excluded), fingertip
error, finger flexion angle error (the angle between consecutive segments of each finger, against the truth's),
body MPJPE; and the time of triangulate + refine with hands against the same take without them.

Also :func:`hand_jitter`: how much MediaPipe's hand landmarks move when the crop moves by a pixel or two
(what a static hand sees from frame to frame), as a share of the hand's size, on real frames; and
:func:`real_demo_figures`: per camera the share of frames with hands and the median reprojection error of the
triangulated hand keypoints of a session.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from mocap.bench.common import run_record

TIPS = (4, 8, 12, 16, 20)  # in a hand's 21
CHAINS = ((0, 1, 2, 3, 4), (0, 5, 6, 7, 8), (0, 9, 10, 11, 12), (0, 13, 14, 15, 16), (0, 17, 18, 19, 20))


@dataclass(frozen=True)
class HandsBenchConfig:
    bvh: str
    frames: int = 600
    fps: float = 60.0
    cameras: int = 6
    noise_px: float = 2.0
    hand_noise_px: float = 1.0  # see hand_jitter and the README for where this comes from
    outliers: float = 0.05
    dropouts: float = 0.10
    seed: int = 0
    # share of the views in which each hand is missing as a whole, in runs of 10 frames (a hand detector misses
    # whole hands: on the real demo it found 20 of 60); 0: hands miss only the per-keypoint dropouts
    hand_missing: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.hand_missing < 1.0:
            raise ValueError(f"bench hands: hand_missing must be in [0, 1), got {self.hand_missing}")


def flexion_angles(hand: np.ndarray) -> np.ndarray:
    """(..., 21, 3) hand keypoints → (..., 15) angles (degrees) between consecutive segments of each finger,
    at its 3 inner joints (0: straight)."""
    out = []
    for chain in CHAINS:
        for a, b, c in zip(chain[:-2], chain[1:-1], chain[2:], strict=True):
            u, v = hand[..., b, :] - hand[..., a, :], hand[..., c, :] - hand[..., b, :]
            cos = np.sum(u * v, -1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1))
            out.append(np.degrees(np.arccos(np.clip(cos, -1, 1))))
    return np.stack(out, axis=-1)


def hand_metrics(est: np.ndarray, truth: np.ndarray) -> dict:
    """est, truth: (F, 75, 3) in metres → finger MPJPE, fingertip error, flexion error (medians over the frames
    where the points exist), body MPJPE and the share of hand points reconstructed."""
    fingers = [33 + 21 * s + k for s in (0, 1) for k in range(1, 21)]
    tips = [33 + 21 * s + k for s in (0, 1) for k in TIPS]
    err = np.linalg.norm(est - truth, axis=-1) * 1000
    flex_e = np.concatenate([flexion_angles(est[:, 33 + 21 * s: 54 + 21 * s]) for s in (0, 1)], axis=1)
    flex_t = np.concatenate([flexion_angles(truth[:, 33 + 21 * s: 54 + 21 * s]) for s in (0, 1)], axis=1)
    flex = np.abs(flex_e - flex_t)
    return {"finger_mpjpe_mm": float(np.nanmean(err[:, fingers])),
            "finger_median_mm": float(np.nanmedian(err[:, fingers])),
            "fingertip_mm": float(np.nanmean(err[:, tips])),
            "fingertip_median_mm": float(np.nanmedian(err[:, tips])),
            "flexion_median_deg": float(np.nanmedian(flex)),
            "flexion_p90_deg": float(np.nanpercentile(flex, 90)) if np.isfinite(flex).any() else float("nan"),
            "body_mpjpe_mm": float(np.nanmean(err[:, :33])),
            "hands_reconstructed": float(np.isfinite(est[:, 33:, 0]).mean())}


def drop_hands(data: np.ndarray, share: float, seed: int = 0, run_frames: int = 10) -> np.ndarray:
    """Keypoint data (F, C, P, 75, 3) of ``blazepose33_hands`` with each hand missing (NaN) from about ``share``
    of the views, in runs of ``run_frames`` frames per camera and hand."""
    out = data.copy()
    if share <= 0:
        return out
    rng = np.random.default_rng(seed)
    F, C = data.shape[:2]
    blocks = -(-F // run_frames)
    for c in range(C):
        for side in (0, 1):
            gone = np.repeat(rng.random(blocks) < share, run_frames)[:F]
            out[gone, c, :, 33 + 21 * side: 54 + 21 * side] = np.nan
    return out


def _solve(rig, kp):
    """Triangulate and refine; the CPU seconds of each (this process, all its threads: steadier than wall
    time on a shared machine)."""
    from mocap.stages import refine, triangulate

    t0 = time.process_time()
    tri = triangulate.run(rig, kp)
    t1 = time.process_time()
    ref, summaries = refine.run(rig, kp, tri)
    t2 = time.process_time()
    return tri, ref, summaries, t1 - t0, t2 - t1


def run(cfg: HandsBenchConfig, progress=lambda s: None) -> dict:
    from mocap.synth import CorruptionSpec, RigSpec, make_take
    from mocap.types import Keypoints2D

    progress("synthetic take")
    take = make_take(cfg.bvh, cfg.frames, cfg.fps, RigSpec(n_cameras=cfg.cameras),
                     CorruptionSpec(cfg.noise_px, cfg.outliers, cfg.dropouts, seed=cfg.seed,
                                    hand_noise_px=cfg.hand_noise_px), hands=True)
    kp = take.keypoints
    if cfg.hand_missing > 0:
        kp = Keypoints2D(drop_hands(kp.data, cfg.hand_missing, cfg.seed), kp.camera_names, kp.keypoint_set, kp.fps)
    body = Keypoints2D(kp.data[..., :33, :], kp.camera_names, "blazepose33", kp.fps)
    uv = np.moveaxis(take.rig.project(take.truth), 0, 1)
    hand_px = float(np.nanmedian(np.linalg.norm(uv[:, :, [45, 66]] - uv[:, :, [33, 54]], axis=-1)))
    progress("warm-up")  # the first solve pays the imports and caches: untimed, so the order does not decide the ratio
    _solve(take.rig, Keypoints2D(kp.data[:30], kp.camera_names, kp.keypoint_set, kp.fps))
    _solve(take.rig, Keypoints2D(body.data[:30], body.camera_names, body.keypoint_set, body.fps))
    progress("body only")
    tri_b, ref_b, _, tb_tri, tb_ref = _solve(take.rig, body)
    progress("body + hands")
    tri_h, ref_h, summaries, th_tri, th_ref = _solve(take.rig, kp)
    rows = []
    truth = take.truth[1:]  # frame 0 of a CMU clip is its T-pose, a jump no performer makes
    for name, pts in (("triangulated", tri_h), ("refined", ref_h)):
        rows.append({"method": name, **hand_metrics(pts.xyz[1:, 0], truth)})
    body_only = {"triangulated": float(np.nanmean(np.linalg.norm(tri_b.xyz[1:, 0] - truth[:, :33], axis=-1))),
                 "refined": float(np.nanmean(np.linalg.norm(ref_b.xyz[1:, 0] - truth[:, :33], axis=-1)))}
    for r in rows:
        r["body_only_mpjpe_mm"] = 1000 * body_only[r["method"]]
    times = {"body_s": tb_tri + tb_ref, "hands_s": th_tri + th_ref, "body_triangulate_s": tb_tri,  # CPU seconds
             "body_refine_s": tb_ref, "hands_triangulate_s": th_tri, "hands_refine_s": th_ref}
    times["ratio"] = times["hands_s"] / times["body_s"]
    return {"config": asdict(cfg), "hand_px": hand_px, "rows": rows, "times": times,
            "refine": [str(s) for s in summaries], **run_record()}


def hand_jitter(video: str, frames: int = 6, shifts: int = 6, seed: int = 0) -> dict:
    """MediaPipe hand landmarks of real frames re-detected in crops moved by up to ±2 px and scaled by ±3 %
    (what changes for a still hand from one frame to the next): the per-axis σ of each landmark about its
    mean, in pixels and as a share of the hand's size (wrist → middle fingertip), median over the hands."""
    import cv2

    from mocap.detect.blazepose import BlazePose
    from mocap.detect.hands import INPUT, SIDES, HandLandmarks, body_roi, crop_transform, invert

    rng = np.random.default_rng(seed)
    cap = cv2.VideoCapture(str(video))
    body_model, model = BlazePose(), HandLandmarks()
    px, share, sizes = [], [], []
    try:
        for i in range(frames):
            ok, img = cap.read()
            if not ok:
                break
            body = body_model(img, int(i * 1000 / 60))[0]
            rgb = np.ascontiguousarray(img[..., ::-1])
            for side in SIDES:
                roi = body_roi(body, side)
                if roi is None:
                    continue
                found = []
                for _ in range(shifts):
                    r = roi + np.array([*rng.uniform(-2, 2, 2), roi[2] * rng.uniform(-0.03, 0.03), 0.0])
                    M = crop_transform(r, INPUT)
                    pts, presence = model(cv2.warpAffine(rgb, M, (INPUT, INPUT), flags=cv2.INTER_LINEAR))
                    if presence >= 0.5:
                        found.append(invert(M, pts))
                if len(found) < 3:
                    continue
                P = np.stack(found)
                size = float(np.median(np.linalg.norm(P[:, 12] - P[:, 0], axis=-1)))
                sd = float(np.sqrt(np.mean(np.var(P, axis=0, ddof=1))))  # per-axis σ over the 21 points
                px.append(sd)
                share.append(sd / size)
                sizes.append(size)
    finally:
        model.close()
        body_model.close()
        cap.release()
    if not px:
        return {"hands": 0}
    return {"hands": len(px), "sigma_px": float(np.median(px)), "sigma_share": float(np.median(share)),
            "hand_px": float(np.median(sizes))}


def real_demo_figures(rig, points, kp) -> dict:
    """Per camera: the share of frames with a hand keypoint and the median reprojection error (px) of the
    triangulated hand keypoints in that camera, over the views that saw them. ``points``: Points3D of a
    keypoint set with hands (``blazepose33_hands``), ``kp``: the Keypoints2D they came from, ``rig`` theirs."""
    from mocap.geometry.camera import project
    from mocap.keypoint_sets import get_keypoint_set, hand_joints
    from mocap.stages.triangulate import observation_weights

    hands = hand_joints(get_keypoint_set(kp.keypoint_set))
    w = observation_weights(kp, 0.2)[:, :, 0][..., hands]  # (F, C, H)
    X = points.xyz[:, 0][:, hands]  # (F, H, 3)
    out = {}
    for c, cam in enumerate(rig.cameras):
        uv = kp.xy[:, c, 0][:, hands]
        with np.errstate(invalid="ignore"):
            e = np.linalg.norm(project(cam, X) - uv, axis=-1)
        use = (w[:, c] > 0) & np.isfinite(e)
        out[kp.camera_names[c]] = {"frames_with_hands": float((w[:, c] > 0).any(axis=1).mean()),
                                   "median_reproj_px": float(np.median(e[use])) if use.any() else float("nan"),
                                   "points": int(use.sum())}
    return out


def detection_cost(video: str, frames: int = 30, variant: str = "full", backend: str = "auto") -> dict:
    """Milliseconds per frame (wall and CPU) of BlazePose alone and with hands on the same frames of a real
    video, each frame timed both ways in turn (so both see the same machine load), the share of frames
    with a hand, and the hand detector's account (``crops``: landmark-model crops, ``calls``, ``recrops``,
    ``palm_runs`` / ``palm_found``, ``tracked``, ``found``; ``crops_per_frame``). ``backend``: the hand models'
    runtime (:func:`mocap.detect.hands.hand_models`)."""
    import cv2

    from mocap.detect.blazepose import BlazePose
    from mocap.detect.hands import HandDetector

    cap = cv2.VideoCapture(str(video))
    alone, with_hands = BlazePose(), BlazePose()
    hands = HandDetector(variant, backend=backend)
    t_body = t_hands = c_body = c_hands = 0.0
    n = found = 0
    try:
        for i in range(frames):
            ok, img = cap.read()
            if not ok:
                break
            ts = int(i * 1000 / 60)
            t0, p0 = time.perf_counter(), time.process_time()
            alone(img, ts)
            t1, p1 = time.perf_counter(), time.process_time()
            out = hands(img, with_hands(img, ts))
            t2, p2 = time.perf_counter(), time.process_time()
            t_body += t1 - t0
            t_hands += t2 - t1
            c_body += p1 - p0
            c_hands += p2 - p1
            n += 1
            found += int(np.isfinite(out[0, :, 0]).any())
    finally:
        for d in (alone, with_hands, hands):
            d.close()
        cap.release()
    return {"frames": n, "body_ms": 1000 * t_body / max(n, 1), "with_hands_ms": 1000 * t_hands / max(n, 1),
            "ratio": t_hands / t_body if t_body else float("nan"), "body_cpu_ms": 1000 * c_body / max(n, 1),
            "with_hands_cpu_ms": 1000 * c_hands / max(n, 1), "cpu_ratio": c_hands / c_body if c_body else float("nan"),
            "frames_with_hands": found / max(n, 1),
            "crops": hands.stats, "crops_per_frame": hands.stats["crops"] / max(n, 1)}


def session_hand_figures(session, stage: str = "triangulated") -> dict:
    """:func:`real_demo_figures` of a session's ``points3d/<stage>.h5`` (for the report): {camera:
    {frames_with_hands, median_reproj_px, points}}; empty when its keypoint set has no hands."""
    from mocap.io.hdf5 import read_points3d
    from mocap.keypoint_sets import get_keypoint_set, hand_joints
    from mocap.stages.triangulate import session_keypoints

    points = read_points3d(session.points3d(stage))
    if not hand_joints(get_keypoint_set(points.keypoint_set)).any():
        return {}
    rig = session.rig()
    single = points.info.get("config", {}).get("single_performer", True)
    return real_demo_figures(rig, points, session_keypoints(session, rig, single))
