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
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

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
    body = Keypoints2D(kp.data[..., :33, :], kp.camera_names, "blazepose33", kp.fps)
    uv = np.moveaxis(take.rig.project(take.truth), 0, 1)
    hand_px = float(np.nanmedian(np.linalg.norm(uv[:, :, [45, 66]] - uv[:, :, [33, 54]], axis=-1)))
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
    times = {"body_s": tb_tri + tb_ref, "hands_s": th_tri + th_ref,  # CPU seconds "body_triangulate_s": tb_tri,
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


def detection_cost(video: str, frames: int = 30, variant: str = "full") -> dict:
    """Milliseconds per frame (wall and CPU) of BlazePose alone and with hands on the same frames of a real
    video, each frame timed both ways in turn (so both see the same machine load), and the share of frames
    with a hand."""
    import cv2

    from mocap.detect.blazepose import BlazePose
    from mocap.detect.hands import HandDetector

    cap = cv2.VideoCapture(str(video))
    alone, with_hands = BlazePose(), BlazePose()
    hands = HandDetector(variant)
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
            "crops": hands.stats}


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


def hand_scale_px(rig, truth: np.ndarray) -> np.ndarray:
    """(F, C, 2) how many pixels each true hand spans in each view: the length of its middle finger chain
    (wrist → MCP → PIP → DIP → tip, i.e. the flat hand's length, whatever its curl) times the focal length over
    the wrist's depth. ``truth``: (F, 75, 3) ``blazepose33_hands`` in the rig's world."""
    out = np.full((len(truth), len(rig.cameras), 2), np.nan)
    for s in (0, 1):
        chain = [33 + 21 * s + k for k in (0, 9, 10, 11, 12)]
        length = sum(np.linalg.norm(truth[:, b] - truth[:, a], axis=-1) for a, b in zip(chain[:-1], chain[1:],
                                                                                         strict=True))
        for c, cam in enumerate(rig.cameras):
            z = (truth[:, chain[0]] @ cam.R.T + cam.t)[:, 2]
            out[:, c, s] = np.sqrt(cam.K[0, 0] * cam.K[1, 1]) * length / z
    return out


def hand_visibility(rig, truth: np.ndarray, bone_visible: np.ndarray, min_share: float = 0.5) -> np.ndarray:
    """(F, C, 2) whether each true hand is visible in each view: its wrist inside the image and at least
    ``min_share`` of its 21 keypoints inside the image and not hidden (``bone_visible`` (F, C, 21 * 2): the
    renderer's ray casts from the camera to each keypoint's rig joint, which ignore the last 4 cm, i.e. a
    finger hidden by its own hand counts as seen, one behind the body or the other hand does not; NaN where
    a keypoint has no rig joint, the fingertips: they are left out)."""
    out = np.zeros((len(truth), len(rig.cameras), 2), bool)
    for c, cam in enumerate(rig.cameras):
        uv = cam.project(truth[:, 33:])
        w, h = cam.size
        inside = (uv[..., 0] >= 0) & (uv[..., 0] <= w - 1) & (uv[..., 1] >= 0) & (uv[..., 1] <= h - 1)
        for s in (0, 1):
            sl = slice(21 * s, 21 * s + 21)
            vis = bone_visible[:, c, sl]
            known = np.isfinite(vis)
            seen = inside[:, sl] & (np.nan_to_num(vis) > 0.5)
            out[:, c, s] = inside[:, 21 * s] & (seen.sum(axis=1) >= min_share * known.sum(axis=1))
    return out


def _hand_frames(truth: np.ndarray, s: int) -> np.ndarray:
    """(F, 3, 3) the true hand's frame: columns x (pinky MCP → index MCP), z (wrist → middle MCP, made
    orthogonal), y = z × x."""
    b = 33 + 21 * s
    x = truth[:, b + 5] - truth[:, b + 17]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    up = truth[:, b + 9] - truth[:, b]
    z = up - np.sum(up * x, axis=1, keepdims=True) * x
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    return np.stack([x, np.cross(z, x), z], axis=2)


def bias_corrected_tips(est: np.ndarray, truth: np.ndarray) -> dict:
    """Fingertip error (mm) with a constant offset per fingertip (where the detector puts a tip is not where the
    rig's is: skin against joint centre) estimated on the first half of the frames and removed from the second:
    constant in the world, and constant in the true hand's frame (it turns with the hand). est, truth: (F, 75, 3)."""
    half = len(est) // 2
    world, local = [], []
    for s in (0, 1):
        tips = [33 + 21 * s + k for k in TIPS]
        d = est[:, tips] - truth[:, tips]
        world.append(np.linalg.norm(d[half:] - np.nanmean(d[:half], axis=0), axis=-1))
        H = _hand_frames(truth, s)
        loc = np.einsum("fji,fkj->fki", H, d)
        bias = np.nanmean(loc[:half], axis=0)
        local.append(np.linalg.norm(d[half:] - np.einsum("fij,kj->fki", H[half:], bias), axis=-1))
    world, local = np.concatenate(world, axis=1) * 1000, np.concatenate(local, axis=1) * 1000
    return {"fingertip_world_bias_corrected_mm": float(np.nanmean(world)),
            "fingertip_hand_bias_corrected_mm": float(np.nanmean(local)),
            "fingertip_hand_bias_corrected_median_mm": float(np.nanmedian(local))}


