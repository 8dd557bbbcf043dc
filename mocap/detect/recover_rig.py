"""The rig the second detection pass places people through: the cameras refined from the first pass's people.

The second pass (:mod:`mocap.detect.recover`) projects each tracked person into the views that miss it and looks in
that box, gated by the tracker's distance; the people are associated across views through the rig first. A camera
whose given pose is a few degrees off loses both: its detections join no person (its rays miss the others' by
0.2-0.3 m at 4-5 m, beyond the association's gates), and a person projects beside where it is. The camera refinement
(the rig_refine stage's computation, :func:`mocap.stages.rig_people.run`: the people associated through the given
rig, with wider gates where a camera keeps few detections, refined, applied only where held-out frames improve) runs
on the first pass's detections before the second pass, and the pass looks through the refined cameras when that
refinement is applied; the given rig otherwise. The rig_refine stage refines the cameras again afterwards, on every
detection, from the given rig: this one only guides where to look.

Measured on Pose2Sim's real two-person demo (4 cameras, 100 frames; its Qualisys rig ~2° off the people), each run
once: with cam03 turned 3° about its vertical axis in the given rig, the pass looked at 802 boxes and recovered 2
detections in cam03 (87 on the unmodified take), detection 33.8 s; through the refined cameras 482 boxes, 87 in
cam03, 25.3 s, the woman's median reprojection 7.57 → 7.07 px. With cam02 turned 3°: 1,024 → 484 boxes, 25 → 68 in
cam02, the woman 8.12 → 7.21 px (the man 7.81 → 8.05 px), both people's points seen by two views 89 → 95 %. The
unmodified take: 467 → 478 boxes, 267 detections recovered either way, the people 8.06 / 7.15 → 8.00 / 7.06 px.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from mocap.types import Keypoints2D, Rig

log = logging.getLogger(__name__)

Guide = Callable[[Rig, Keypoints2D], tuple["Rig | None", dict]]  # (rig, keypoints) → (refined rig or None, report)


def guided_rig(rig: Rig, kp: Keypoints2D, guide: Guide | None, stats: dict) -> Rig:
    """The rig the second pass looks through: ``guide(rig, kp)``'s refined cameras when it applies them, else
    ``rig``; what was decided goes to ``stats["rig"]`` (the pass's summary)."""
    if guide is None:
        stats["rig"] = {"through": "given rig", "why": "no camera refinement to look through (rig_refine.enabled = "
                                                       "false)"}
        return rig
    try:
        refined, report = guide(rig, kp)
    except Exception as e:  # it only guides where to look: whatever fails, the given rig does that (an error
        # escaping here would stop every later run at the same place: the pass's summary is never written)
        why = str(e) if isinstance(e, ValueError) else f"{type(e).__name__}: {e}"
        log.warning("recover: the cameras could not be refined from the first pass (%s): the given rig places the "
                    "people", why, exc_info=not isinstance(e, ValueError))
        stats["rig"] = {"through": "given rig", "why": why}
        return rig
    if refined is None:
        stats["rig"] = {"through": "given rig", "why": str(report.get("reason", "not applied"))}
        return rig
    deg, mm = report.get("moves_deg") or {}, report.get("moves_mm") or {}
    err = report.get("error_px") or {}
    stats["rig"] = {"through": "cameras refined from the first pass", "moves_deg": deg, "moves_mm": mm,
                    "heldout_px": [err.get("heldout_given"), err.get("heldout_refined")]}
    log.info("recover: the people are placed through the cameras refined from the first pass's detections (moved "
             "up to %.2f° / %.0f mm; held-out %.2f → %.2f px; the rig_refine stage refines the cameras again, on "
             "every detection)",
             max(deg.values(), default=0.0), max(mm.values(), default=0.0), err.get("heldout_given", float("nan")),
             err.get("heldout_refined", float("nan")))
    return refined
