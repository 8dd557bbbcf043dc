"""Person boxes for a detection no tracked person explains: a person the first pass found in one view only
(missed in all the others), so the association could not place it in 3D.

Its depth along its rays is bounded by a body-size prior: the torso (mid-shoulders to mid-hips) of the
people tracked in the take (a human's when none is), within a factor :data:`DEPTH_SPREAD` either way.
The skeleton at the depths of that range is projected into every other view; the projections are grouped
into a few square boxes (a box per stretch of depth whose boxes overlap most), and the landmark model
looks at each. A skeleton found there is accepted when its rays meet the lone detection's (median ray
distance within the association's ``match_max_m``) and it is no duplicate: not within the tracker's gate
of a detection already in that view or of a tracked person's projection (the person in front, which the
crop also holds, lies on the same lines of sight). Triangulation then associates the new pair as any
two-view detection, and the next pass of :mod:`mocap.detect.recover` fills the remaining views.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mocap.geometry.camera import pixels_to_normalised
from mocap.keypoint_sets import get_keypoint_set
from mocap.multi.rays import FrameRays, ray_ray_distance, robust_median
from mocap.types import Camera, Keypoints2D, Rig

TORSO_M = 0.5  # mid-shoulders to mid-hips of an adult, when no person is tracked to measure it on
DEPTH_SPREAD = 1.4  # the lone person's torso may be this much longer or shorter than the tracked people's
DEPTH_SAMPLES = 9  # depths the projected skeleton is sampled at across that range
MERGE = 1.5  # one box covers a stretch of depth while its side stays within this many single boxes


@dataclass
class LoneCandidate:
    frame: int
    camera: int  # the view looked at
    source: tuple[int, int]  # (view, slot) of the lone detection
    box: np.ndarray  # (x0, y0, side)
    gate_px: float  # the tracker's gate in pixels at the hypothesised depth: closer to another person is a duplicate


def torso_indices(keypoint_set: str) -> tuple[list[int], list[int]] | None:
    ks = get_keypoint_set(keypoint_set)
    try:
        return ([ks.index("left_shoulder"), ks.index("right_shoulder")],
                [ks.index("left_hip"), ks.index("right_hip")])
    except (ValueError, KeyError):
        return None


def torso_length(X: np.ndarray, keypoint_set: str) -> float:
    """Median torso length (m) of skeletons X (..., J, 3); :data:`TORSO_M` when none has one."""
    idx = torso_indices(keypoint_set)
    if idx is None:
        return TORSO_M
    shoulders, hips = X[..., idx[0], :].mean(axis=-2), X[..., idx[1], :].mean(axis=-2)
    d = np.linalg.norm(shoulders - hips, axis=-1)
    d = d[np.isfinite(d)]
    return float(np.median(d)) if len(d) else TORSO_M


def on_rays(cam: Camera, xy: np.ndarray, depths: np.ndarray) -> np.ndarray:
    """World points (D, J, 3) on the rays of pixels xy (J, 2) (NaN: none) at camera depths (D,)."""
    n = pixels_to_normalised(cam, np.where(np.isfinite(xy), xy, 0.0))
    n = np.where(np.isfinite(xy), n, np.nan)
    Xc = np.concatenate([n, np.ones((len(n), 1))], axis=1)[None] * depths[:, None, None]  # (D, J, 3)
    return (Xc - cam.t) @ cam.R  # Rᵀ (Xc − t)


def depth_range(cam: Camera, xy: np.ndarray, keypoint_set: str, torso_m: float) -> tuple[float, float] | None:
    """Camera depths at which a detection's torso (pixels) has ``torso_m`` within :data:`DEPTH_SPREAD`."""
    idx = torso_indices(keypoint_set)
    if idx is None:
        return None
    n = pixels_to_normalised(cam, np.where(np.isfinite(xy), xy, 0.0))
    n = np.where(np.isfinite(xy), n, np.nan)
    length = float(np.linalg.norm(n[idx[0]].mean(axis=0) - n[idx[1]].mean(axis=0)))  # at depth 1
    if not length > 0:
        return None
    d = torso_m / length
    return d / DEPTH_SPREAD, d * DEPTH_SPREAD


