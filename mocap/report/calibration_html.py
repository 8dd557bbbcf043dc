"""The report's paragraph on the camera refinement from the performer (``calibration/refined/report.json``), and
the hints for a camera whose calibration looks wrong (its intrinsics, a move beyond the refinement's limits)."""

from __future__ import annotations

from html import escape

import numpy as np

AXIAL_SHARE = 0.8  # a camera move this much along its line of sight with little turn reads as a focal length off


def calibration_html(calib: dict | None) -> str:
    """What the camera refinement from the performer did (``calibration/refined/report.json``)."""
    if not calib:
        return ""
    e = calib.get("error_px") or {}
    if not e:
        return f"<p>Camera refinement from the performer: not done ({escape(str(calib.get('reason', '')))}).</p>"
    verdict = "applied" if calib.get("rig_refined", calib.get("applied")) else "not applied"
    return (f"<p>Camera refinement from the performer: {verdict} ({escape(str(calib.get('reason', '')))}); "
            f"median error on the frames it did not use {e.get('heldout_given', float('nan')):.2f} px with the "
            f"given rig, {e.get('heldout_refined', float('nan')):.2f} px with the refined one (on the frames it "
            f"used: {e.get('used_given', float('nan')):.2f} → {e.get('used_refined', float('nan')):.2f} px)."
            + _world_html(calib) + "</p>" + moves_html(calib)
            + "".join(f"<p>{escape(t)}</p>" for t in focal_notes(calib)))


def moves_html(calib: dict) -> str:
    """The cameras found moved mid-take (:mod:`mocap.stages.rig_moves`), each with the frame and how far."""
    found = calib.get("camera_moves") or {}
    moves = found.get("moves") or []
    nan = float("nan")
    out = "".join(f"<p>Camera {escape(str(m.get('camera')))} moved mid-take: in frames {frames(m)} it was "
                  f"{float(m.get('turn_deg', nan)):.2f}° / {float(m.get('shift_mm', nan)):.0f} mm from its pose in "
                  "the others; its detections there were read back into that pose (calibration/refined/moves.json). "
                  "Check its mount.</p>" for m in moves)
    rejected = {n: c for n, c in ((found.get("cameras") or {}) | (found.get("rejected") or {})).items()
                if isinstance(c, dict) and c.get("rejected")}  # a part fitted further than a bump: not read back
    return out + "".join(
        f"<p>Camera {escape(str(n))} seems to change pose in frames "
        f"{frames({'from_frame': c.get('span', [0])[0], 'to_frame': (c.get('span') or [0, None])[1]})}, but "
        f"{escape(str(c['rejected']))}: its detections there were not read back. Recalibrate that part, or leave it "
        "out of the take (start / stop).</p>" for n, c in rejected.items())


def frames(move: dict) -> str:
    """"1000–1999" of a move in the rig_refine report (``to_frame``: one past its last frame)."""
    first, end = move.get("from_frame", 0), move.get("to_frame")
    return f"{int(first)}–{int(end) - 1}" if isinstance(end, int) else f"{int(first)} on"


def _world_html(calib: dict) -> str:
    """Which cameras placed the refined rig in the world (:mod:`mocap.optim.rig_anchor`; older reports lack it)."""
    world, cams = calib.get("world_from") or [], calib.get("cameras") or []
    would = "" if calib.get("rig_refined", calib.get("applied")) else "would follow (had it been applied)"
    if len(world) >= 2:
        off = [c for c in cams if c not in world]
        return (f" The refined rig's world frame {would or 'follows'} {escape(', '.join(world))}, which kept their "
                "given poses" + (f"; {escape(', '.join(off))} did not." if off else "."))
    return (f" No two cameras kept their given poses: the refined rig's world frame {would or 'follows'} "
            f"{escape(world[0])}." if world else "")


