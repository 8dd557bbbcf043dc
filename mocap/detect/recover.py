"""A second detection pass guided by the other views: people the detector missed in a view (typically
one behind another), looked for again in the box where the other views place them.

After the first pass, the people are associated across views and tracked (:mod:`mocap.multi`, through the cameras
refined from these detections where that refinement applies, else the given rig: :mod:`mocap.detect.recover_rig`;
one seen by two views only counts after ``birth_frames``, not 4 × that). Each person is triangulated from the detections
assigned to it; frames where it is not seen by two views take the motion between the nearest frames where it is
(held at the ends), and its uncertainty grows with the time since, as the tracker's gate does. Wherever a person
projects inside a view with no detection assigned there, the projected skeleton gives a square *person box* (with a
margin); the landmark model runs on that crop, and a skeleton it finds is accepted only when

* it agrees with the person's prediction: the median distance of its keypoints to the projected
  joints is within the gate (the tracker's 3D gate for that person and frame, in pixels at its depth);
* it is no duplicate: it is closer to this person than to any detection already in that view and to
  the projection of every other person, and not on top of a detection already there (the front
  person, whom the crop also holds).

Keypoints of an accepted skeleton farther from the prediction than twice the gate (the tracker's outlier distance)
are left out. Accepted skeletons go into the free person slots of that view (with the landmark model's scores);
triangulation then associates them as any detection. A person the first pass found in one view only is looked for
along its rays (:mod:`mocap.detect.recover_lone`), then placed in the remaining views as a tracked person. The
counts per camera (recovered, looked at, rejected and why) and the recovered detections ([frame, view, slot, person
or -1, distance, gate]; ``detections_roi``: [frame, view, slot] of those found on the ROI of a prediction,
:mod:`mocap.detect.recover_roi`) are written to ``pose2d.h5``'s ``info["recover"]``. The pure functions below work
on arrays; :func:`recover_detections` is the entry point (it reads the needed video frames and runs the model),
:func:`recover_session` the detect stage's call. The crops of a round are computed by worker processes, one per
core (``detect.workers``), then judged here in order (:mod:`mocap.detect.recover_pool`: the same detections). Not
done: sync offsets are unknown at detection (the cameras are taken as in sync), and a run interrupted during this
pass is not redone on resume (its cameras are complete).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mocap.detect.boxes import person_box
from mocap.detect.recover_judge import judge, median_distance, others_in_view  # noqa: F401 (recover.X)
from mocap.detect.recover_predict import predict_people
from mocap.detect.recover_rig import Guide, guided_rig
from mocap.detect.recover_roi import RETRY, look_on_rois, unexplained
from mocap.detect.recover_when import (  # noqa: F401 (recover.X)
    MODES,
    check_mode,
    recovering,
    skipped_alone,
    still_skipped,
    wanted,
)
from mocap.keypoint_sets import get_keypoint_set
from mocap.types import Keypoints2D, Rig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecoverConfig:
    margin: float = 0.25  # the person box grows by this share of the skeleton's extent on each side
    crop_px: int = 256  # crops are resized to this square (the landmark model's input size)
    min_inside: float = 0.5  # a person is looked for where this share of its projected joints is in the image
    min_joints: int = 8  # joints a prediction and a recovered skeleton need (and have in common) to be compared
    gate_floor_px: float = 6.0  # the agreement gate never shrinks below this (detector noise)
    duplicate_px: float = 0.05  # within this share of the box side of a detection already there: a duplicate
    min_detection: float = 0.3  # the landmark model's detection confidence on a crop (a person is expected there)
    poses_per_crop: int = 2  # the crop of a person behind another holds both
    two_view_birth: int = 1  # a two-view person is looked for after birth_frames × this (triangulate's waits 4×:
    # there it becomes an identity, here only a place to look whose crops must still agree with it)

    def __post_init__(self) -> None:
        for name in ("margin", "gate_floor_px", "duplicate_px"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"recover: {name} must be ≥ 0, got {getattr(self, name)}")
        if not 0 < self.min_inside <= 1 or not 0 < self.min_detection < 1:
            raise ValueError(f"recover: min_inside must be in (0, 1] and min_detection in (0, 1), got "
                             f"{self.min_inside} and {self.min_detection}")
        if self.crop_px < 32 or self.min_joints < 1 or self.poses_per_crop < 1 or self.two_view_birth < 1:
            raise ValueError(f"recover: need crop_px ≥ 32, min_joints ≥ 1, poses_per_crop ≥ 1, two_view_birth ≥ 1, "
                             f"got {self.crop_px}, {self.min_joints}, {self.poses_per_crop}, {self.two_view_birth}")


@dataclass
class Candidate:
    frame: int
    camera: int
    person: int
    box: np.ndarray  # (x0, y0, side)
    predicted: np.ndarray  # (J, 2)
    gate_px: float


def candidates(rig: Rig, X: np.ndarray, radius: np.ndarray, slots: np.ndarray, cfg: RecoverConfig) -> list[Candidate]:
    """Every (frame, view, person) where a person projects into the view (``min_inside`` of its joints) but
    no detection of that view is assigned to it; its box and its gate in pixels (``radius`` at the median
    depth of its joints, at least ``gate_floor_px``)."""
    out = []
    F, P = X.shape[:2]
    for c, cam in enumerate(rig.cameras):
        Xc = X @ cam.R.T + cam.t  # (F, P, J, 3) camera coordinates
        depth = np.nanmedian(np.where(Xc[..., 2] > 0, Xc[..., 2], np.nan), axis=-1) \
            if np.isfinite(Xc).any() else np.full((F, P), np.nan)
        uv = cam.project(X)
        focal = float(np.sqrt(cam.K[0, 0] * cam.K[1, 1]))
        for f, p in zip(*np.nonzero((slots[:, c, :] < 0) & np.isfinite(radius) & (depth > 0)), strict=True):
            box = person_box(uv[f, p], cam.size, cfg.margin, cfg.min_inside, cfg.min_joints)
            if box is None:
                continue
            gate = max(cfg.gate_floor_px, focal * radius[f, p] / depth[f, p])
            out.append(Candidate(int(f), c, int(p), box, uv[f, p], gate))
    return out


def free_slot(view: np.ndarray) -> int:
    """The first person slot of one view's detections (S, J, 3) with nothing in it; -1 when all are taken."""
    empty = ~np.isfinite(view[..., 0]).any(axis=-1)
    return int(np.argmax(empty)) if empty.any() else -1


