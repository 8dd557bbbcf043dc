"""Per-camera quality: error statistics, a flag for a camera far worse than the others, and a hint of
what to check, derived from the time profile of that camera's error (never from its name).

A camera is flagged when its median reprojection error over all its detections is more than
``ratio`` × the median of the other cameras' medians, or its P95 more than 2 × ``ratio`` × the median
of their P95s with bursts of frames bad as a whole (swaps, another person). The cameras are compared at
the person (each camera's pixels times its metres per pixel there: depth ÷ focal length), so a camera of
twice the resolution, or twice as near, is not flagged for pixels twice as large; the reference is then
stated in the flagged camera's pixels. The hint reads the per-frame error:

* the observations fit better with left and right exchanged in most bad frames → left/right swaps;
* the bad frames' error is a large part of the body's size in the image, or the detected body has
  another size or shape than the reprojected one (after the 2D similarity that best maps one onto the
  other — what a camera pose or time error leaves nearly unchanged) → another person;
* the error follows the speed of the motion → sync (a time offset);
* the error is high in most frames → the calibration pose (or a camera moved);
* otherwise bursts of bad frames → another person or failed detections in those frames.

Two flagged cameras whose detections each fit the other's pose were given each other's video (or named the
other way round in the rig): that hint wins over the others.
"""

from __future__ import annotations

import numpy as np

from mocap.keypoint_sets import get_keypoint_set
from mocap.report.consistency import flag_inconsistent
from mocap.report.exchanged import outside_image, scaled_detections, tell_exchanged
from mocap.report.lost import crossed, image_boxes, in_view_frames, lost_counts
from mocap.report.stats import per_frame, rank_corr
from mocap.report.steps import flag_steps, stat_label
from mocap.types import Keypoints2D, Points3D, Rig

MIN_SCORE = 0.2  # detections below this score are not scored (as in metrics.reprojection)
FLOOR_PX = 1.0  # a reference error below this is taken as this: ratios of sub-pixel errors mean nothing
MOST = 0.5  # share of the bad frames that makes a pattern (flipped fits better; bad in most frames)
WRONG_PERSON_SIZE = 0.25  # bad frames' error as a share of the body's size in the image
P95_FACTOR = 2.0  # the P95 rule's ratio is this × the median's: a tail varies more, and a camera with a
# wrong pose drags the 3D points enough to raise the others' tails about 3×, but not their medians
UNSEEN_HINT = ("no detection of this person in the whole take while other cameras saw it: unplugged, the "
               "wrong video, pointed elsewhere, or the person outside its view?")
IN_VIEW = 0.8  # a camera that never detects a person inside its view this share of the frames: said (and failed
# when two cameras or fewer see that person, see mocap.report.verdict.verdict)
MISSED_HINT = ("never detected this person although it stood in this camera's view in {share:.0%} of the frames (the "
               "camera detected other people): two cameras' videos swapped (named the other way round), this "
               "camera's calibration another camera's or another setup's, or the person hidden from it throughout?")
TWO_CAMERAS_NOTE = ("; with two cameras only, each one's error is the other's as much: the other camera may be the one "
                    "at fault (a third camera would tell)")
BEHIND_HINT = ("the person is behind this camera in every frame it detects them: its pose turned the wrong way "
               "(rotation inverted or transposed), or its video another camera's?")
MIN_BEHIND = 10  # detections (keypoints) of the person where it is in 3D, all behind the camera: said, and failed
MIN_BAD_FRAMES = 5  # a P95 flag needs at least this many frames (and 5 %) whose median error is beyond the cutoff
SPEED_CORRELATION = 0.5  # rank correlation of per-frame error and image speed that says "sync"
OTHER_SCALE = 0.2  # |log| of the detected body's size over the reprojected one's: another body (a pose error: ~0.01)
OTHER_SHAPE = 0.15  # residual after the best 2D similarity, over the body's RMS radius (a pose error: ~0.04)


def frame_runs(frames: np.ndarray, limit: int = 3) -> str:
    """[3, 4, 5, 9] → '3–5, 9' (at most ``limit`` runs, the longest, in time order)."""
    frames = np.asarray(frames, int)
    if frames.size == 0:
        return ""
    cut = np.flatnonzero(np.diff(frames) > 1) + 1
    runs = [(int(r[0]), int(r[-1])) for r in np.split(frames, cut)]
    more = len(runs) > limit
    runs = sorted(sorted(runs, key=lambda r: r[0] - r[1])[:limit])
    text = ", ".join(f"{a}–{b}" if b > a else f"{a}" for a, b in runs)
    return text + (", …" if more else "")


