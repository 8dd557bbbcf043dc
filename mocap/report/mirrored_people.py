"""A camera of a take of several people whose footage is mirrored or turned (:data:`mocap.report.cameras.TURNS`).

With one person the mirrored camera's detections are the performer's, flagged, and
:func:`mocap.report.cameras._turned_footage` names the mirror. With several people a mirror image is matched to
no one (it fits no person's reprojection: each person's row of that camera read "saw no one … unplugged, the wrong
video" while the log said the camera had "detections no person explains" in every frame, the reviewer's two-person
demo with cam04 flipped), or to another person standing where its mirror image falls (flagged "wrong person?").

So a camera with a person it has no detection of, or is flagged for without a turned-footage hint, has all its
detections compared with every person's reprojection through it, as given and mirrored or turned back: each
detection taken as the person it then fits best, each person's frame as its best detection. When, turned back, they
fit the people near the other cameras' level (within the P95 rule's ratio, at each person's scale) and 4× better
than as given, pooled over the people, those rows get the turned-footage hint (``turned``), each person's own
figures in it (the pooled ones for a person the camera saw in no frame); a row without a detection is flagged. A
camera that detected no one, or people no turn brings onto anyone (a bystander), keeps its hint ("saw no one …").
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from mocap.keypoint_sets import get_keypoint_set
from mocap.report.cameras import FLOOR_PX, MIN_SCORE, P95_FACTOR, TURNED_GAIN, TURNS, turned, turned_hint
from mocap.types import Keypoints2D, Points3D, Rig

MIN_FRAMES = 10  # person-frames (pooled over the people) with a detection turned back: fewer tell nothing
MIN_JOINTS = 3  # a detection is compared with a person on this many keypoints at least
MAX_FRAMES = 2000  # frames with detections compared, evenly spread (the decision is a median: 20,000 frames of 3
# people, 4 detections a view, 33 keypoints took 1.3 s and 360 MB per camera and turn)


def turned_people(tables: list[dict[str, dict]], rig: Rig, pts: Points3D,
                  raw: Keypoints2D | Callable[[], Keypoints2D | None] | None, ratio: float = 2.5) -> None:
    """``tables``: each person's camera table (:func:`mocap.report.cameras.camera_table`), changed in place;
    ``raw``: every detection of the take (F, C, D, J), aligned in time as the report's, before any association or
    repair, or what reads them (called only when a camera is to be looked at: a long take's detections are a
    few hundred MB); ``ratio``: the camera flag's."""
    if len(tables) < 2 or len(tables) != pts.xyz.shape[1]:
        return
    todos = {name: [p for p, t in enumerate(tables) if not t[name].get("turned") and not t[name].get("behind") and (
        t[name]["detections"] == 0 if not t[name]["flagged"] else not _own_hint(t[name]))] for name in rig.names}
    if not any(todos.values()):
        return
    raw = raw() if callable(raw) else raw
    if raw is None or raw.shape[0] != pts.xyz.shape[0] or raw.shape[3] != pts.xyz.shape[2] or \
            tuple(raw.camera_names) != tuple(rig.names):
        return
    J = raw.shape[3]
    flip = np.asarray(get_keypoint_set(pts.keypoint_set).flip_permutation)
    flip = flip if len(flip) == J and np.any(flip != np.arange(J)) else None
    ok = np.isfinite(raw.score) & (raw.score >= MIN_SCORE) & np.isfinite(raw.xy).all(axis=-1)  # (F, C, D, J)
    X = pts.xyz  # (F, P, J, 3)
    for i, name in enumerate(rig.names):
        todo = todos[name]  # each camera's rows are changed in its own turn only
        if not todo or ok[:, i].sum() < MIN_JOINTS:
            continue
        seen = np.flatnonzero(ok[:, i].any(axis=(1, 2)))  # frames with a detection, at most MAX_FRAMES of them
        f = seen[np.linspace(0, seen.size - 1, MAX_FRAMES).astype(int)] if seen.size > MAX_FRAMES else seen
        uv = rig.cameras[i].project(X[f].reshape(-1, 3)).reshape((f.size,) + X.shape[1:3] + (2,))  # (f, P, J, 2)
        refs = [_reference(rig, pts, tables, p, i) for p in range(len(tables))]
        ref = np.array([r for r, _ in refs])  # (P,) the other cameras' median error in camera i's pixels
        xy, det = raw.xy[f, i], ok[f, i]
        given = _nearest(uv, xy, det)  # (f, P)
        for what, undo, mx, my, lr in TURNS:
            if lr and flip is None:
                continue
            fit = _nearest(uv, *turned(xy, det, rig.cameras[i].size, mx, my, lr, flip))
            t, g = _pooled(fit / ref), _pooled(given / ref)
            if np.isfinite(fit / ref).sum() < MIN_FRAMES or not (t <= P95_FACTOR * ratio and t < TURNED_GAIN * g):
                continue
            frames = int(seen.size)
            for p in todo:
                own = np.isfinite(fit[:, p]).any() and np.isfinite(given[:, p]).any()
                f_px, g_px = (_pooled(fit[:, p]), _pooled(given[:, p])) if own else (_pooled(fit), _pooled(given))
                row = tables[p][name]
                if row["flagged"]:  # matched to another person's mirror image: its flag's error as given
                    whose, g_px = f"{name}'s detections (each taken as the person it fits best)", row["median_px"]
                else:
                    whose = (f"{name} detected people in {frames} frames but none fits this person: its detections"
                             + ("" if own else " (the other people's)"))
                    row.update(unseen=False, missed=False, flagged=True, flag={
                        "stat": "median_px", "value": g_px, "threshold": ratio * ref[p], "reference": ref[p],
                        "ratio": ratio, "scaled": refs[p][1]})
                row["turned"] = what
                row["hint"] = turned_hint(what, undo, whose, f_px, g_px)
            break