def recover_detections(rig: Rig, kp: Keypoints2D, videos: dict[str, Path], video_frames: np.ndarray,
                       model: Callable[[np.ndarray], np.ndarray], persons: int | str, track_cfg,
                       min_score: float, max_reproj_px: float | None = None, cfg: RecoverConfig = RecoverConfig(),
                       progress: bool = True, workers: int = 0, roi_model=None, guide: Guide | None = None
                       ) -> tuple[np.ndarray, dict]:
    """The second pass on a whole take. ``kp``: the first pass (F, C, S, J, 3), cameras in ``rig``'s order;
    ``videos``: camera → video; ``video_frames`` (F,): the video frame of each keypoint frame; ``model``:
    crop (BGR) → (N, J', 3) skeletons in crop pixels (J' ≤ J: the body joints; hands stay empty);
    ``track_cfg``: the association's :class:`~mocap.multi.track.TrackConfig`; ``workers``: processes computing a
    round's crops when ``model`` is a :class:`~mocap.detect.blazepose.CropPose` (0: one per core;
    :mod:`mocap.detect.recover_pool`); ``roi_model``: a :class:`~mocap.detect.pose_roi.RoiPose` giving a tracked
    person the crop did not give one more look on the ROI of their prediction (:mod:`mocap.detect.recover_roi`;
    None: not); ``guide``: the camera refinement whose rig places the people once two are tracked
    (:mod:`mocap.detect.recover_rig`; None: the given rig). Returns the keypoints with the recovered detections in
    free slots, and a summary (per camera: recovered, rejected by reason; the rig looked through).

    Three rounds: tracked people missed in a view; then detections no person explains (a person found in
    one view only, :mod:`mocap.detect.recover_lone`); then, when that found any, tracked people again (the
    person now seen by two views is placed in the others)."""
    from mocap.detect.recover_scan import scan_round
    from mocap.multi.track import associate_take

    t0 = time.perf_counter()
    names = list(kp.camera_names)
    run = _Run(rig, kp, videos, video_frames, model, track_cfg, min_score, cfg, progress, workers, roi_model)
    stats = {"recovered": dict.fromkeys(names, 0), "recovered_lone": dict.fromkeys(names, 0),
             "looked": dict.fromkeys(names, 0), "rejected": {}, "no_free_slot": dict.fromkeys(names, 0),
             "withdrawn": dict.fromkeys(names, 0)}
    run.stats = stats

    def associate(through: Rig, current: Keypoints2D) -> tuple[np.ndarray, dict]:
        return associate_take(through, current, persons, track_cfg, min_score, progress=False,
                              two_view_birth=cfg.two_view_birth, quiet=True)
    try:
        scan_round(run, persons)  # people small in the image that no view found: looked for in tiles
        for k, step in enumerate(("tracked", "lone", "tracked")):
            current = Keypoints2D(run.data, kp.camera_names, kp.keypoint_set, kp.fps)
            slots, summary = associate(rig, current)
            stats.setdefault("persons_tracked", slots.shape[2])
            if k == 0 and persons == "auto" and slots.shape[2] < 2:  # nobody to be hidden behind another: a detection
                stats["skipped"] = "fewer than 2 people tracked"  # no person explains is a bystander or the person's
                break  # own misdetection (e.g. left/right swapped), costly to look for along its rays
            if k == 0 and (guided := guided_rig(rig, current, guide, stats)) is not rig:  # refined cameras
                rig = run.rig = guided
                slots, summary = associate(rig, current)
                stats["persons_tracked"] = slots.shape[2]  # the people the pass works on
            if k == 2 and run.withdraw(slots):  # recovered skeletons no person took: looked for again, as tracked
                current = Keypoints2D(run.data, kp.camera_names, kp.keypoint_set, kp.fps)
            coast = int(round(track_cfg.coast_max_s * kp.fps))
            X, radius = predict_people(rig, current, slots, min_score, track_cfg.min_joints, track_cfg.track_max_m / 2,
                                       track_cfg.coast_speed / kp.fps / 2, coast, max_reproj_px,
                                       summary.get("keypoint_masks"))
            if step == "tracked":
                run.tracked(X, radius, slots)
            else:
                before = sum(stats["recovered_lone"].values())
                run.lone(X, slots)
                if sum(stats["recovered_lone"].values()) == before:
                    break
    finally:
        if run.pool is not None:
            run.pool.close()
    stats["detections"] = run.recovered_at  # [frame, camera, slot, person (-1: lone), distance, gate]
    roi = [[int(v) for v in row[:3]] for row in run.recovered_at if tuple(row[:3]) in run.from_roi]  # on an ROI
    stats["detections_roi"], stats["recovered_roi"] = roi, {n: sum(r[1] == c for r in roi) for c, n in enumerate(names)}
    stats["seconds"] = time.perf_counter() - t0
    scan = stats.get("scan", {})
    log.info("recover: %d person boxes looked at, %d detections recovered %s (%d of people seen in one view, %d on "
             "the ROI of their prediction, %d of people found in tiles) in %.1f s", sum(stats["looked"].values()),
             sum(stats["recovered"].values()), stats["recovered"], sum(stats["recovered_lone"].values()),
             len(stats["detections_roi"]),
             sum(scan.get("found", {}).values()) + sum(scan.get("followed", {}).values()), stats["seconds"])
    return run.data, stats