def _shape(obs: np.ndarray, uv: np.ndarray) -> tuple[float, float]:
    """Detected (N, 2) against reprojected (N, 2) keypoints of one frame: (|log| of their size ratio,
    residual after the 2D similarity mapping the detections onto the reprojection, over its RMS radius)."""
    a, b = obs - obs.mean(axis=0), uv - uv.mean(axis=0)
    ra, rb = np.sqrt((a**2).sum(axis=1).mean()), np.sqrt((b**2).sum(axis=1).mean())
    if ra <= 0 or rb <= 0:
        return float("nan"), float("nan")
    U, _, Vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(U @ Vt))  # a rotation, never a reflection
    R = U @ np.diag([1.0, d]) @ Vt
    return abs(float(np.log(ra / rb))), float(np.median(np.linalg.norm(a @ R * (rb / ra) - b, axis=1)) / rb)


def _profile(err: np.ndarray, err_flip: np.ndarray | None, obs: np.ndarray, speed: np.ndarray,
             cutoff: float, uv: np.ndarray | None = None) -> dict:
    """Time profile of one camera's error. err, err_flip: (F, J); obs, uv: (F, J, 2) detected and
    reprojected; speed: (F, J), the image speed of each joint (pixels per frame) — a time offset makes
    the error of each joint follow its speed, a pose error does not."""
    e = per_frame(err)
    seen = np.isfinite(e)
    bad = seen & (e > cutoff)
    n_bad = int(bad.sum())
    flip_better = float("nan")
    if err_flip is not None and n_bad:
        ef = per_frame(err_flip)
        flip_better = float(np.mean(ef[bad] < 0.5 * e[bad]))
    o = obs[np.isfinite(obs).all(axis=-1).any(axis=1)]  # the frames with a detection (no all-NaN slice)
    extent = np.nanmax(o, axis=1) - np.nanmin(o, axis=1) if len(o) else np.full((1, 2), np.nan)
    size = float(np.nanmedian(np.linalg.norm(extent, axis=-1))) if np.isfinite(extent).any() else float("nan")
    shapes = []
    for f in np.flatnonzero(bad) if uv is not None else ():
        ok = np.isfinite(err[f]) & np.isfinite(uv[f]).all(axis=-1)
        if ok.sum() >= 6:
            shapes.append(_shape(obs[f, ok], uv[f, ok]))
    scale_change, shape_residual = np.nanmedian(np.array(shapes), axis=0) if shapes else (float("nan"),) * 2
    return {"bad_frames_share": float(n_bad / max(seen.sum(), 1)),
            "bad_frames": frame_runs(np.flatnonzero(bad)),
            "flip_fits_better_share": flip_better,
            "bad_error_to_body_size": float(np.median(e[bad]) / size) if n_bad and size > 0 else float("nan"),
            "bad_scale_change": float(scale_change), "bad_shape_residual": float(shape_residual),
            "speed_correlation": rank_corr(err.ravel(), speed.ravel())}


def hint(p: dict, several: bool = False, detect_persons: int | str | None = None) -> str:
    """What to check for a flagged camera, from its error's time profile (:func:`_profile`); ``several``: the
    take has several people (a wrong person: identities mixed); ``detect_persons``: detect's setting (not 1 nor
    None, unknown: every person was looked for, so its detections failed, or a bystander only it sees)."""
    share, frames = p["bad_frames_share"], p["bad_frames"]
    if not frames:
        return ("scattered large errors (no frame is bad as a whole): outlier detections or a few joints "
                "this camera sees badly? (check the review video)")
    if p["flip_fits_better_share"] >= MOST:
        return (f"left/right swaps? in {p['flip_fits_better_share']:.0%} of its bad frames ({frames}) the "
                "detections fit better with left and right exchanged: check the detector's left/right labels")
    sync = p["speed_correlation"] >= SPEED_CORRELATION
    scale, shape = p.get("bad_scale_change", np.nan), p.get("bad_shape_residual", np.nan)
    if p["bad_error_to_body_size"] >= WRONG_PERSON_SIZE or scale >= OTHER_SCALE or (shape >= OTHER_SHAPE and not sync):
        why = (f"the error is {p['bad_error_to_body_size']:.0%} of the body's size in this view"
               if p["bad_error_to_body_size"] >= WRONG_PERSON_SIZE else
               f"the detected body's size differs from the reprojected one's by a factor of {np.exp(scale):.2f}"
               if scale >= OTHER_SCALE else
               f"the detected body's shape differs from the reprojected one by {shape:.0%} of its size")
        if not several and detect_persons not in (None, 1):
            return (f"detections failed? in its bad frames ({frames}) {why}: a poor image there (dark, blurred, "
                    "heavily compressed), the body cut by the image border or hidden, or a bystander this camera "
                    "alone sees? (check the review video)")
        what = ("identities mixed between the people in this view?" if several else
                "several people in the volume? with detect.persons = 1 a camera may follow another one: mocap run "
                "with --set detect.persons=auto, the default, or the number of people")
        return f"wrong person? in its bad frames ({frames}) {why}: the detections may be of another person ({what})"
    if sync:
        return (f"sync? its error grows with the speed of the motion (rank correlation "
                f"{p['speed_correlation']:.2f}): check this camera's time offset")
    if share >= MOST:
        return (f"calibration? its error is high in {share:.0%} of frames, steadily and whatever the speed: "
                "check this camera's calibration pose (or whether it moved)")
    return (f"error in bursts ({share:.0%} of frames: {frames}): wrong person or failed detections in "
            "those frames? (check the review video)")


