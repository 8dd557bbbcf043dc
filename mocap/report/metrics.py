"""Quality metrics of a processed session (``report/metrics.json``)."""

from __future__ import annotations

import functools
import logging
import platform
import warnings
from importlib import metadata

import numpy as np

from mocap.keypoint_sets import get_keypoint_set, hand_joints
from mocap.report.cameras import MIN_SCORE, camera_table
from mocap.report.late import mid_take_check
from mocap.report.stats import nanmedian
from mocap.report.steps import stat_label
from mocap.types import Keypoints2D, Points3D, Rig

log = logging.getLogger(__name__)
AWAY_S = 0.5  # one of several people seen in no frame for this long was away (out of the volume), not lost
# a frame whose median reprojection at the person is over this many times the threshold (or the take's own median,
# the larger) is off as a whole (the body jumped, a camera's pose or sync broke there), and a run of such frames
# lasting this many seconds fails the take: medians and P95 over a take hid 15 frames 0.5 m off in 600 (PASS at
# 4 mm); single frames off here and there do not (three in a take of 20,000 frames would have failed it)
FRAME_OFF_MULTIPLE, FRAMES_OFF_S = 2.0, 0.1


def reprojection(rig: Rig, kp: Keypoints2D, pts: Points3D, min_score: float = 0.2, person: int = 0) -> np.ndarray:
    """(F, C, J) reprojection error in pixels of the 3D points against the 2D detections (NaN where either
    is missing or the detection is below ``min_score``)."""
    uv = _projected(rig, pts.xyz[:, person])  # (F, C, J, 2)
    obs = kp.xy[:, :, person]
    ok = np.isfinite(kp.score[:, :, person]) & (kp.score[:, :, person] >= min_score)
    e = np.linalg.norm(uv - obs, axis=-1)
    return np.where(ok, e, np.nan)


_PROJECTED: dict[tuple[str, str], np.ndarray] = {}  # (rig digest, points digest) → (F, C, J, 2), read-only


def _projected(rig: Rig, X: np.ndarray) -> np.ndarray:
    """(F, J, 3) world points seen in each camera of the rig: (F, C, J, 2) pixels. The report projects the same
    points with the same rig several times (the metrics, the crops, the page's repaired and raw errors): the
    last ones are kept, keyed by digests of the rig's parameters and of the points."""
    from mocap.stages.keypoints_memo import array_digest, rig_digest

    X = np.ascontiguousarray(X, dtype=float)
    key = (rig_digest(rig), array_digest(X))
    uv = _PROJECTED.get(key)
    if uv is None:
        uv = np.moveaxis(rig.project(X.reshape(-1, 3)).reshape((len(rig),) + X.shape[:2] + (2,)), 0, 1)
        uv.flags.writeable = False
        while len(_PROJECTED) >= 2:
            _PROJECTED.pop(next(iter(_PROJECTED)))
        _PROJECTED[key] = uv
    return uv


def metres_per_px(rig: Rig, pts: Points3D, person: int = 0) -> np.ndarray:
    """(F, C) metres at the person per pixel of each camera: the depth of the person's centre (the median
    of its joints) in the camera over the camera's focal length; NaN where the person is not in 3D or not
    in front of the camera. A pixel error times this is the error at the person, whatever the camera's
    resolution and distance (in pixels a 4K camera's error is twice a 1080p one's for the same detector).
    A fisheye camera's pixels are not depth ÷ focal length wide off its axis (r = f·θ: at 60° off it a pixel
    spans ~1.8× that): there the scale is the projection's own, across the ray (1 / √|det| of its Jacobian
    restricted to the plane perpendicular to the ray at the person's centre)."""
    X = pts.xyz[:, person]  # (F, J, 3)
    centre = np.full((len(X), 3), np.nan)
    seen = np.isfinite(X).all(axis=-1).any(axis=-1)
    if seen.any():
        centre[seen] = nanmedian(X[seen], axis=1)
    out = np.full((len(X), len(rig)), np.nan)
    for i, cam in enumerate(rig.cameras):
        z = centre @ np.asarray(cam.R)[2] + float(np.asarray(cam.t)[2])
        f = float(np.sqrt(cam.K[0, 0] * cam.K[1, 1]))
        with np.errstate(invalid="ignore"):
            out[:, i] = np.where(z > 0, z / f, np.nan)
        if getattr(cam, "model", "pinhole") != "pinhole":
            out[:, i] = _across_ray(cam, centre, out[:, i])
    return out