class _Run:
    """The crops of one take: frames read once per round and camera, the model on each box, the verdicts."""

    def __init__(self, rig, kp, videos, video_frames, model, track_cfg, min_score, cfg, progress, workers=1,
                 roi_model=None):
        self.rig, self.kp, self.videos, self.video_frames = rig, kp, videos, video_frames
        self.roi_model = roi_model  # a RoiPose: the last look at a tracked person the crop did not give
        self.model, self.track_cfg, self.min_score, self.cfg, self.progress = model, track_cfg, min_score, cfg, progress
        self.data = kp.data.copy()
        self.names = list(kp.camera_names)
        self.mirror = get_keypoint_set(kp.keypoint_set).flip_permutation  # sides exchanged: no other person
        self.recovered_at: list = []
        self.from_roi: set = set()  # (frame, camera, slot) of the recovered found on an ROI (recover_roi)
        self.workers = workers  # processes computing a round's crops (0: one per core; see recover_pool)
        self.pool = None  # their recover_pool.Pool, once a round has used them
        self.stats: dict = {}

    def tracked(self, X: np.ndarray, radius: np.ndarray, slots: np.ndarray) -> None:
        uv_all = self.rig.project(X)  # (C, F, P, J, 2)

        def verdict(cand: Candidate, found: np.ndarray) -> tuple[int, str, float, np.ndarray]:
            f, c, n = cand.frame, cand.camera, found.shape[1]
            others = others_in_view(self.data[f, c, :, :n], np.delete(uv_all[c, f, :, :n], cand.person, axis=0),
                                    self.mirror)
            k, why, dist = judge(found, cand.predicted[:n], cand.gate_px, others, self.min_score, self.cfg.min_joints,
                                 self.cfg.duplicate_px * cand.box[2])
            if k >= 0:  # a keypoint beyond the tracker's outlier distance (twice the gate) is an outlier
                far = np.linalg.norm(found[k, :, :2] - cand.predicted[:n], axis=-1) > 2 * cand.gate_px
                found[k, far] = np.nan
            return k, why, dist, others

        def decide(cand: Candidate, found: np.ndarray) -> tuple[int, str, float]:
            return verdict(cand, found)[:3]

        retry: list = []  # (candidate, the crop's verdict): looked at once more on its ROI
        recent = radius <= self.track_cfg.track_max_m  # (F, P): the prediction's gate has not doubled (see recover_roi)

        def first(cand: Candidate, found: np.ndarray) -> tuple[int, str, float]:
            k, why, dist, others = verdict(cand, found)
            if (k < 0 and why in RETRY and self.roi_model is not None and recent[cand.frame, cand.person]
                    and not unexplained(found, others, cand.gate_px, self.min_score, self.cfg.min_joints,
                                        cand.predicted[:found.shape[1]], self.mirror)):
                retry.append((cand, why))
                return k, "", dist  # "": its verdict is the ROI's (counted there)
            return k, why, dist

        self.look(candidates(self.rig, X, radius, slots, self.cfg), first, lambda cand: cand.person)
        if retry:
            look_on_rois(self, retry, decide, lambda cand: cand.person)

    def lone(self, X: np.ndarray, slots: np.ndarray) -> None:
        from mocap.detect.recover_lone import lone_round

        lone_round(self, X, slots)

    def look(self, todo: list, decide, person) -> None:
        from mocap.detect import recover_pool

        stats, names, cfg = self.stats, self.names, self.cfg
        by_camera: dict[int, list] = {}
        for cand in todo:
            by_camera.setdefault(cand.camera, []).append(cand)
        for c in by_camera:  # in video-frame order (stable: as listed within a frame)
            by_camera[c].sort(key=lambda cand: int(self.video_frames[cand.frame]))
        bar = tqdm(total=len(todo), desc="   recover", unit="box", disable=None if self.progress else True,
                   leave=False)
        try:
            ready = recover_pool.computed(self, by_camera, bar)  # {camera: [found]} from workers, or None
            for c, cands in sorted(by_camera.items()):
                items = [(int(self.video_frames[cand.frame]), cand.box) for cand in cands]
                found_at = recover_pool.serial(self.videos[names[c]], items, self.model, cfg.crop_px) \
                    if ready is None else ready[c].__getitem__
                for k, cand in enumerate(cands):
                    stats["looked"][names[c]] += 1
                    if ready is None:
                        bar.update(1)
                    f = cand.frame
                    slot = free_slot(self.data[f, c])
                    if slot < 0:
                        stats["no_free_slot"][names[c]] += 1
                        continue
                    found = found_at(k)
                    if found is None:  # the video ends before this frame: nothing to look at
                        continue
                    best, why, dist = decide(cand, found)
                    if best >= 0:
                        self.write(f, c, found[best], person(cand), dist, cand.gate_px)
                    elif why:  # "": decided later (see recover_lone)
                        self.reject(c, why)
        finally:
            bar.close()

    def reject(self, c: int, why: str) -> None:
        self.stats["rejected"].setdefault(why, dict.fromkeys(self.names, 0))[self.names[c]] += 1

    def withdraw(self, slots: np.ndarray) -> int:
        """Recovered skeletons the association (slots (F, C, P)) gives to nobody are taken out again (a person
        found along its rays, placed less well than its prediction now allows). Returns how many."""
        taken = np.zeros(self.data.shape[:3], bool)
        f_, c_, p_ = np.nonzero(slots >= 0)
        taken[f_, c_, slots[f_, c_, p_]] = True
        keep = []
        for row in self.recovered_at:
            f, c, slot, person = row[:4]
            if taken[f, c, slot]:
                keep.append(row)
                continue
            self.data[f, c, slot] = np.nan
            self.from_roi.discard((f, c, slot))  # the slot may take a crop's skeleton next
            self.stats["recovered"][self.names[c]] -= 1
            if person == -1:
                self.stats["recovered_lone"][self.names[c]] -= 1
            self.stats["withdrawn"][self.names[c]] += 1
        n = len(self.recovered_at) - len(keep)
        self.recovered_at = keep
        return n

    def write(self, f: int, c: int, skeleton: np.ndarray, person: int, dist: float, gate: float) -> bool:
        """A recovered skeleton (J', 3) into the first free slot of view c in frame f."""
        slot = free_slot(self.data[f, c])
        if slot < 0:
            self.stats["no_free_slot"][self.names[c]] += 1
            return False
        self.data[f, c, slot, :len(skeleton)] = skeleton
        self.stats["recovered"][self.names[c]] += 1
        self.recovered_at.append([f, c, slot, person, round(dist, 3), round(gate, 2)])
        return True