def camera_table(rig: Rig, kp: Keypoints2D, pts: Points3D, person: int = 0, offsets: dict | None = None,
                 ratio: float = 2.5, swaps_repaired: dict | None = None,
                 scales: np.ndarray | None = None, mpp: np.ndarray | None = None,
                 detect_persons: int | str | None = None, boxes: np.ndarray | None = None) -> dict[str, dict]:
    """{camera: median_px, p95_px, median_mm, p95_mm (at the person), detections, kept_share,
    sync_offset_frames, swaps_repaired (None when no repair ran; default: ``pts.info["swaps_repaired"]``),
    ratio_to_others, flagged, flag (the rule that fired), unseen (no detection while another camera has some:
    not flagged, the others carry the 3D, but said), hint (what to check; None when neither),
    profile (what the hint was read from)}. ``scales``: (C,) each camera's metres per pixel at the person
    (:func:`mocap.report.metrics.camera_scales`); without them, or with one missing, pixels are compared.
    ``mpp``: (F, C) the same frame by frame (:func:`mocap.report.metrics.metres_per_px`), for the check of an
    error that changes mid-take (:func:`mocap.report.steps.flag_steps`). ``detect_persons``: see :func:`hint`.
    ``boxes``: the take's people's image boxes (:func:`mocap.report.lost.image_boxes`; computed when not given)."""
    X = pts.xyz[:, person]  # (F, J, 3)
    F, J = X.shape[:2]
    uv = np.moveaxis(rig.project(X.reshape(-1, 3)).reshape((len(rig), F, J, 2)), 0, 1)  # (F, C, J, 2)
    obs = kp.xy[:, :, person]
    score = kp.score[:, :, person]
    det = np.isfinite(score) & (score >= MIN_SCORE) & np.isfinite(obs).all(axis=-1)
    err = np.where(det, np.linalg.norm(uv - obs, axis=-1), np.nan)
    flip = get_keypoint_set(pts.keypoint_set).flip_permutation
    err_flip = np.where(det[:, :, flip], np.linalg.norm(uv - obs[:, :, flip], axis=-1), np.nan) \
        if len(flip) == J and np.any(flip != np.arange(J)) else None
    used = np.moveaxis(pts.views[:, person], 2, 1) if pts.views is not None else None
    used = used if used is not None and used.shape == err.shape else None
    with np.errstate(invalid="ignore"):
        speed = np.linalg.norm(np.gradient(uv, axis=0), axis=-1) if F > 1 else np.zeros((F,) + uv.shape[1:3])
    swaps = swaps_repaired if swaps_repaired is not None else pts.info.get("swaps_repaired")
    swaps = swaps if isinstance(swaps, dict) else None
    offsets = offsets or {}
    k = np.asarray(scales, float) if scales is not None else np.full(len(rig), np.nan)
    # a scale is needed where there are errors to compare: a camera the person is always behind (a person
    # outside the ring, an operator) has none, nor any error, and leaves the others compared at the person
    compared = np.isfinite(err).any(axis=(0, 2))
    scaled = k.shape == (len(rig),) and bool(np.all(np.isfinite(k[compared]) & (k[compared] > 0)))
    k = np.where(compared, k, 1.0) if scaled else np.ones(len(rig))  # the comparison's unit per pixel of each camera
    rows: dict[str, dict] = {}
    for i, name in enumerate(rig.names):
        e = err[:, i]
        n = int(np.isfinite(e).sum())
        rows[name] = {
            "median_px": float(np.nanmedian(e)) if n else float("nan"),
            "p95_px": float(np.nanpercentile(e, 95)) if n else float("nan"),
            "median_mm": float(np.nanmedian(e) * k[i] * 1000) if n and scaled else float("nan"),
            "p95_mm": float(np.nanpercentile(e, 95) * k[i] * 1000) if n and scaled else float("nan"),
            "detections": int(det[:, i].sum()),
            "kept_share": float(np.isfinite(np.where(used[:, i], e, np.nan)).sum() / n)
            if used is not None and n else float("nan"),
            "sync_offset_frames": float(offsets.get(name, 0.0)),
            "swaps_repaired": int(swaps[name]) if swaps is not None and name in swaps else None,
            "ratio_to_others": float("nan"), "flagged": False, "flag": None, "hint": None}
    for i, name in enumerate(rig.names):
        row = rows[name]
        others_med = _others(rows, "median_px", i, k)
        if not np.isfinite(others_med) or not np.isfinite(row["median_px"]):
            continue
        row["ratio_to_others"] = row["median_px"] / max(others_med, FLOOR_PX)
        cutoff = ratio * max(others_med, FLOOR_PX)
        p = _profile(err[:, i], None if err_flip is None else err_flip[:, i], obs[:, i], speed[:, i], cutoff,
                     uv[:, i])
        bad_frames = p["bad_frames_share"] * np.isfinite(per_frame(err[:, i])).sum()
        for stat in ("median_px", "p95_px"):
            ref = _others(rows, stat, i, k)
            threshold = (ratio if stat == "median_px" else P95_FACTOR * ratio) * max(ref, FLOOR_PX)
            # P95 alone flags bursts: it needs frames bad as a whole, not a tail pulled up by another camera
            if row[stat] > threshold and (stat == "median_px" or bad_frames >= max(MIN_BAD_FRAMES, 0.05 * F)):
                row["flagged"] = True
                raw = _others(rows, stat, i, np.ones(len(k)))
                row["flag"] = {"stat": stat, "value": row[stat], "threshold": threshold, "reference": ref,
                               "ratio": threshold / max(ref, FLOOR_PX),
                               "scaled": bool(scaled and abs(ref - raw) > 0.1 * max(raw, FLOOR_PX))}
                row["profile"] = p
                row["hint"] = hint(p, pts.xyz.shape[1] > 1, detect_persons)
                if compared.sum() == 2:  # one other camera to compare with: either may be the one at fault
                    row["hint"] += TWO_CAMERAS_NOTE
                break
    # frame by frame at the person's scale where known: a person who walks up to one camera for a while has larger
    # pixel errors there, not a step
    per_frame_k = mpp if mpp is not None and mpp.shape == (F, len(rig)) else np.broadcast_to(k, (F, len(rig)))
    flag_steps(rows, err, speed, per_frame_k, ratio, kp.fps, FLOOR_PX, SPEED_CORRELATION)
    _swapped_videos(rows, rig.names, uv, obs, det, ratio, k, flip if err_flip is not None else None)
    tell_exchanged(rows, rig, obs, det)
    outside_image(rows, rig, obs, det)
    scaled_detections(rows, uv, obs, det)
    _turned_footage(rows, rig, uv, obs, det, ratio, k, flip if err_flip is not None else None)
    _same_footage(rows, obs, det)
    flag_inconsistent(rows, rig, obs, det, err, k, ratio, FLOOR_PX, speed, SPEED_CORRELATION)  # none stands out
    seen = [r["detections"] > 0 for r in rows.values()]
    # anyone: a camera that saw another person of the take saw someone (an operator outside its view is no fault)
    anyone = (np.isfinite(kp.score) & (kp.score >= MIN_SCORE) & np.isfinite(kp.xy).all(axis=-1)).any(axis=(0, 2, 3))
    view, present = in_view_frames(rig, uv, X)
    in_view = view[present].mean(axis=0) if present.any() else np.zeros(len(rig))
    known = np.isfinite(X).all(axis=-1)  # (F, J)
    for i, row in enumerate(rows.values()):  # not a fault of the 3D (the others carry it), but never "ok"
        # its detections of the person where the person is in 3D, and the person behind it in every one of them
        row["behind"] = bool((det[:, i] & known).sum() >= MIN_BEHIND and not np.isfinite(err[:, i]).any())
        if row["behind"]:
            row["hint"] = BEHIND_HINT
        row["unseen"] = row["detections"] == 0 and any(seen) and not anyone[i]
        row["in_view_share"] = float(in_view[i])
        # it saw other people but never this one, standing in its view: its video or pose is another camera's
        row["missed"] = bool(row["detections"] == 0 and anyone[i] and in_view[i] >= IN_VIEW)
        if row["unseen"]:
            row["hint"] = UNSEEN_HINT
        elif row["missed"]:
            row["hint"] = MISSED_HINT.format(share=in_view[i])
    boxes = image_boxes(rig, pts.xyz) if boxes is None else boxes  # the take's people's (mocap.report.lost)
    lost_counts(rows, view & ~crossed(boxes, person, uv), det)  # said over the take's people
    return rows


