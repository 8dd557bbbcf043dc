"""Stage: refine the camera poses from the performer (``calibration/refined/``), validated on held-out frames.

A bundle adjustment (:mod:`mocap.optim.rig_refine`) of the camera poses and the 3D keypoints, with one
camera's given pose kept; keypoints fix the rig only up to a similarity, so the refined rig is then put in the
world by the cameras that kept their given poses, and solved about one of them (the first camera may be the
bumped one: :mod:`mocap.optim.rig_anchor`); when no two agree, about the first, scaled until the cameras' mean
distance to it is the given rig's (``mean_distance_scale``). The take is cut into
blocks of ``block_s`` seconds; even blocks estimate the rig (every ``stride``-th frame, keypoints seen
by ``min_views`` views), odd blocks judge it: their keypoints are triangulated (robust DLT) through the
given rig and through the estimate, and the median reprojection error over every detection is compared.
The refined rig is applied only when that held-out error drops by ``min_heldout_gain`` and no camera
moves more than ``max_move_deg`` / ``max_move_m`` (fewer than half of the cameras that would: kept as given, the
others refined without them, :func:`mocap.stages.rig_refine_kept.keeping`). Refusals (too few frames seen by 3
views, too little motion, fewer than 3 cameras that see the performer) say why; a camera that hardly sees the
performer (black, covered: fewer than ``min_camera_points`` keypoints) keeps its given pose, named in a warning and
the report's ``kept_cameras``, and the others are refined (:mod:`mocap.stages.rig_refine_kept`). Switch:
``rig_refine.enabled = false``.

Cost: the accuracy needs many points (a 6–8 camera ring needs ~12,000 for 0.05°), a solve from the
given rig many iterations. With more than twice ``warm_points`` points, the adjustment first converges
on ``warm_points`` points of evenly spread frames (loosely: ``warm_tolerance``), the points are then
triangulated through that estimate and the adjustment on all of them starts there: the outliers are
told from the residuals at the start (``warm_robust_iterations`` robust steps, none by default), and
the least-squares pass stops at ``polish_tolerance`` or after ``polish_iterations`` (2) steps on all
points instead of twenty (``mocap bench robustness`` measures it; a third step moved the cameras by
hundredths of a millimetre on 4–8 camera rings); the second is a chord step (the first step's Jacobian
with the residuals after it: a projection instead of a Jacobian, ``RigRefineConfig.frozen_jacobian``).
The warm start's 1,000 points (``warm_points``) give the cameras of 2,500 after the polish. Every
triangulation here (the start, the points through the warm estimate, the held-out frames through the
given and the refined rig) is the robust triangulation on normal terms
(:func:`~mocap.geometry.normal_terms.robust_points`: the same points as
:func:`~mocap.geometry.triangulation.triangulate`), the observations undistorted once for all the rigs.

Outputs: ``calibration/refined/report.json`` always (per camera moves in degrees and millimetres, the
errors before and after on the frames used (the median reprojection error over their detections, of
their points triangulated through the given rig, and of the adjusted points through the refined one) and on
the held-out ones, ``applied`` and ``reason``), and ``calibration/refined/rig.toml`` only when applied; then
:meth:`Session.rig` returns it to the later stages. The given rig file is never changed; this stage reads it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mocap.geometry.align import aligned_camera_errors
from mocap.geometry.normal_terms import camera_pairs, finite
from mocap.geometry.rig_errors import heldout_error, median_error, points3d, same_intrinsics
from mocap.geometry.triangulation import normalise_observations
from mocap.io.atomic import atomic_write, atomic_write_text
from mocap.keypoint_sets import get_keypoint_set
from mocap.optim.rig_anchor import anchor, placed, refine_rig_about
from mocap.optim.rig_refine import RigRefineConfig, along_axis, moves
from mocap.session import Session
from mocap.stages import Flag, rig_people
from mocap.stages.rig_lags import refine_with_lags
from mocap.stages.rig_moves import callbacks, check_moves_config, look_for_moves
from mocap.stages.rig_refine_kept import keeping, kept_cameras, refusal
from mocap.stages.rig_refine_reference import about_another
from mocap.stages.rig_units import check_rig_units
from mocap.types import Keypoints2D, Rig

log = logging.getLogger(__name__)
NAME = "rig_refine"
HELP = "refine the camera poses from the performer (bundle adjustment), applied only when held-out frames improve"
LIMBS = tuple(f"{s}_{j}" for j in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle") for s in ("left", "right"))


@dataclass(frozen=True)
class Config:
    enabled: bool = True  # false: the given rig is used as it is
    joints: str = "limbs"  # keypoints used: limbs (shoulders … ankles, when the set has them) | all
    stride: int = 1  # estimation uses every N-th frame of its blocks
    max_points: int = 15000  # ... and at most this many points (the stride grows to fit)
    warm_points: int = 1000  # converge first on this many points of evenly spread frames, then on all (0: no);
    # the polish settles the cameras: after it, 1,000 or 2,500 give the same camera errors on 4–8 camera
    # rings (bench robustness, 3 seeds), the start costs half
    warm_tolerance: float = 1e-3  # the start stops when a step lowers the cost by less (relative)
    warm_robust_iterations: int = 0  # from there, robust iterations on all points before their outliers are told
    polish_tolerance: float = 1e-5  # ... and the least-squares pass on all points stops at this relative decrease
    polish_iterations: int = 2  # ... or after this many steps: from the warm start, the first step lands
    # within the noise and the second settles it (a third changed nothing measurable, see the module docstring)
    block_s: float = 0.5  # estimation and held-out blocks alternate, this long (seconds)
    min_frames: int = 30  # refused with fewer frames that 3 cameras see
    min_views: int = 3  # a keypoint is used when this many cameras see it
    min_camera_points: int = 30  # a camera that sees fewer of the used keypoints keeps its given pose
    min_motion_m: float = 0.05  # refused when the keypoints move less than this (median per-joint spread)
    min_score: float = 0.2  # detections below this confidence are ignored
    max_move_deg: float = 5.0  # not applied when a camera turns more (nor a camera moved mid-take read back) ...
    max_move_m: float = 0.3  # ... or moves more
    min_heldout_gain: float = 0.03  # applied when the held-out median error drops by this fraction
    min_camera_gain: float = 0.25  # ... and some camera's own held-out error drops by this fraction: a camera
    # whose pose is off shows it that way, while small even drops in every camera are the detector's own
    # view-dependent bias, which moving the cameras would absorb at the cost of the world frame
    max_eval_frames: int = 150  # the held-out errors before / after are measured on at most this many frames
    max_eval_views: int = 600  # ... and this many frames × cameras (4 cameras: 150 frames, 8: 75; each camera
    # keeps as many detections, the robust triangulations through both rigs cost the same with more cameras)
    max_reproj_px: float = 15.0  # robust triangulation of the evaluation (views beyond are dropped)
    pair_partners: int | None = 3  # the robust triangulations that seed the adjustment (the start, the points
    # through the warm estimate) search each camera's this many best-conditioned partners for a consensus pair,
    # not all C(C − 1)/2 pairs (None: all; with 4 cameras 3 is all of them). The held-out frames search every
    # pair (fewer left the given rig's held-out error up to a quarter higher with 6 cameras: a biased judge)
    refine_intrinsics: bool = False  # also refine focal scale and principal point
    prior_deg: float = 0.5  # σ of a prior keeping each camera's rotation near the given rig's (0: none) ...
    prior_m: float = 0.03  # ... and its centre (metres): it settles what the take barely observes
    world_tolerance_deg: float = 0.25  # cameras whose refined poses agree with their given ones this well (after
    world_tolerance_m: float = 0.025  # one change of frame) place the refined rig in the world (mocap.optim.rig_anchor)
    moves_min_part_s: float = 5.0  # a camera moved mid-take (mocap.stages.rig_moves): parts at least this long (0: off)
    moves_min_gain: float = 0.15  # ... its own pose lowers the moved part's held-out error by this fraction
    moves_frames: int = 150  # ... judged on this many frames, evenly spread

    def __post_init__(self) -> None:
        if self.joints not in ("limbs", "all"):
            raise ValueError(f"rig_refine: joints must be limbs or all, got {self.joints!r}")
        if self.min_views < 2 or self.stride < 1 or self.min_frames < 1 or self.warm_points < 0:
            raise ValueError(f"rig_refine: min_views must be ≥ 2, stride and min_frames ≥ 1, warm_points ≥ 0; got "
                             f"{self.min_views}, {self.stride}, {self.min_frames}, {self.warm_points}")
        if not self.block_s > 0:
            raise ValueError(f"rig_refine: block_s must be positive, got {self.block_s}")
        if self.max_eval_frames < 1 or self.max_eval_views < 1:
            raise ValueError(f"rig_refine: max_eval_frames and max_eval_views must be ≥ 1, got "
                             f"{self.max_eval_frames}, {self.max_eval_views}")
        if self.pair_partners is not None and self.pair_partners < 1:
            raise ValueError(f"rig_refine: pair_partners must be ≥ 1 (or None: every pair), got {self.pair_partners}")
        if not (self.world_tolerance_deg > 0 and self.world_tolerance_m > 0):
            raise ValueError(f"rig_refine: world_tolerance_deg and world_tolerance_m must be positive, got "
                             f"{self.world_tolerance_deg}, {self.world_tolerance_m}")
        if self.polish_iterations < 1:
            raise ValueError(f"rig_refine: polish_iterations must be ≥ 1, got {self.polish_iterations}")
        if not (self.warm_tolerance > 0 and self.polish_tolerance > 0) or self.warm_robust_iterations < 0:
            raise ValueError(f"rig_refine: warm_tolerance and polish_tolerance must be positive and "
                             f"warm_robust_iterations ≥ 0; got {self.warm_tolerance}, {self.polish_tolerance}, "
                             f"{self.warm_robust_iterations}")
        check_moves_config(self)


FLAGS = (Flag("--off", "enabled", "keep the given rig (no camera refinement)", value=False),
         Flag("--refine-intrinsics", "refine_intrinsics", "also refine focal length and principal point",
              aliases=("--intrinsics",)))


def inputs(session: Session, settings) -> list[Path]:
    from mocap.stages import sync  # not at the top: sync imports this module

    out = [session.given_rig_path(), session.pose2d_input()]
    return out + [p for p in [session.metadata_file] if p.is_file()] + sync.audio_files(session)  # sync's check


def outputs(session: Session, settings) -> list[Path]:
    d = session.refined_rig_dir
    return [d / "report.json"] + ([d / "rig.toml"] if session.refined_rig_file() else []) + \
        [p for p in [session.camera_moves_file()] if p is not None]


def resolved(settings) -> dict:
    """Part of the cache key: with several people (``detect.persons`` ≠ 1), the refinement runs on every person
    associated with triangulate's settings (:func:`mocap.detect.select.all_people`, :mod:`.rig_people`); sync's,
    whose test on the refined rig decides whether the cameras are refined again on keypoints shifted back in time
    (:mod:`mocap.stages.rig_lags`)."""
    from mocap.detect.select import association_key

    return association_key(settings) | {"sync_check": asdict(settings.sync)}


def used_joints(keypoint_set: str, joints: str) -> list[int]:
    """Indices of the joints used: the limbs (shoulders … ankles, which move the most) when ``joints`` is
    ``limbs`` and the set has at least six of them, else all."""
    names = get_keypoint_set(keypoint_set).joints
    limbs = [i for i, n in enumerate(names) if n in LIMBS] if joints == "limbs" else []
    return limbs if len(limbs) >= 6 else list(range(len(names)))


def _observations(kp: Keypoints2D, cfg: Config) -> tuple[np.ndarray, np.ndarray]:
    """(F, C, J, 2) pixels of the used joints of person 0 (NaN: unusable) and the joint indices."""
    joints = used_joints(kp.keypoint_set, cfg.joints)
    sub = np.take(kp.data[:, :, 0], joints, axis=2)  # (F, C, J, 3): one gather (indexing x, y and score
    score = sub[..., 2]  # apart each with the joints costs three times as much)
    ok = np.isfinite(score) & (score >= cfg.min_score)
    return np.where(ok[..., None], sub[..., :2], np.nan), np.array(joints)


def _split(F: int, fps: float, block_s: float) -> np.ndarray:
    """(F,) bool: the estimation frames (even blocks); the others are held out."""
    block = max(1, int(round(block_s * fps)))
    return (np.arange(F) // block) % 2 == 0


def run(rig: Rig, kp: Keypoints2D, cfg: Config = Config(), persons: int = 1) -> tuple[Rig | None, dict]:
    """(the refined rig, or None when refused or not applied; the report). ``persons``: how many people
    ``kp``'s frames hold one after another (:func:`mocap.detect.select.all_people`): the motion is each
    one's own (two people standing still apart are not a moving performer)."""
    refined, report = candidate(rig, kp, cfg, persons)
    return (refined if report["applied"] else None), report


