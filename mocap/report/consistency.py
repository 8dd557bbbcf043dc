"""The rig's consistency camera pair by camera pair: a camera whose pose is off when no camera's reprojection error
stands out.

With three cameras the triangulation spreads one camera's pose error over all three (a synthetic ring, one camera
turned 1°: medians 5.4, 7.2 and 7.7 px against 0.7 px when right, none flagged), or outvotes a right camera when the
turn keeps the wrong camera in line with one other (the real demo's three cameras 02, 03, 04 with cam04 turned 4°:
cam02 flagged, 76 px). The 2D tells it without the 3D: each camera pair's detections against the rig's epipolar
geometry (per frame the median over joints of the distance to the other view's epipolar lines, both ways, at the
person: each camera's pixels × its metres per pixel there; over frames the median). Every pair of right cameras
agrees to about the detections' noise, whatever the others do; so the reference is the best agreement of the rig
less one camera (the median of the pairs without it, the lowest over cameras), and a pair above ``MARGIN`` ×
``ratio`` × that disagrees. The cameras every disagreeing pair shares are the suspects: one camera when two pairs or
more disagree (the ring above: its pairs 4.5 and 10.2 px against 1.0 px), both cameras when a single pair does
(which of the two cannot be told; unless one's pairs with the others agree ``LEAN`` × worse than the other's: that
one), and every camera of them when they share none: the calibration is inconsistent, whichever it is. The real
demo's 3-camera subsets (pairs 8–20 px, its cam03 2–3° off as given) flag none, nor does a synthetic detector bias
of 3 px.

Only with three cameras that saw the person (with more, a camera off stands out in its reprojection error, and pairs
facing each other may disagree more than neighbouring ones). With no camera flagged the suspects are flagged
(``flag["stat"]``: ``epipolar_px``), with a hint; a camera flagged with a pose hint whose only disagreeing pair
holds an unflagged camera shares its flag and hint with it.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from mocap.geometry.epipolar import epipolar_px, essential, normalised
from mocap.report.stats import rank_corr
from mocap.types import Rig

MIN_JOINTS = 4  # a frame's pair distance needs this many joints both views see
MIN_FRAMES = 10  # a pair's error needs this many such frames
FRAMES = 600  # judged on this many frames at most, evenly spread
LEAN = 1.5  # one pair disagrees: its camera whose pairs with the others are this × the other's is the suspect
# (the clean real demo's pairs: 8.9 to 13 px; a synthetic ring, one camera turned 0.5°: its other pair 2.3× the other
# camera's, named alone; the real demo's 02, 03, 04 with cam04 turned 4°: 19 against 16.5 px, both named)
MARGIN = 1.2  # a pair disagrees above MARGIN × report.camera_flag_ratio × the reference (3 × at the default):
# Pose2Sim's real multi-person demo without cam03 (no camera off: the other subsets and all four cameras pass) had
# the woman standing still at 2.56 × (cam01, FAIL at 2.5 ×); a camera turned 0.5°-1° of a synthetic ring: 4.5-10 ×;
# the real demo's 3-camera subsets with one camera turned 4°: 3.5-5.3 ×
POSE_HINTS = ("calibration?",)  # a flag that blames the camera's pose (the one the pairs may contradict)


def pair_errors(rig: Rig, obs: np.ndarray, det: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, list]:
    """(F', P) per frame (every ``FRAMES``-th share) and camera pair, the median over joints of the epipolar distance
    both ways, each in its camera's pixels × ``k`` (C,) (its metres per pixel at the person; ones: pixels), and the
    pairs. obs (F, C, J, 2) detected pixels, det (F, C, J) the detections that count."""
    step = max(1, int(np.ceil(obs.shape[0] / FRAMES)))
    xy = np.where(det[::step, ..., None], obs[::step], np.nan)
    C = xy.shape[1]
    n = [normalised(rig, c, xy[:, c]) for c in range(C)]
    pairs = list(combinations(range(C), 2))
    out = np.full((xy.shape[0], len(pairs)), np.nan)
    for p, (i, j) in enumerate(pairs):
        d = (epipolar_px(essential(rig, i, j), n[i], n[j], float(rig[j].K[0, 0])) * k[j]
             + epipolar_px(essential(rig, j, i), n[j], n[i], float(rig[i].K[0, 0])) * k[i]) / 2
        enough = np.isfinite(d).sum(axis=1) >= MIN_JOINTS
        if enough.any():
            out[enough, p] = np.nanmedian(d[enough], axis=1)
    return out, pairs


def suspects(errors: dict[tuple[int, int], float], ratio: float, floor: float) -> tuple[list[int], list, float]:
    """(the suspect cameras, the disagreeing pairs, the reference) from each pair's error (see the module
    docstring); nothing with fewer than three cameras or a pair unknown among them."""
    cams = sorted({c for p in errors for c in p})
    if len(cams) < 3 or len(errors) < len(cams) * (len(cams) - 1) // 2:
        return [], [], float("nan")
    ref = min(float(np.median([e for p, e in errors.items() if c not in p])) for c in cams)
    off = [p for p, e in errors.items() if e > ratio * max(ref, floor)]
    if not off:
        return [], [], ref
    common = set(off[0]).intersection(*off[1:])
    if len(off) == 1:  # one pair: the camera whose pairs with the others agree worse, if one clearly does
        a, b = off[0]
        ea, eb = (float(np.median([errors[tuple(sorted((c, x)))] for x in cams if x not in off[0]])) for c in (a, b))
        common = {a} if ea >= LEAN * eb else {b} if eb >= LEAN * ea else common
    return sorted(common or {c for p in off for c in p}), off, ref


def flag_inconsistent(rows: dict[str, dict], rig: Rig, obs: np.ndarray, det: np.ndarray, err: np.ndarray,
                      k: np.ndarray, ratio: float, floor_px: float, speed: np.ndarray, follows_speed: float) -> None:
    """Flag the cameras whose pairs disagree with the rig (see the module docstring) in the camera table ``rows``
    when no camera is flagged (or a camera flagged for its pose is one of a disagreeing pair's two). obs (F, C, J, 2)
    detected pixels, det (F, C, J) those that count, err and speed (F, C, J) their reprojection error and image speed
    (a suspect whose error follows the speed: "sync?" first), k (C,) metres per pixel at the person (ones: pixels)."""
    names = list(rows)
    ratio = MARGIN * ratio
    flagged = [c for c, r in enumerate(rows.values()) if r["flagged"]]
    if len(names) < 3 or any(r.get("swapped_with") for r in rows.values()) or len(flagged) > 1 or (
            flagged and not str(rows[names[flagged[0]]].get("hint") or "").startswith(POSE_HINTS)):
        return  # exchanged videos: their own hint (mocap.report.exchanged); flags of another kind: theirs
    seen = [c for c in range(len(names)) if det[:, c].any()]
    if len(seen) != 3:  # four cameras or more: the reprojection rules above tell a camera off (the triangulation
        return  # does not spread it over all); pairs facing each other may disagree more than neighbours there
    per_frame, pairs = pair_errors(rig, obs, det, k)
    errors = {p: float(np.nanmedian(per_frame[:, q])) for q, p in enumerate(pairs)
              if p[0] in seen and p[1] in seen and np.isfinite(per_frame[:, q]).sum() >= MIN_FRAMES}
    who, off, ref = suspects(errors, ratio, floor_px * float(np.median(k[seen])) if seen else floor_px)
    if not who:
        return
    if flagged:  # a pose flag: only when the pairs leave it open between two cameras (the triangulation took a side)
        if not (len(off) == 1 and flagged[0] in off[0] and who != flagged):
            return
        who = sorted(off[0])
    corr = {c: rank_corr(err[:, c].ravel(), speed[:, c].ravel()) for c in who}
    hint = _hint(names, who, off, errors, ref, k, corr, follows_speed)
    for c in who:
        row = rows[names[c]]
        mine = [errors[p] / k[c] for p in off if c in p]
        value, reference = float(np.median(mine)), ref / k[c]
        if not row["flagged"]:
            row["flagged"] = True
            row["flag"] = {"stat": "epipolar_px", "value": value, "threshold": ratio * max(reference, floor_px),
                           "reference": reference, "ratio": ratio, "scaled": bool(np.ptp(k[seen]) > 0.1 * k[c]),
                           "pairs": {f"{names[a]}–{names[b]}": errors[(a, b)] / k[c] for a, b in errors}}
        row["hint"] = hint


def _hint(names: list[str], who: list[int], off: list, errors: dict, ref: float, k: np.ndarray, corr: dict,
          follows_speed: float) -> str:
    unit = "mm" if np.any(k != 1) else "px"
    scale = 1000.0 if unit == "mm" else 1.0
    said = ", ".join(f"{names[a]}–{names[b]} {errors[(a, b)] * scale:.3g} {unit}" for a, b in off)
    against = f"against {ref * scale:.3g} {unit} where the other cameras agree"
    fast = max(corr, key=lambda c: np.nan_to_num(corr[c], nan=-1.0))
    check = (f"sync? {names[fast]}'s error grows with the speed of the motion (rank correlation {corr[fast]:.2f}): "
             "check its time offset; else calibration? " if corr[fast] >= follows_speed else "calibration? ")
    if len(who) == 1:
        said = ", ".join(f"{names[a]}–{names[b]} {e * scale:.3g} {unit}" for (a, b), e in errors.items()
                         if who[0] in (a, b))
        return (f"{check}the camera pairs with {names[who[0]]} disagree with the rig's epipolar geometry ({said}, "
                f"{against}) though no camera's reprojection error stands out (with three cameras the triangulation "
                f"spreads one camera's error over all of them): check {names[who[0]]}'s calibration pose (or whether "
                "it moved)")
    if len(off) == 1:
        return (f"{check}cameras {names[who[0]]} and {names[who[1]]} disagree with the rig's epipolar geometry "
                f"({said}, {against}): one of the two is off (turned, moved, or its calibration another setup's); "
                "which one the take cannot tell (with three cameras the triangulation takes a side): check both "
                "cameras' calibration poses")
    return (f"{check}the calibration is inconsistent: the camera pairs {said} disagree with the rig's epipolar "
            f"geometry ({against}): check the calibration poses of {_names(names, who)} (or recalibrate)")


def _names(names: list[str], cams: list[int]) -> str:
    return ", ".join(names[c] for c in cams[:-1]) + (" and " if len(cams) > 1 else "") + names[cams[-1]]