def boxes_along(cam: Camera, X: np.ndarray, margin: float, min_inside: float,
                min_joints: int) -> list[tuple[np.ndarray, float]]:
    """Square boxes in ``cam`` covering the skeletons X (D, J, 3) at increasing depths: consecutive
    depths share a box while it stays within :data:`MERGE` single boxes. Returns (box, depth in cam)."""
    from mocap.detect.boxes import person_box

    uv = cam.project(X)  # (D, J, 2)
    depth = np.nanmedian((X @ cam.R.T + cam.t)[..., 2], axis=-1)
    out, group = [], []

    def close() -> None:
        if group:
            pts = np.concatenate([uv[k] for k in group])
            box = person_box(pts, cam.size, margin, min_inside, min_joints)
            if box is not None:
                out.append((box, float(np.median(depth[group]))))

    for k in range(len(X)):
        if not depth[k] > 0 or person_box(uv[k], cam.size, margin, min_inside, min_joints) is None:
            close()
            group = []
            continue
        single = max(person_box(uv[g], cam.size, margin, 0.0, min_joints)[2] for g in group + [k])
        union = person_box(np.concatenate([uv[g] for g in group + [k]]), cam.size, margin, 0.0, min_joints)
        if group and union[2] > MERGE * single:
            close()
            group = []
        group.append(k)
    close()
    return out


def lone_candidates(rig: Rig, xy: np.ndarray, lone: np.ndarray, keypoint_set: str, torso_m: float,
                    gate_m: float, margin: float, min_inside: float, min_joints: int) -> list[LoneCandidate]:
    """Boxes in the other views for lone detections ``lone`` (N, 3) = (frame, view, slot) of keypoints xy
    (F, C, S, J, 2)."""
    out = []
    for f, c, s in lone:
        rng = depth_range(rig[int(c)], xy[f, c, s], keypoint_set, torso_m)
        if rng is None:
            continue
        X = on_rays(rig[int(c)], xy[f, c, s], np.geomspace(rng[0], rng[1], DEPTH_SAMPLES))
        for c2, cam in enumerate(rig.cameras):
            if c2 == c:
                continue
            focal = float(np.sqrt(cam.K[0, 0] * cam.K[1, 1]))
            for box, depth in boxes_along(cam, X, margin, min_inside, min_joints):
                out.append(LoneCandidate(int(f), c2, (int(c), int(s)), box, focal * gate_m / depth))
    return out


def world_rays(cam: Camera, xy: np.ndarray) -> np.ndarray:
    """Unit world directions (..., 3) of pixels xy (..., 2) (NaN stays NaN)."""
    ok = np.all(np.isfinite(xy), axis=-1)
    n = pixels_to_normalised(cam, np.where(ok[..., None], xy, 0.0).reshape(-1, 2)).reshape(xy.shape)
    d = np.concatenate([n, np.ones(xy.shape[:-1] + (1,))], axis=-1) @ cam.R
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    return np.where(ok[..., None], d, np.nan)


def judge_lone(found: np.ndarray, cam: Camera, source_cam: Camera, source_xy: np.ndarray, others: np.ndarray,
               gate_px: float, match_max_m: float, min_score: float, min_joints: int) -> tuple[int, str, float]:
    """Which skeleton found in ``cam`` (N, J, 3) is the lone detection source_xy (J, 2) of ``source_cam``.
    Returns (index or -1, "recovered" | "nothing found" | "rays do not meet" | "duplicate", ray distance m)."""
    xy = np.where((found[..., 2:] >= min_score) & np.isfinite(found[..., 2:]), found[..., :2], np.nan)
    if not (np.isfinite(xy[..., 0]).sum(axis=-1) >= min_joints).any():
        return -1, "nothing found", float("inf")
    d = ray_ray_distance(cam.center, world_rays(cam, xy), source_cam.center, world_rays(source_cam, source_xy)[None])
    meet = robust_median(d, min_joints)  # (N,)
    ok = meet <= match_max_m
    if not ok.any():
        return -1, "rays do not meet", float(np.min(meet))
    others = np.asarray(others, float).reshape(-1, *found.shape[1:2], 2)
    if len(others):
        apart = robust_median(np.linalg.norm(xy[:, None] - others[None], axis=-1), min_joints).min(axis=1)
        ok &= apart > gate_px
    if not ok.any():
        return -1, "duplicate", float(np.min(meet))
    best = int(np.argmin(np.where(ok, meet, np.inf)))
    return best, "recovered", float(meet[best])


