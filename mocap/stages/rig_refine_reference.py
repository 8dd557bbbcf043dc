"""Another reference camera when the first one is the one off (the rig_refine stage's computation).

The adjustment keeps its reference camera (the rig's first) at its given pose, and every move is measured in that
gauge: when the first camera is the one whose pose is off, the others must turn about it to agree with it, and a
camera a few metres away then shifts by decimetres (3° about a camera 6 m away: 31 cm). Where the rig's other cameras
keep their given poses, :mod:`mocap.optim.rig_anchor` finds them and solves again about one of them; where every
camera is a little off (Pose2Sim's real two-person demo: ~2° each), none does, and the refinement was refused for a
camera it would move too far, or refined without it and judged worse on the held-out frames.

So when the refinement about the first camera (its reference: not kept, not re-anchored) names cameras it would move
too far (not applied, or applied with them kept as given), it is run once more about another camera: of those it
refined, the one it moved least (degrees over ``max_move_deg`` plus millimetres over ``max_move_m``), and taken when
that one is applied and the first is not, or keeps fewer cameras as given for moving too far, or as many other ones
with a larger held-out gain (:func:`_better`: with the same cameras kept only the gauge would differ, and the first
camera's stands: a bumped camera that is not the first keeps the world on the first); in the rig's order, placed as
any refinement is (:mod:`mocap.optim.rig_anchor`: by the cameras that agree with their given poses, else about that
camera's given pose). The report says so (``reference_from``: the first camera and the first refinement's reason).
Otherwise (no camera moved too far) nothing changes.

Measured on Pose2Sim's real two-person take (4 cameras, 100 frames) with cam01, the first, turned 3° about its
vertical axis in the given rig (2026-12-05): about cam01 the refinement would move cam03 4.4-4.8° / 316-339 mm and,
without cam03, made the held-out error worse (5.22 → 5.47 px): not applied, cam01 flagged at 64.8 px, the man 14.5 px
median. About cam04 (the one moved least): held-out 8.59 → 6.47 px, applied; about cam02 or cam03 it is applied too
(6.62, 6.51 px).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from mocap.stages.rig_refine_kept import without
from mocap.types import Keypoints2D, Rig

log = logging.getLogger(__name__)


def first(rig: Rig, kp: Keypoints2D, name: str) -> tuple[Rig, Keypoints2D]:
    """``rig`` and ``kp`` with camera ``name`` moved first (the adjustment's reference), the others in order."""
    order = [name] + [n for n in rig.names if n != name]
    return rig.subset(order), without(kp, order)


def about_another(rig: Rig, kp: Keypoints2D, cfg, report: dict, refine: Callable
                  ) -> tuple[Rig | None, dict] | None:
    """The refinement ``refine(rig, kp)`` → (rig or None, report) again about another camera (see the module) when
    ``report``, refined about the first camera, names cameras moving too far; (the refined rig in ``rig``'s order,
    its report) when that one is applied and better (:func:`_better`), else None (``report`` stands)."""
    if report.get("refused") or not report.get("moved_too_far") or report.get("reference_camera") != rig.names[0]:
        return None  # refused for the take, nothing too far, or not refined about the first camera (kept, anchored)
    deg, mm = report.get("moves_deg") or {}, report.get("moves_mm") or {}
    others = [n for n in rig.names[1:] if n in deg and n in mm]  # refined (not kept)
    if not others:
        return None
    ref = min(others, key=lambda n: deg[n] / max(cfg.max_move_deg, 1e-9) + mm[n] / max(1000 * cfg.max_move_m, 1e-9))
    log.info("rig_refine: about %s the refinement would move %s too far: refined again about %s, the camera it moved "
             "least", rig.names[0], ", ".join(report["moved_too_far"]), ref)
    refined, again = refine(*first(rig, kp, ref))
    if refined is None or not again.get("applied") or not _better(again, report):
        log.info("rig_refine: about %s it is %s; the refinement about %s stands", ref,
                 "not better" if again.get("applied") else f"not applied ({again.get('reason')})", rig.names[0])
        return None
    names = list(rig.names)
    again = again | {key: [n for n in names if n in again[key]] for key in ("cameras", "rig_cameras", "moved_too_far")
                     if isinstance(again.get(key), list)}
    again["reference_from"] = {"first": rig.names[0], "why": report.get("reason")}
    return refined.subset(names), again


def _better(again: dict, report: dict) -> bool:
    """Whether the applied refinement ``again`` beats ``report``'s: that one not applied, or ``again`` keeping fewer
    cameras as given for moving too far, or as many other ones and taking away a larger share of the given rig's
    held-out error (a camera kept is left out of that error). With the same cameras kept only the gauge differs, and
    the gains by noise: the first camera's stands."""
    if not report.get("applied"):
        return True
    kept = [set(r.get("moved_too_far_kept") or {}) for r in (again, report)]
    if kept[0] == kept[1]:
        return False
    gain = [(r.get("error_px") or {}).get("heldout_gain", 0.0) for r in (again, report)]
    return len(kept[0]) < len(kept[1]) or (len(kept[0]) == len(kept[1]) and gain[0] > gain[1])
