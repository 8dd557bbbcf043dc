"""``mocap bench people-e2e``: several people from pixels on a rendered take (``mocap synth render --people N``).

The session is copied and run from scratch with ``detect.persons`` = the number of rendered people
(BlazePose multi-pose, cross-view association and 3D tracking in triangulate: :mod:`mocap.multi`). With a
calibration take the calibrated world is aligned to the true one by the camera centres (as
``mocap bench e2e``); with ``--no-board`` renders the session carries the true rig. Then each
reconstructed person (``points3d/refined.h5``, persons axis, kept only in the frames where the association
found it: ``points3d/triangulated.h5``; refine fills short gaps, which would hide misses) is matched to a true
person (Hungarian, on the mean keypoint distance over the frames where both are there), and per true person:

* frames reconstructed: its matched person has at least half of the evaluated keypoints
  (``configs/synth/<character>.toml`` [evaluate]) in that frame, within 0.5 m of the truth on average;
* swaps: frames where the per-frame best assignment differs from the take's (identity mixed);
* MPJPE raw, and bias-corrected as ``mocap bench e2e`` does for one person (the mean offset per keypoint,
  estimated on the first half of the frames, subtracted on the second half), its P95, and the same with the
  offsets estimated on the second half itself (``mpjpe_in_sample_mm``: the part of the bias-corrected error
  that is the detector's offsets changing between the halves, not noise), and the worst frame's mean
  bias-corrected error (``worst_frame_bias_corrected_mm``);
* per camera, the pixel error of the 2D keypoints the person was given (after association, as refine reads
  them) against its projected truth: median, P95 and the share nearer the same joint of another true person
  (a merged detection, a limb of the wrong person), and the same split into the keypoints on the body of
  the other person nearer that camera (:func:`mocap.multi.overlap.occluded`, from the triangulated people)
  and those in the open.

* where the refined error is: per keypoint, per scored frame, and by view state (the scored frames grouped by
  the number of views where a nearer person's body covers one of the person's evaluated keypoints);
* ``fitted``: what the user receives, the fitted skeleton (``motion/<skeleton>[_person{k}].npz``): its joints
  that play one keypoint alone (the skeleton's ``[mappings]``), scored as the refined points are (the same
  frames and bias correction), per keypoint, and their mean distance to the refined points.

The record of triangulate's occlusion weighting (its measured noise ratio) is kept as ``occlusion``.

The headline ``both_frames`` is the share of frames where every true person is reconstructed; the sync
offsets the run applied are recorded (a rendered take is in sync: any offset is an error).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mocap.config_files import load_preset
from mocap.geometry.align import rig_alignment
from mocap.io.hdf5 import read_points3d
from mocap.io.rig_files import read_rig
from mocap.keypoint_sets import get_keypoint_set
from mocap.session import Session

NEAR_M = 0.5  # a reconstructed person counts for a true one when its mean keypoint error is below this


@dataclass(frozen=True)
class PeopleE2EConfig:
    session: str  # a rendered session (mocap synth render --people N)
    work: str = ""  # where to run it (default: a fresh copy next to it)
    character: str = "makehuman"
    sets: tuple[str, ...] = ("report.overlay_videos=false", "export.formats=['bvh']")
    # a finished run of this bench (its pose2d.h5 kept) run again from this stage: the detections reused
    # (the same pixels), to compare later stages; "": from scratch
    from_stage: str = ""


def match_people(X: np.ndarray, truth: np.ndarray) -> dict:
    """Score reconstructed people ``X`` (F, R, K, 3) against true people ``truth`` (F, T, K, 3) (NaN where
    missing). Returns the assignment true → reconstructed (-1: none), per true person the frames
    reconstructed, swapped frames, raw and bias-corrected MPJPE (mm), and the share of frames where every
    true person is reconstructed."""
    from scipy.optimize import linear_sum_assignment

    F, R, K, _ = X.shape
    T = truth.shape[1]
    d = np.linalg.norm(X[:, :, None] - truth[:, None], axis=-1)  # (F, R, T, K)
    n = np.isfinite(d).sum(axis=-1)
    frame_cost = np.where(n >= (K + 1) // 2, np.nansum(d, axis=-1) / np.maximum(n, 1), np.inf)  # (F, R, T)
    cost = np.full((R, T), 1e6)
    for r in range(R):
        for t in range(T):
            ok = np.isfinite(frame_cost[:, r, t])
            if ok.any():
                cost[r, t] = frame_cost[ok, r, t].mean() + 1e3 * (1 - ok.mean())  # prefer long-lived tracks
    rows, cols = linear_sum_assignment(cost)
    of_true = np.full(T, -1)
    of_true[cols] = rows
    people, present = [], np.zeros((F, T), bool)
    for t in range(T):
        r = of_true[t]
        row = {"true_person": t, "reconstructed": int(r)}
        if r < 0:
            people.append(row | {"frames": 0.0})
            continue
        present[:, t] = frame_cost[:, r, t] < NEAR_M
        swaps = 0
        for f in range(F):  # the per-frame best match among reconstructed people for this true person
            c = frame_cost[f, :, t]
            if np.isfinite(c).any() and np.argmin(c) != r and c[np.argmin(c)] < NEAR_M:
                swaps += 1
        row |= {"frames": float(present[:, t].mean()), "swapped_frames": swaps} | person_errors(X[:, r], truth[:, t])
        people.append(row)
    return {"reconstructed_people": R, "true_people": T, "both_frames": float(present.all(axis=1).mean()),
            "people": people}


def bias_corrected(X: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(F - F // 2, K) the error of points X (F, K, 3) against ``truth`` on the second half of the frames, less
    each keypoint's mean offset on the first half (NaN where either is unknown, or a keypoint has no first-half
    frame)."""
    e = X - truth
    half = len(X) // 2
    with warnings.catch_warnings():  # a keypoint with no frame in the first half: NaN, said as such
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.linalg.norm(e[half:] - np.nanmean(e[:half], axis=0), axis=-1)