def recover_session(session, detect_cfg, triangulate_cfg, work: Path, videos: dict[str, Path],
                    cfg: RecoverConfig = RecoverConfig(), progress: bool = True, guide: Guide | None = None
                    ) -> dict | None:
    """The detect stage's second pass on its finished file ``work`` (every camera detected): the recovered
    detections are written into it, and their counts into its ``info["recover"]``. Needs the given rig (the people
    are associated on it, or on the cameras ``guide`` refines from it); without one the pass is skipped with a
    warning. Returns the summary."""
    from mocap.detect.blazepose import CropPose
    from mocap.detect.pose_roi import RoiPose
    from mocap.io.hdf5 import read_keypoints2d, update_keypoints2d_info, write_camera
    from mocap.io.rig_files import read_rig

    rig_path = session.given_rig_path()
    kp = read_keypoints2d(work)
    if not rig_path.is_file():
        log.warning("recover: no rig (%s) yet to place people in the other views: no second pass", rig_path)
        return None
    try:
        rig = read_rig(rig_path).subset(kp.camera_names)
    except KeyError as e:
        log.warning("recover: %s: %s; no second pass", rig_path, e.args[0])
        return None
    frames = detect_cfg.start + detect_cfg.stride * np.arange(kp.shape[0])
    model = CropPose(detect_cfg.variant, detect_cfg.model_path or None, cfg.poses_per_crop, cfg.min_detection)
    roi_model = RoiPose(detect_cfg.variant, detect_cfg.model_path or None)
    try:
        data, stats = recover_detections(rig, kp, videos, frames, model, detect_cfg.persons,
                                         triangulate_cfg.association, triangulate_cfg.min_score,
                                         triangulate_cfg.max_reproj_px or None, cfg, progress, detect_cfg.workers,
                                         roi_model, guide)
    finally:
        model.close()
        roi_model.close()
    for c, name in enumerate(kp.camera_names):
        if stats["recovered"][name]:
            write_camera(work, c, data[:, c])
    found = stats["detections"] = [[int(v) for v in d[:4]] + [float(d[4]), float(d[5])] for d in stats["detections"]]
    px, m = [d[4] for d in found if d[3] >= 0], [d[4] for d in found if d[3] == -1]
    stats["distance_px_median"] = float(np.median(px)) if px else None  # to the tracked person's projection
    stats["ray_distance_m_median"] = float(np.median(m)) if m else None  # to the rays of a lone detection
    update_keypoints2d_info(work, recover=stats)
    return stats
