"""The report's verdict: whether a take looks usable, each failed or resolution-limited check with its value and
threshold, and how each is said (``metrics.json``'s ``verdict``, the page, the run's summary)."""

from __future__ import annotations

import numpy as np

from mocap.report.late import mid_take_check
from mocap.report.metrics import ONE_VIEW_LIMITED, ONE_VIEW_RUN_S
from mocap.report.steps import stat_label

# a frame whose median reprojection at the person is over this many times the threshold (or the take's own median,
# the larger) is off as a whole (the body jumped, a camera's pose or sync broke there), and a run of such frames
# lasting this many seconds fails the take: medians and P95 over a take hid 15 frames 0.5 m off in 600 (PASS at
# 4 mm); single frames off here and there do not (three in a take of 20,000 frames would have failed it)
FRAME_OFF_MULTIPLE, FRAMES_OFF_S = 2.0, 0.1


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


def verdict(m: dict, max_reprojection_mm: float, max_bone_length_cv: float, min_points: float,
            max_reprojection_px: float = 0.0, resolution_floor_px: float = 0.0,
            min_points_two_views: float = 0.0, max_points_one_view_long: float = 1.0) -> dict:
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
    points two cameras or more see (``points_two_views``) under ``min_points_two_views`` (> 0) fails, and so does a
    share of points without two views for half a second or longer (``points_one_view_long``) over
    ``max_points_one_view_long`` (< 1): one view's points reproject well whatever their depth (two cameras: legs
    0.3–0.56 m off read 4.8 px), and short runs of them the motion bridges (a crowd's brief occlusions: 5-14 mm);
    over :data:`~mocap.report.metrics.ONE_VIEW_LIMITED` of them, up to that threshold, the capture is limited by
    occlusion (``limited``, ``why`` "occlusion"), said, not failed."""
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
    long = m["reconstructed"].get("points_one_view_long")
    long_label = f"points without two cameras for {ONE_VIEW_RUN_S:g} s or longer"
    failed, limited = [], []
    if max_points_one_view_long < 1 and long is not None:
        checks.append(("reconstructed.points_one_view_long", long_label, long, ">", max_points_one_view_long,
                       "fraction"))
        if ONE_VIEW_LIMITED < long <= max_points_one_view_long:
            limited.append({"metric": "reconstructed.points_one_view_long", "label": long_label,
                            "value": float(long), "comparison": ">", "threshold": ONE_VIEW_LIMITED,
                            "unit": "fraction", "why": "occlusion"})
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


LIMITS = {"resolution": "limited by the images' resolution, not a fault",
          "occlusion": "limited by occlusion: points estimated from one view for long"}


def summarised(failed: list[dict], limited: list[dict]) -> dict:
    """The verdict from its failed and limited checks (see :func:`verdict`): each kind of limit said apart."""
    summary = "PASS" if not failed else "FAIL: " + "; ".join(describe(f) for f in failed)
    for why, words in LIMITS.items():
        these = [f for f in limited if f.get("why", "resolution") == why]
        if these:
            summary += ("; " if summary != "PASS" and not summary.endswith(")") else " ") + f"({words}: " + \
                "; ".join(describe(f) for f in these) + ")"
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