def person_errors(X: np.ndarray, truth: np.ndarray) -> dict:
    """One person's points X (F, K, 3) against its truth (F, K, 3): MPJPE raw, bias-corrected (offsets per
    keypoint from the first half, scored on the second), its P95, in-sample (offsets from the second half
    itself), the worst frame's mean bias-corrected error (mm) and the share of finite keypoints."""
    e = X - truth
    err = np.linalg.norm(e, axis=-1)
    half = len(X) // 2
    err_bc = bias_corrected(X, truth)
    with warnings.catch_warnings():  # a person with no keypoints in a half: NaN, said as such
        warnings.simplefilter("ignore", RuntimeWarning)
        err_in = np.linalg.norm(e[half:] - np.nanmean(e[half:], axis=0), axis=-1)
        p95 = float(np.nanpercentile(err_bc, 95) * 1000) if np.isfinite(err_bc).any() else float("nan")
        worst = float(np.nanmax(np.nanmean(err_bc, axis=-1)) * 1000) if np.isfinite(err_bc).any() else float("nan")
        return {"mpjpe_raw_mm": float(np.nanmean(err) * 1000), "mpjpe_bias_corrected_mm":
                float(np.nanmean(err_bc) * 1000), "mpjpe_bias_corrected_p95_mm": p95,
                "mpjpe_in_sample_mm": float(np.nanmean(err_in) * 1000), "worst_frame_bias_corrected_mm": worst,
                "keypoints_finite": float(np.isfinite(err).mean())}


