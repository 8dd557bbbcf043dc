"""Single-performer selection when a detector reports several people per view.

For every pair of cameras and every pair of candidates, the candidates are triangulated from those
two views alone; their median reprojection error (px) says whether they are the same person. Each
frame then keeps, per camera, the candidate that agrees best with the other cameras' picks, seeded by
the most consistent pair, with a penalty for moving the performer's centre far from the previous
frame. A camera none of whose candidates agrees with the others gets no detection (NaN). Bystanders
seen by one camera only can never be consistent, and a bystander seen by several is rejected by the
temporal term once the performer is locked on.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import asdict
from itertools import combinations
from typing import TYPE_CHECKING

import numpy as np

from mocap.geometry.triangulation import dlt, normalise_observations
from mocap.geometry.view_split import split_frames
from mocap.types import Keypoints2D, Rig

if TYPE_CHECKING:
    from mocap.multi.track import TrackConfig

log = logging.getLogger(__name__)
SPLIT_FRAMES = 5  # a take with this many frames whose views show two bodies has its performer followed in 3D
SAMPLE = 4  # ... looked for first in every SAMPLE-th frame
_SAID: set = set()  # said once per take and process (triangulate reads the keypoints more than once)


def pair_costs(rig: Rig, kp: Keypoints2D, min_score: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """cost (F, C, P, C, P): median two-view reprojection error of candidate pairs (inf when unknown);
    centre (F, C, P, C, P, 3): the pair's triangulated body centre."""
    F, C, P, J = kp.shape
    xy = np.where((kp.score >= min_score)[..., None], kp.xy, np.nan)
    xn = normalise_observations(rig, np.moveaxis(xy, 1, -2).reshape(-1, C, 2)).reshape(F, P, J, C, 2)
    Ps = np.stack([c.cam_from_world for c in rig])
    cost = np.full((F, C, P, C, P), np.inf)
    centre = np.full((F, C, P, C, P, 3), np.nan)
    for a, b in combinations(range(C), 2):
        for i in range(P):
            for j in range(P):
                obs = np.full((F, J, C, 2), np.nan)
                obs[:, :, a], obs[:, :, b] = xn[:, i, :, a], xn[:, j, :, b]
                w = np.isfinite(obs[..., 0]).astype(float)
                X = dlt(Ps, obs.reshape(-1, C, 2), w.reshape(-1, C)).reshape(F, J, 3)
                err = []
                for cam, cand in ((a, i), (b, j)):
                    uv = rig[cam].project(X)
                    err.append(np.linalg.norm(uv - xy[:, cam, cand], axis=-1))
                with warnings.catch_warnings():  # frames where a candidate is missing: all-NaN medians
                    warnings.simplefilter("ignore", RuntimeWarning)
                    e = np.nanmedian(np.maximum(err[0], err[1]), axis=1)
                    mid = np.nanmedian(X, axis=1)
                enough = np.sum(np.isfinite(err[0]) & np.isfinite(err[1]), axis=1) >= max(3, J // 4)
                e = np.where(enough & np.isfinite(e), e, np.inf)
                cost[:, a, i, b, j] = cost[:, b, j, a, i] = e
                centre[:, a, i, b, j] = centre[:, b, j, a, i] = mid
    return cost, centre


def select_performer(rig: Rig, kp: Keypoints2D, max_error_px: float = 25.0, max_step_m: float = 0.5,
                     min_score: float = 0.3) -> Keypoints2D:
    """Keep one person per camera and frame: the performer. Returns keypoints with one person."""
    F, C, P, J = kp.shape
    if P == 1:
        return kp
    cost, centre = pair_costs(rig, kp, min_score)
    out = np.full((F, C, 1, J, 3), np.nan)
    previous = None
    for f in range(F):
        c = cost[f].copy()
        if previous is not None:  # moving the performer far between frames costs as much as a bad match
            jump = np.linalg.norm(centre[f] - previous, axis=-1)
            c = c + np.where(np.isfinite(jump), max_error_px * np.clip(jump / max_step_m, 0, 4), 0)
        if not np.isfinite(c).any() or c.min() > max_error_px * 2:
            continue
        a, i, b, j = np.unravel_index(np.argmin(c), c.shape)
        picks = {a: i, b: j}
        for cam in range(C):
            if cam in picks:
                continue
            scores = [np.mean([cost[f, cam, k, o, picks[o]] for o in picks]) for k in range(P)]
            k = int(np.argmin(scores))
            if scores[k] <= max_error_px:
                picks[cam] = k
        for cam, k in picks.items():
            out[f, cam, 0] = kp.data[f, cam, k]
        previous = centre[f, a, i, b, j]
    return Keypoints2D(out, kp.camera_names, kp.keypoint_set, kp.fps)


def performer(rig: Rig, kp: Keypoints2D, cfg: TrackConfig | None = None, min_score: float = 0.2) -> Keypoints2D:
    """``detect.persons`` = 1 with several detections per view (keypoints from OpenPose, a multi-person
    detector): the person followed in 3D through the take (the association's identities, which do not jump to
    another actor at a crossing as :func:`select_performer`'s frame-by-frame pick did) whose detections that
    pick chose most often, said when the views hold others; :func:`select_performer`'s pick when nobody is
    associated."""
    from mocap.multi.memo import associate_once

    picked = select_performer(rig, kp)
    try:
        slots, summary = associate_once(rig, kp, "auto", cfg, min_score, progress=False, quiet=True)
    except ValueError as e:
        slots, summary, why = None, None, str(e)
    if slots is None or slots.shape[2] == 0:
        log.warning("persons = 1: no person followed across the views (%s); the performer picked frame by frame "
                    "instead", why if slots is None else "no person seen by two cameras")
        return picked
    same = np.zeros(slots.shape[2], int)
    for p in range(slots.shape[2]):
        f, c = np.nonzero(slots[:, :, p] >= 0)
        mine = kp.data[f, c, slots[f, c, p]]
        same[p] = int(np.sum(np.all((mine == picked.data[f, c, 0]) | np.isnan(mine), axis=(-1, -2))))
    best = int(np.argmax(same))
    if slots.shape[2] > 1:  # every stage reads the keypoints: said once
        from mocap.session_checks import say_once

        say_once(f"detect.persons = 1 but the views hold {slots.shape[2]} people: only person{best + 1}, the "
                 "performer, is reconstructed (--set detect.persons=auto reconstructs every one)", log)
    one = _one(kp, slots, summary, best)
    # where that identity has no detection (lost for a while, a part of the take too short to be a person), the
    # frame-by-frame pick, unless another person holds that detection
    data = one.data.copy()
    not_people = {tuple(v) for v in summary.get("views_not_people", ())}  # a figure two views saw: nobody's
    for f, c in zip(*np.nonzero((slots[:, :, best] < 0) & np.isfinite(picked.data[:, :, 0, :, 0]).any(-1)),
                    strict=True):
        k = next((k for k in range(kp.shape[2]) if np.array_equal(kp.data[f, c, k], picked.data[f, c, 0],
                                                                   equal_nan=True)), None)
        if k is not None and not np.any(slots[f, c] == k) and (int(f), int(c), k) not in not_people:
            data[f, c, 0] = kp.data[f, c, k]
    return Keypoints2D(data, kp.camera_names, kp.keypoint_set, kp.fps)


def two_bodies(rig: Rig, kp: Keypoints2D, min_score: float = 0.2) -> int:
    """Frames of a take with one detection per view whose views show two bodies
    (:func:`mocap.geometry.view_split.split_frames`: a bystander that two cameras' detectors picked instead of
    the performer); 0 with several detections per view or fewer than four cameras. Said in the log when any."""
    if kp.shape[2] != 1 or kp.shape[1] < 4:
        return 0
    xy = np.where((kp.data[:, :, 0, :, 2] >= min_score)[..., None], kp.data[:, :, 0, :, :2], np.nan)
    if not split_frames(rig, xy[::SAMPLE]).any():  # a bystander stays a while: every SAMPLE-th frame tells
        return 0
    n = int(split_frames(rig, xy).sum())
    if n >= SPLIT_FRAMES and (n, kp.shape) not in _SAID:
        _SAID.add((n, kp.shape))
        log.warning("%d frames whose views show two bodies (cameras agreeing in two groups, a bystander picked by "
                    "some cameras' detector?): the performer is followed in 3D and the other body's views left out",
                    n)
    return n


def association_args(settings) -> tuple:
    """(``detect.persons``, ``triangulate.association``, ``triangulate.min_score``): how the stages before
    triangulate associate people, as triangulate does (:func:`all_people`, :func:`people_in_time`)."""
    t = settings.triangulate
    return settings.detect.persons, t.association, t.min_score


def association_key(settings) -> dict:
    """What the stages before triangulation (sync, camera refinement) associate people with, part of their cache
    key (``resolved``): triangulate's association settings and ``min_score`` (with ``detect.persons`` = 1 too:
    :func:`performer` follows the people with them when a view holds several detections) and ``detect.persons``
    (one person or several: read by those stages whether or not detection ran, 2D keypoints given)."""
    t = settings.triangulate
    return {"association": asdict(t.association), "min_score": t.min_score, "persons": settings.detect.persons}


def one_person(rig: Rig, kp: Keypoints2D, cfg: TrackConfig | None = None, min_score: float = 0.2) -> Keypoints2D:
    """``detect.persons`` = 1: the performer (:func:`performer`, as triangulate keeps it); ``kp`` itself when its
    views hold one detection each."""
    return kp if kp.shape[2] == 1 else performer(rig, kp, cfg, min_score)


def all_people(rig: Rig, kp: Keypoints2D, persons: int | str = "auto", cfg: TrackConfig | None = None,
               min_score: float = 0.2) -> Keypoints2D:
    """Every associated person, one after another along the frame axis: (P·F, C, 1, J), person p in frames
    p·F … (p+1)·F − 1, never two people mixed in one frame. For the camera refinement (its cameras do not
    move, so the frames need not follow in time): several people cover more of the volume than one, and a
    person standing still constrains the cameras at one spot only (on real two-person footage, refined on
    the one standing still the other's error grew from 12 to 19 px; on both, 10 and 8 px). Sync needs the
    frames in time: :func:`people_in_time`. With ``persons`` = 1: :func:`one_person`; nobody associated: the
    performer picked frame by frame."""
    if kp.shape[2] == 1 or persons == 1:  # the association's settings too: triangulate's performer, not another
        return one_person(rig, kp, cfg, min_score)
    own = _associated(rig, kp, persons, cfg, min_score, "for the camera refinement", quiet=True)
    if own is None:
        return select_performer(rig, kp)
    data = np.concatenate([own.data[:, :, p: p + 1] for p in range(own.shape[2])], axis=0)
    log.info("camera refinement on all %d people (%d frames each, one after another)", own.shape[2], kp.shape[0])
    return Keypoints2D(data, kp.camera_names, kp.keypoint_set, kp.fps)


def _associated(rig: Rig, kp: Keypoints2D, persons: int | str, cfg: TrackConfig | None, min_score: float,
                what: str, quiet: bool) -> Keypoints2D | None:
    """Every associated person in its own slot (F, C, P, J) (:func:`mocap.multi.memo.associate_once`; ``quiet``:
    its warnings left to a later call), or None, said, where nobody is (fewer than 2 cameras, or cameras not
    synchronised yet: no person meets in two views)."""
    from mocap.multi.memo import associate_once
    from mocap.multi.slots import apply_slots

    try:
        slots, summary = associate_once(rig, kp, persons, cfg, min_score, progress=False, quiet=quiet)
        if slots.shape[2] == 0:
            raise ValueError("no person is seen by two cameras or more")
    except ValueError as e:
        log.warning("several people: no associated person %s (%s); using the performer most consistent across the "
                    "views instead", what, e)
        return None
    return apply_slots(kp, slots, summary.get("keypoint_masks"))


def people_in_time(rig: Rig, kp: Keypoints2D, persons: int | str = "auto", cfg: TrackConfig | None = None,
                   min_score: float = 0.2, quiet: bool = False) -> Keypoints2D:
    """The associated people who move (:func:`mocap.multi.slots.moving`), each in its own slot, the same in every
    view: (F, C, P, J). What sync times the cameras on (and the camera refinement looks for a camera moved mid-take
    on): each person's points against that person's own in the other views, never two people mixed, and every
    moving person's evidence together (on real two-person footage with one video started 8 frames late, the person
    with most motion seen alone did not prove the lag; both did). With ``persons`` = 1: :func:`one_person`;
    nobody associated (e.g. cameras not yet synchronised): the performer picked frame by frame. ``quiet``: the
    association's warnings left to a later call (the camera refinement's lag check, on each rig it tries)."""
    from mocap.multi.slots import image_motion, moving

    if kp.shape[2] == 1 or persons == 1:
        return one_person(rig, kp, cfg, min_score)
    own = _associated(rig, kp, persons, cfg, min_score, "to synchronise on", quiet)
    if own is None:
        return select_performer(rig, kp)
    keep = moving(image_motion(own, min_score=min_score), image_motion(own, 1 / kp.fps, min_score))
    log.log(logging.DEBUG if keep.all() else logging.INFO, "timing the cameras on %s of %d people%s",
            ", ".join(f"person{p + 1}" for p in np.flatnonzero(keep)), keep.size,
            "" if keep.all() else " (the others stand still)")  # (sync's check runs several times a run)
    return Keypoints2D(own.data[:, :, keep], kp.camera_names, kp.keypoint_set, kp.fps)


def _one(kp: Keypoints2D, slots: np.ndarray, summary: dict, p: int) -> Keypoints2D:
    """Person ``p`` of an association (``slots`` (F, C, P), its ``summary``): its detections, the keypoints
    that are another body's left out."""
    from mocap.multi.slots import apply_slots, decode_masks

    masks = decode_masks(summary.get("keypoint_masks"), kp.shape[3])
    return apply_slots(kp, slots[:, :, p: p + 1], {(f, c, 0): m for (f, c, q), m in masks.items() if q == p})