def _swapped_videos(rows: dict[str, dict], names, uv: np.ndarray, obs: np.ndarray, det: np.ndarray, ratio: float,
                    k: np.ndarray, flip: np.ndarray | None) -> None:
    """Two flagged cameras whose detections each fit the other's pose (median error within ``ratio`` × the
    other cameras', and under half their own) were given each other's video: their hints say so
    (``swapped_with``), whatever else their error's profile suggested. uv, obs: (F, C, J, 2) reprojected and
    detected; det: (F, C, J) scored; ``flip``: the keypoint set's left/right permutation (a frame counts as the
    better of its detections and their mirror: the left/right repair, run through the wrong poses, may have
    mirrored them)."""
    flagged = [i for i, r in enumerate(rows.values()) if r["flagged"]]

    def fit(i: int, j: int) -> float:  # camera i's detections through camera j's pose
        per = [per_frame(np.where(det[:, i], np.linalg.norm(uv[:, j] - obs[:, i], axis=-1), np.nan))]
        if flip is not None:
            per.append(per_frame(np.where(det[:, i][:, flip], np.linalg.norm(uv[:, j] - obs[:, i][:, flip], axis=-1),
                                           np.nan)))
        e = np.fmin.reduce(per) if len(per) > 1 else per[0]
        return float(np.nanmedian(e)) if np.isfinite(e).any() else float("nan")

    for a in flagged:
        for b in flagged:
            if b <= a:
                continue
            f_ab, f_ba = fit(a, b), fit(b, a)
            # each fits the other's pose as well as a good camera fits its own, and far better than its own
            # (two cameras side by side see nearly alike: their detections fit each other's pose about as well)
            if all(f <= ratio * max(_others(rows, "median_px", i, k), FLOOR_PX)
                   and f < 0.5 * rows[names[i]]["median_px"] for f, i in ((f_ab, a), (f_ba, b))):
                for me, other, f_me, f_other in ((names[a], names[b], f_ab, f_ba), (names[b], names[a], f_ba, f_ab)):
                    rows[me]["swapped_with"] = other
                    rows[me]["hint"] = (f"videos swapped? {me}'s detections fit {other}'s pose ({f_me:.3g} px) and "
                                        f"{other}'s fit {me}'s ({f_other:.3g} px): the two videos (or the rig's two "
                                        "cameras) are named the other way round; rename them and run again")