def candidate(rig: Rig, kp: Keypoints2D, cfg: Config = Config(), persons: int = 1, keep_far: bool = True
              ) -> tuple[Rig | None, dict]:
    """:func:`run`, with the refined rig also when it is not applied (None only when refused or switched off):
    sync's check of a lagging camera (:mod:`mocap.stages.rig_lags`) runs on it. Cameras that hardly see the
    performer keep their given poses and the others are refined, and so do a minority of cameras that would move
    further than ``max_move_deg`` / ``max_move_m`` (``keep_far``, :func:`mocap.stages.rig_refine_kept.keeping`)."""
    if tuple(kp.camera_names) != rig.names:
        raise ValueError(f"rig_refine: keypoint cameras {list(kp.camera_names)} differ from rig {list(rig.names)}")
    kept = kept_cameras(rig, kp, cfg, _observations, _split) if cfg.enabled else {}

    def refine(r: Rig, k: Keypoints2D) -> tuple[Rig | None, dict]:
        return keeping(r, k, cfg, kept, lambda r2, k2: _candidate(r2, k2, cfg, persons), _observations, keep_far)
    refined, report = refine(rig, kp)  # about the first camera; where it is the one off, about another
    other = about_another(rig, kp, cfg, report, refine) if keep_far else None
    return other or (refined, report)


