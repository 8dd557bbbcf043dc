"""``mocap bench multiperson``: association and tracking of several people against synthetic truth.

A crowd take (:mod:`mocap.synth.multiperson`: crossing paths, occlusion, merged and missed detections,
detections that are not people, shuffled slots, people entering and leaving) is associated and
tracked (:func:`mocap.multi.track.associate_take`), and scored against the slot owners:

* association accuracy: of the person-frames whose person has a detection of its own in ≥ 2 views,
  the share where one identity holds ≥ 2 of that person's detections and nothing else (a detection
  merging two people counts for both);
* identity switches: per true person, the times the identity holding most (≥ 2) of its detections
  changes (a tie keeps the previous holder; a detection merging two people counts for neither);
* per-person MPJPE after triangulate (keypoints on another person's body left out and the people triangulated
  again, as the stage does: :mod:`mocap.multi.other_body`) + refine, against the same with the true association;
* time per frame of the association (wall and this process's CPU), against people (1–10) and
  cameras (4–16), with every OpenBLAS at one thread as ``mocap run`` runs it (:mod:`mocap.blas_threads`: a
  second thread only spins between the association's small products, and counted as CPU time).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass

import numpy as np

from mocap import blas_threads
from mocap.multi.slots import apply_slots
from mocap.multi.track import TrackConfig, associate_take
from mocap.synth import CorruptionSpec, RigSpec
from mocap.synth.multiperson import CrowdSpec, CrowdTake, in_place, load_motions, make_crowd
from mocap.types import Keypoints2D

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MultiBenchConfig:
    bvh: str = ""  # motion clip; "": a synthetic walking figure (COCO 17)
    frames: int = 2000
    fps: float = 60.0
    people: tuple[int, ...] = (3, 5)  # accuracy runs (4 cameras, ``frames`` frames, with refine)
    scale_people: tuple[int, ...] = (1, 2, 3, 5, 8, 10)
    scale_cameras: tuple[int, ...] = (4, 8, 16)
    scale_frames: int = 300
    noise_px: float = 2.0
    outliers: float = 0.05
    dropouts: float = 0.10
    refine: bool = True
    seed: int = 0


def true_slots(take: CrowdTake) -> np.ndarray:
    """(F, C, N): each person's slot per view (-1 where not detected): the association when given."""
    F, C, S = take.owner.shape
    N = take.truth.shape[1]
    out = np.full((F, C, N), -1, np.int16)
    f, c, s = np.nonzero(take.owner >= 0)
    out[f, c, take.owner[f, c, s]] = s
    return out


def score(take: CrowdTake, slots: np.ndarray) -> dict:
    """Association accuracy, identity switches and the identity → person map."""
    F, C, P = slots.shape
    N = take.truth.shape[1]
    idx = np.clip(slots, 0, None).astype(np.intp)
    own = np.where(slots >= 0, np.take_along_axis(take.owner, idx, axis=2), -9)  # (F, C, P)
    mer = np.where(slots >= 0, np.take_along_axis(take.merged_with, idx, axis=2), -9)
    mapping = []
    for p in range(P):
        o = own[:, :, p]
        mapping.append(int(np.bincount(o[o >= 0], minlength=N).argmax()) if (o >= 0).any() else -1)
    detected = (take.owner[..., None] == np.arange(N)).any(2)  # (F, C, N): a detection of its own
    eligible = detected.sum(axis=1) >= 2  # (F, N)
    correct = np.zeros((F, N), bool)
    for p, i in enumerate(mapping):
        if i < 0:
            continue
        assigned = slots[:, :, p] >= 0
        mine = (own[:, :, p] == i) | (mer[:, :, p] == i)
        ok = (assigned.sum(axis=1) >= 2) & np.all(~assigned | mine, axis=1)
        correct[:, i] |= ok
    switches, holders = 0, []
    for i in range(N):  # the identity reconstructing person i: most of its own detections, at least two
        pure = [(own[:, :, p] == i) & (mer[:, :, p] < 0) for p in range(P)]  # merged detections belong to both
        counts = np.stack([m.sum(axis=1) for m in pure], 1) if P else np.zeros((F, 1), int)
        previous = -1
        held = set()
        for f in range(F):
            best = counts[f].max()
            if best < 2:
                continue
            tied = np.flatnonzero(counts[f] == best)
            holder = previous if previous in tied else int(tied[0])
            switches += int(previous >= 0 and holder != previous)
            previous = holder
            held.add(holder)
        holders.append(sorted(held))
    return {"accuracy": float(correct[eligible].mean()) if eligible.any() else 1.0,
            "person_frames": int(eligible.sum()), "identity_switches": switches, "identities": P,
            "identity_to_person": mapping, "identities_per_person": holders}


