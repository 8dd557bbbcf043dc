"""Kinematic skeleton fit: 3D keypoints → subject skeleton + local joint rotations (a Motion).

0. The head's keypoints that are missing or off placed where the rest of the head puts them (:mod:`.head`: the
   skull is one rigid body; an ear no camera sees for seconds otherwise leaves the head's turn to the bridge).
1. Temporal smoothing of the keypoints (acceleration prior, gap-aware; see :mod:`.smooth`); a keypoint
   unseen while its segment's other keypoints are seen is first carried with them (:mod:`.segments`).
   Refined points (refine applied the same prior) are not smoothed again: their gaps of up to
   ``SHORT_GAP_S`` are filled linearly in frames where most of the body is there.
2. Joint centres from the skeleton's keypoint mapping; subject bone lengths once per take.
3. Batched Levenberg–Marquardt IK for every frame (see :mod:`.ik`), confidence-weighted, with hinge
   joints, soft limits, and segment orientation (hands, feet, head, limb twist) from the vectors.
4. Gaps (see :mod:`.gaps`): frames where a joint is unseen are solved again outwards from the
   well-observed frames, each from its solved neighbour, with the rotations the gap leaves free held
   near the interpolation between the gap's edges (far from where the hips were seen, with the legs unseen too,
   a straight, upright trunk instead); the summary lists each joint's gap frames.
Frames with no keypoint at all stay gaps (NaN); a joint whose subtree is unseen in a frame follows the
interpolation between its nearest fitted values; a limb never seen in the take keeps its rest pose
and is named in the summary.
5. Fingers (a skeleton with joints below the hands, e.g. ``body52``; see :mod:`.hands`): the body pass
   fits the body with the finger bases, then each hand's fingers are solved conditioned on the wrist.
   Rule for a keypoint set without hands (``blazepose33`` on ``body52``): the fingers stay at rest,
   with one warning; hands unseen for a while are bridged, longer than ``max_gap_s`` they ease into
   the rest pose and the frames are flagged (``FitSummary.rest_frames``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from mocap.filters import interpolate_gaps, runs, strays
from mocap.fit.bones import estimate_bone_lengths
from mocap.fit.continuity import JUMP_DEG, left_turns, make_continuous
from mocap.fit.gaps import bone_axes, bridge, interpolate, joint_gaps
from mocap.fit.hands import at_hand_wrists, fit_fingers, joint_models, models_of, subject_bones, subset
from mocap.fit.head import HEAD_OFF_M, NEAR_S, place_head
from mocap.fit.ik import IKProblem, initial_pose, solve_ik
from mocap.fit.segments import fill_from_segments, segment_groups
from mocap.fit.smooth import estimate_noise, smooth_trajectories
from mocap.fit.warm import flip_pinned, retry_from_neighbours
from mocap.geometry.rotations import matrix_to_quat, quat_continuous
from mocap.keypoint_sets import body_keypoint_set, get_keypoint_set
from mocap.skeletons import SkeletonSpec, load_skeleton
from mocap.threads import thread_map
from mocap.types import Motion

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitConfig:
    skeleton: str = "body22"  # preset name or TOML path
    smooth: bool = True  # temporal smoothing of the keypoints before the fit
    accel_sigma: float = 15.0  # m/s²: typical joint acceleration (the smoothing prior)
    noise_mm: float | None = None  # keypoint noise; None: estimated from the data
    max_gap_s: float = 0.5  # longer gaps are not bridged
    symmetric: bool = False  # left and right bones share their lengths (people are rarely symmetric)
    iterations: int = 20
    chunk_frames: int = 1024
    workers: int = 0  # threads for the first solve's chunks (0: one per core); the results do not depend on it
    gap_sigma_deg: float = 15.0  # how far a rotation left free by unseen joints may leave the interpolation
    # how far (mm) an unseen root (the hips) may leave the interpolation of its offset from the seen trunk and knees
    gap_root_sigma_mm: float = 50.0
    # fingers: the smoothing bridges finger keypoints' gaps up to this (s); longer ones are left to the fit, which
    # interpolates the finger's joint angles (a fingertip interpolated in space misses a moving hand)
    finger_max_gap_s: float = 0.1


SHORT_GAP_S = 0.1  # points not smoothed by the fit (refine's): gaps up to this long are filled linearly
MAX_USABLE_RMS_MM = 50.0  # a fit whose median residual is larger is not usable
# with the 3D points' noise known (refine's summary): usable below this multiple of it, but never below the floor
# (a rigid skeleton against keypoint-defined joints misses them by a few mm on good takes: 3.3-6.5 mm)
USABLE_NOISE_MULTIPLE = 3.0
MIN_USABLE_RMS_MM = 15.0


@dataclass
class FitSummary:
    frames: int
    fitted_frames: int
    empty_frames: int  # frames with no keypoint at all (left NaN)
    noise_mm: float
    rms_mm_median: float
    rms_mm_p95: float
    unseen_joints: list[str] = field(default_factory=list)
    bone_lengths: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    # joint → frame ranges [start, stop) where it was unseen (in frames with data) and bridged
    gap_frames: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    bridged_frames: int = 0  # frames solved again because some joint was unseen
    # skeletons with fingers: the fingers' residual, and per hand the frame ranges held at rest (unseen)
    finger_rms_mm_median: float | None = None
    rest_frames: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    # joint → [[frame, degrees], ...]: local rotations still turning over continuity.JUMP_DEG in one frame
    turns: dict[str, list] = field(default_factory=dict)
    # keypoint → frame ranges the points hold it while no camera saw it (refine placed it), 0.1 s or longer
    unseen_keypoints: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    # the 3D points' noise σ (mm) when known (refine's estimate from the 2D noise), see usable_below_mm
    points_noise_mm: float | None = None
    head_placed: int = 0  # head keypoints placed from the rest of the head (missing, or off it: mocap.fit.head)
    # keypoint → frame ranges [start, stop) where the head fit placed it (not refine: see unseen_keypoints)
    head_placed_ranges: dict[str, list[tuple[int, int]]] = field(default_factory=dict)

    @property
    def usable_below_mm(self) -> float:
        """The median residual a usable fit stays below: a multiple of the points' noise when it is known, at least
        MIN_USABLE_RMS_MM, at most MAX_USABLE_RMS_MM (the gate without it)."""
        n = self.points_noise_mm
        if n is None or not np.isfinite(n) or n <= 0:
            return MAX_USABLE_RMS_MM
        return float(min(MAX_USABLE_RMS_MM, max(MIN_USABLE_RMS_MM, USABLE_NOISE_MULTIPLE * n)))

    @property
    def usable(self) -> bool:
        return self.fitted_frames > 0 and self.rms_mm_median < self.usable_below_mm

    def why_unusable(self) -> str:
        """Why the fit is not usable, in words ("" when it is)."""
        if self.usable:
            return ""
        if self.fitted_frames == 0:
            return f"no frame of {self.frames} could be fitted (no 3D keypoints)"
        limit = self.usable_below_mm
        gate = f"usable below {limit:.0f} mm"
        if self.points_noise_mm is not None and limit != MAX_USABLE_RMS_MM:
            gate += f": {USABLE_NOISE_MULTIPLE:g}× the points' noise σ {self.points_noise_mm:.1f} mm, at least " \
                    f"{MIN_USABLE_RMS_MM:.0f}"
        return (f"the skeleton misses the 3D keypoints by {self.rms_mm_median:.0f} mm (median over "
                f"{self.fitted_frames} frames, P95 {self.rms_mm_p95:.0f} mm; {gate}): the 3D points are not one body "
                "with constant bone lengths (another person's keypoints in some views, left/right swaps, a camera's "
                "calibration or sync; see the report)")


def combine_keypoints(W: np.ndarray, kp: np.ndarray) -> np.ndarray:
    """(F, K, 3) keypoints → (F, N, 3) weighted sums; NaN where any contributing keypoint is missing."""
    used = W != 0
    bad = ~np.isfinite(kp).all(axis=2)  # (F, K)
    out = np.ascontiguousarray(np.moveaxis(np.tensordot(W, np.nan_to_num(kp), axes=(1, 1)), 0, 1))  # one product
    miss = (bad.astype(float) @ used.T.astype(float)) > 0
    out[miss] = np.nan
    return out


def fit_motion(points: np.ndarray, keypoint_set: str, fps: float, cfg: FitConfig = FitConfig(),
               spec: SkeletonSpec | None = None, weights: np.ndarray | None = None,
               certainty: np.ndarray | None = None) -> tuple[Motion, FitSummary]:
    """Fit the skeleton to world keypoints ``points`` (F, K, 3) in metres (NaN = missing).
    ``weights`` (F, K): confidence in [0, 1] (default 1 where present). ``certainty`` (F, K) in [0, 1] (default 1):
    how far each point is measured (refine's points seen by one camera or none are estimates:
    :func:`mocap.stages.fit.view_certainty`); it scales the data only where the continuity pass judges which of two
    rotation branches fits as well (:func:`.continuity.make_continuous`), not in the solves."""
    t0 = time.perf_counter()
    spec = spec or load_skeleton(cfg.skeleton)
    pts = np.asarray(points, float)
    base = _base_set(spec, keypoint_set)
    if base is not None:  # e.g. body22 on blazepose33_hands: the body points, as their own set
        log.info("skeleton %s has no mapping for %s: fitting its first points as %s (the rest are not used)",
                 spec.name, keypoint_set, base)
        n = len(get_keypoint_set(base).joints)
        pts = pts[:, :n] if pts.ndim == 3 and pts.shape[1] == len(get_keypoint_set(keypoint_set).joints) else pts
        weights = None if weights is None else np.asarray(weights)[:, :n]
        certainty = None if certainty is None else np.asarray(certainty)[:, :n]
        keypoint_set = base
    W, mapped = spec.mapping_matrix(keypoint_set)
    if pts.ndim != 3 or pts.shape[1:] != (W.shape[1], 3):
        raise ValueError(f"fit: expected keypoints (frames, {W.shape[1]}, 3) for {keypoint_set}, got {pts.shape}")
    if fps <= 0:
        raise ValueError(f"fit: fps must be positive, got {fps}")
    if cfg.workers < 0:
        raise ValueError(f"fit.workers must be 0 (one thread per core) or more, got {cfg.workers}")
    F = pts.shape[0]
    # a keypoint's lone points (a run under SHORT_GAP_S, nothing within max_gap_s of it): a stray detection
    # measures no limb (a foot otherwise never seen, kept once by refine 1.3 m off, held the leg there all take)
    seen = np.isfinite(pts).all(axis=2)
    lone = strays(seen, max(1, int(SHORT_GAP_S * fps)), int(round(cfg.max_gap_s * fps)))
    lone[:, lone.sum(axis=0) * 2 >= seen.any(axis=1).sum()] = False  # half the frames the person is in: a short
    if lone.any():  # take (0.1 s or less: every keypoint's one run is short; it was "no two joints seen together")
        pts = np.where(lone[..., None], np.nan, pts)
        log.info("%d lone keypoints (seen under %.1f s, nothing within %.1f s) left out", int(lone.sum()),
                 SHORT_GAP_S, cfg.max_gap_s)
    if certainty is not None and np.shape(certainty) != pts.shape[:2]:
        raise ValueError(f"fit: expected certainty (frames, keypoints) {pts.shape[:2]}, got {np.shape(certainty)}")
    bridged_by = int(round((cfg.max_gap_s if cfg.smooth else SHORT_GAP_S) * fps))  # gaps the next step fills
    pts, head_placed = _place_head(pts, keypoint_set, certainty, bridged_by, int(round(NEAR_S * fps)))
    if certainty is not None and head_placed.any():  # placed from points two views measure
        certainty = np.where(head_placed, 1.0, certainty)
    noise = cfg.noise_mm / 1000 if cfg.noise_mm else estimate_noise(pts)
    if cfg.smooth and F >= 3 and np.isfinite(noise) and noise > 0:
        hand = _finger_keypoints(spec, keypoint_set, W.shape[1])
        seen = np.isfinite(pts).all(axis=2)
        out = smooth_trajectories(pts[:, ~hand], fps, noise, cfg.accel_sigma, cfg.max_gap_s)
        pts = pts.copy()
        pts[:, ~hand] = out
        # a keypoint whose segment's other keypoints are seen is carried with them, not interpolated in space
        pts, _ = fill_from_segments(pts, segment_groups(spec, keypoint_set, hand), int(round(cfg.max_gap_s * fps)),
                                    seen)
        if hand.any():
            pts[:, hand] = smooth_trajectories(pts[:, hand], fps, noise, cfg.accel_sigma,
                                               min(cfg.finger_max_gap_s, cfg.max_gap_s))
    else:  # refine's points: a gap of a few frames is filled linearly (as the smoothing fills it), so that the
        # IK's first solve there starts on the motion (a body side missing for two frames: a hand 0.65 m off), in
        # frames where most of the body is there (a frame with a few points is bridged as a whole, see gaps.py)
        n = np.isfinite(pts).all(axis=2).sum(axis=1)
        most = n >= 0.5 * np.median(n[n > 0]) if (n > 0).any() else np.zeros(F, bool)
        pts = np.where(most[:, None, None], interpolate_gaps(pts, int(round(SHORT_GAP_S * fps))), pts)
    y = combine_keypoints(W, pts)
    y[:, ~mapped] = np.nan
    if spec.finger_joints:  # the hands placed at the hand model's wrist, where it is seen
        y = at_hand_wrists(spec.skeleton.joint_names, keypoint_set, pts, y, fps, cfg.max_gap_s)
        sk, unseen = subject_bones(spec, y, mapped, cfg.symmetric)
    else:
        sk, unseen = estimate_bone_lengths(spec.skeleton, y, mapped, cfg.symmetric)
    if unseen:
        log.warning("no 3D point in this take (no camera, or one only, saw them), kept at rest: %s", ", ".join(unseen))
    vj, A, vrest = spec.vector_matrices(keypoint_set)
    vecs = combine_keypoints(A, pts)
    norm = np.linalg.norm(vecs, axis=2, keepdims=True)
    vecs = np.where(norm > 1e-4, vecs / np.maximum(norm, 1e-12), np.nan)
    conf = np.ones(pts.shape[:2]) if weights is None else np.clip(np.asarray(weights, float), 0, 1)
    wy = np.where(np.isfinite(y).all(axis=2), (conf @ np.abs(W).T) / np.maximum(np.abs(W).sum(1), 1e-12), 0.0)
    wv = np.where(np.isfinite(vecs).all(axis=2), (conf @ np.abs(A).T) / np.maximum(np.abs(A).sum(1), 1e-12), 0.0)
    names = sk.joint_names
    J = len(names)
    fb = spec.vector_fallback(keypoint_set)
    wv_gap = None
    if fb.any():  # fallback vectors only where their joint's children are unseen (then not missing)
        kids = [np.flatnonzero(sk.parents == j) for j in range(J)]
        wv_gap = wv.copy()
        for v in np.flatnonzero(fb):
            off = (wy[:, kids[vj[v]]] > 0).any(axis=1)
            wv[off, v] = 0.0
            wv_gap[off, v] = 1.0
    fingers = set(spec.finger_joints)
    if fingers and len(spec.unmapped_fingers(keypoint_set)) == len(fingers):
        log.warning("skeleton %s has fingers but keypoint set %s has no hand keypoints: the fingers are held "
                    "at rest (detect with hands, e.g. blazepose33_hands, to fit them)", spec.name, keypoint_set)
    hands = {names.index(h) for h in ("LeftHand", "RightHand") if h in names}
    keep = [j for j in range(J) if names[j] not in fingers or sk.parents[j] in hands]  # body + finger bases
    has_data = wy.sum(axis=1) > 0
    local = np.tile(np.eye(3), (F, J, 1, 1))
    root = np.full((F, 3), np.nan)
    rms = np.full(F, np.nan)
    vk = np.isin(vj, keep)
    pos = {j: i for i, j in enumerate(keep)}
    body = subset(sk, keep) if len(keep) < J else sk
    models = joint_models(spec, names)  # each joint's axes and limits, once for the body and the fingers
    hinges, limits, dof2 = models_of(models, keep)
    pb = IKProblem(body, hinges, limits, np.array([pos[int(j)] for j in vj[vk]], int), vrest[vk], dof2=dof2)
    yb, wyb, vb, wvb = y[:, keep], wy[:, keep], vecs[:, vk], wv[:, vk]
    lb = np.tile(np.eye(3), (F, len(keep), 1, 1))
    idx = np.flatnonzero(has_data)
    chunks = [idx[s:s + cfg.chunk_frames] for s in range(0, idx.size, cfg.chunk_frames)]

    def first(f):  # a chunk's frames from their initial pose (each frame its own solve: chunks on threads)
        return solve_ik(pb, yb[f], wyb[f], vb[f], wvb[f], *initial_pose(pb, yb[f], vb[f]), cfg.iterations)
    for f, (lf, rf, ef) in zip(chunks, thread_map(first, chunks, cfg.workers), strict=True):
        lb[f], root[f], rms[f] = lf, rf, ef
    retried = flip_pinned(pb, yb, wyb, vb, wvb, lb, root, rms, has_data, cfg.iterations)
    retried += retry_from_neighbours(pb, yb, wyb, vb, wvb, lb, root, rms, has_data, cfg.iterations)
    if retried:
        log.info("%d frames solved better from a neighbour's solution or a limb's other side (local minima)", retried)
    judge = None  # the continuity pass judges branches on the points as measured (the solves fit them all)
    if certainty is not None:
        cj = conf * np.clip(np.asarray(certainty, float), 0, 1)
        wyj = np.where(wy > 0, (cj @ np.abs(W).T) / np.maximum(np.abs(W).sum(1), 1e-12), 0.0)
        wvj = np.where(wv > 0, (cj @ np.abs(A).T) / np.maximum(np.abs(A).sum(1), 1e-12), 0.0)
        judge = (wyj[:, keep], wvj[:, vk])
    make_continuous(pb, yb, wyb, vb, wvb, lb, root, rms, has_data, cfg.iterations, judge=judge)  # no flipping
    wy_gap = None
    if len(keep) < J:  # a missing finger base leaves no gap while its hand is oriented (two bases or a vector)
        wy_gap = wyb.copy()
        for h in hands:
            cols = [pos[j] for j in keep if sk.parents[j] == h]
            enough = ((wyb[:, cols] > 0).sum(axis=1) >= 2) | (wv[:, vj == h] > 0).any(axis=1)
            wy_gap[:, cols] = np.where(enough[:, None], np.maximum(wyb[:, cols], 1.0), wyb[:, cols])
    bridged = bridge(pb, yb, wyb, vb, wvb, lb, root, rms, has_data, np.radians(cfg.gap_sigma_deg), cfg.iterations,
                     wy_gap=wy_gap, wv_gap=None if wv_gap is None else wv_gap[:, vk],
                     root_sigma=cfg.gap_root_sigma_mm / 1000, hold=int(round(cfg.max_gap_s * fps / 2)))
    gaps = joint_gaps(list(body.joint_names), wyb, has_data)
    _hold_unseen(body, lb, wyb, wvb, pb.vec_joint, has_data)
    turns = left_turns([body.joint_names[j] for j in keep], lb, has_data)
    if turns:
        log.warning("joint rotations turning over %.0f° in one frame (frame: degrees): %s: a fast turn, or a twist the "
                    "points leave free (over a nearly straight knee or elbow); check these frames before use",
                    JUMP_DEG, "; ".join(f"{n} " + ", ".join(f"{a}: {d:.0f}°" for a, d in v) for n, v in turns.items()))
    local[:, keep] = lb
    finger_rms, rest = None, {}
    if fingers:
        frms, fgaps, rest, nb = fit_fingers(spec, sk, y, wy, vecs, wv, vj, vrest, local, root, has_data, fps, cfg,
                                              models)
        gaps, bridged = gaps | fgaps, bridged + nb
        finger_rms = float(np.nanmedian(frms) * 1000) if np.isfinite(frms).any() else None
        if rest:
            log.warning("hands unseen for longer than %.1f s, fingers eased to rest (frames): %s", cfg.max_gap_s,
                        "; ".join(f"{h} {_ranges_text(r)}" for h, r in rest.items()))
    if gaps:
        log.warning("joints unseen for a while, bridged from their neighbours (frames): %s", "; ".join(
            f"{n} {_ranges_text(r)}" for n, r in gaps.items()))
    q = matrix_to_quat(local)
    q[has_data] = quat_continuous(q[has_data], axis=0)  # signs follow across empty frames too (not via identity)
    q[~has_data] = np.nan
    motion = Motion(sk, q, root, fps)
    bone = np.linalg.norm(sk.offsets, axis=1)
    summary = FitSummary(F, int(has_data.sum()), int((~has_data).sum()), float(noise * 1000),
                         float(np.nanmedian(rms) * 1000) if has_data.any() else float("nan"),
                         float(np.nanpercentile(rms, 95) * 1000) if has_data.any() else float("nan"),
                         unseen, {n: float(b) for n, b in zip(names[1:], bone[1:], strict=True)},
                         time.perf_counter() - t0, gaps, bridged, finger_rms, rest, turns=turns,
                         head_placed=int(head_placed.sum()), head_placed_ranges={
                             str(get_keypoint_set(keypoint_set).joints[k]): [(int(a), int(b)) for a, b in
                                                                              runs(head_placed[:, k])]
                             for k in np.flatnonzero(head_placed.any(axis=0))})
    log.info("fit %d/%d frames in %.2f s, residual median %.1f mm", summary.fitted_frames, F, summary.seconds,
             summary.rms_mm_median)
    return motion, summary


def _place_head(pts: np.ndarray, keypoint_set: str, certainty: np.ndarray | None, bridged_by: int, near: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """The head's keypoints that are missing or off placed from the rest of the head (:mod:`.head`), resting on the
    points two views measure (``certainty`` 1; every point when it is not given), but for the gaps of ``bridged_by``
    frames or fewer between seen samples, which the smoothing (or the short gaps' fill) bridges; and where they were
    placed; ``near``: :func:`.head.place_head`'s."""
    ks = get_keypoint_set(keypoint_set)
    seen = np.isfinite(pts).all(axis=2)
    trusted = seen if certainty is None else seen & (np.asarray(certainty) >= 1.0)
    out, placed = place_head(pts, trusted, ks.head, ks.flip_permutation, near)
    for k in np.flatnonzero(placed.any(axis=0)):
        for a, b in runs(~seen[:, k]):
            if a > 0 and b < len(seen) and b - a <= bridged_by:
                out[a:b, k], placed[a:b, k] = np.nan, False
    if placed.any():
        log.info("%d head keypoints (%d missing) placed where the rest of the head puts them (missing, or over "
                 "%.0f mm off it)", int(placed.sum()), int((placed & ~seen).sum()), HEAD_OFF_M * 1000)
    return out, placed


def _base_set(spec: SkeletonSpec, keypoint_set: str) -> str | None:
    """The body-only set ``keypoint_set`` extends (its ``body`` key: blazepose33 for blazepose33_hands, its
    first joints in the same order) when the skeleton maps that one and not ``keypoint_set``; else None."""
    if keypoint_set in spec.mappings:
        return None
    try:
        body = body_keypoint_set(keypoint_set)
    except ValueError:
        return None
    return body if body in spec.mappings else None


def _finger_keypoints(spec: SkeletonSpec, keypoint_set: str, K: int) -> np.ndarray:
    """(K,) bool: the keypoints that place or orient only finger joints (not the body's)."""
    fingers = set(spec.finger_joints)
    out, body = np.zeros(K, bool), np.zeros(K, bool)
    names = spec.skeleton.joint_names
    W, _ = spec.mapping_matrix(keypoint_set)
    vj, A, _ = spec.vector_matrices(keypoint_set)
    for rows, joints in ((W, names), (A, [names[j] for j in vj])):
        for r, j in zip(rows, joints, strict=True):
            (out if j in fingers else body)[r != 0] = True
    return out & ~body


def _ranges_text(r: list[tuple[int, int]], most: int = 4) -> str:
    text = ", ".join(f"{a}" if b == a + 1 else f"{a}-{b - 1}" for a, b in r[:most])
    return text + (f" and {len(r) - most} more" if len(r) > most else "")


def _hold_unseen(sk, local: np.ndarray, wy: np.ndarray, wv: np.ndarray, vj: np.ndarray, has_data: np.ndarray) -> None:
    """A joint whose subtree (and vectors) has no data in a frame follows the interpolation between its
    nearest determined values (held beyond the first and last)."""
    F, J = wy.shape
    sub = wy > 0  # data in the subtree of each joint, itself included
    for j in range(J - 1, 0, -1):
        sub[:, sk.parents[j]] |= sub[:, j]
    det = np.zeros((F, J), bool)  # what turns joint j: its descendants' data, or its own vectors
    for j in range(1, J):
        det[:, sk.parents[j]] |= sub[:, j]
    for v, j in enumerate(vj):
        det[:, j] |= wv[:, v] > 0
    bones = bone_axes(sk)
    for j in range(J):
        todo = np.flatnonzero(has_data & ~det[:, j])
        if todo.size == 0:
            continue
        local[todo, j] = interpolate(local[:, j], det[:, j] & has_data, todo, bones[j])