def focal_notes(calib: dict, share: float = AXIAL_SHARE, least_mm: float = 50.0, most_deg: float = 1.0) -> list[str]:
    """The cameras an applied refinement moved mostly along their line of sight (≥ ``share`` of a move of at least
    ``least_mm`` with at most ``most_deg`` of turn): what a focal length off looks like (the refinement makes up for
    it by moving the camera, and the world frame follows), one note each."""
    if not calib.get("rig_refined", calib.get("applied")):
        return []
    out = []
    for name, along in (calib.get("moves_along_axis_mm") or {}).items():
        mm, deg = calib.get("moves_mm", {}).get(name, 0.0), calib.get("moves_deg", {}).get(name, 0.0)
        if mm >= least_mm and deg <= most_deg and abs(along) >= share * mm:
            out.append(f"{name} moved {abs(along):.0f} mm along its line of sight with {deg:.2f}° of turn: its focal "
                       "length may be off (the refinement made up for it with the camera's place); check its "
                       "intrinsics, or refine them: --set rig_refine.refine_intrinsics=true")
    return out


OFF_CENTRE = 0.1  # a principal point farther than this share of the image's size from its centre (real: < 3 %)


def intrinsics_doubt(cam) -> str | None:
    """What looks wrong in a camera's intrinsics for its image size (a camera matrix from another resolution puts
    the principal point far from the centre), or None."""
    (w, h), cx, cy = cam.size, cam.K[0, 2], cam.K[1, 2]
    if abs(cx - (w - 1) / 2) <= OFF_CENTRE * w and abs(cy - (h - 1) / 2) <= OFF_CENTRE * h:
        return None
    scale = np.mean([(w - 1) / (2 * cx), (h - 1) / (2 * cy)]) if cx > 0 and cy > 0 else float("nan")
    return (f"intrinsics? {cam.name}'s principal point ({cx:.0f}, {cy:.0f}) is far from its image's centre "
            f"({(w - 1) / 2:.0f}, {(h - 1) / 2:.0f}) for {w}×{h}: its camera matrix may be from another resolution "
            f"(about ×{scale:.2f}): fix the calibration's intrinsics before allowing a larger move")


def moved_too_far_hint(name: str, calib: dict, before: str | None, cam=None) -> str:
    """A flagged camera the camera refinement would have moved beyond its limits: its pose is off (bumped, or
    a calibration of another setup), whatever its error's profile suggested (``before``); first its intrinsics
    when they look wrong for its image (``cam``; allowing the move then fitted a wrong pose to them)."""
    doubt = intrinsics_doubt(cam) if cam is not None else None
    deg, mm = calib.get("moves_deg", {}).get(name, float("nan")), calib.get("moves_mm", {}).get(name, float("nan"))
    kept = (calib.get("moved_too_far_kept") or {}).get(name)  # kept as given, the others refined without it
    if isinstance(kept, dict):
        deg, mm = kept.get("deg", deg), kept.get("mm", mm)
    limits = calib.get("config", {})
    max_deg, max_m = limits.get("max_move_deg", float("inf")), limits.get("max_move_m", float("inf"))
    over = [k for k, v, lim in (("max_move_deg", deg, max_deg), ("max_move_m", mm / 1000, max_m)) if v > lim] \
        or ["max_move_deg"]
    text = (f"calibration? the camera refinement from the performer would move {name} by {deg:.1f}° / {mm:.0f} mm, "
            f"more than rig_refine.max_move_deg = {max_deg}° / max_move_m = {max_m} m, so the given pose was "
            f"kept{' (the other cameras were refined without it)' if kept else ''}: the camera was bumped or its "
            "calibration is another setup's; recalibrate, or allow the move "
            f"(mocap run SESSION {' '.join(f'--set rig_refine.{k}=N' for k in over)}) and check the held-out error "
            "in calibration/refined/report.json")
    along = abs((kept or {}).get("along_axis_mm") or calib.get("moves_along_axis_mm", {}).get(name, 0.0))
    if over == ["max_move_m"] and along >= AXIAL_SHARE * mm:  # forward or back with little turn: the image's scale
        text = (f"focal length? the camera refinement from the performer would move {name} {along:.0f} mm along "
                f"its line of sight with {deg:.1f}° of turn: a focal length off (the performer's size in its image) "
                "looks like that; check its intrinsics, or refine them (mocap run SESSION --set "
                "rig_refine.refine_intrinsics=true) and check the held-out error in calibration/refined/report.json")
    if before and before.startswith(("videos swapped?", "footage ", "the same video as", "camera moved mid-take?",
                                     "image size?", "frames dropped?", "detections scaled?")):
        return before  # swapped, flipped or copied footage, or a change mid-take: no one move of it explains that
    return f"{doubt}; else {text}" if doubt else text