def _own_hint(row: dict) -> bool:
    """A flagged row whose hint names a cause the turned footage does not explain (videos swapped, or the same
    video as another camera's: as in :func:`mocap.report.cameras.camera_table`)."""
    return bool(row.get("swapped_with") or row.get("same_as"))


def _nearest(uv: np.ndarray, obs: np.ndarray, det: np.ndarray) -> np.ndarray:
    """(F, P): each person's median error (reprojections uv (F, P, J, 2)) to the nearest of the detections obs
    (F, D, J, 2), mask det (F, D, J), that fit that person better than any other; NaN where none does."""
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: a person absent, a detection missing
        e = np.where(det[:, None], np.linalg.norm(uv[:, :, None] - obs[:, None], axis=-1), np.nan)  # (F, P, D, J)
        med = np.where(np.isfinite(e).sum(axis=-1) >= MIN_JOINTS, np.nanmedian(e, axis=-1), np.nan)  # (F, P, D)
        cost = np.where(np.isfinite(med), med, np.inf)
        mine = np.arange(med.shape[1])[None, :, None] == cost.argmin(axis=1)[:, None]  # each detection's person
        return np.nanmin(np.where(mine, med, np.nan), axis=2)


def _pooled(values: np.ndarray) -> float:
    v = values[np.isfinite(values)]
    return float(np.median(v)) if v.size else float("nan")


def _reference(rig: Rig, pts: Points3D, tables: list[dict[str, dict]], p: int, i: int) -> tuple[float, bool]:
    """The other cameras' median error of person p in camera i's pixels: their millimetres at the person over
    camera i's metres per pixel there (:func:`mocap.report.metrics.metres_per_px`; True), else their pixels
    (False); NaN when no other camera has an error for the person."""
    from mocap.report.metrics import camera_scales, metres_per_px

    rows = [r for n, r in tables[p].items() if n != rig.names[i] and np.isfinite(r["median_px"])]
    if not rows:
        return float("nan"), False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        k = float(camera_scales(metres_per_px(rig, pts, p))[i])
    mm = [r.get("median_mm", float("nan")) for r in rows]
    if np.isfinite(k) and k > 0 and np.all(np.isfinite(mm)):
        return max(float(np.median(mm)) / (k * 1000), FLOOR_PX), True
    return max(float(np.median([r["median_px"] for r in rows])), FLOOR_PX), False