def _across_ray(cam, centre: np.ndarray, mpp: np.ndarray) -> np.ndarray:
    """(F,) metres per pixel of ``cam`` at the points ``centre`` (F, 3) from its projection's Jacobian across
    the ray (the geometric mean of the two directions perpendicular to it); where ``mpp`` is finite (in front)."""
    from mocap.geometry.camera import project

    out = mpp.copy()
    ok = np.flatnonzero(np.isfinite(mpp))
    if not ok.size:
        return out
    _, Jw = project(cam, centre[ok], jacobian=True)  # (n, 2, 3) pixels per metre
    ray = centre[ok] - np.asarray(cam.center)
    ray /= np.linalg.norm(ray, axis=1, keepdims=True)
    a = np.cross(ray, np.where(np.abs(ray[:, :1]) < 0.9, [[1.0, 0, 0]], [[0, 1.0, 0]]))
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b = np.cross(ray, a)
    M = np.stack([np.einsum("nij,nj->ni", Jw, a), np.einsum("nij,nj->ni", Jw, b)], axis=-1)  # (n, 2, 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = 1.0 / np.sqrt(np.abs(np.linalg.det(M)))
    out[ok] = np.where(np.isfinite(k) & (k > 0), k, np.nan)
    return out


def camera_scales(mpp: np.ndarray) -> np.ndarray:
    """(C,) each camera's typical metres per pixel at the person (median over the frames of
    :func:`metres_per_px`; NaN for a camera with none)."""
    out, ok = np.full(mpp.shape[1], np.nan), np.isfinite(mpp).any(axis=0)
    out[ok] = nanmedian(mpp[:, ok], axis=0) if ok.any() else out[ok]
    return out


def bone_lengths(pts: Points3D, person: int = 0) -> tuple[list[str], np.ndarray]:
    """Names and (F, B) lengths of the keypoint set's bones."""
    kps = get_keypoint_set(pts.keypoint_set)
    X = pts.xyz[:, person]
    names, L = [], []
    for a, b in kps.bones:
        names.append(f"{kps.joints[a]}–{kps.joints[b]}")
        L.append(np.linalg.norm(X[:, a] - X[:, b], axis=1))
    return names, np.array(L).T


def versions() -> dict[str, str]:
    return dict(_versions())