def run(cfg: PeopleE2EConfig) -> dict:
    from mocap.bench.e2e import working_copy
    from mocap.pipeline import run as run_pipeline

    if cfg.from_stage and not (Path(cfg.session) / "pose2d.h5").is_file():
        raise ValueError(f"bench people-e2e: from_stage={cfg.from_stage!r} needs a finished run with its "
                         f"pose2d.h5, {cfg.session} has none")
    work = working_copy(Path(cfg.session), cfg.work, "_people_e2e", truth=True)
    character, _ = load_preset("synth", cfg.character)
    kps = get_keypoint_set("blazepose33")
    ev = list(character["evaluate"])
    idx = [kps.index(k) for k in ev]
    truth = read_points3d(work / "groundtruth" / "points3d.h5").xyz[:, :, idx]
    n_people = truth.shape[1]
    t0 = time.perf_counter()
    sets = [*cfg.sets, f"detect.persons={n_people}"]
    r = run_pipeline(work, sets=sets, progress=False, from_stage=cfg.from_stage or None)
    total = time.perf_counter() - t0
    true_rig = read_rig(work / "groundtruth" / "rig.toml")
    rig = read_rig(work / "calibration" / "rig.toml")
    R, t, _ = rig_alignment(rig, true_rig)
    X = read_points3d(work / "points3d" / "refined.h5").xyz[:, :, idx] @ R.T + t
    tri_points = read_points3d(work / "points3d" / "triangulated.h5")
    tri = tri_points.xyz[:, :, idx]
    found = np.isfinite(tri[..., 0]).any(axis=-1)  # (F, R): frames where the association found the person
    X[~found] = np.nan
    out = match_people(X, truth)
    fitted = fitted_points(work, sets, X.shape[1], ev, kps.name) @ R.T + t
    fitted[~found] = np.nan
    kp, recovered = person_keypoints(work, rig)
    uv_true = truth_pixels(true_rig, truth, kp.camera_names)
    from mocap.multi.overlap import occluded

    occ = occluded(rig, kp.xy, tri_points.xyz, kp.keypoint_set)[..., idx]  # (F, C, P, K)
    for row in out["people"]:
        if row["reconstructed"] >= 0:
            k = row["reconstructed"]
            row |= breakdown(X[:, k], truth[:, row["true_person"]], ev, occ[:, :, k])
            row["fitted"] = person_errors(fitted[:, k], truth[:, row["true_person"]]) | {
                "per_keypoint_bias_corrected_mm": per_keypoint(fitted[:, k], truth[:, row["true_person"]], ev),
                "fit_to_refined_mm": _mean_mm(np.linalg.norm(fitted[:, k] - X[:, k], axis=-1)),
                "straightened_limb_frames": straightened_limbs(X[:, k], fitted[:, k], ev)}
            row["views_2d_px"] = view_errors(kp.xy[:, :, k][..., idx, :], kp.score[:, :, k][..., idx], uv_true,
                                             row["true_person"], kp.camera_names, recovered[:, :, k], occ[:, :, k])
    from mocap.stages.sync import read_offsets

    return {"config": asdict(cfg), "frames": len(X), "cameras": len(rig), "keypoints": ev,
            "seconds_total": total, "timings_s": r.timings, "detections": detection_counts(work),
            "sync_offsets_frames": read_offsets(Session(work)), "occlusion": tri_points.info.get("occlusion")} | out


def _mean_mm(d: np.ndarray) -> float | None:
    return float(np.nanmean(d) * 1000) if np.isfinite(d).any() else None


def per_keypoint(X: np.ndarray, truth: np.ndarray, names: list[str]) -> dict:
    """Each keypoint's bias-corrected error (mm) of points X (F, K, 3) against ``truth``."""
    err = bias_corrected(X, truth)
    return {n: _mean_mm(err[:, i]) for i, n in enumerate(names)}


def breakdown(X: np.ndarray, truth: np.ndarray, names: list[str], occluded: np.ndarray) -> dict:
    """Where one person's bias-corrected error is: per keypoint, per frame of the scored (second) half, and by
    view state: the frames grouped by the number of views where at least one of its evaluated keypoints lies on
    a nearer person's body (``occluded`` (F, C, K), :func:`mocap.multi.overlap.occluded`), each group's frame
    count and mean error (mm)."""
    err = bias_corrected(X, truth)
    half = len(X) // 2
    with warnings.catch_warnings():  # a frame with no keypoint: NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        per_frame = np.nanmean(err, axis=1)
    views = occluded[half:].any(axis=-1).sum(axis=-1)  # (F - half,)
    groups = {str(k): {"frames": int((views == k).sum()), "mpjpe_bias_corrected_mm": _mean_mm(err[views == k])}
              for k in np.unique(views)}
    return {"per_keypoint_bias_corrected_mm": per_keypoint(X, truth, names),
            "per_frame_bias_corrected_mm": [None if not np.isfinite(v) else float(v * 1000) for v in per_frame],
            "by_occluded_views": groups}


LIMBS = (("shoulder", "elbow", "wrist"), ("hip", "knee", "ankle"))
BENT_DEG, STRAIGHT_DEG = 30.0, 12.0  # a limb bent this much held this straight by the fit: a hinge stuck at its limit


