"""Cameras that hardly see the performer, kept as given (the rig_refine stage's computation).

A camera that is black, covered or turned away sees too few of the used keypoints to be refined (fewer than
``min_camera_points`` in the estimation frames, each keypoint seen by ``min_views`` cameras). It no longer stops the
refinement of the others: those cameras are left out of it and keep their given poses (a warning names each one,
with how many frames it saw the performer in), the others are refined as a rig of their own and the kept cameras
are put back, unchanged, in the refined rig. The gauge is that rig's: its first camera is the adjustment's reference
(a kept first camera hands it on to the next) and the refined cameras are put in the given rig's world by those of
them that kept their given poses (:mod:`mocap.optim.rig_anchor`), so a kept camera's given pose stays in the same
world. Dropping a camera can leave another with too few keypoints seen by ``min_views`` cameras: it is kept too.
With fewer than 3 cameras left the refinement is refused, naming the cameras kept. The take's own refusals (too
few frames that 3 cameras see well) are here too (:func:`refusal`).

The report (``calibration/refined/report.json``) then lists ``cameras`` (the ones refined) and ``kept_cameras``
({camera: why}); its moves hold only the refined cameras, and its ``reason`` ends with the cameras kept.

A camera bumped, or calibrated in another setup, is kept the same way (:func:`keeping`). When the refinement would
move fewer than half of its cameras further than ``max_move_deg`` / ``max_move_m`` (and at least 3 others are
left), those cameras keep their given poses and the others are refined without them, judged on the held-out frames
as usual (again, while a minority of the rig is kept); the report names them in ``kept_cameras`` and
``moved_too_far_kept`` ({camera: the move refused, the refinement with every camera's reason and held-out error}),
and ``moved_too_far`` still lists them (the report's "recalibrate" hint). On the real demo (100 frames, 4 cameras)
cam02 turned 1.5° from frame 50 would have moved 5.3° / 385 mm: the whole rig was refused and cam01, cam03 lost
their refinement (12.8, 16.7 px median against 7.0, 8.2 px on the unbumped take). When every camera, or half of
them or more, would move that far the rig is another setup's: refused as before. On a take long enough for the
mid-take move search (:mod:`mocap.stages.rig_moves`), that search then runs on the rig refined without the kept
camera, whose given pose still fits the part before its bump.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import numpy as np

from mocap.geometry.normal_terms import finite
from mocap.types import Keypoints2D, Rig

log = logging.getLogger(__name__)
LEAST_CAMERAS = 3  # the refinement needs this many cameras that see the performer


def kept_cameras(rig: Rig, kp: Keypoints2D, cfg, observations: Callable, split: Callable) -> dict[str, str]:
    """{camera: why} of the cameras too blind to be refined (in rig order; empty when every camera can be). First
    those with fewer than ``cfg.min_camera_points`` usable detections of the used joints in the estimation frames
    (unless every camera has: a take too short, refused as such); then, one at a time, the blindest first, those
    with fewer such keypoints that ``cfg.min_views`` cameras see in frames that 3 cameras see well, counted again
    without it, while the take has ``cfg.min_frames`` such frames."""
    if len(rig) < LEAST_CAMERAS:
        return {}  # refused as such (:func:`refusal`)
    xy = observations(kp, cfg)[0]  # (F, C, J, 2)
    estimate = split(xy.shape[0], kp.fps, cfg.block_s)
    own = finite(xy)  # (F, C, J)
    frames = own.any(axis=2).sum(axis=0)  # (C,) frames in which each camera sees the performer
    points = own[estimate].sum(axis=(0, 2))

    def why(c: int, what: str) -> str:
        return (f"{frames[c]} frames with the performer, {points[c]} {what} in the estimation frames < "
                f"rig_refine.min_camera_points = {cfg.min_camera_points}")

    left = points >= cfg.min_camera_points
    if not left.any():
        return {}
    out = {rig.names[c]: why(c, "usable keypoints") for c in np.flatnonzero(~left)}
    while left.sum() >= LEAST_CAMERAS:
        seen = own & left[None, :, None]
        views = seen.sum(axis=1)  # (F, J)
        good = (views >= 3).sum(axis=1) >= max(3, xy.shape[2] // 2)
        points = (seen & (views >= cfg.min_views)[:, None] & (estimate & good)[:, None, None]).sum(axis=(0, 2))
        blind = [c for c in np.flatnonzero(left) if points[c] < cfg.min_camera_points]
        if not blind or good.sum() < cfg.min_frames:
            break
        c = min(blind, key=lambda k: (points[k], frames[k]))
        out[rig.names[c]], left[c] = why(c, f"keypoints seen by {cfg.min_views} cameras"), False
    return {n: out[n] for n in rig.names if n in out}


def too_few(rig: Rig, kp: Keypoints2D, kept: dict[str, str], cfg, observations: Callable) -> str:
    """Why the refinement is refused when fewer than 3 cameras are left ('' when enough are)."""
    left = [n for n in rig.names if n not in kept]
    if len(left) >= LEAST_CAMERAS:
        return ""
    frames = finite(observations(kp, cfg)[0]).any(axis=2).sum(axis=0)
    shown = ", ".join(f"{n} ({frames[rig.names.index(n)]} frames)" for n in left) or "none"
    return (f"cameras hardly see the performer: {'; '.join(f'{n}: {w}' for n, w in kept.items())}; "
            f"{len(left)} camera{'s' if len(left) != 1 else ''} left: {shown}; at least {LEAST_CAMERAS} cameras "
            "that see the performer are needed to refine the rig")


def refusal(cameras: int, good: np.ndarray, estimate: np.ndarray, cfg) -> str:
    """Why the take cannot refine a rig of ``cameras`` cameras ('' when it can): ``good`` (F,) the frames that 3
    cameras see well, ``estimate`` (F,) the estimation frames."""
    if cameras < LEAST_CAMERAS:
        return f"{cameras} cameras: at least {LEAST_CAMERAS} are needed"
    if good.sum() < cfg.min_frames:
        return f"only {good.sum()} frames seen well by 3 cameras (rig_refine.min_frames = {cfg.min_frames})"
    for part, name in ((estimate, "estimation"), (~estimate, "held-out")):
        if (good & part).sum() < max(3, cfg.min_frames // 3):
            return f"only {(good & part).sum()} well-seen frames in the {name} blocks (take too short)"
    return ""


def without(kp: Keypoints2D, names: list[str]) -> Keypoints2D:
    """``kp`` of the cameras ``names`` only."""
    idx = [kp.camera_names.index(n) for n in names]
    return Keypoints2D(kp.data[:, idx], tuple(names), kp.keypoint_set, kp.fps)


def warn(kept: dict[str, str]) -> None:
    for n, why in kept.items():
        log.warning("rig_refine: %s: %s: kept as given (not refined); the other cameras are refined", n, why)


def put_back(rig: Rig, refined: Rig | None, report: dict, kept: dict[str, str]) -> tuple[Rig | None, dict]:
    """The refinement of the cameras that see the performer (``refined``, its ``report``) as the whole rig's: the
    kept cameras with their given poses, in ``rig``'s order; the report names them (``kept_cameras``, its reason)."""
    text = "; ".join(f"{n}: {w}" for n, w in kept.items())
    report = report | {"kept_cameras": dict(kept), "rig_cameras": list(rig.names),
                       "reason": f"{report.get('reason', '')}; kept as given (not refined): {text}"}
    if refined is None:
        return None, report
    return Rig(tuple(refined[n] if n in refined.names else rig[n] for n in rig.names)), report


