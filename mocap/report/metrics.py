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
from mocap.report.stats import nanmedian
from mocap.types import Keypoints2D, Points3D, Rig

log = logging.getLogger(__name__)
AWAY_S = 0.5  # one of several people seen in no frame for this long was away (out of the volume), not lost
# a keypoint without two views for this long or longer in a row (``points_one_view_long``): refine's motion prior
# no longer bridges it from measured frames, the bones and its one view alone place it. Over a helper's 60-odd
# synthetic takes (2-8 cameras, 1-8 people), the error of points without two views by the length of their run: under
# 0.1 s median 5 mm, P95 19 mm, 0.2 % over 100 mm; 0.25-0.5 s 8 / 65 mm, 3 %; 0.5-1 s 11 / 136 mm, 7 %; 1-2 s
# 19 / 334 mm, 21 %; over 2 s 113 / 554 mm, 53 %
ONE_VIEW_RUN_S = 0.5
# over this share of such points a person's capture is limited by occlusion (said in the verdict, not failed: on
# crowded 3-camera synthetic takes people with 10-22 % of them were 6-7 mm from the truth, P95 20-49 mm, at most
# 2.3 % of their points over 100 mm); over report.max_points_one_view_long (0.2) it fails
ONE_VIEW_LIMITED = 0.1


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
    # judged from the frame the person enters to the one it leaves, in 3D or in two cameras' detections (walking in
    # 1 s late failed "points reconstructed 70 %"; one of several people's first frames seen by one camera, often
    # another thing's detection before it entered, read 97 %), to its last in one camera's with several people (one
    # the association lost while a camera still saw it); one of several but for where it was away (no 3D, no
    # detection a while); one performer unseen mid-take counts (a detector's failure, or away)
    many = pts.xyz.shape[1] > 1
    views = (np.nan_to_num(kp.score[:, :, person]) >= MIN_SCORE).any(axis=2).sum(axis=1) \
        if kp.shape[2] > person else np.zeros(len(present), int)
    detected = views >= (1 if many else 2)
    rows = np.flatnonzero(present.any(axis=1) | detected)
    first = np.flatnonzero(present.any(axis=1) | (views >= 2))
    rows = rows[rows >= first[0]] if first.size else rows
    span = slice(rows[0], rows[-1] + 1) if rows.size else slice(None)
    present, seen2, detected, away = present[span], seen2[span], detected[span], 0
    # runs measured on the take's own frames, before the frames away are left out (two short runs either side of
    # a stretch away were one long run)
    long = _runs_at_least(present & ~seen2, int(np.ceil(ONE_VIEW_RUN_S * pts.fps)))
    if many:
        gone = _runs_at_least(~present.any(axis=1) & ~detected, int(np.ceil(AWAY_S * pts.fps)))
        present, seen2, long, away = present[~gone], seen2[~gone], long[~gone], int(gone.sum())
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
        "reconstructed": _reconstructed(present, hand_joints(kps), present & seen2, long)
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


def warn_one_view(people: list[tuple[str, dict]], least: float) -> None:
    """A warning for each (name, metrics) whose points are reconstructed but fewer than ``least`` of them seen by
    two cameras or more (``points_two_views``, :func:`_reconstructed`); a line of the log (info) where at most
    :data:`ONE_VIEW_LIMITED` of them went without two views for :data:`ONE_VIEW_RUN_S` or longer: the motion
    bridges shorter runs (a crowd's brief occlusions: people 6-7 mm from the truth were warned about)."""
    for name, m in people:
        two = m.get("reconstructed", {}).get("points_two_views")
        long = m.get("reconstructed", {}).get("points_one_view_long")
        if two is not None and two < least <= m["reconstructed"]["points"]:
            if long is not None and long <= ONE_VIEW_LIMITED:
                log.info("%s: %.0f %% of the points are seen by two cameras or more; %.0f %% went without two for "
                         "%g s or longer (the motion bridges shorter runs)", name, 100 * two, 100 * long,
                         ONE_VIEW_RUN_S)
                continue
            log.warning("%s: %.0f %% of the points are seen by two cameras or more; the others are estimated from one "
                        "view, the bone lengths and the motion (tens of mm off; up to half a metre where a whole side "
                        "of the body is seen by one view, as when entering through the image borders): bodies cut by "
                        "the image borders, or cameras too few for the volume?", name, 100 * two)


def _runs_at_least(x: np.ndarray, n: int) -> np.ndarray:
    """(F,) bool: the elements of x (F,) bool in runs of at least n true values; (F, J): each column's."""
    if x.ndim > 1:
        return np.stack([_runs_at_least(c, n) for c in x.T], axis=1) if x.shape[1] else np.zeros_like(x)
    out = np.zeros_like(x)
    edges = np.flatnonzero(np.diff(np.r_[0, x.astype(int), 0]))
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        out[a:b] = b - a >= n
    return out


def _reconstructed(present: np.ndarray, hand: np.ndarray, measured: np.ndarray | None = None,
                   long: np.ndarray | None = None) -> dict:
    """Shares of frames and points reconstructed, ``present`` (F, J); ``measured`` (F, J): the points two cameras or
    more support (``points_two_views``; the others refine estimated from one view, the bone lengths and the motion: a
    person whose feet and head the image borders cut in most views was 97 % "reconstructed", a third of its points
    from one view, 33 mm off on average there against 5 mm); ``long`` (F, J): those of them in runs of
    :data:`ONE_VIEW_RUN_S` or longer, whose share is ``points_one_view_long`` (short runs refine's motion bridges
    from the measured frames around them, long ones it cannot: the verdict's check). With hands in the set the
    verdict's figures are the body's, the hands' apart (``hands_points``, ``hands_frames_any``): hands leave the
    view, or hide behind the body, far more often than it does, and a take whose hands no camera saw is still a body
    capture."""
    body = present[:, ~hand] if hand.any() and (~hand).any() else present
    out = {"frames_all_joints": float(body.all(axis=1).mean()), "frames_any_joint": float(present.any(axis=1).mean()),
           "points": float(body.mean())}
    if measured is not None:
        out["points_two_views"] = float((measured[:, ~hand] if hand.any() and (~hand).any() else measured).mean())
    if long is not None:
        out["points_one_view_long"] = float((long[:, ~hand] if hand.any() and (~hand).any() else long).mean()) \
            if long.size else 0.0
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
