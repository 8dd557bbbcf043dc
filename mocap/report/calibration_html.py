"""The report's paragraph on the camera refinement from the performer (``calibration/refined/report.json``)."""

from __future__ import annotations

from html import escape

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