@functools.cache
def _versions() -> dict[str, str]:  # read once per process (a package's metadata is parsed each time)
    out = {"python": platform.python_version()}
    for pkg in ("mocap", "numpy", "scipy", "opencv-contrib-python", "h5py", "torch", "mediapipe", "bpy", "open3d"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return out


def compute(rig: Rig, kp: Keypoints2D, pts: Points3D, person: int = 0, offsets: dict | None = None,
            camera_flag_ratio: float = 2.5, swaps_repaired: dict | None = None, detect_persons=None,
            boxes: np.ndarray | None = None) -> dict:
    """The metrics; ``cameras``: the per-camera table (:func:`~mocap.report.cameras.camera_table`, its hints)."""
    err = reprojection(rig, kp, pts, person=person)
    mpp = metres_per_px(rig, pts, person)
    scales = camera_scales(mpp)
    err_mm = err * np.where(np.isfinite(mpp), mpp, scales)[:, :, None] * 1000  # frames without 3D: typical scale
    used = np.moveaxis(pts.views[:, person], 2, 1) if pts.views is not None else None  # (F, C, J)
    err_used = np.where(used, err, np.nan) if used is not None and used.shape == err.shape else err
    kps = get_keypoint_set(pts.keypoint_set)
    X = pts.xyz[:, person]
    present = np.isfinite(X).all(axis=2)  # (F, J)
    seen2 = pts.views[:, person].sum(axis=-1) >= 2 if pts.views is not None else present  # (F, J) measured in 3D
    # judged from the frame the person enters to the one it leaves, in 3D or in its detections (one performer: two
    # cameras'; walking in 1 s late failed "points reconstructed 70 %"); one of several people but for where it was
    # away (no 3D, no detection a while); one performer unseen mid-take counts (a detector's failure, or away)
    many = pts.xyz.shape[1] > 1
    detected = (np.nan_to_num(kp.score[:, :, person]) >= MIN_SCORE).any(axis=2).sum(axis=1) >= (1 if many else 2) \
        if kp.shape[2] > person else np.zeros(len(present), bool)
    rows = np.flatnonzero(present.any(axis=1) | detected)
    span = slice(rows[0], rows[-1] + 1) if rows.size else slice(None)
    present, seen2, detected, away = present[span], seen2[span], detected[span], 0
    if many:
        gone = _runs_at_least(~present.any(axis=1) & ~detected, int(np.ceil(AWAY_S * pts.fps)))
        present, seen2, away = present[~gone], seen2[~gone], int(gone.sum())
    names, L = bone_lengths(pts, person)
    with warnings.catch_warnings():  # a bone never reconstructed (hands no camera saw): NaN, said as such
        warnings.simplefilter("ignore", RuntimeWarning)
        cv = np.nanstd(L, axis=0) / np.nanmean(L, axis=0)
    acc = np.diff(X, n=2, axis=0) * pts.fps**2
    acc_norm = np.linalg.norm(acc, axis=2)
    return {
        "frames": int(X.shape[0]), "fps": float(pts.fps),
        "cameras": camera_table(rig, kp, pts, person, offsets, camera_flag_ratio, swaps_repaired, scales, mpp,
                                detect_persons, boxes),
        "reprojection_px": {
            "median": float(np.nanmedian(err)), "mean": float(np.nanmean(err)),
            "median_views_used": float(np.nanmedian(err_used)),  # over the views the solver kept
            "views_used_share": float(np.isfinite(err_used).sum() / max(np.isfinite(err).sum(), 1)),
            "p95": float(np.nanpercentile(err, 95)) if np.isfinite(err).any() else float("nan"),
            "per_camera_median": {c: float(np.nanmedian(err[:, i])) for i, c in enumerate(rig.names)},
            "per_joint_median": {j: _nan_stat(np.nanmedian, err[:, :, k]) for k, j in enumerate(kps.joints)},
        },
        "reprojection_mm": {  # the same errors at the person: pixels × its depth ÷ the focal length
            "median": _nan_stat(np.nanmedian, err_mm), "p95": _nan_stat(np.nanpercentile, err_mm, 95),
            "per_camera_median": {c: _nan_stat(np.nanmedian, err_mm[:, i]) for i, c in enumerate(rig.names)},
            "per_frame_median": _frame_medians(err_mm),  # (F,): the tails over time (verdict's frames off)
        },
        "reconstructed": _reconstructed(present, hand_joints(kps), present & seen2)
        | ({"frames_away": away} if away else {})
        | ({"frames_outside": int(X.shape[0] - rows[-1] - 1 + rows[0]), "first_frame": int(rows[0]),
            "last_frame": int(rows[-1])} if rows.size and rows[-1] - rows[0] + 1 < X.shape[0] else {}),
        "bone_length_cv": _bone_cv(kps, names, cv),
        "jitter_mean_accel_m_s2": float(np.nanmean(acc_norm)),
        "versions": versions(),
    }


def _frame_medians(err_mm: np.ndarray) -> list[float | None]:
    """Per frame the median over cameras and joints of ``err_mm`` (F, C, J), 0.1 mm; None where nothing."""
    flat = err_mm.reshape(len(err_mm), -1)
    seen = np.isfinite(flat).any(axis=1)
    med = np.full(len(flat), np.nan)
    med[seen] = nanmedian(flat[seen], axis=1)
    return [round(float(v), 1) if np.isfinite(v) else None for v in med]


def frames_off(m: dict, max_reprojection_mm: float) -> dict | None:
    """The verdict's check on the take's worst frames: the frames whose median reprojection at the person is over
    :data:`FRAME_OFF_MULTIPLE` × the threshold (or the take's median, the larger), failed when one run of them
    lasts :data:`FRAMES_OFF_S` or more (the check's value: its longest run, in frames; every such run is listed,
    the first 1,000 frames of them in ``frames``); None without per-frame figures or such a run."""
    per_frame = m.get("reprojection_mm", {}).get("per_frame_median")
    if not per_frame:
        return None
    f = np.array([np.nan if v is None else v for v in per_frame], float)
    median = float(m["reprojection_mm"].get("median", np.nan))
    limit = FRAME_OFF_MULTIPLE * max(max_reprojection_mm, median if np.isfinite(median) else 0.0)
    off = np.flatnonzero(np.nan_to_num(f) > limit)
    allowed = max(1, int(np.ceil(FRAMES_OFF_S * float(m.get("fps", 30.0)))))
    runs = [r for r in np.split(off, np.flatnonzero(np.diff(off) > 1) + 1) if len(r) >= allowed] if off.size else []
    if not runs:
        return None
    frames = np.concatenate(runs)
    where = ", ".join(f"{r[0]}–{r[-1]}" for r in runs[:6]) + (", …" if len(runs) > 6 else "")
    worst = int(frames[np.argmax(f[frames])])
    return {"metric": "reprojection_mm.per_frame_median", "label": "frames off as a whole",
            "value": float(max(len(r) for r in runs)), "comparison": "≥", "threshold": float(allowed),
            "unit": "frames", "limit_mm": float(limit), "frames": frames[:1000].tolist(),
            "text": f"{frames.size} frames off as a whole, in runs of {allowed} or more (median reprojection at the "
                    f"person over {limit:.3g} mm: frames {where}; the worst, {worst}, {f[worst]:.0f} mm): the 3D "
                    "there disagrees with most views (the body jumped, or a camera's pose or sync broke)"}


def warn_one_view(people: list[tuple[str, dict]], least: float) -> None:
    """A warning for each (name, metrics) whose points are reconstructed but fewer than ``least`` of them seen by
    two cameras or more (``points_two_views``, :func:`_reconstructed`)."""
    for name, m in people:
        two = m.get("reconstructed", {}).get("points_two_views")
        if two is not None and two < least <= m["reconstructed"]["points"]:
            log.warning("%s: %.0f %% of the points are seen by two cameras or more; the others are estimated from one "
                        "view, the bone lengths and the motion (tens of mm off; up to half a metre where a whole side "
                        "of the body is seen by one view, as when entering through the image borders): bodies cut by "
                        "the image borders, or cameras too few for the volume?", name, 100 * two)


def _runs_at_least(x: np.ndarray, n: int) -> np.ndarray:
    """(F,) bool: the elements of x (F,) bool in runs of at least n true values."""
    out = np.zeros_like(x)
    edges = np.flatnonzero(np.diff(np.r_[0, x.astype(int), 0]))
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        out[a:b] = b - a >= n
    return out


def _reconstructed(present: np.ndarray, hand: np.ndarray, measured: np.ndarray | None = None) -> dict:
    """Shares of frames and points reconstructed, ``present`` (F, J); ``measured`` (F, J): the points two
    cameras or more support (``points_two_views``; the others refine estimated from one view, the bone lengths
    and the motion: a person whose feet and head the image borders cut in most views was 97 % "reconstructed",
    a third of its points from one view, 33 mm off on average there against 5 mm). With hands in the set the
    verdict's figures are the body's, the hands' apart (``hands_points``, ``hands_frames_any``): hands leave the
    view, or hide behind the body, far more often than it does, and a take whose hands no camera saw is still a
    body capture."""
    body = present[:, ~hand] if hand.any() and (~hand).any() else present
    out = {"frames_all_joints": float(body.all(axis=1).mean()), "frames_any_joint": float(present.any(axis=1).mean()),
           "points": float(body.mean())}
    if measured is not None:
        out["points_two_views"] = float((measured[:, ~hand] if hand.any() and (~hand).any() else measured).mean())
    if hand.any() and (~hand).any():
        out |= {"hands_points": float(present[:, hand].mean()),
                "hands_frames_any": float(present[:, hand].any(axis=1).mean())}
    return out


def _bone_cv(kps, names: list[str], cv: np.ndarray) -> dict:
    """Mean and max over the body's bones (the verdict's); with hands, the hands' bones apart (``hands_mean``,
    ``hands_max``): a knuckle-to-knuckle segment of 2 cm varies by a third from the 2D noise alone, which would
    swamp the body's figure; ``per_bone`` every bone."""
    hand = hand_joints(kps)
    on_hand = np.array([bool(hand[a] or hand[b]) for a, b in kps.bones], bool)
    body = cv[~on_hand] if (~on_hand).any() else cv
    out = {"mean": _nan_stat(np.nanmean, body), "max": _nan_stat(np.nanmax, body)}
    if on_hand.any():
        out |= {"hands_mean": _nan_stat(np.nanmean, cv[on_hand]), "hands_max": _nan_stat(np.nanmax, cv[on_hand])}
    return out | {"per_bone": {n: float(c) for n, c in zip(names, cv, strict=True)}}


def _nan_stat(fn, x: np.ndarray, *args) -> float:
    return float(fn(x, *args)) if np.isfinite(x).any() else float("nan")


def verdict(m: dict, max_reprojection_mm: float, max_bone_length_cv: float, min_points: float,
            max_reprojection_px: float = 0.0, resolution_floor_px: float = 0.0,
            min_points_two_views: float = 0.0) -> dict:
    """Whether the capture looks usable, and each check that failed with its value and threshold
    (a metric that could not be computed, NaN, fails). The reprojection check is at the person (mm:
    pixels × depth ÷ focal length), so one threshold holds for any resolution and distance; a pixel
    threshold is checked too when ``max_reprojection_px`` > 0. Each camera flagged in ``m["cameras"]``
    fails too, named, so that a healthy overall median never hides a broken camera, and so does one whose video
    lost (or repeated) frames mid-take (``mid_take``, :mod:`mocap.report.late`).

    Small people (far cameras, wide lenses, low resolution) make a pixel many millimetres at the person: a
    median under ``resolution_floor_px`` pixels (> 0) is what a keypoint detector gives at best, so a median
    at the person above ``max_reprojection_mm`` there is the images' resolution, not a fault: it is listed
    under ``limited`` (value, pixels, millimetres per pixel) instead of failing; the summary says so. A share of
    points two cameras or more see (``points_two_views``) under ``min_points_two_views`` (> 0) fails: one view's
    points reproject well whatever their depth (two cameras: legs 0.3–0.56 m off read 4.8 px)."""
    mm = m.get("reprojection_mm", {}).get("median", float("nan"))
    px = float(m.get("reprojection_px", {}).get("median", float("nan")))
    checks = [("reprojection_mm.median", "median reprojection at the person", mm, ">", max_reprojection_mm, "mm")]
    if max_reprojection_px > 0:
        checks.append(("reprojection_px.median", "median reprojection", m["reprojection_px"]["median"], ">",
                       max_reprojection_px, "px"))
    checks += [("bone_length_cv.mean", "mean bone-length variation", m["bone_length_cv"]["mean"], ">",
               max_bone_length_cv, "fraction"),
              ("reconstructed.points", "points reconstructed", m["reconstructed"]["points"], "<", min_points,
               "fraction")]
    if min_points_two_views > 0 and "points_two_views" in m["reconstructed"]:
        checks.append(("reconstructed.points_two_views", "points seen by two cameras or more",
                       m["reconstructed"]["points_two_views"], "<", min_points_two_views, "fraction"))
    failed, limited = [], []
    for metric, label, value, op, threshold, unit in checks:
        value = float(value)
        bad = not np.isfinite(value) or (value > threshold if op == ">" else value < threshold)
        check = {"metric": metric, "label": label, "value": value, "comparison": op, "threshold": float(threshold),
                 "unit": unit}
        if bad and unit == "mm" and np.isfinite(value) and 0 < px <= resolution_floor_px:
            limited.append(check | {"px": px, "mm_per_px": value / px, "floor_px": float(resolution_floor_px)})
        elif bad:
            failed.append(check)
    if (off := frames_off(m, max_reprojection_mm)) is not None:
        failed.append(off)
    cameras = m.get("cameras")
    cameras = cameras if isinstance(cameras, dict) else {}
    seeing = sum(1 for r in cameras.values() if r.get("detections", 0) > 0)  # the cameras that detected the person
    for name, row in cameras.items():
        flag = row.get("flag") if row.get("flagged") else None
        if flag:
            what = stat_label(flag)
            failed.append({"metric": f"cameras.{name}.{flag['stat']}", "label": f"camera {name} {what}"
                           + ("" if flag["stat"] == "epipolar_px" else " reprojection"),
                           "value": float(flag["value"]), "comparison": ">", "threshold": float(flag["threshold"]),
                           "unit": "px", "note": _flag_note(flag)})
        if row.get("behind"):
            failed.append({"metric": f"cameras.{name}.behind", "label": f"camera {name} sees the person behind it",
                           "value": float(row.get("detections", 0)), "comparison": "behind", "threshold": 0.0,
                           "unit": "detections", "text": f"camera {name}: the person is behind it in every frame it "
                                                         "detects them (its pose turned the wrong way?)"})
        if row.get("mid_take"):  # frames dropped (or repeated) mid-take: its second half out of time
            failed.append(mid_take_check(name, row["mid_take"]))
        other = row.get("swapped_with")
        if other and (name < other or other not in cameras):  # the 3D was made with two videos exchanged: once a pair
            failed.append({"metric": f"cameras.{name}.swapped_with", "label": f"cameras {name} and {other} exchanged",
                           "value": 1.0, "comparison": "swapped", "threshold": 0.0, "unit": "camera",
                           "text": f"cameras {name} and {other}: their videos exchanged? (rename the two and run "
                                   "again)"})
        # said always; failed when the cameras left hold the person by two views (two cameras' names exchanged
        # split one person in two, each triangulated by a facing pair): one far camera missing a small person isn't
        if row.get("missed") and seeing <= 2:
            failed.append({"metric": f"cameras.{name}.in_view_share", "label": f"camera {name} never detected the "
                           "person in its view", "value": float(row["in_view_share"]), "comparison": "in view",
                           "threshold": 0.0, "unit": "fraction",
                           "text": f"camera {name} never detected the person although it stood in its view in "
                                   f"{row['in_view_share']:.0%} of the frames"})
    return summarised(failed, limited)


def _flag_note(flag: dict) -> str:
    if flag["stat"] == "epipolar_px":  # the camera pairs' agreement with the rig (mocap.report.consistency)
        return f"{flag['ratio']:g} × {flag['reference']:.3g} px, where the other cameras agree with the rig"
    if "ratio_median" in flag:  # a step: decided on the camera's ratio to the others, frame by frame
        return (f"{flag['ratio_median']:.2f}× the other cameras frame by frame, over {flag['ratio']:g}×; their median "
                f"there {flag['reference']:.3g} px")
    return (f"{flag['ratio']:g} × the other cameras' {flag['reference']:.3g} px"
            + (", at this camera's scale at the person" if flag.get("scaled") else ""))


def summarised(failed: list[dict], limited: list[dict]) -> dict:
    """The verdict from its failed and resolution-limited checks (see :func:`verdict`)."""
    summary = "PASS" if not failed else "FAIL: " + "; ".join(describe(f) for f in failed)
    if limited:
        summary += ("; " if failed else " ") + "(limited by the images' resolution, not a fault: " + "; ".join(
            describe(f) for f in limited) + ")"
    return {"usable": not failed, "failed": failed, "limited": limited, "summary": summary}


def describe(check: dict) -> str:
    """'median reprojection 14.2 px > 8 px' ('points reconstructed 85% < 90%' for shares; a check's own ``text``)."""
    if check.get("text"):
        return check["text"]
    def fmt(x: float) -> str:
        if check["unit"] in ("px", "mm"):
            return f"{x:.3g} {check['unit']}"
        return f"{x:.1%}" if check["metric"].startswith("reconstructed") else f"{x:.2%}"

    if not np.isfinite(check["value"]):
        needed = "at most" if check["comparison"] == ">" else "at least"
        return f"{check['label']} could not be computed (needs {needed} {fmt(check['threshold'])})"
    note = f" ({check['note']})" if check.get("note") else ""
    if "floor_px" in check:  # resolution-limited (see verdict)
        note = (f" at {check['px']:.3g} px, within the detector's floor of {check['floor_px']:g} px: "
                f"1 px is {check['mm_per_px']:.3g} mm at the person here")
    return f"{check['label']} {fmt(check['value'])} {check['comparison']} {fmt(check['threshold'])}{note}"
