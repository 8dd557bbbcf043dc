"""Stage: bundle-adjusted smoothing of triangulated points against all 2D evidence.

Each person of the points is refined on their own. With several people (P > 1), each summary in
``info["summaries"]`` carries the person's ``name`` (``person2``) and a person that cannot be refined
(no triangulated point, or the solver refuses it) is left empty (NaN) and recorded in ``info["skipped"]``
(``[{"person", "reason"}]``) with a warning, not an error. The keypoints on the body of another person nearer
that camera weigh as triangulate weighed them (the noise ratio it measured, ``info["occlusion"]`` of both files;
:mod:`mocap.multi.overlap`). A view's left/right swap that the triangulate stage could not repair (two views
only) and the refined trajectory shows is exchanged and the person refined again (``refine.swaps``,
:mod:`mocap.stages.refine_swaps`; ``info["swaps"]``: the exchanges and their count per camera, which the
report applies to the keypoints it compares). A one-view ankle on the side of its ray the evidence rules out (the
knee bent backwards, a camera that would have seen it there and did not, two views that place it on the other) is
moved to its ray's other point and the person refined again (``refine.knees``, :mod:`mocap.stages.refine_knees`;
``info["knees"]``: per person, how many (frame, leg) had their ankle moved, when that solve was kept). A one-view toe
on the side of its ray the foot does not point to is moved likewise (``refine.toes``, :mod:`mocap.stages.refine_toes`;
``info["toes"]``)."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mocap.config import inline
from mocap.io.hdf5 import read_points3d
from mocap.keypoint_sets import get_keypoint_set, joint_groups
from mocap.multi.overlap import occlusion_weighting
from mocap.optim.refine import RefineConfig, RefineSummary, refine_person
from mocap.persons import person_name, speaking_of
from mocap.session import Session
from mocap.stages import Flag, refine_knees, refine_swaps, refine_toes, triangulate
from mocap.types import Keypoints2D, Points3D, Rig

log = logging.getLogger(__name__)
NAME = "refine"
HELP = "bundle-adjusted smoothing of the 3D points against all 2D evidence"
STAGE = "refined"  # the output's name: points3d/refined.h5


@dataclass(frozen=True)
class Config:
    solver: RefineConfig = inline(RefineConfig)  # its keys are refine's: refine.accel_sigma, refine.noise_px, ...
    min_score: float = 0.2  # detections below this confidence are ignored
    bones: bool = True  # constant bone-length term for the keypoint set's bones
    # left/right swaps of a view the triangulate stage's repair left (it needs three views) that the refined
    # trajectory shows: exchanged and the person refined again (mocap.stages.refine_swaps)
    swaps: bool = True
    # one-view ankles on the side of their ray the evidence rules out (a knee bent backwards, a camera that would
    # have seen them, two views placing them): moved to the ray's other side, the person refined again
    # (mocap.stages.refine_knees)
    knees: bool = True
    # one-view toes on the side of their ray the foot does not point to (far from the foot's usual direction along
    # the shin, the other side nearer): moved there, the person refined again (mocap.stages.refine_toes)
    toes: bool = True


FLAGS = (Flag("--noise-px", "noise_px", "2D noise σ in pixels (default: estimated)", float),
         Flag("--accel-sigma", "accel_sigma", "typical joint acceleration, m/s² (smaller: smoother)", float),
         Flag("--bone-sigma", "bone_sigma", "allowed bone-length variation, m", float))


def inputs(session: Session, settings) -> list[Path]:
    return session.keypoint_inputs() + [session.points3d(triangulate.STAGE)]


def outputs(session: Session, settings) -> list[Path]:
    return [session.points3d(STAGE)]


def run(rig: Rig, kp: Keypoints2D, init: Points3D, cfg: Config = Config()) -> tuple[Points3D, list[RefineSummary]]:
    F, C, P, J = kp.shape
    if init.xyz.shape != (F, P, J, 3):
        raise ValueError(f"refine: initial points {init.xyz.shape} do not match keypoints {(F, P, J, 3)}")
    ks = get_keypoint_set(kp.keypoint_set)
    bones = ks.bones if cfg.bones else ()
    loose = ks.loose_bones if cfg.bones else ()  # held by refine.loose_bone_sigma
    pairs = ks.pairs if cfg.bones else ()  # a side never triangulated takes the other side's bone lengths
    groups = joint_groups(ks)  # hands: their own noise level and finger bones
    w = triangulate.observation_weights(kp, cfg.min_score)
    ratio = init.info.get("occlusion", {}).get("sigma_ratio", 1.0)
    if P > 1 and ratio > 1:  # the occluded keypoints weigh as triangulate weighed them (measured there)
        w = w * occlusion_weighting(rig, kp, init.xyz, cfg.min_score, ratio)[0]
    xyz = np.full((F, P, J, 3), np.nan)
    err = np.full((F, P, J), np.nan)
    views = np.zeros((F, P, J, C), bool)
    summaries, kept, skipped = [], [], []
    swaps: list[list[int]] = []
    knees: dict[str, int] = {}  # per person: how many (frame, leg) had their one-view ankle moved (kept solves)
    toes: dict[str, int] = {}  # per person: how many one-view toes were moved (kept solves)
    boxes = refine_knees.person_boxes(kp.xy, w > 0) if cfg.knees and P > 1 else None  # who may hide whose feet
    for p in range(P):
        if not np.any(np.isfinite(init.xyz[:, p])):
            if P == 1:  # the one performer: nothing to refine is an error (it wrote an empty take, "usable")
                raise ValueError("refine: no triangulated point in the whole take: nothing to refine (see "
                                 "triangulate's log)")
            log.warning("%s has no triangulated point; left empty", person_name(p))
            skipped.append({"person": person_name(p), "reason": "no triangulated point"})
            continue
        with speaking_of(person_name(p) if P > 1 else None):  # the solvers' own lines name the person
            try:
                xyz[:, p], err[:, p], views[:, p], s = refine_person(
                    rig, kp.xy[:, :, p], w[:, :, p], init.xyz[:, p], bones, kp.fps, cfg.solver, groups, loose, pairs)
                xy, wp = kp.xy[:, :, p], w[:, :, p]
                if cfg.swaps:
                    xyz[:, p], err[:, p], views[:, p], s, found = _with_swaps(
                        rig, kp, w[:, :, p], p, (xyz[:, p], err[:, p], views[:, p], s), (bones, loose, pairs), groups,
                        cfg)
                    swaps.extend(refine_swaps.encode(found, p))
                    if found.any():
                        xy, wp = (refine_swaps.apply(a, found, kp.keypoint_set) for a in (xy, wp))
                if cfg.knees:
                    xyz[:, p], err[:, p], views[:, p], s, n = _with_knees(
                        rig, xy, wp, kp, p, (xyz[:, p], err[:, p], views[:, p], s), (bones, loose, pairs), groups, cfg,
                        (init.xyz[:, p], init.views[:, p]) if init.views is not None else None,
                        None if boxes is None else np.delete(boxes, p, axis=2))
                    if n:
                        knees[person_name(p)] = n
                if cfg.toes:
                    xyz[:, p], err[:, p], views[:, p], s, n = refine_toes.with_toes(
                        lambda start, xy=xy, wp=wp: refine_person(rig, xy, wp, start, bones, kp.fps, cfg.solver, groups,
                                                                  loose, pairs),
                        rig, (xyz[:, p], err[:, p], views[:, p], s), kp.keypoint_set)
                    if n:
                        toes[person_name(p)] = n
            except ValueError as e:
                if P == 1:
                    raise
                log.warning("%s is not refined, left empty: %s", person_name(p), e)
                skipped.append({"person": person_name(p), "reason": str(e)})
                continue
        summaries.append(s)
        # the solver's wall time goes to the log, not into the file: the same input gives the same bytes
        kept.append(({"name": person_name(p)} if P > 1 else {})
                    | {k: v for k, v in asdict(s).items() if k != "seconds"})
    info = {"stage": STAGE, "config": asdict(cfg), "summaries": kept}
    if cfg.swaps:
        per_camera = dict.fromkeys(rig.names, 0)
        for _, c, _, _ in swaps:
            per_camera[rig.names[c]] += 1
        info["swaps"] = {"views": swaps, "per_camera": per_camera}
    if cfg.knees:
        info["knees"] = knees
    if cfg.toes:
        info["toes"] = toes
    if P > 1 and ratio > 1:
        info["occlusion"] = {"sigma_ratio": float(ratio)}  # the weighting refine applied (triangulate's)
    if P > 1:
        info["skipped"] = skipped
        if "persons" in init.info:  # the association's record of each person, for the fit and the report
            info["persons"] = init.info["persons"]
    return Points3D(xyz, err, views, rig.names, kp.keypoint_set, kp.fps, info), summaries


def _with_swaps(rig: Rig, kp: Keypoints2D, w: np.ndarray, p: int, solved: tuple, segments, groups, cfg: Config):
    """Person p refined (``solved``: points, errors, views, summary) → refined again while the trajectory shows
    view groups with left and right exchanged (:mod:`mocap.stages.refine_swaps`; a group is exchanged once, at
    most :data:`~mocap.stages.refine_swaps.ROUNDS` rounds); returns the last solve and the exchanges (F, C, G)."""
    X, e, v, s = solved
    bones, loose, pairs = segments
    done = None
    for _ in range(refine_swaps.ROUNDS):
        xy, wp = (kp.xy[:, :, p], w) if done is None else \
            (refine_swaps.apply(kp.xy[:, :, p], done, kp.keypoint_set), refine_swaps.apply(w, done, kp.keypoint_set))
        sigma = s.noise_px * np.array([s.camera_noise.get(n, 1.0) for n in rig.names]) if s.camera_noise else s.noise_px
        found = refine_swaps.find_swaps(rig, xy, wp, X, kp.keypoint_set, sigma, cfg.solver.outlier_sigma)
        if done is not None:
            found &= ~done
        if not found.any():
            break
        done = found if done is None else done | found
        log.info("%s: %d view-frames with left and right exchanged that the refined trajectory shows (the swap "
                 "repair needs three views): exchanged, refined again", person_name(p), int(found.any(axis=-1).sum()))
        xy, wp = refine_swaps.apply(kp.xy[:, :, p], done, kp.keypoint_set), refine_swaps.apply(w, done, kp.keypoint_set)
        X, e, v, s = refine_person(rig, xy, wp, X, bones, kp.fps, cfg.solver, groups, loose, pairs)
    if done is None:
        done = np.zeros(kp.shape[:2] + (0,), bool)
    return X, e, v, s, done


def _with_knees(rig: Rig, xy: np.ndarray, w: np.ndarray, kp: Keypoints2D, p: int, solved: tuple, segments, groups,
                cfg: Config, tri: tuple[np.ndarray, np.ndarray] | None = None, others: np.ndarray | None = None):
    """Person p refined (``solved``; ``xy``, ``w`` its keypoints as refined, swaps exchanged; ``tri``: its triangulated
    points and views; ``others``: the other people's boxes in each view) → refined again from its one-view ankles
    moved to the other side of their ray where that one is the side the evidence takes
    (:func:`mocap.stages.refine_knees.unbend`: the knee bent backwards, a camera that would have seen the ankle there
    and did not, two views that place it there), kept when that leaves fewer such ankles on the frames the first
    solve judged, counting those it leaves out (:func:`~mocap.stages.refine_knees.lost_ankles`); returns the solve
    kept and how many (frame, leg) were moved (0: the first solve)."""
    X, err, v, s = solved
    bones, loose, pairs = segments
    seen = w > 0
    before = refine_knees.implausible(rig, X, v, kp.keypoint_set, seen, tri, others)
    if not before:
        return X, err, v, s, 0
    start, moved = refine_knees.unbend(rig, X, v, kp.keypoint_set, seen, tri, others)
    if not moved.any():
        return X, err, v, s, 0
    try:
        again = refine_person(rig, xy, w, start, bones, kp.fps, cfg.solver, groups, loose, pairs)
    except ValueError as e:  # the first solve stands
        log.warning("%s: refined again from its one-view ankles moved, the solve failed (%s): the first kept",
                    person_name(p), e)
        return X, err, v, s, 0
    after = refine_knees.implausible(rig, again[0], v, kp.keypoint_set, seen, tri, others)  # the first solve's frames
    after += refine_knees.lost_ankles(X, again[0], kp.keypoint_set)  # and the ankles it no longer places
    log.info("%s: %d one-view ankles on the side of their ray the evidence rules out (the knee bent backwards by more "
             "than %.0f°, a camera that would have seen it, two views that place it elsewhere): %d moved to the other "
             "side, refined again: %d left (%s)", person_name(p), before,
             np.degrees(np.arcsin(refine_knees.HYPEREXTENDED)), int(moved.sum()), after,
             "kept" if after < before else "the first solve kept")
    return (*again, int(moved.sum())) if after < before else (X, err, v, s, 0)


def summary(session: Session, settings) -> list[str]:
    """Lines for the terminal after ``mocap refine``."""
    path = session.points3d(STAGE)
    if not path.is_file():
        return []
    info = read_points3d(path).info
    return [f"refine{' ' + s['name'] if 'name' in s else ''}: {s['iterations']} iterations, σ {s['noise_px']:.2f}px, "
            f"RMS {s['rms_px']:.2f}px, {s['rejected']}/{s['observations']} rejected, "
            f"{'usable' if s['usable'] else 'NOT usable'}: {s['message']}" for s in info.get("summaries", [])] + \
        [f"refine {s['person']}: not refined ({s['reason']})" for s in info.get("skipped", [])]


def main(session: Session | str | Path, settings=None, overwrite: bool = False) -> Path:
    """``settings``: the pipeline's Settings, or this stage's Config."""
    from mocap.settings import as_settings

    session = session if isinstance(session, Session) else Session(Path(session))
    cfg = as_settings(settings).refine
    out = session.points3d(STAGE)
    if out.exists() and not overwrite:
        log.info("%s exists, skipping refinement", out)
        return out
    src = session.points3d(triangulate.STAGE)
    if not src.is_file():
        raise FileNotFoundError(f"refine: {src} is missing; the triangulate stage makes it "
                                f"(mocap triangulate {session.root})")
    init = read_points3d(src)
    rig = session.rig()
    single = init.info.get("config", {}).get("single_performer", True)  # the same people as the initial points
    kp = triangulate.session_keypoints(session, rig, single)
    if kp.shape[2] != init.xyz.shape[1]:
        raise ValueError(f"refine: {src} holds {init.xyz.shape[1]} people but the session's 2D keypoints, read as "
                         f"the triangulate stage read them, have {kp.shape[2]} per view; run the triangulate stage "
                         f"again (mocap triangulate {session.root})")
    points, summaries = run(rig, kp, init, cfg)
    for s, kept in zip(summaries, points.info["summaries"], strict=True):
        if not s.usable:
            log.warning("%s%s", f"{kept['name']}: " if "name" in kept else "", s)
    return triangulate.write_outputs(points, out)