def _reconstruct(take: CrowdTake, slots: np.ndarray, refine: bool, masks: list | None = None) -> np.ndarray:
    from mocap.stages import refine as refine_stage
    from mocap.stages import triangulate

    kp = apply_slots(take.keypoints, slots, masks)  # masks: the other body's keypoints in a merged detection
    cfg = triangulate.Config()
    points = triangulate.run(take.rig, kp, cfg)
    if cfg.other_body and kp.shape[2] > 1:  # as the stage: keypoints on another person's body (or putting a joint
        from mocap.multi.other_body import left_out  # beyond its body's reach) left out, again

        other, far = left_out(take.rig, kp, points, cfg.min_score, cfg.max_reproj_px or 15.0)
        drop = other | far
        if drop.any():
            kp = Keypoints2D(np.where(drop[..., None], np.nan, kp.data), kp.camera_names, kp.keypoint_set, kp.fps)
            points = triangulate.run(take.rig, kp, cfg)
    if not refine:
        return points.xyz
    return refine_stage.run(take.rig, kp, points, refine_stage.Config())[0].xyz


def _mpjpe_mm(X: np.ndarray, truth: np.ndarray) -> float:
    e = np.linalg.norm(X - truth, axis=-1)
    return 1000 * float(np.nanmean(e)) if np.isfinite(e).any() else float("nan")


def make(cfg: MultiBenchConfig, people: int, cameras: int, frames: int) -> CrowdTake:
    if cfg.bvh:
        motions, ks = load_motions(cfg.bvh, people, frames, cfg.fps)
    else:
        from mocap.synth.figure import walking_figure

        motions, ks = [in_place(walking_figure(frames, cfg.fps, seed=i), "coco17") for i in range(people)], "coco17"
    spec = CrowdSpec(people=people, seed=cfg.seed)
    return make_crowd(motions, ks, cfg.fps, spec, RigSpec(n_cameras=cameras),
                      CorruptionSpec(cfg.noise_px, cfg.outliers, cfg.dropouts, seed=cfg.seed))


def accuracy_row(cfg: MultiBenchConfig, people: int, progress=None) -> dict:
    take = make(cfg, people, 4, cfg.frames)
    with blas_threads.limited(1):
        t0, c0 = time.perf_counter(), time.process_time()
        slots, summary = associate_take(take.rig, take.keypoints, people, progress=False)
        ms, cpu = (1000 * (time.perf_counter() - t0) / cfg.frames, 1000 * (time.process_time() - c0) / cfg.frames)
    row = {"people": people, "cameras": 4, "frames": cfg.frames, "ms_per_frame": ms, "cpu_ms_per_frame": cpu,
           **score(take, slots),
           "closest_approach_m": take.stats["closest_approach_m"], "merged": take.stats["merged_detections"],
           "missed_views": take.stats["missed_views"], "not_people_views": take.stats["clutter_views"]}
    if progress:
        progress(f"{people} people: reconstruct")
    est = _reconstruct(take, slots, cfg.refine, summary.get("keypoint_masks"))
    given = _reconstruct(take, true_slots(take), cfg.refine)
    per = []
    for i in range(people):
        ids = [p for p, m in enumerate(row["identity_to_person"]) if m == i]
        X = np.full_like(take.truth[:, i], np.nan)
        for p in ids:  # the person's frames from each identity mapped to them
            X = np.where(np.isfinite(X), X, est[:, p])
        per.append({"person": i, "mpjpe_mm": _mpjpe_mm(X, take.truth[:, i]),
                    "given_mpjpe_mm": _mpjpe_mm(given[:, i], take.truth[:, i]),
                    "frames_reconstructed": int(np.sum(np.isfinite(X[..., 0]).any(-1)))})
        per[-1]["ratio"] = per[-1]["mpjpe_mm"] / per[-1]["given_mpjpe_mm"]
    row["persons"] = per
    row["worst_ratio"] = max(p["ratio"] for p in per)
    return row


def scaling_row(cfg: MultiBenchConfig, people: int, cameras: int) -> dict:
    take = make(cfg, people, cameras, cfg.scale_frames)
    with blas_threads.limited(1):
        t0, c0 = time.perf_counter(), time.process_time()
        slots, _ = associate_take(take.rig, take.keypoints, people, TrackConfig(), progress=False)
        ms = 1000 * (time.perf_counter() - t0) / cfg.scale_frames
        cpu = 1000 * (time.process_time() - c0) / cfg.scale_frames
    s = score(take, slots)
    return {"people": people, "cameras": cameras, "ms_per_frame": ms, "cpu_ms_per_frame": cpu,
            "accuracy": s["accuracy"], "identity_switches": s["identity_switches"], "identities": s["identities"]}


def run(cfg: MultiBenchConfig, progress=None) -> dict:
    ours = logging.getLogger("mocap")
    saved = ours.level
    ours.setLevel(logging.ERROR)  # the tracker's warnings on the crowd takes, during the bench only
    try:
        rows = []
        for n in cfg.people:
            if progress:
                progress(f"{n} people, 4 cameras, {cfg.frames} frames")
            rows.append(accuracy_row(cfg, n, progress))
        scaling = []
        for c in cfg.scale_cameras:
            for n in cfg.scale_people:
                if progress:
                    progress(f"timing: {n} people, {c} cameras")
                scaling.append(scaling_row(cfg, n, c))
    finally:
        ours.setLevel(saved)
    return {"config": asdict(cfg), "accuracy": rows, "scaling": scaling}
