"""Two cameras' videos exchanged, told from the 2D alone: the report's check when a camera is flagged.

The report's first check (:func:`mocap.report.cameras._swapped_videos`) fits each flagged camera's detections
through the other's pose against the take's 3D; but that 3D was triangulated through the exchanged views and
is wrong too, and it missed most exchanges (3 cameras: the third camera flagged "calibration?" while the two
exchanged ones fitted; 4 cameras 02↔03: "calibration? would move 13°"; the real demo: "wrong person?"). Here
every camera pair's detections are judged against the rig's epipolar geometry (the median over frames and pairs
of each pair's per-frame median distance, :func:`mocap.geometry.view_split.pair_distances`), as given and with
two cameras' detections exchanged; an exchange that brings it down to a third or less is the answer. On a
symmetric ring several exchanges fit about as well (01↔03 and 02↔04 on four cameras: the whole scene turned
half a turn): every one within ``TIE`` of the best is named.

The other 2D checks of a flagged camera live here too: detections outside its calibrated image
(:func:`outside_image`) and detections in another resolution's pixels (:func:`scaled_detections`).
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from mocap.geometry.view_split import pair_distances
from mocap.types import Rig

GAIN = 3.0  # an exchange is the answer when it divides the take's epipolar error by this much
TIE = 1.25  # ... and every exchange within this factor of the best is named
FRAMES = 300  # judged on this many frames, evenly spread
EXCHANGE_CHECK = 2.0  # 2D check of exchanged videos: epipolar error over this × the median reprojection error
OUTSIDE = 0.02  # a camera whose detections fall this far outside its calibrated image (share of its size) ...
OUTSIDE_SHARE = 0.05  # ... this often was calibrated for another image size or turned
SCALED = 0.1  # detections that fit their reprojections scaled by 1 ± this or more are another resolution's


def _sampled(obs: np.ndarray, det: np.ndarray) -> np.ndarray:
    return np.where(det[..., None], obs, np.nan)[:: max(1, int(np.ceil(obs.shape[0] / FRAMES)))]


def _error(rig: Rig, xy: np.ndarray) -> float:
    d = pair_distances(rig, xy)[0]
    return float(np.nanmedian(d)) if np.isfinite(d).any() else float("nan")


def epipolar_error(rig: Rig, obs: np.ndarray, det: np.ndarray) -> float:
    """The take's epipolar error (px): the median over frames (``FRAMES`` of them) and camera pairs of each pair's
    per-frame median distance. obs (F, C, J, 2) detected pixels, det (F, C, J) which of them count."""
    return _error(rig, _sampled(obs, det))


def exchanges(rig: Rig, obs: np.ndarray, det: np.ndarray, among: list[int], given: float | None = None
              ) -> tuple[list[tuple[int, int]], dict]:
    """The camera pairs (a, b), one of them in ``among``, whose detections exchanged make the take agree with the
    rig (see the module docstring), best first, and the errors (px): ``given`` (:func:`epipolar_error`, when
    known) and per exchange. obs (F, C, J, 2) detected pixels, det (F, C, J) which of them count."""
    F, C = obs.shape[:2]
    if C < 3 or not among:
        return [], {}
    xy = _sampled(obs, det)

    def error(order: list[int]) -> float:
        return _error(rig, xy[:, order])

    given = error(list(range(C))) if given is None else given
    tried = {}
    for a, b in combinations(range(C), 2):
        if a in among or b in among:
            order = list(range(C))
            order[a], order[b] = b, a
            tried[(a, b)] = error(order)
    fine = {ab: e for ab, e in tried.items() if np.isfinite(e) and e * GAIN <= given}
    if not fine:
        return [], {"given": given}
    best = min(fine.values())
    out = sorted((ab for ab, e in fine.items() if e <= TIE * best), key=fine.get)
    return out, {"given": given} | {f"{rig.names[a]}↔{rig.names[b]}": e for (a, b), e in tried.items()}


def tell_exchanged(rows: dict[str, dict], rig: Rig, obs: np.ndarray, det: np.ndarray) -> None:
    """For the report's camera table ``rows``: two cameras whose videos were exchanged, told from the 2D alone
    (:func:`exchanges`) when a camera is flagged or the take's epipolar error is over ``EXCHANGE_CHECK`` × its
    cameras' median reprojection error (with three cameras none may stand out), and the fit through the 3D
    (:func:`mocap.report.cameras._swapped_videos`) did not tell: the two cameras and every flagged one are told
    so (those fail the verdict as they were)."""
    names = list(rows)
    if any(r.get("swapped_with") for r in rows.values()) or len(names) < 3:
        return
    given = epipolar_error(rig, obs, det)  # with three cameras the exchanged pair may flag none: every camera is off
    typical = np.nanmedian([r["median_px"] for r in rows.values()])
    if not (any(r["flagged"] for r in rows.values()) or given > EXCHANGE_CHECK * typical):
        return
    pairs, errors = exchanges(rig, obs, det, list(range(len(names))), given)
    if not pairs:
        return
    a, b = pairs[0]
    alt = " or ".join(f"{names[x]} ↔ {names[y]}" for x, y in pairs[1:])
    why = (f"with {names[a]}'s and {names[b]}'s detections exchanged every camera pair agrees with the rig (epipolar "
           f"error {errors['given']:.3g} → {errors[f'{names[a]}↔{names[b]}']:.3g} px"
           + (f"; so does {alt}: the rig is symmetric" if alt else "") + ")")
    for me, other in ((names[a], names[b]), (names[b], names[a])):
        rows[me] |= {"swapped_with": other, "hint": f"videos swapped? {why}: the two videos (or the rig's two "
                                                    "cameras) are named the other way round; rename them and run again"}
    for name, row in rows.items():
        if row["flagged"] and name not in (names[a], names[b]):
            row["hint"] = (f"videos swapped? {why}; this camera's error comes from the 3D the two made: rename their "
                           "videos and run again")


def outside_image(rows: dict[str, dict], rig: Rig, obs: np.ndarray, det: np.ndarray) -> None:
    """A flagged camera whose detections fall outside its calibrated image (beyond ``OUTSIDE`` of its size, in
    ``OUTSIDE_SHARE`` of them or more): calibrated at another resolution, its detections not scaled back, or its
    video turned a quarter; its hint says so (before the pose, which the refinement would move far to fit)."""
    for c, (name, row) in enumerate(rows.items()):
        d = det[:, c]
        if not row["flagged"] or not d.any() or row.get("swapped_with"):
            continue
        w, h = rig.cameras[c].size
        uv = obs[:, c][d]
        size = np.array([w, h], float)
        out = ((uv > size * (1 + OUTSIDE)) | (uv < -OUTSIDE * size)).any(axis=1)
        if out.mean() >= OUTSIDE_SHARE:
            hi = np.nanpercentile(uv, 99, axis=0)
            row["hint"] = (f"image size? {100 * out.mean():.0f} % of {name}'s detections lie outside its calibrated "
                           f"{w}×{h} image (up to {hi[0]:.0f}, {hi[1]:.0f} px): its calibration is for another "
                           "resolution, its detections are not in the video's pixels, or its video is turned; check "
                           "the rig's image size and the video's")


def scaled_detections(rows: dict[str, dict], uv: np.ndarray, obs: np.ndarray, det: np.ndarray) -> None:
    """A flagged camera whose detections fit its reprojections once scaled about the image's corner (0, 0) by a
    factor ``s`` off 1 by ``SCALED`` or more, to a third of their error or less: its detections are in another
    resolution's pixels (a detector run on a resized copy, not scaled back); its hint says so. uv, obs (F, C, J, 2)
    reprojected and detected, det (F, C, J)."""
    for c, (name, row) in enumerate(rows.items()):
        ok = det[:, c] & np.isfinite(uv[:, c]).all(axis=-1)
        if not row["flagged"] or ok.sum() < 20 or row.get("swapped_with"):
            continue
        a, b = obs[:, c][ok], uv[:, c][ok]
        s = float(np.sum(a * b) / np.sum(a * a))  # least squares s · a ≈ b
        before, after = (float(np.median(np.linalg.norm(x - b, axis=-1))) for x in (a, s * a))
        if abs(s - 1) >= SCALED and after <= before / 3 and str(row.get("hint")).startswith("image size?"):
            row["hint"] += f" (its detections fit its pose once scaled ×{s:.2f}: {after:.3g} px)"
        elif abs(s - 1) >= SCALED and after <= before / 3:
            row["hint"] = (f"detections scaled? {name}'s detections fit its pose once scaled ×{s:.2f} about the "
                           f"image's corner ({after:.3g} px, against {before:.3g} px as they are): they are in another "
                           "resolution's pixels (detected on a resized copy and not scaled back?); redo the "
                           "detection on the video itself, or scale them (or the calibration is for another "
                           "resolution)")
