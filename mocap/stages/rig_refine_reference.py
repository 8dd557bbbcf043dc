"""Another reference camera when the first one is the one off (the rig_refine stage's computation).

The adjustment keeps its reference camera (the rig's first) at its given pose, and every move is measured in that
gauge: when the first camera is the one whose pose is off, the others must turn about it to agree with it, and a
camera a few metres away then shifts by decimetres (3° about a camera 6 m away: 31 cm). Where the rig's other cameras
keep their given poses, :mod:`mocap.optim.rig_anchor` finds them and solves again about one of them; where every
camera is a little off (Pose2Sim's real two-person demo: ~2° each), none does, and the refinement was refused for a
camera it would move too far, or refined without it and judged worse on the held-out frames.

So when the refinement about the first camera names cameras it would move too far (refused, not applied, or applied
with them kept as given), it is run once more about another camera: of those it refined (not kept), the one it moved
least (degrees over ``max_move_deg`` plus millimetres over ``max_move_m``), and taken when that one is applied and
the first is not, or keeps fewer cameras as given for moving too far, or as many with a larger held-out gain; in the
rig's order, its world anchored on that camera's given pose. The report says so (``reference_from``: the first camera
and why it was not kept as the reference). Otherwise (no camera moved too far) nothing changes.

Measured on Pose2Sim's real two-person take (4 cameras, 100 frames) with cam01, the first, turned 3° about its
vertical axis in the given rig (2026-12-05): about cam01 the refinement would move cam03 4.4-4.8° / 316-339 mm and,
without cam03, made the held-out error worse (5.22 → 5.47 px): not applied, cam01 flagged at 64.8 px, the man 14.5 px
median. About cam04 (the one moved least): held-out 8.59 → 6.47 px, applied; about cam02 or cam03 it is applied too
(6.62, 6.51 px).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from mocap.types import Keypoints2D, Rig

log = logging.getLogger(__name__)


def first(rig: Rig, kp: Keypoints2D, name: str) -> tuple[Rig, Keypoints2D]:
    """``rig`` and ``kp`` with camera ``name`` moved first (the adjustment's reference), the others in order."""
    order = [rig.names.index(name)] + [i for i, n in enumerate(rig.names) if n != name]
    return (Rig(tuple(rig.cameras[i] for i in order)),
            Keypoints2D(kp.data[:, order], tuple(kp.camera_names[i] for i in order), kp.keypoint_set, kp.fps))


def about_another(rig: Rig, kp: Keypoints2D, cfg, report: dict, refine: Callable
                  ) -> tuple[Rig | None, dict] | None:
    """The refinement ``refine(rig, kp)`` → (rig or None, report) again about another camera (see the module) when
    ``report`` (about the first) names cameras moving too far; (the refined rig in ``rig``'s order, its report) when
    that one is applied and, where the first was applied too, its held-out error is lower; else None (``report``
    stands)."""
    if report.get("refused") or not report.get("moved_too_far"):
        return None
    deg, mm = report.get("moves_deg") or {}, report.get("moves_mm") or {}
    others = [n for n in rig.names[1:] if n in deg and n in mm]  # refined (not kept)
    if not others:
        return None
    ref = min(others, key=lambda n: deg[n] / cfg.max_move_deg + mm[n] / (1000 * cfg.max_move_m))
    log.info("rig_refine: about %s the refinement would move %s too far: refined again about %s, the camera it moved "
             "least", rig.names[0], ", ".join(report["moved_too_far"]), ref)
    refined, again = refine(*first(rig, kp, ref))
    if refined is None or not again.get("applied") or not _better(again, report):
        log.info("rig_refine: about %s: %s; the refinement about %s stands", ref, again.get("reason"), rig.names[0])
        return None
    names = list(rig.names)
    again = again | {"cameras": [n for n in names if n in (again.get("cameras") or names)],
                     "reference_from": {"first": rig.names[0], "why": report.get("reason")}}
    return refined.subset(names), again


def _better(again: dict, report: dict) -> bool:
    """Whether the applied refinement ``again`` beats ``report``'s: that one not applied, or ``again`` keeping fewer
    cameras as given for moving too far, or as many and taking away a larger share of the given rig's held-out error
    (a camera kept is left out of that error: the errors of refinements keeping other cameras do not compare)."""
    if not report.get("applied"):
        return True
    far = [len(r.get("moved_too_far_kept") or {}) for r in (again, report)]
    gain = [(r.get("error_px") or {}).get("heldout_gain", 0.0) for r in (again, report)]
    return far[0] < far[1] or (far[0] == far[1] and gain[0] > gain[1])
