"""A camera whose error changes partway through the take and stays changed: bumped (or moved) then, or frames
dropped then (its time offset changes), while the whole take's median and P95 still look fine.

Per frame, the camera's error (median over its joints) is compared with the other cameras' in the same frame
(the median of theirs, brought to this camera's pixels frame by frame by the metres per pixel at the person in
each camera, so a person who walks up to one camera for a while is no step). A frame is bad when the camera's
error is above ``ratio`` × the others'. The take is cut in two where the cut explains the bad frames best (bad
on one side, not on the other: an exact minimum over every cut, two cumulative sums); a step is said when each
side is at least ``MIN_SHARE`` of the frames and ``MIN_S`` long, the bad side's median ratio is above ``ratio``
and each of its quarters' above ``CLEAN`` × ``ratio`` (bad throughout, not a burst next to the cut), and the
other side's median under ``CLEAN`` × ``ratio``. Whether the error follows the speed of the motion on the bad
side (a time offset does; a pose error does not) says which of the two it is.
"""

from __future__ import annotations

import numpy as np

from mocap.report.stats import nanmedian, per_frame, rank_corr

MIN_SHARE = 0.1  # the bad side is at least this share of the frames the camera has an error in
MIN_S = 2.0  # ... and at least this long (seconds), as is the good side
CLEAN = 0.6  # the good side's median ratio is under this × ``ratio``; each of the bad side's quarters' over it
QUARTERS = 4


def step_change(own: np.ndarray, others: np.ndarray, ratio: float, fps: float, floor: float = 1.0) -> dict | None:
    """own, others: (F,) the camera's per-frame error and the other cameras' (same unit; NaN: not seen).
    Returns None, or {"first", "last": the bad side's first and last frame; "good_first", "good_last": the
    other side's; "later": the bad side is the later one; "bad", "good": the camera's median error on each
    side; "reference": the other cameras' median on the bad side; "ratio_median": the median of the per-frame
    ratios on the bad side, which the step was decided on}."""
    own, others = np.asarray(own, float), np.asarray(others, float)
    idx = np.flatnonzero(np.isfinite(own) & np.isfinite(others))
    n = len(idx)
    need = max(MIN_SHARE * n, MIN_S * fps, 5)
    if n < 2 * need:
        return None
    r = own[idx] / np.maximum(others[idx], floor)
    bad = (r > ratio).astype(int)
    c = np.concatenate([[0], np.cumsum(bad)])  # c[s]: bad frames among the first s
    s = np.arange(int(np.ceil(need)), n - int(np.ceil(need)) + 1)
    if not len(s):
        return None
    late = c[s] + (n - s) - (c[n] - c[s])  # misplaced frames if bad from cut s on
    early = (s - c[s]) + (c[n] - c[s])  # ... if bad until cut s
    k_late, k_early = int(np.argmin(late)), int(np.argmin(early))
    if late[k_late] <= early[k_early]:
        cut, bad_side, good_side = s[k_late], slice(s[k_late], n), slice(0, s[k_late])
    else:
        cut, bad_side, good_side = s[k_early], slice(0, s[k_early]), slice(s[k_early], n)
    rb, rg = r[bad_side], r[good_side]
    # bad throughout (each quarter of the bad side), not a burst next to the cut
    if not (np.median(rb) > ratio and np.median(rg) < CLEAN * ratio
            and min(np.median(q) for q in np.array_split(rb, QUARTERS)) > CLEAN * ratio):
        return None
    fb, fg = idx[bad_side], idx[good_side]
    return {"first": int(fb[0]), "last": int(fb[-1]), "good_first": int(fg[0]), "good_last": int(fg[-1]),
            "later": bool(cut == bad_side.start), "bad": float(np.median(own[fb])),
            "good": float(np.median(own[fg])), "reference": float(np.median(others[fb])),
            "ratio_median": float(np.median(rb))}


def step_hint(step: dict, speed_correlation: float, fps: float, follows_speed: float) -> str:
    """What to check for a camera whose error changed partway (``step`` from :func:`step_change`);
    ``speed_correlation``: the rank correlation of its error with the image speed on the bad side."""
    when = (f"from frame {step['first']} ({step['first'] / fps:.1f} s) on" if step["later"]
            else f"until frame {step['last']} ({step['last'] / fps:.1f} s)")
    change = (f"its error is {step['bad']:.1f} px {when} against {step['good']:.1f} px in frames "
              f"{step['good_first']}–{step['good_last']} (the other cameras {step['reference']:.1f} px)")
    if not np.isfinite(speed_correlation):
        return (f"frames dropped or camera moved mid-take? {change}: check this camera's video there (its frame "
                "count and timestamps, or whether it was bumped), or cut the take there")
    if speed_correlation >= follows_speed:
        return (f"frames dropped? {change}, and grows with the speed of the motion there (rank correlation "
                f"{speed_correlation:.2f}): this camera's time offset changes mid-take (a recording that lost "
                "frames) where sync found no change (it reads each part at its own offset when both parts last "
                "sync.min_step_s and each holds against the other's offset): check the video's frame count and "
                "timestamps, or cut the take there")
    return (f"camera moved mid-take? {change}, steadily whatever the speed: the camera was bumped or moved "
            f"{'then' if step['later'] else 'before'}, its calibration holds for one part only: recalibrate, or "
            "cut the take there")


def flag_steps(rows: dict[str, dict], err: np.ndarray, speed: np.ndarray, scale: np.ndarray, ratio: float,
               fps: float, floor: float, follows_speed: float) -> None:
    """A camera whose error changed partway through the take and stayed changed (:func:`step_change`, frame by
    frame against the other cameras): flagged, with what to check (bumped, or frames dropped), in place of a
    flag on its whole take (whose hint reads the take as a whole)."""
    if len(rows) < 3:  # two cameras: either one's error is the other's
        return
    pf = np.stack([per_frame(err[:, i]) for i in range(err.shape[1])], axis=1)  # (F, C) px
    at = pf * scale  # (F, C) metres at the person, frame by frame (``scale``: metres per pixel there)
    for i, row in enumerate(rows.values()):  # a step says more than a flag's whole-take profile: it wins
        if not np.isfinite(row["median_px"]):
            continue
        step = step_change(pf[:, i], nanmedian(np.delete(at, i, axis=1), axis=1) / scale[:, i], ratio, fps, floor)
        if step is None:
            continue
        part = slice(step["first"], step["last"] + 1)
        corr = rank_corr(err[part, i].ravel(), speed[part, i].ravel())
        row["flagged"], row["step"] = True, step
        # the rule's own figures: its median ratio to the others frame by frame (ratio × the others' median over
        # those frames is another statistic, and read "6.65 px > 21.6 px"); the threshold is the camera's median
        # that ratio would give, the reference the others' median there (as the hint says)
        row["flag"] = {"stat": "part_median_px", "value": step["bad"],
                       "threshold": ratio * step["bad"] / step["ratio_median"], "reference": step["reference"],
                       "ratio": ratio, "ratio_median": step["ratio_median"], "scaled": False,
                       "frames": [step["first"], step["last"]]}
        row["hint"] = step_hint(step, corr, fps, follows_speed)


def stat_label(flag: dict) -> str:
    """'median', 'P95', 'median in frames 1000–1999' or 'epipolar error' for the rule that flagged a camera."""
    if flag["stat"] == "epipolar_px":
        return "epipolar error"
    if flag["stat"] == "part_median_px":
        return f"median in frames {flag['frames'][0]}–{flag['frames'][1]}"
    return "median" if flag["stat"] == "median_px" else "P95"