def _candidate(rig: Rig, kp: Keypoints2D, cfg: Config, persons: int) -> tuple[Rig | None, dict]:
    t0 = time.perf_counter()
    report = {"config": asdict(cfg), "cameras": list(rig.names), "applied": False}
    if not cfg.enabled:
        return None, report | {"reason": "switched off (rig_refine.enabled = false): the given rig is used"}
    xy, joints = _observations(kp, cfg)
    F, C = xy.shape[:2]
    views = finite(xy).sum(axis=1)  # (F, J)
    good = (views >= 3).sum(axis=1) >= max(3, len(joints) // 2)  # frames that 3 cameras see well
    estimate = _split(F, kp.fps, cfg.block_s)
    report |= {"frames": int(F), "persons": int(persons), "frames_3_views": int(good.sum()),  # frames: of them all
               "joints": [int(j) for j in joints]}
    why = refusal(len(rig), good, estimate, cfg)
    if why:
        log.warning("rig_refine: refused: %s; the given rig is used", why)
        return None, report | {"reason": f"refused: {why}", "refused": True}
    est = np.flatnonzero(estimate & good)
    stride = max(cfg.stride, int(np.ceil(len(est) * len(joints) / cfg.max_points)))
    est = est[::stride]
    uv, which, frame = _used(xy, est, cfg.min_views)
    xn = normalise_observations(rig, uv)  # undistorted once: every rig tried here has the given intrinsics
    solver = RigRefineConfig(intrinsics=cfg.refine_intrinsics, prior_deg=cfg.prior_deg or None,
                             prior_m=cfg.prior_m or None)
    warm = bool(cfg.warm_points) and len(uv) > 2 * cfg.warm_points
    # the first estimate (on every point, or on the warm start's evenly spread frames) also tells the motion
    few = np.isin(frame, est[::int(np.ceil(len(uv) / cfg.warm_points))]) if warm else slice(None)
    uv0, which0 = uv[few], which[few]
    pairs = camera_pairs(rig, cfg.pair_partners)  # the same for every rig tried: they differ by a few degrees
    X = points3d(rig, uv0, cfg.max_reproj_px, xn[few], pairs)
    who = frame[few] // max(1, F // max(persons, 1))  # the person of each point: the most any one moves
    spread = max(_spread(X[who == p], which0[who == p]) for p in range(max(persons, 1)))
    if not spread >= cfg.min_motion_m:
        why = (f"too little motion: the keypoints move {1000 * spread:.0f} mm (rig_refine.min_motion_m = "
               f"{1000 * cfg.min_motion_m:.0f} mm)")
        log.warning("rig_refine: refused: %s; the given rig is used", why)
        return None, report | {"reason": f"refused: {why}", "refused": True}
    start = None
    u0 = median_error(rig, X, uv0)[0]  # the frames used, through the given rig
    polish = dataclasses.replace(solver, robust_iterations=cfg.warm_robust_iterations,
                                 tolerance=cfg.polish_tolerance, max_iterations=cfg.polish_iterations,
                                 frozen_jacobian=True)
    tol, ref = (cfg.world_tolerance_deg, cfg.world_tolerance_m), 0
    if warm:  # converged on a few thousand points, then polished on all of them from there
        rough = dataclasses.replace(solver, robust_tolerance=cfg.warm_tolerance, tolerance=cfg.warm_tolerance)
        start, Xw, first = refine_rig_about(0, rig, uv0, X, rough)
        start = start if first.usable else None
        if start is not None:  # solved again about a camera that kept its pose (the first may be the bumped one)
            agree, ref = anchor(start, rig, *tol)
            if ref:
                start, Xw = placed(start, Xw, rig, agree)
                start, _, first = refine_rig_about(ref, rig, uv0, Xw, rough, start=start)
                start = start if first.usable else None
        r = start or rig
        X = points3d(r, uv, cfg.max_reproj_px, xn if same_intrinsics(r, rig) else None, pairs)
    refined, X, summary = refine_rig_about(ref, rig, uv, X, polish if start else solver, start=start)
    agree, again = anchor(refined, rig, *tol)
    if again and not ref:  # found only now: solved again about a camera that kept its pose, from there
        start, X = placed(refined, X, rig, agree)
        refined, X, summary = refine_rig_about(again, rig, uv, X, solver, start=start)
        agree, ref = anchor(refined, rig, *tol)[0], again
    refined, X = placed(refined, X, rig, agree, ref)  # on the cameras that agree, else scaled about the held one
    moved_deg, moved_mm = moves(refined, rig)
    u1 = median_error(refined, X, uv, summary.residuals_px)[0]  # ... through the refined one, the adjusted points
    held = _points(xy, np.flatnonzero(~estimate), max(1, min(cfg.max_eval_frames, cfg.max_eval_views // C)))
    held_n = normalise_observations(rig, held)
    (h0, h0c), (h1, h1c) = (heldout_error(r, held, cfg.max_reproj_px, held_n if same_intrinsics(r, rig) else None)
                            for r in (rig, refined))  # every pair: the judge is triangulate's robust point
    gain = (h0 - h1) / h0 if h0 > 0 else 0.0
    why = []
    if not summary.usable:
        why.append(f"the adjustment is not usable ({summary.message})")
    if not gain >= cfg.min_heldout_gain:
        why.append(f"held-out error {h0:.2f} → {h1:.2f} px: gain {100 * gain:.1f} % < "
                   f"{100 * cfg.min_heldout_gain:.0f} %")
    drops = {n: 1 - h1c[n] / h0c[n] for n in rig.names
             if n in h0c and n in h1c and np.isfinite(h0c[n]) and np.isfinite(h1c[n]) and h0c[n] > 0}
    best = max(drops, key=drops.get) if drops else None
    if best is None or not drops[best] >= cfg.min_camera_gain:
        shown = f" (largest: {best} {-100 * drops[best]:+.0f} %)" if best else ""  # an error that grew: +
        why.append(f"no camera's held-out error drops by {100 * cfg.min_camera_gain:.0f} %{shown}: what is left "
                   "looks like the detector's bias, not a camera's pose")
    big = [n for n in rig.names
           if moved_deg[n] > cfg.max_move_deg or moved_mm[n] > 1000 * cfg.max_move_m]
    if big:
        why.append(f"cameras {big} would move more than {cfg.max_move_deg}° / {1000 * cfg.max_move_m:.0f} mm")
    applied = not why
    aligned = aligned_camera_errors(refined, rig)
    report |= {
        "applied": applied,
        "reason": "held-out frames improve" if applied else "; ".join(why),
        "moves_deg": moved_deg, "moves_mm": moved_mm, "moves_along_axis_mm": along_axis(refined, rig),
        # the same after the similarity best aligning the refined rig onto the given one: what is left once the
        # reference camera's own error, which the gauge hands on to every other camera, is taken out
        "moves_aligned_deg": dict(zip(rig.names, map(float, aligned[1]), strict=True)),
        "moves_aligned_mm": dict(zip(rig.names, map(float, aligned[0]), strict=True)),
        "reference_camera": summary.reference,
        "world_from": [rig.names[k] for k in agree] if agree.size >= 2 else [rig.names[ref]],
        "scale": (f"the centres of {agree.size} cameras that kept their given poses" if agree.size >= 2 else
                  f"every camera's mean distance to {rig.names[ref]} (no two cameras kept their given poses)"),
        "moved_too_far": big,
        "error_px": {"used_given": u0, "used_refined": u1, "heldout_given": h0, "heldout_refined": h1,
                     "heldout_gain": gain},
        "heldout_px_per_camera": {"given": h0c, "refined": h1c}, "heldout_camera_drop": drops,
        "frames_used": int(len(est)), "frames_heldout": int((~estimate).sum()), "stride": int(stride),
        "points": summary.points, "observations": summary.observations, "rejected": summary.rejected,
        "noise_px": summary.noise_px, "rms_px": [summary.rms_before_px, summary.rms_px],
        "iterations": summary.iterations,
    }
    log.info("rig_refine: held-out median %.2f → %.2f px (%+.1f %%) in %.2f s, %s", h0, h1, -100 * gain,
             time.perf_counter() - t0,
             "applied" if applied else f"not applied: {report['reason']}")
    return refined, report


def _used(xy: np.ndarray, frames: np.ndarray, min_views: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, C, 2) observations of the keypoints of ``frames`` that ``min_views`` cameras see, the joint
    (column of xy) and the frame of each."""
    F, C, J, _ = xy.shape
    uv = xy[frames].transpose(0, 2, 1, 3).reshape(-1, C, 2)
    keep = finite(uv).sum(1) >= min_views
    return uv[keep], np.tile(np.arange(J), len(frames))[keep], np.repeat(frames, J)[keep]


def _spread(X: np.ndarray, joint: np.ndarray) -> float:
    """How much the keypoints move: the median over joints of the norm of their positions' standard
    deviation (m), X (N, 3) points of joints ``joint`` (N,)."""
    out = []
    for j in np.unique(joint):
        p = X[joint == j]
        p = p[finite(p)]
        if len(p) > 1:
            out.append(np.linalg.norm(p.std(axis=0)))
    return float(np.median(out)) if out else 0.0


def _points(xy: np.ndarray, frames: np.ndarray, most: int) -> np.ndarray:
    """(N, C, 2) observations of ``frames`` (at most ``most`` of them, evenly spread)."""
    frames = frames[::max(1, int(np.ceil(len(frames) / most)))]
    return xy[frames].transpose(0, 2, 1, 3).reshape(-1, xy.shape[1], 2)


def main(session: Session | str | Path, settings=None, overwrite: bool = False) -> Path:
    """``settings``: the pipeline's Settings, or this stage's Config."""
    from mocap.io.camera_moves import moves_json
    from mocap.io.rig_files import read_rig, write_rig
    from mocap.settings import as_settings
    from mocap.stages import sync  # not at the top: sync imports this module

    session = session if isinstance(session, Session) else Session(Path(session))
    cfg = as_settings(settings).rig_refine
    d = session.refined_rig_dir
    out = d / "report.json"
    if out.exists() and not overwrite:
        log.info("%s exists, skipping camera refinement", out)
        return out
    given = session.given_rig_path()
    rig = read_rig(given)
    kp = session.keypoints2d(rig, moves=False)  # as detected (a camera moved mid-take is looked for here)
    check_rig_units(rig, kp, given, session.root)  # a rig in mm or cm: refused here, with the command to convert
    s, people = as_settings(settings), {}
    if kp.shape[2] > 1:  # several people per view: every associated person, never two mixed in one frame (sync's
        from mocap.detect.select import association_args, people_in_time  # check: the people it works on)

        a = association_args(s)  # associated as triangulate does
        people = {"refined_on": rig_people.refined_on(s),  # (rig_people: gates wider to start with)
                  "synced_on": lambda k, r: people_in_time(r, k, *a, quiet=True)}  # said by sync, triangulate
    # sync may shift cameras in time afterwards: checked on the refined rig, refined again when it does
    refined, report = refine_with_lags(rig, kp, cfg, s.sync, sync.session_audio(session, rig.names), **people)
    refined, camera_moves, report = look_for_moves(rig, refined, kp, cfg, report,  # a camera moved mid-take
                                                   *callbacks(rig, cfg, people, rig_people.run, _observations))
    report["given_rig"] = str(given.relative_to(session.root)) if given.is_relative_to(session.root) else str(given)
    report["given_rig_sha256"] = hashlib.sha256(given.read_bytes()).hexdigest()  # a stale refinement is not used
    d.mkdir(parents=True, exist_ok=True)
    for name, write in (("rig.toml", None if refined is None else (lambda p: write_rig(refined, p))),
                        ("moves.json", (lambda p: p.write_text(moves_json(camera_moves))) if camera_moves else None)):
        if write is None:
            (d / name).unlink(missing_ok=True)
        else:
            atomic_write(d / name, write)
    atomic_write_text(out, json.dumps(report, indent=1, default=float))
    return out
