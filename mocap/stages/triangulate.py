"""Stage: 2D keypoints + rig → 3D points (robust, confidence-weighted DLT)."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mocap.config import inline
from mocap.detect.select import SPLIT_FRAMES, performer, two_bodies
from mocap.geometry.triangulation import observation_weights, triangulate
from mocap.io.hdf5 import write_points3d
from mocap.io.trc import write_trc
from mocap.keypoint_sets import body_keypoint_set, get_keypoint_set, hand_joints
from mocap.multi.overlap import occlusion_weighting
from mocap.multi.records import person_records
from mocap.multi.track import TrackConfig
from mocap.persons import person_suffix
from mocap.session import Session
from mocap.stages import Flag
from mocap.stages.rig_units import check_rig_units
from mocap.stages.triangulate_checks import check_hands, check_reconstructed
from mocap.types import Keypoints2D, Points3D, Rig

log = logging.getLogger(__name__)
NAME = "triangulate"
HELP = "2D keypoints + rig → 3D points (robust DLT)"
STAGE = "triangulated"  # the output's name: points3d/triangulated.h5


@dataclass(frozen=True)
class Config:
    min_views: int = 2  # fewer views → NaN
    min_score: float = 0.2  # detections below this confidence are ignored
    max_reproj_px: float | None = 15.0  # views beyond this reprojection error are dropped; 0: plain DLT
    # two views whose rays are within this angle of one line (depth barely observed; a wrong view near the
    # other's epipolar line agrees with it) lose ties in the robust camera-pair search; 0: off
    min_pair_angle_deg: float = 30.0
    single_performer: bool = True  # detect.persons = 1 with several per view: keep the one consistent across views
    repair_swaps: bool = True  # exchange back the left/right body sides a view got wrong (checked on the others)
    # several people: a keypoint on the body of another person nearer that camera weighs less, by the noise of
    # such keypoints measured on the take (mocap.multi.overlap); refine follows what triangulate recorded
    occlusion_weights: bool = True
    # several people: a keypoint of a person's detection that lies on another person's projected body and beyond
    # max_reproj_px of its own joint is left out of that person, so are the keypoints that put a joint far beyond
    # its body's reach, and the people triangulated again (mocap.multi.other_body; the association's keypoint_masks,
    # which refine and the report read too)
    other_body: bool = True
    # detect.persons > 1 or "auto": who is who across views and time (see mocap.multi.track); its keys are
    # triangulate's: triangulate.match_max_m, triangulate.track_max_m, triangulate.coast_max_s, ...
    association: TrackConfig = inline(TrackConfig)

    def __post_init__(self) -> None:
        if self.min_views < 2:
            raise ValueError(f"triangulate: min_views must be ≥ 2, got {self.min_views}")
        if not 0 <= self.min_score <= 1:
            raise ValueError(f"triangulate: min_score must be in [0, 1], got {self.min_score}")
        if self.max_reproj_px is not None and not self.max_reproj_px >= 0:
            raise ValueError(f"triangulate: max_reproj_px must be positive (0: plain DLT), got {self.max_reproj_px}")
        if not 0 <= self.min_pair_angle_deg < 90:
            raise ValueError(f"triangulate: min_pair_angle_deg must be in [0, 90) degrees (0: off), got "
                             f"{self.min_pair_angle_deg}")


FLAGS = (Flag("--max-reproj-px", "max_reproj_px", "drop views beyond this error (0: plain DLT)", float),)


def inputs(session: Session, settings) -> list[Path]:
    return session.keypoint_inputs()


def outputs(session: Session, settings) -> list[Path]:
    return [session.points3d(STAGE)]


def run(rig: Rig, kp: Keypoints2D, cfg: Config = Config(), swap_work: dict | None = None) -> Points3D:
    """``swap_work``: what the swap repair that gave ``kp`` found on the way (``repair_keypoints``' ``work``,
    through :func:`read_session_keypoints`): its undistorted detections and the points of the (frame, joint)
    rows it did not change are not computed again, and a point the views' consensus settles skips the camera-pair
    search (``consensus_first``; the same points, to rounding)."""
    if tuple(kp.camera_names) != rig.names:
        raise ValueError(f"triangulate: keypoint cameras {list(kp.camera_names)} differ from rig {list(rig.names)}")
    if cfg.min_views > len(rig):
        raise ValueError(f"triangulate.min_views = {cfg.min_views} but the rig has {len(rig)} cameras: no point is "
                         "seen by that many")
    F, C, P, J = kp.shape
    uv = np.moveaxis(kp.xy, 1, 3).reshape(-1, C, 2)  # (F·P·J, C, 2)
    w = np.moveaxis(observation_weights(kp, cfg.min_score), 1, 3).reshape(-1, C)
    t0 = time.perf_counter()
    known = reused_work(swap_work, kp, cfg.min_score) if swap_work else None
    X, err, views = triangulate(rig, uv, w, min_views=cfg.min_views, max_reproj_px=cfg.max_reproj_px or None,
                                known=known, min_pair_angle_deg=cfg.min_pair_angle_deg or None,
                                consensus_first=known is not None)
    occlusion = None
    if P > 1 and cfg.occlusion_weights:
        factor, occlusion = occlusion_weighting(rig, kp, X.reshape(F, P, J, 3), cfg.min_score)
        if occlusion["sigma_ratio"] > 1:  # again with the occluded keypoints weighing less: the rows they are in
            factor = np.moveaxis(factor, 1, 3).reshape(-1, C)  # (a point is solved from its own row alone)
            rows = np.flatnonzero(((factor != 1) & (w > 0)).any(axis=1))
            X[rows], err[rows], views[rows] = triangulate(
                rig, uv[rows], w[rows] * factor[rows], min_views=cfg.min_views,
                max_reproj_px=cfg.max_reproj_px or None, min_pair_angle_deg=cfg.min_pair_angle_deg or None)
    log.info("triangulated %d points in %.2fs (%.1f%% reconstructed)", X.shape[0], time.perf_counter() - t0,
             100 * np.mean(np.isfinite(X[:, 0])))
    points = Points3D(X.reshape(F, P, J, 3), err.reshape(F, P, J), views.reshape(F, P, J, C), rig.names,
                      kp.keypoint_set, kp.fps, {"stage": STAGE, "config": asdict(cfg)})
    if occlusion is not None:
        points.info["occlusion"] = occlusion
    check_hands(kp, points, cfg.min_score)
    return points


def reused_work(work: dict, kp: Keypoints2D, min_score: float) -> dict | None:
    """The swap repair's ``work`` (:func:`mocap.geometry.swaps_repair.repair_keypoints`) as
    :func:`~mocap.geometry.triangulation.triangulate`'s ``known`` for the repaired keypoints ``kp``, rows
    (F·P·J) in :func:`run`'s order: the undistorted detections exchanged as the keypoints were, and the
    point of all views of every row no view of which was exchanged. The work of a body set covers the
    first joints of a body + hands set (the others are computed). None when it does not fit ``kp`` (or was
    made with another ``min_score``: other weights)."""
    from mocap.geometry.swaps import swap_groups, swap_permutations

    F, C, P, J = kp.shape
    swapped, persons = work.get("swapped"), work.get("persons")
    if swapped is None or not persons or swapped.shape[:3] != (F, C, P) or work.get("min_score") != min_score:
        return None
    Jb = persons[0]["xn"].shape[0] // max(F, 1)
    body = get_keypoint_set(body_keypoint_set(kp.keypoint_set) or kp.keypoint_set) if Jb < J else \
        get_keypoint_set(kp.keypoint_set)
    if len(body.joints) != Jb or Jb > J or any(f["xn"].shape != (F * Jb, C, 2) for f in persons):
        return None
    perm, member = body.flip_permutation, swap_groups(body)[1]
    whole = P == 1 and Jb == J  # the common case: the work's own layout, one copy
    xn = persons[0]["xn"].reshape(F, 1, J, C, 2).copy() if whole else np.full((F, P, J, C, 2), np.nan)
    X = persons[0]["X"].reshape(F, 1, J, 3) if whole else np.full((F, P, J, 3), np.nan)
    err = persons[0]["err"].reshape(F, 1, J, C) if whole else np.full((F, P, J, C), np.nan)
    rows = np.ones((F, P, J), bool) if whole else np.zeros((F, P, J), bool)
    for p, found in enumerate(persons):
        if not whole:
            xn[:, p, :Jb] = found["xn"].reshape(F, Jb, C, 2)
            X[:, p, :Jb], err[:, p, :Jb] = found["X"].reshape(F, Jb, 3), found["err"].reshape(F, Jb, C)
            rows[:, p, :Jb] = True
        frames = np.flatnonzero(swapped[:, :, p].any(axis=(1, 2)))  # the rest as given
        idx = swap_permutations(perm, member, swapped[frames, :, p])  # (n, C, Jb)
        given = np.moveaxis(found["xn"].reshape(F, Jb, C, 2)[frames], 1, 2)  # (n, C, Jb, 2)
        xn[frames, p, :Jb] = np.moveaxis(np.take_along_axis(given, idx[..., None], axis=2), 1, 2)
        rows[frames, p, :Jb] = ~(idx != np.arange(Jb)).any(axis=1)  # no view of the row exchanged
    return {"xn": xn.reshape(-1, C, 2), "rows": rows.reshape(-1), "X": X.reshape(-1, 3), "err": err.reshape(-1, C)}


def write_outputs(points: Points3D, path: Path) -> Path:
    """HDF5 plus one TRC per person beside it."""
    write_points3d(points, path)
    names = get_keypoint_set(points.keypoint_set).joints
    P = points.xyz.shape[1]
    for p in range(P):
        write_trc(path.with_name(f"{path.stem}{person_suffix(p, P)}.trc"), points.xyz[:, p], names, points.fps)
    return path


def session_keypoints(session: Session, rig: Rig, single_performer: bool = True,
                      repair_swaps: bool | None = None, last: bool = False) -> Keypoints2D:
    """The session's 2D keypoints, aligned in time by ``sync.json`` when present; with several people
    per view, only the performer when asked, or (several people tracked) the persons axis made the
    identity of ``points3d/triangulated.h5``; left/right swaps repaired (``repair_swaps``; None: as the
    triangulate stage did, see :func:`read_session_keypoints`)."""
    return read_session_keypoints(session, rig, single_performer, repair_swaps, last=last)[0]


def read_session_keypoints(session: Session, rig: Rig, single_performer: bool = True,
                           repair_swaps: bool | None = None, cfg: Config | None = None,
                           persons: int | str | None = None, work: dict | None = None,
                           association: dict | None = None, last: bool = False) -> tuple[Keypoints2D, dict]:
    """:func:`session_keypoints` and what the swap repair did: {"swaps_repaired": {camera: views},
    "swap_repairs": the repairs themselves (reused by later readers of the same keypoints)}; with
    several people, also "association" (the summary and the slots of every person, see
    :func:`associate_keypoints`).

    ``cfg``: the triangulate settings; None: those ``points3d/triangulated.h5`` was made with, so refine
    and the report read the keypoints the points came from (its stored repairs and association are
    applied as they are while the keypoints are unchanged). ``persons``: ``detect.persons`` (the
    triangulate stage); None: as recorded in the triangulated points. ``work``: filled with the swap
    repair's reusable work (for :func:`run`'s ``swap_work``) when it searched. ``association``: this record
    applied (its slots and keypoint masks, while made on these keypoints) instead of ``persons``. ``last``: the
    run's last reader (the report): the memo's entry handed over, not copied nor kept (memory on long takes)."""
    from mocap.stages import keypoints_memo
    from mocap.stages.sync import read_timing

    offsets, steps = read_timing(session)
    if work is not None:  # the stage's own passes: not kept (never read again: refine and the report read through
        # the points' recorded settings, another key; two copies held through the second pass weigh on long takes)
        return _read_session_keypoints(session, rig, offsets, single_performer, repair_swaps, cfg, persons, work,
                                       association, steps)
    given = None if association is None else repr(association.get("keypoint_masks"))
    memo = keypoints_memo.key(session, rig, offsets, cfg, (single_performer, repair_swaps, persons, given, repr(steps)))
    hit = (keypoints_memo.take if last else keypoints_memo.get)(memo)
    if hit is not None:
        log.debug("2D keypoints as read earlier in this run (unchanged files, rig, offsets and settings)")
        return hit
    unrepaired: list = []  # the keypoints before the swap repair: the same call with repair_swaps=False (the report's)
    result = _read_session_keypoints(session, rig, offsets, single_performer, repair_swaps, cfg, persons, work,
                                     association, steps, unrepaired)
    if not last:
        keypoints_memo.put(memo, result)
    if unrepaired:
        keypoints_memo.put(keypoints_memo.key(session, rig, offsets, cfg, (single_performer, False, persons, given,
                                                                           repr(steps))), unrepaired[0])
    return result


def every_detection(session: Session, rig: Rig) -> Keypoints2D:
    """Every detection (all slots), aligned in time by ``sync.json``, nothing associated or repaired, for one reader
    (the report's mirrored-camera check): not kept in the keypoints memo (a long take's are a few hundred MB)."""
    from mocap.stages.sync import read_timing

    return _aligned(session, rig, *read_timing(session))


def _aligned(session: Session, rig: Rig, offsets: dict[str, float], steps: dict | None) -> Keypoints2D:
    from mocap.stages.sync import apply_offsets

    kp = session.keypoints2d(rig)
    if any(abs(v) > 1e-9 for v in offsets.values()) or steps:
        log.info("applying camera time offsets %s (frames)%s", {k: round(v, 2) for k, v in offsets.items()},
                 "".join(f"; {k} by parts from frames {[f for f, _ in v]}: {[round(d, 2) for _, d in v]}"
                         for k, v in (steps or {}).items()))
        kp = apply_offsets(kp, offsets, steps)
    return kp


def _read_session_keypoints(session: Session, rig: Rig, offsets: dict[str, float], single_performer: bool,
                            repair_swaps: bool | None, cfg: Config | None, persons: int | str | None,
                            work: dict | None, association: dict | None = None, steps: dict | None = None,
                            unrepaired: list | None = None) -> tuple[Keypoints2D, dict]:
    kp = _aligned(session, rig, offsets, steps)
    stored, recorded = None, None
    if cfg is None:
        cfg, stored, recorded = _recorded(session)
    if association is not None:
        persons, recorded = None, association
    extra: dict = {}
    if persons is not None and persons != 1 and not (persons == "auto" and kp.shape[2] == 1):  # one detection per
        kp, extra["association"] = associate_keypoints(rig, kp, persons, cfg)  # view, auto: the single performer
    elif persons is None and recorded is not None:
        kp, extra["association"] = associate_keypoints(rig, kp, recorded.get("persons_requested", "auto"), cfg,
                                                        recorded)
    elif single_performer and (kp.shape[2] > 1 or two_bodies(rig, kp, cfg.min_score) >= SPLIT_FRAMES):
        kp = performer(rig, kp, cfg.association, cfg.min_score)
    if not (cfg.repair_swaps if repair_swaps is None else repair_swaps):
        return kp, extra
    if unrepaired is not None:
        unrepaired.append((kp, dict(extra)))
    from mocap.geometry.swaps import SwapConfig
    from mocap.geometry.swaps_repair import repair_keypoints

    ks = get_keypoint_set(kp.keypoint_set)
    swap_cfg = SwapConfig(max_reproj_px=cfg.max_reproj_px or 15.0)
    if body_keypoint_set(ks.name) is not None and hand_joints(ks).any():
        kp, repairs = _repair_with_hands(rig, kp, ks, cfg.min_score, swap_cfg, stored, work)
    else:
        kp, repairs = repair_keypoints(rig, kp, ks, cfg.min_score, swap_cfg, stored, work)
    return kp, {**repairs, **extra}


def _repair_with_hands(rig: Rig, kp: Keypoints2D, ks, min_score: float, swap_cfg, stored,
                       work: dict | None = None) -> tuple[Keypoints2D, dict]:
    """Swap repair of a body + hands set: decided on the body's keypoints alone (exactly as for the body-only
    set), and a view's hands are exchanged with its arms (each hand was given the side of the nearest body
    wrist, so it swaps with them)."""
    from mocap.geometry.swaps_repair import repair_keypoints

    body_ks = get_keypoint_set(body_keypoint_set(ks.name))
    n = len(body_ks.joints)
    body = Keypoints2D(kp.data[..., :n, :], kp.camera_names, body_ks.name, kp.fps)
    repaired, info = repair_keypoints(rig, body, body_ks, min_score, swap_cfg, stored, work)
    data = np.concatenate([repaired.data, kp.data[..., n:, :]], axis=3)
    record = info["swap_repairs"]
    if "arms" in record["groups"]:
        arms = record["groups"].index("arms")
        flip = np.asarray(ks.flip_permutation)
        hands = np.flatnonzero(hand_joints(ks))
        for f, c, p, bits in record["views"]:
            if (bits >> arms) & 1:
                data[f, c, p, hands] = kp.data[f, c, p, flip[hands]]
    return Keypoints2D(data, kp.camera_names, kp.keypoint_set, kp.fps), info


def associate_keypoints(rig: Rig, kp: Keypoints2D, persons: int | str, cfg: Config,
                        recorded: dict | None = None) -> tuple[Keypoints2D, dict]:
    """Keypoints whose persons axis is the identity of each tracked person (see :mod:`mocap.multi`), and
    the association record (summary + ``slots``). ``recorded``: an earlier record, reused while it was made
    on these very keypoints (their digest; records without one: same frames, cameras and detector slots)."""
    import hashlib

    from mocap.multi.memo import associate_once
    from mocap.multi.slots import apply_slots, decode_slots, encode_slots

    F, C, S, _ = kp.shape
    digest = hashlib.sha1(np.ascontiguousarray(kp.data).reshape(-1).view(np.uint8)).hexdigest()[:16]
    if recorded is not None and "slots" in recorded:
        slots = decode_slots(recorded["slots"])
        fits = slots.shape[:2] == (F, C) and (slots < S).all() and recorded.get("slots_per_view") == S
        if fits and recorded.get("keypoints_digest", digest) == digest:
            return apply_slots(kp, slots, recorded.get("keypoint_masks")), recorded
        log.warning("the recorded association was made on other keypoints (detection or sync ran again); "
                    "associating again")
    slots, summary = associate_once(rig, kp, persons, cfg.association, cfg.min_score)
    summary["keypoints_digest"] = digest  # what the slots belong to (the keypoints after the sync offsets)
    if slots.shape[2] == 0:
        raise ValueError(f"triangulate: persons = {persons!r} but no person is seen by two cameras or more in "
                         f"{F} frames: nothing to reconstruct (detections per camera that no person explains: "
                         f"{summary['unexplained_frames_per_camera']})")
    summary["slots"] = encode_slots(slots)
    return apply_slots(kp, slots, summary.get("keypoint_masks")), summary


def _without_other_bodies(session: Session, rig: Rig, cfg: Config, kp: list, repairs: dict,
                          points: list) -> tuple[Keypoints2D, dict, Points3D]:
    """Several people: the keypoints of a person's detections on another person's body
    (:func:`mocap.multi.other_body.on_other_body`, judged against the people just triangulated) left out of
    that person (the association's keypoint
    masks), the swaps searched again and the people triangulated again. Nothing found: as given. ``kp`` and
    ``points`` come in one-item lists, emptied once judged: the first pass is not held through the second
    (memory on long takes)."""
    from mocap.multi.other_body import add_masks, left_out, unrepaired

    swaps, ks = repairs.get("swap_repairs"), kp[0].keypoint_set
    drop, far = (unrepaired(m, swaps, ks) for m in left_out(rig, kp[0], points[0], cfg.min_score,
                                                              cfg.max_reproj_px or 15.0))
    if not drop.any() and not far.any():
        repairs["association"] |= {"other_body_keypoints": 0, "beyond_reach_keypoints": 0}
        return kp[0], repairs, points[0]
    kp.clear()
    points.clear()
    per_camera = {name: int(n) for name, n in zip(rig.names, drop.sum(axis=(0, 2, 3)), strict=True)}
    log.info("%d keypoints of a person's detections lie on another person's body, %d triangulated a joint "
             "beyond the body's reach: left out of that person (on another body, per camera %s)", int(drop.sum()),
             int(far.sum()), per_camera)
    association = add_masks(add_masks(repairs["association"], drop), far, "beyond_reach_keypoints")
    association["other_body_per_camera"] = per_camera
    del drop, far
    work: dict = {}
    kp2, repairs2 = read_session_keypoints(session, rig, cfg.single_performer, cfg=cfg, work=work,
                                           association=association)
    return kp2, repairs2, run(rig, kp2, cfg, work)


def _recorded(session: Session) -> tuple[Config, dict | None, dict | None]:
    """The settings, stored swap repairs and association of the session's triangulated points (defaults
    when absent)."""
    from mocap.io.hdf5 import read_points3d_info

    path = session.points3d(STAGE)
    if not path.is_file():
        return Config(), None, None
    info = read_points3d_info(path)  # the settings and records alone, not the arrays (memory on long takes)
    known = {k: v for k, v in info.get("config", {}).items() if k in Config.__dataclass_fields__}
    try:
        if isinstance(known.get("association"), dict):
            known["association"] = TrackConfig(**known["association"])
        cfg = Config(**known)
    except (TypeError, ValueError) as e:
        log.warning("%s: its triangulate settings are unreadable (%s); using the defaults", path, e)
        cfg = Config()
    return cfg, info.get("swap_repairs"), info.get("association")


def resolved(settings) -> dict:
    """Part of the cache key: ``detect.persons``, read here whether or not detection ran (2D keypoints given)."""
    return {"persons": settings.detect.persons}


def main(session: Session | str | Path, settings=None, overwrite: bool = False) -> Path:
    """``settings``: the pipeline's Settings, or this stage's Config."""
    from mocap.settings import as_settings

    session = session if isinstance(session, Session) else Session(Path(session))
    cfg = as_settings(settings).triangulate
    out = session.points3d(STAGE)
    if out.exists() and not overwrite:
        log.info("%s exists, skipping triangulation", out)
        return out
    rig = session.rig()
    check_rig_units(rig, session.keypoints2d(rig), session.rig_input(), session.root)  # mm or cm: refused
    persons = as_settings(settings).detect.persons
    work: dict = {}
    kp, repairs = read_session_keypoints(session, rig, cfg.single_performer, cfg=cfg, persons=persons, work=work)
    points = run(rig, kp, cfg, work)
    work.clear()  # the swap repair's work is spent: not held through the second pass (memory on long takes)
    if "association" in repairs and points.xyz.shape[1] > 1 and cfg.other_body:
        first_kp, first_points = [kp], [points]
        del kp, points
        kp, repairs, points = _without_other_bodies(session, rig, cfg, first_kp, repairs, first_points)
    check_reconstructed(rig, kp, points, cfg.min_score, cfg.min_views)  # said here, not two stages on
    points.info.update(repairs)
    if "association" in repairs:
        points.info["persons"] = person_records(points, kp, rig, repairs["association"], cfg)
    return write_outputs(points, out)