def _flexion_per_joint(est: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Median flexion error (degrees) of each finger joint, both hands together: thumb1 (at the CMC) … pinky3."""
    d = np.concatenate([np.abs(flexion_angles(est[:, 33 + 21 * s: 54 + 21 * s])
                               - flexion_angles(truth[:, 33 + 21 * s: 54 + 21 * s])) for s in (0, 1)])
    names = [f"{f}{j}" for f in ("thumb", "index", "middle", "ring", "pinky") for j in (1, 2, 3)]
    return {n: float(np.nanmedian(d[:, i])) for i, n in enumerate(names)}


def rendered_hand_figures(work, R: np.ndarray, t: np.ndarray, character: dict, skeleton: str) -> dict:
    """Hands of a pipeline run on a take of ``mocap synth render --hands`` (``work``: the session folder, after
    the run), against its ground truth; ``R``, ``t`` map the run's world onto the true one, ``character`` is the
    synth preset (its ``evaluate_hands``: the rig joint of each hand keypoint), ``skeleton`` the fitted one.

    Per camera and hand: views where the hand is visible (:func:`hand_visibility`), the share of them where a
    hand was detected on that side, and where it was detected in the right place (median keypoint distance
    under 30 % of the hand's size in the image, :func:`hand_scale_px`; a hand taken for the other, or another
    thing, is not), hands found where none is visible, the 2D keypoint error (median px) and the hand size.
    In 3D: :func:`hand_metrics` of the refined points (and of the fitted skeleton's hand keypoints when it has
    fingers) and :func:`bias_corrected_tips`."""
    from pathlib import Path

    work = Path(work)
    with warnings.catch_warnings():  # the truth holds only the evaluated body keypoints; undetected hands: NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return _rendered_hand_figures(work, R, t, character, skeleton)


def _rendered_hand_figures(work, R: np.ndarray, t: np.ndarray, character: dict, skeleton: str) -> dict:
    from mocap.io.capture import read_capture
    from mocap.io.hdf5 import read_points3d
    from mocap.io.rig_files import read_rig
    from mocap.keypoint_sets import get_keypoint_set
    from mocap.session import Session

    truth = read_points3d(work / "groundtruth" / "points3d.h5").xyz[:, 0]
    if truth.shape[1] != 75:
        return {}
    true_rig = read_rig(work / "groundtruth" / "rig.toml")
    gt = np.load(work / "groundtruth" / "rig_joints.npz")
    names, visible = list(gt["names"]), gt["visible"]  # (F, C, B)
    kps = get_keypoint_set("blazepose33_hands")
    bone_vis = np.full(visible.shape[:2] + (42,), np.nan)
    for kp_name, bone in character.get("evaluate_hands", {}).items():
        bone_vis[:, :, kps.index(kp_name) - 33] = visible[:, :, names.index(bone)]
    shown = hand_visibility(true_rig, truth, bone_vis)
    scale = hand_scale_px(true_rig, truth)
    kp = Session(work).keypoints2d(true_rig)
    per_camera = {}
    totals = np.zeros(4)
    for c, cam in enumerate(true_rig.cameras):
        det = kp.xy[:, kp.camera_names.index(cam.name), 0, 33:]  # (F, 42, 2)
        uv = cam.project(truth[:, 33:])
        row = {}
        for s, side in enumerate(("left", "right")):
            sl = slice(21 * s, 21 * s + 21)
            found = np.isfinite(det[:, sl, 0]).any(axis=1)
            with np.errstate(invalid="ignore"):
                err = np.nanmedian(np.linalg.norm(det[:, sl] - uv[:, sl], axis=-1), axis=1) if found.any() else \
                    np.full(len(det), np.nan)
            right = found & (err < 0.3 * scale[:, c, s])
            vis = shown[:, c, s]
            row[side] = {"visible_frames": int(vis.sum()), "detected": float(found[vis].mean()) if vis.any() else None,
                         "detected_in_place": float(right[vis].mean()) if vis.any() else None,
                         "found_where_not_visible": int((found & ~vis).sum()),
                         "keypoint_px_median": float(np.nanmedian(err[right])) if right.any() else None,
                         "hand_px_median": float(np.median(scale[:, c, s]))}
            totals += [vis.sum(), (found & vis).sum(), (right & vis).sum(), (found & ~vis).sum()]
        per_camera[cam.name] = row
    est = read_points3d(work / "points3d" / "refined.h5").xyz[:, 0] @ R.T + t
    out = {"hand_px_median": float(np.median(scale)), "hand_px_p10": float(np.percentile(scale, 10)),
           "visible_views": int(totals[0]), "detected_share": float(totals[1] / max(totals[0], 1)),
           "detected_in_place_share": float(totals[2] / max(totals[0], 1)),
           "found_where_not_visible": int(totals[3]), "per_camera": per_camera,
           "refined": {**hand_metrics(est, truth), **bias_corrected_tips(est, truth),
                       "flexion_median_per_joint_deg": _flexion_per_joint(est, truth)}}
    motion_path = work / "motion" / f"{Path(skeleton).stem}.npz"  # a preset name or a skeleton TOML file
    if motion_path.is_file():
        from mocap.synth.fingers import hand_keypoints

        motion, _ = read_capture(motion_path)
        if any("HandIndex" in n for n in motion.skeleton.joint_names):
            fitted = np.full_like(truth, np.nan)
            fitted[:, 33:] = hand_keypoints(motion, skeleton) @ R.T + t
            m = hand_metrics(fitted, truth)
            out["fit"] = {k: m[k] for k in ("finger_mpjpe_mm", "fingertip_mm", "flexion_median_deg",
                                             "flexion_p90_deg")} | bias_corrected_tips(fitted, truth)
    return out
