"""Hands from pixels on a rendered take (``mocap bench e2e`` with ``--hands``): which views show a hand, how big
it is in the image, fingertip errors once each tip's constant offset is taken out, finger flexion per joint
(:func:`rendered_hand_figures`). The synthetic-2D hands bench is :mod:`mocap.bench.hands`."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from mocap.bench.hands import TIPS, flexion_angles, hand_metrics


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
