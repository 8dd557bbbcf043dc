"""``mocap bench e2e``: the whole pipeline from pixels on a rendered take, against its ground truth.

The session (rendered by ``mocap synth render``: videos, calibration board take, no rig) is copied
and run from scratch: calibrate from the board, detect, sync, triangulate, refine, fit. The
calibrated world frame is aligned to the true one by the rigid transform that best maps the camera
centres (the board gives the scale), then:

* calibration: camera centre (mm), rotation (°) and focal length (%) errors;
* 3D keypoints vs the rig joints that play them (``configs/synth/<character>.toml`` [evaluate]):
  MPJPE raw, and bias-corrected: a constant offset per keypoint (where a detector puts a hip is not
  where the rig's hip joint is) estimated on the first half of the frames and evaluated on the
  second; also with the offset constant in the body's frame (hips and shoulders), which turns with
  the performer (``mpjpe_body_bias_corrected_mm``);
* joint angles: the angle between each fitted limb segment and the rig's (upper arm, forearm,
  thigh, shank), median in degrees;
* hands, on a take rendered with ``--hands`` (fitted with ``body52`` unless a ``fit.skeleton`` is set): per
  camera the share of the views where a hand is visible in which it was detected, fingertip error
  (bias-corrected) and finger flexion error (:func:`mocap.bench.hands_rendered.rendered_hand_figures`).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mocap.bench.hands_rendered import rendered_hand_figures
from mocap.config_files import load_preset
from mocap.geometry.align import rig_alignment
from mocap.io.hdf5 import read_points3d
from mocap.io.rig_files import read_rig
from mocap.keypoint_sets import get_keypoint_set

SEGMENTS = [("LeftArm", "LeftForeArm", "left_shoulder", "left_elbow"),
            ("LeftForeArm", "LeftHand", "left_elbow", "left_wrist"),
            ("RightArm", "RightForeArm", "right_shoulder", "right_elbow"),
            ("RightForeArm", "RightHand", "right_elbow", "right_wrist"),
            ("LeftUpLeg", "LeftLeg", "left_hip", "left_knee"),
            ("LeftLeg", "LeftFoot", "left_knee", "left_ankle"),
            ("RightUpLeg", "RightLeg", "right_hip", "right_knee"),
            ("RightLeg", "RightFoot", "right_knee", "right_ankle")]


@dataclass(frozen=True)
class E2EConfig:
    session: str  # a rendered session (mocap synth render)
    work: str = ""  # where to run it (default: a fresh copy next to it)
    character: str = "makehuman"
    sets: tuple[str, ...] = ("report.overlay_videos=false", "export.formats=['bvh']")


def working_copy(src: Path, work: str | Path | None, suffix: str, truth: bool = False) -> Path:
    """A fresh copy of a rendered session to run the pipeline in (``work``, or beside it with ``suffix``),
    without the renderer's scratch folder. ``truth``: the session must be a rendered take (its
    ``groundtruth/points3d.h5``), checked before anything is copied. ``work`` is replaced only when it is
    an empty folder or a session (a copy an earlier bench made); never a file or a link, the session itself,
    a folder inside it or one holding it."""
    src = Path(src)
    if not src.is_dir():
        raise FileNotFoundError(f"{src}: no such session folder")
    if truth and not (src / "groundtruth" / "points3d.h5").is_file():
        raise FileNotFoundError(f"{src} is not a rendered take: it has no ground truth (groundtruth/points3d.h5); "
                                "this benchmark scores a take of `mocap synth render OUT` (with --people N for "
                                "several people)")
    work = Path(work) if work else src.with_name(src.name + suffix)
    a, b = work.resolve(), src.resolve()
    if a == b or b in a.parents or a in b.parents:
        raise ValueError(f"--work {work}: the working copy would replace or sit inside the session {src} "
                         "(or hold it); choose a folder outside it")
    if work.is_symlink() or (work.exists() and not work.is_dir()):
        raise FileExistsError(f"--work {work}: it exists and is not a folder (a file or a link); it would be "
                              "replaced by the copy, so give a new or empty folder")
    if work.exists():
        is_session = any((work / d).is_dir() for d in (".mocap", "videos", "groundtruth"))
        if work.is_dir() and any(work.iterdir()) and not is_session:
            raise FileExistsError(f"--work {work}: the folder exists and is not a session (no .mocap, videos or "
                                  "groundtruth folder); it is replaced by the copy, so give a new or empty folder")
        shutil.rmtree(work)
    shutil.copytree(src, work, ignore=shutil.ignore_patterns(".render"))
    return work


def run(cfg: E2EConfig) -> dict:
    from mocap.io.capture import read_capture
    from mocap.pipeline import run as run_pipeline
    from mocap.session import Session

    work = working_copy(Path(cfg.session), cfg.work, "_e2e", truth=True)
    hands = read_points3d(work / "groundtruth" / "points3d.h5").keypoint_set == "blazepose33_hands"
    sets = list(cfg.sets)
    if hands and not any(s.startswith("fit.skeleton=") for s in sets):
        sets.append("fit.skeleton=body52")
    t0 = time.perf_counter()
    r = run_pipeline(work, sets=sets, progress=False)
    total = time.perf_counter() - t0
    from mocap.settings import load_config
    from mocap.stages.fit import skeleton_name

    settings = load_config(work, sets=sets)[0]  # the session's own mocap.toml included
    skeleton = settings.fit.solver.skeleton  # a preset name or a TOML file; the motion is named by its stem
    true_rig = read_rig(work / "groundtruth" / "rig.toml")
    rig = Session(work).rig()  # the calibrated rig, or rig_refine's when it applied one (what the points are in)
    R, t, names = rig_alignment(rig, true_rig)
    calib = {}
    for n in names:
        c, g = rig[n], true_rig[n]
        R_world = c.R @ R.T  # the calibrated camera's rotation in the true world frame
        ang = np.degrees(np.arccos(np.clip((np.trace(R_world @ g.R.T) - 1) / 2, -1, 1)))
        calib[n] = {"centre_mm": float(np.linalg.norm(R @ c.center + t - g.center) * 1000), "rotation_deg": float(ang),
                    "focal_pct": float(abs(c.K[0, 0] / g.K[0, 0] - 1) * 100)}
    character, _ = load_preset("synth", cfg.character)
    kps = get_keypoint_set("blazepose33")
    ev = list(character["evaluate"])
    idx = [kps.index(k) for k in ev]
    truth = read_points3d(work / "groundtruth" / "points3d.h5").xyz[:, 0][:, idx]
    X = read_points3d(work / "points3d" / "refined.h5").xyz[:, 0][:, idx] @ R.T + t
    F = len(X)
    err = np.linalg.norm(X - truth, axis=-1)
    half = F // 2
    bias = np.nanmean((X - truth)[:half], axis=0)  # constant per keypoint, in the world
    err_bc = np.linalg.norm(X[half:] - bias - truth[half:], axis=-1)
    # constant per keypoint in the body's frame (hips and shoulders of the truth): a detector's hip sits
    # at a fixed place on the pelvis, which turns with the body
    B = _body_frames(truth, ev)
    local = np.einsum("fji,fkj->fki", B, X - truth)
    bias_local = np.nanmean(local[:half], axis=0)
    err_body = np.linalg.norm(X[half:] - np.einsum("fij,kj->fki", B[half:], bias_local) - truth[half:], axis=-1)
    motion, _ = read_capture(work / "motion" / f"{skeleton_name(settings)}.npz")
    _, P = motion.fk()
    P = P @ R.T + t
    sk = motion.skeleton
    ang = []
    for a, b, ka, kb in SEGMENTS:
        u = P[:, sk.index(b)] - P[:, sk.index(a)]
        v = truth[:, ev.index(kb)] - truth[:, ev.index(ka)]
        cos = np.sum(u * v, axis=1) / np.linalg.norm(u, axis=1) / np.linalg.norm(v, axis=1)
        ang.append(np.degrees(np.arccos(np.clip(cos, -1, 1))))
    ang = np.array(ang)
    m = r.metrics or json.loads((work / "report" / "metrics.json").read_text())
    return {
        "config": asdict(cfg), "frames": F, "cameras": len(rig), "seconds_total": total, "timings_s": r.timings,
        "mpjpe_raw_mm": float(np.nanmean(err) * 1000), "mpjpe_bias_corrected_mm": float(np.nanmean(err_bc) * 1000),
        "mpjpe_body_bias_corrected_mm": float(np.nanmean(err_body) * 1000),
        "per_keypoint_raw_mm": {k: float(np.nanmean(err[:, i]) * 1000) for i, k in enumerate(ev)},
        "joint_angle_deg_median": float(np.nanmedian(ang)),
        "per_segment_deg_median": {f"{a}-{b}": float(np.nanmedian(x)) for (a, b, _, _), x in zip(SEGMENTS, ang,
                                                                                                   strict=True)},
        "calibration": calib,
        "calibration_summary": {k: float(np.mean([c[k] for c in calib.values()])) for k in
                                ("centre_mm", "rotation_deg", "focal_pct")},
        "reprojection_px_median": m["reprojection_px"]["median"],
        "detected_frames": float(np.isfinite(X).all(axis=(1, 2)).mean()),
        "hands": rendered_hand_figures(work, R, t, character, skeleton) if hands else {},
    }


def _body_frames(truth: np.ndarray, names: list[str]) -> np.ndarray:
    """(F, 3, 3) columns x (right hip → left hip), y (forward), z (hips → shoulders, made orthogonal)."""
    lh, rh = truth[:, names.index("left_hip")], truth[:, names.index("right_hip")]
    ls, rs = truth[:, names.index("left_shoulder")], truth[:, names.index("right_shoulder")]
    x = lh - rh
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    up = (ls + rs - lh - rh) / 2
    z = up - np.sum(up * x, axis=1, keepdims=True) * x
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    return np.stack([x, np.cross(z, x), z], axis=2)