def flexion_deg(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The bend at b (degrees, 0 = straight) of the limb a–b–c (points (..., 3))."""
    u, v = b - a, c - b
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.sum(u * v, axis=-1) / np.linalg.norm(u, axis=-1) / np.linalg.norm(v, axis=-1)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def straightened_limbs(X: np.ndarray, fitted: np.ndarray, names: list[str]) -> dict:
    """Per limb (``left_elbow``, ``right_knee``, ...) of the evaluated keypoints ``names``, the frames where the
    refined points X (F, K, 3) bend it by :data:`BENT_DEG` or more and the fitted skeleton (F, K, 3) holds it
    within :data:`STRAIGHT_DEG` of straight (a hinge the fit left at its limit: the arm or leg is then wholly
    off); limbs with no such frame are left out."""
    out = {}
    for side in ("left", "right"):
        for limb in LIMBS:
            keys = [f"{side}_{k}" for k in limb]
            if all(k in names for k in keys):
                i = [names.index(k) for k in keys]
                stuck = (flexion_deg(*(X[:, j] for j in i)) >= BENT_DEG) & \
                    (flexion_deg(*(fitted[:, j] for j in i)) < STRAIGHT_DEG)
                if stuck.any():
                    out[keys[1]] = np.flatnonzero(stuck).tolist()
    return out


def fitted_points(session: Path, sets: list[str], persons: int, keypoints: list[str], keypoint_set: str) -> np.ndarray:
    """(F, P, K, 3): what the user receives, the fitted skeleton's joints that play the given keypoints
    (:func:`skeleton_keypoints` of ``motion/<skeleton>[_person{k}].npz``); NaN for a person not fitted. In the
    session's (calibrated) world; F the frames of ``points3d/refined.h5``."""
    from mocap.io.capture import read_capture
    from mocap.persons import person_suffix
    from mocap.settings import load_config
    from mocap.skeletons import load_skeleton
    from mocap.stages.fit import skeleton_name

    settings = load_config(session, sets=sets)[0]
    spec = load_skeleton(settings.fit.solver.skeleton)
    F = len(read_points3d(session / "points3d" / "refined.h5").xyz)
    out = np.full((F, persons, len(keypoints), 3), np.nan)
    for p in range(persons):
        path = session / "motion" / f"{skeleton_name(settings)}{person_suffix(p, persons)}.npz"
        if path.is_file():
            out[:, p] = skeleton_keypoints(read_capture(path)[0], spec.mappings.get(keypoint_set, {}), keypoints, F)
    return out


def skeleton_keypoints(motion, mapping: dict, keypoints: list[str], frames: int) -> np.ndarray:
    """(frames, K, 3): the motion's joint positions (forward kinematics) that play ``keypoints``: a joint whose
    ``mapping`` (the skeleton's ``[mappings.<keypoint set>]``: joint → {keypoint: weight}) is that keypoint
    alone. NaN for a keypoint no joint plays alone and for frames beyond the motion."""
    joint_of = {next(iter(w)): j for j, w in mapping.items() if len(w) == 1 and next(iter(w.values())) == 1.0}
    out = np.full((frames, len(keypoints), 3), np.nan)
    _, pos = motion.fk()
    n = min(frames, len(pos))
    for k, name in enumerate(keypoints):
        if name in joint_of and joint_of[name] in motion.skeleton.joint_names:
            out[:n, k] = pos[:n, motion.skeleton.index(joint_of[name])]
    return out


def person_keypoints(session: Path, rig):
    """The session's 2D keypoints with the persons axis made the identity of the triangulated points (as
    refine reads them), and which of them the detect stage's second pass added: (F, C, P) bool (from
    ``pose2d.h5``'s ``info["recover"]["detections"]`` and the association's slots; all False without them)."""
    from mocap.io.hdf5 import keypoints2d_info
    from mocap.multi.slots import decode_slots
    from mocap.stages.triangulate import read_session_keypoints

    s = Session(session)
    kp, extra = read_session_keypoints(s, rig)
    recovered = np.zeros(kp.shape[:3], bool)
    rows = keypoints2d_info(s.root / "pose2d.h5").get("recover", {}).get("detections", [])
    if rows and "slots" in extra.get("association", {}):
        recovered = recovered_mask(decode_slots(extra["association"]["slots"]), rows)
    return kp, recovered


def recovered_mask(slots: np.ndarray, rows) -> np.ndarray:
    """(F, C, P): whether person p's detection in view c and frame f (its detector slot: ``slots`` (F, C, P),
    -1 none) is one the second pass added (``rows``: [frame, view, slot, ...] each)."""
    added = np.zeros(slots.shape[:2] + (max(int(slots.max()) + 1, 1),), bool)
    for f, c, slot, *_ in rows:
        if f < added.shape[0] and c < added.shape[1] and slot < added.shape[2]:
            added[int(f), int(c), int(slot)] = True
    f_, c_, p_ = np.nonzero(slots >= 0)
    out = np.zeros(slots.shape, bool)
    out[f_, c_, p_] = added[f_, c_, slots[f_, c_, p_]]
    return out


def truth_pixels(true_rig, truth: np.ndarray, cameras) -> np.ndarray:
    """(C, F, T, K, 2): where the true keypoints (F, T, K, 3) are in each camera's images (in the order of
    ``cameras``): projected through the rig the take was rendered with, not through the calibrated one
    aligned to it (whose calibration and alignment errors would count as the detector's); NaN for a camera
    the rendering rig does not have."""
    return np.stack([true_rig[name].project(truth) if name in true_rig.names else
                     np.full(truth.shape[:-1] + (2,), np.nan) for name in cameras])


def view_errors(xy: np.ndarray, score: np.ndarray, uv_true: np.ndarray, t: int, cameras,
                recovered: np.ndarray | None = None, occluded: np.ndarray | None = None,
                min_score: float = 0.2) -> dict:
    """Per camera, one person's 2D keypoints xy (F, C, K, 2) (scores (F, C, K)) against true person ``t``'s
    projection uv_true (C, F, T, K, 2): median and P95 pixel error, and the share of its keypoints nearer the
    same joint of another true person; with ``recovered`` (F, C): the frames whose detection the second pass
    added, and the median error of those (``median_recovered``) and of the others (``median_first_pass``);
    with ``occluded`` (F, C, K): the share of the keypoints on the body of a nearer person, and the median and
    P95 error of those (``occluded``) and of the others (``open``)."""
    out = {}
    for c, name in enumerate(cameras):
        d = np.linalg.norm(xy[:, c] - uv_true[c, :, t], axis=-1)
        ok = np.isfinite(d) & (score[:, c] >= min_score)
        if not ok.any():
            out[name] = None
            continue
        others = [u for u in range(uv_true.shape[2]) if u != t]
        nearer = np.zeros_like(ok)
        for u in others:
            nearer |= np.linalg.norm(xy[:, c] - uv_true[c, :, u], axis=-1) < d
        out[name] = {"median": float(np.median(d[ok])), "p95": float(np.percentile(d[ok], 95)),
                     "nearer_other": float(np.mean(nearer[ok]))}
        if recovered is not None:
            rec = np.broadcast_to(recovered[:, c, None], ok.shape)
            out[name] |= {"frames_recovered": int(recovered[:, c].sum()), **{
                key: float(np.median(d[ok & m])) if (ok & m).any() else None
                for key, m in (("median_first_pass", ~rec), ("median_recovered", rec))}}
        if occluded is not None:
            out[name]["occluded_share"] = float(np.mean(occluded[:, c][ok]))
            for key, m in (("occluded", occluded[:, c]), ("open", ~occluded[:, c])):
                sel = d[ok & m]
                out[name][key] = {"n": int(sel.size), "median": float(np.median(sel)) if sel.size else None,
                                  "p95": float(np.percentile(sel, 95)) if sel.size else None}
    return out


def detection_counts(session: Path) -> dict:
    """Per camera, the share of frames with 0, 1, 2, ... detected people (a detection: ≥ 4 keypoints)."""
    kp = Session(session).keypoints2d()
    n = (np.isfinite(kp.data[..., 0]).sum(axis=-1) >= 4).sum(axis=-1)  # (F, C)
    return {c: np.bincount(n[:, i], minlength=kp.data.shape[2] + 1).tolist() for i, c in enumerate(kp.camera_names)}