# footage mirrored or turned in the camera or on export (a webcam's mirrored preview, a camera mounted upside
# down): (what, how it is undone, x mirrored, y mirrored, left and right exchanged: a mirror image swaps them, a
# half turn does not)
TURNED_GAIN = 0.25  # turned back, the detections' error must drop below this share of it as they are
TURNS = (("mirrored left-right", "mirrored back", True, False, True),
         ("upside down (turned 180°)", "turned back", True, True, False),
         ("mirrored top-bottom", "mirrored back", False, True, True))


def turned(obs: np.ndarray, det: np.ndarray, size, mx: bool, my: bool, lr: bool,
           flip: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Detections (..., J, 2) and their mask (..., J) of a camera of image ``size`` (w, h) mirrored or turned back
    (a row of :data:`TURNS`: x mirrored, y mirrored, left and right exchanged by the keypoint set's ``flip``)."""
    (w, h), (o, d) = size, ((obs[..., flip, :], det[..., flip]) if lr else (obs, det))
    return np.stack([w - 1 - o[..., 0] if mx else o[..., 0], h - 1 - o[..., 1] if my else o[..., 1]], axis=-1), d


def turned_hint(what: str, undo: str, whose: str, fit: float, given: float) -> str:
    """The hint of a camera whose footage is mirrored or turned: ``whose`` detections, ``undo``, fit ``fit`` px."""
    return (f"footage {what}? {whose} {undo} fit its pose ({fit:.3g} px, against {given:.3g} px as they are): the "
            "camera or its export flips the picture (a webcam's mirrored preview, a camera mounted upside down); "
            "flip the video back (ffmpeg -vf hflip, vflip, or both) and run again")


def _turned_footage(rows: dict[str, dict], rig: Rig, uv: np.ndarray, obs: np.ndarray, det: np.ndarray,
                    ratio: float, k: np.ndarray, flip: np.ndarray | None) -> None:
    """A flagged camera whose detections, mirrored or turned back (:data:`TURNS`), fit its pose near the other
    cameras' level (within the P95 rule's ratio) and 4× better than as they are: its footage is mirrored or upside
    down; its hint says so (``turned``), whatever its error's profile suggested. (A camera of a take of several
    people whose mirror images are nobody's or another person's: :mod:`mocap.report.mirrored_people`.)"""
    for i, (name, row) in enumerate(rows.items()):
        if not row["flagged"] or row.get("swapped_with"):
            continue
        for what, undo, mx, my, lr in TURNS:
            if lr and flip is None:
                continue
            o, d = turned(obs[:, i], det[:, i], rig.cameras[i].size, mx, my, lr, flip)
            e = per_frame(np.where(d, np.linalg.norm(uv[:, i] - o, axis=-1), np.nan))
            fit = float(np.nanmedian(e)) if np.isfinite(e).any() else float("nan")
            # far better turned back, and near the others (a camera whose footage is flipped is left out of the
            # camera refinement: its pose, a little off, stays so; the real demo's cam03 mirrored: 381 → 30 px)
            if fit <= P95_FACTOR * ratio * max(_others(rows, "median_px", i, k), FLOOR_PX) and (
                    fit < TURNED_GAIN * row["median_px"]):
                row["turned"] = what
                row["hint"] = turned_hint(what, undo, f"{name}'s detections", fit, row["median_px"])
                break


def _same_footage(rows: dict[str, dict], obs: np.ndarray, det: np.ndarray) -> None:
    """A flagged camera whose detections are another camera's, to the pixel, in most frames both have: the same
    video under two names (a copy); its hint says so (``same_as``). obs (F, C, J, 2), det (F, C, J)."""
    names = list(rows)
    for i, name in enumerate(names):
        if not rows[name]["flagged"]:
            continue
        for j, other in enumerate(names):
            both = det[:, i] & det[:, j]
            if j == i or both.sum() < 20:
                continue
            same = np.all(np.abs(obs[:, i] - obs[:, j]) < 0.01, axis=-1) & both
            if same.sum() >= 0.9 * both.sum():
                rows[name]["same_as"] = other
                rows[name]["hint"] = (f"the same video as {other}? {name}'s detections are {other}'s to the pixel "
                                      f"in {same.sum() / both.sum():.0%} of the keypoints both have: one file copied "
                                      f"under two names; put {name}'s own video in its place")
                break


def _others(rows: dict[str, dict], stat: str, i: int, k: np.ndarray) -> float:
    """The median of the other cameras' ``stat`` in camera ``i``'s pixels (each one's pixels × its scale ``k``
    ÷ camera i's); NaN when none has it."""
    others = [r[stat] * k[j] / k[i] for j, r in enumerate(rows.values()) if j != i and np.isfinite(r[stat])]
    return float(np.median(others)) if others else float("nan")


def flag_text(name: str, row: dict) -> str:
    """'cam03: median 23.6 px > 2.5 × 9.40 px (the other cameras)'."""
    f = row["flag"]
    what = stat_label(f)
    at = ", at this camera's scale at the person" if f.get("scaled") else ""
    if f["stat"] == "epipolar_px":  # the camera pairs' agreement with the rig (mocap.report.consistency)
        return (f"{name}: {what} {f['value']:.3g} px > {f['ratio']:g} × {f['reference']:.3g} px (where the other "
                "cameras agree with the rig)")
    if "ratio_median" in f:  # a step: decided frame by frame against the others
        return (f"{name}: {what} {f['value']:.3g} px, {f['ratio_median']:.2f}× the other cameras frame by frame "
                f"(> {f['ratio']:g}×; their median there {f['reference']:.3g} px)")
    return (f"{name}: {what} {f['value']:.3g} px > {f['ratio']:g} × {f['reference']:.3g} px "
            f"(the other cameras' {what}{at})")