def rig_off(report: dict) -> bool:
    """Whether the refinement would move cameras further than its limits that were not kept as given (a rig of
    another setup: the report's ``moved_too_far`` less ``moved_too_far_kept``)."""
    return bool(set(report.get("moved_too_far") or []) - set(report.get("moved_too_far_kept") or {}))


def keeping(rig: Rig, kp: Keypoints2D, cfg, kept: dict[str, str], refine: Callable, observations: Callable,
            keep_far: bool = True) -> tuple[Rig | None, dict]:
    """The refinement (``refine(rig, kp)``: (rig or None, report)) with the cameras ``kept`` ({camera: why}, too
    blind) left at their given poses, and then (``keep_far``) also the cameras it would move further than
    ``cfg.max_move_deg`` / ``cfg.max_move_m`` while they are fewer than half of the rig's cameras and 3 others are
    left (again with those left out, while it finds more; sync's lag rounds, :mod:`mocap.stages.rig_lags`, read a
    lagging camera's lag from the rig that moved it too far: not there)."""
    refined, report = _kept(rig, kp, cfg, kept, refine, observations)
    far: dict[str, dict] = {}
    while keep_far:
        big = [n for n in report.get("moved_too_far") or [] if n not in far]
        if not big or 2 * (len(far) + len(big)) >= len(rig) or len(rig) - len(kept) - len(big) < LEAST_CAMERAS:
            break  # none, or most of the rig's cameras would move that far: another setup's rig, refused as before
        for n in big:
            deg, mm = report["moves_deg"][n], report["moves_mm"][n]
            far[n] = {"deg": deg, "mm": mm, "along_axis_mm": report.get("moves_along_axis_mm", {}).get(n),
                      "with_it": {"reason": report.get("reason"), "error_px": report.get("error_px"),
                                  "cameras": report.get("cameras")}}
            kept = kept | {n: (f"the refinement would move it {deg:.1f}° / {mm:.0f} mm, more than "
                               f"rig_refine.max_move_deg = {cfg.max_move_deg}° / max_move_m = {cfg.max_move_m} m "
                               "(bumped, or calibrated in another setup)")}
        refined, report = _kept(rig, kp, cfg, kept, refine, observations)
    if far:
        report = report | {"moved_too_far": sorted(set(report.get("moved_too_far") or []) | set(far),
                                                   key=rig.names.index), "moved_too_far_kept": far}
    return refined, report


def _kept(rig: Rig, kp: Keypoints2D, cfg, kept: dict[str, str], refine: Callable, observations: Callable
          ) -> tuple[Rig | None, dict]:
    """``refine`` on the cameras not ``kept``, put back in the whole rig; refused with fewer than 3 left."""
    if not kept:
        return refine(rig, kp)
    if why := too_few(rig, kp, kept, cfg, observations):
        log.warning("rig_refine: refused: %s; the given rig is used", why)
        return None, {"config": dataclasses.asdict(cfg), "cameras": list(rig.names), "applied": False,
                      "refused": True, "reason": f"refused: {why}", "kept_cameras": kept}
    warn(kept)
    left = [n for n in rig.names if n not in kept]
    return put_back(rig, *refine(rig.subset(left), without(kp, left)), kept)