def lone_round(run, X: np.ndarray, slots: np.ndarray) -> None:
    """One round of :func:`mocap.detect.recover.recover_detections` (``run``: its state) on the detections no
    tracked person (X (F, P, J, 3), slots (F, C, P)) explains."""
    from mocap.detect.recover import others_in_view

    kp = Keypoints2D(run.data, run.kp.camera_names, run.kp.keypoint_set, run.kp.fps)
    usable = FrameRays(run.rig, kp, run.min_score, run.cfg.min_joints).usable
    taken = np.zeros_like(usable)
    f_, c_, p_ = np.nonzero(slots >= 0)
    taken[f_, c_, slots[f_, c_, p_]] = True
    xy = np.where(kp.score[..., None] >= run.min_score, kp.xy, np.nan)
    todo = lone_candidates(run.rig, xy, np.argwhere(usable & ~taken), kp.keypoint_set,
                           torso_length(X, kp.keypoint_set), run.track_cfg.track_max_m / 2, run.cfg.margin,
                           run.cfg.min_inside, run.cfg.min_joints)
    uv_all = run.rig.project(X)
    found_in: dict[tuple[int, int, int], dict[int, tuple]] = {}  # (frame, view, slot) of a lone detection →
    # {view: (skeleton, ray distance, gate px, box side)}: the best match of each view, judged once all are in

    def decide(cand, found: np.ndarray) -> tuple[int, str, float]:
        f, c, n = cand.frame, cand.camera, found.shape[1]
        c0, s0 = cand.source
        others = others_in_view(run.data[f, c, :, :n], uv_all[c, f, :, :n], run.mirror)
        k, why, meet = judge_lone(found, run.rig[c], run.rig[c0], xy[f, c0, s0, :n], others, cand.gate_px,
                                  run.track_cfg.match_max_m, run.min_score, run.cfg.min_joints)
        if k < 0:
            return k, why, meet
        views = found_in.setdefault((f, c0, s0), {})  # (no keypoint is dropped: one noisy view is no reference)
        if c not in views or meet < views[c][1]:
            views[c] = (found[k], meet, cand.gate_px, cand.box[2])
        return -1, "", meet

    run.look(todo, decide, lambda cand: -1)
    for (f, c0, s0), views in found_in.items():
        for c, (skeleton, meet, gate, side) in views.items():
            k, why = cross_check(run, f, c, skeleton, (c0, s0), {v: views[v][0] for v in views if v != c}, xy,
                                 uv_all, gate, side)
            if k < 0:
                run.reject(c, why)
            elif run.write(f, c, skeleton, -1, meet, gate):
                run.stats["recovered_lone"][run.names[c]] += 1


def cross_check(run, f: int, c: int, skeleton: np.ndarray, source: tuple[int, int], rest: dict[int, np.ndarray],
                xy: np.ndarray, uv_all: np.ndarray, gate_px: float, side: float) -> tuple[int, str]:
    """A skeleton found in view c for a lone detection, checked as a tracked person's would be: the lone
    detection and what another view found for it are triangulated, projected into c, and the skeleton must lie
    within the gate of that projection and be no duplicate (:func:`mocap.detect.recover.judge`); one other view
    that confirms it is enough (a wrong one among them only fails to). Two rays meeting cannot tell a person
    from the one in front of it on the same lines of sight; a third view can. Found in one other view only, it
    is accepted on its rays meeting the lone detection's."""
    from mocap.detect.recover import judge, others_in_view
    from mocap.multi.rays import triangulate_rays

    n = len(skeleton)
    c0, s0 = source
    others = others_in_view(run.data[f, c, :, :n], uv_all[c, f, :, :n], run.mirror)  # with what this round wrote so far
    if not rest:  # the rays of the two views meet (judge_lone): left to check, that it is nobody already there
        xy_k = np.where(skeleton[:, 2:] >= run.min_score, skeleton[:, :2], np.nan)
        apart = robust_median(np.linalg.norm(xy_k[None] - others, axis=-1), run.cfg.min_joints)
        return (0, "recovered") if not (apart <= gate_px).any() else (-1, "duplicate")
    why = "no common joints"
    for v, found in sorted(rest.items()):
        pix = np.where(found[:, 2:] >= run.min_score, found[:, :2], np.nan)
        d = np.stack([world_rays(run.rig[c0], xy[f, c0, s0, :n]), world_rays(run.rig[v], pix)], axis=1)  # (J, 2, 3)
        X = triangulate_rays(np.stack([run.rig[c0].center, run.rig[v].center])[None], d, np.ones(d.shape[:2]))
        if np.isfinite(X[:, 0]).sum() < run.cfg.min_joints:
            continue
        k, why, _ = judge(skeleton[None], run.rig[c].project(X), gate_px, others, run.min_score,
                          run.cfg.min_joints, run.cfg.duplicate_px * side)
        if k >= 0:
            return k, why
    return -1, why
