"""Where one person hides another in a view: those keypoints are noisier, so they weigh less.

A top-down detector's keypoints of a person partly hidden behind another (or pulled toward the other
body by the landmark model) are several times noisier than those of a person in the open. With every
person's first 3D skeleton known, a keypoint of person p in view c is *occluded* when it falls on the
projected body of another person q who is nearer that camera than the keypoint: within
:data:`BODY_RADIUS_M` (projected at q's depth) of one of q's projected limbs or torso segments.

How much noisier those keypoints are is measured on the take itself, not assumed: the median distance of
occluded keypoints to the projection of their person's first skeleton, against that of the keypoints in
the open, both in units of the person's size in that view (a person near a camera is large in its image
and its pixel errors with it). The ratio (at least 1, at most :data:`MAX_RATIO`; 1 when fewer than
:data:`MIN_OCCLUDED` keypoints are occluded) is the σ of an occluded observation relative to the others:
its weight is divided by the ratio squared in triangulation and in refine. One person alone is never
occluded by another: its weights are unchanged.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np

from mocap.geometry.triangulation import observation_weights
from mocap.keypoint_sets import get_keypoint_set
from mocap.multi.body import torso_centre, torso_mask
from mocap.types import Keypoints2D, Rig

log = logging.getLogger(__name__)

BODY_RADIUS_M = 0.1  # a body part hides what is behind it this far from its limb's axis (arm ~ 0.05, torso ~ 0.15)
MIN_OCCLUDED = 20  # occluded keypoints needed to measure their noise (fewer: no reweighting)
MAX_RATIO = 4.0  # at most this σ ratio (a weight 16× lower): an occluded keypoint still counts
BLOCK_ELEMENTS = 1 << 21  # keypoint-to-segment distances computed at once
FRAME_BLOCK = 512  # frames measured at once (every frame is independent: memory bounded on long takes)


def body_segments(keypoint_set: str, n_joints: int) -> np.ndarray:
    """(S, 2) joint index pairs whose segments make a person's body in an image: the keypoint set's
    limbs, and every pair of torso joints (the torso's edges and diagonals, so its inside is covered)."""
    ks = get_keypoint_set(keypoint_set)
    pairs = {tuple(sorted(p)) for p in ks.limbs if max(p) < n_joints}
    torso = np.flatnonzero(torso_mask(keypoint_set, n_joints))
    pairs |= {(int(a), int(b)) for i, a in enumerate(torso) for b in torso[i + 1:]}
    return np.array(sorted(pairs), np.intp).reshape(-1, 2)


def point_segment_distance(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distances of points x (..., 2) to segments a–b (..., 2), broadcast; NaN where an end is unknown."""
    ab, ax = b - a, x - a
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.clip(np.sum(ax * ab, axis=-1) / np.sum(ab * ab, axis=-1), 0.0, 1.0)
    t = np.where(np.isfinite(t), t, 0.0)  # a segment of zero length: its point
    return np.linalg.norm(ax - t[..., None] * ab, axis=-1)


def _segment_distance(u: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distances of points u (..., J, 2) to segments a–b (..., S, 2) → (..., J, S) (NaN for unknown ends)."""
    return point_segment_distance(u[..., :, None, :], a[..., None, :, :], b[..., None, :, :])


def camera_depths(rig: Rig, X: np.ndarray) -> np.ndarray:
    """Depth of points X (..., 3) in front of every camera → (C, ...)."""
    out = []
    for cam in rig.cameras:
        M = np.asarray(cam.cam_from_world, float)
        out.append(X @ M[2, :3] + M[2, 3])
    return np.stack(out)


def occluded(rig: Rig, xy: np.ndarray, X: np.ndarray, keypoint_set: str) -> np.ndarray:
    """(F, C, P, J) bool: keypoint j of person p seen at xy (F, C, P, J, 2) in view c lies on the projected
    body of another person nearer camera c than the keypoint is (persons' skeletons X (F, P, J, 3), NaN
    where unknown). False for one person alone and wherever a skeleton is unknown. Only the keypoints
    inside the other person's box (grown by the body radius) are measured against its segments, by blocks
    of at most :data:`BLOCK_ELEMENTS` distances, :data:`FRAME_BLOCK` frames at a time."""
    F, C, P, J, _ = xy.shape
    out = np.zeros((F, C, P, J), bool)
    if P < 2 or F == 0:
        return out
    seg = body_segments(keypoint_set, J)
    for a in range(0, F, FRAME_BLOCK):
        out[a:a + FRAME_BLOCK] = _occluded_block(rig, xy[a:a + FRAME_BLOCK], X[a:a + FRAME_BLOCK], keypoint_set, seg)
    return out


def _occluded_block(rig: Rig, xy: np.ndarray, X: np.ndarray, keypoint_set: str, seg: np.ndarray) -> np.ndarray:
    F, C, P, J, _ = xy.shape
    out = np.zeros((F, C, P, J), bool)
    torso = torso_mask(keypoint_set, J)
    fx = np.array([cam.K[0, 0] for cam in rig.cameras])
    uv = np.stack([cam.project(X) for cam in rig.cameras], axis=1)  # (F, C, P, J, 2)
    depth = np.moveaxis(camera_depths(rig, X), 0, 1)  # (F, C, P, J)
    centre_depth = np.moveaxis(camera_depths(rig, torso_centre(X, torso)), 0, 1)  # (F, C, P)
    with np.errstate(invalid="ignore", divide="ignore"):
        radius = fx[None, :, None] * BODY_RADIUS_M / centre_depth  # (F, C, P) pixels
    kp_depth = np.where(np.isfinite(depth), depth, centre_depth[..., None])  # a joint not triangulated: the body's
    seen = np.all(np.isfinite(xy), axis=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a person unknown in a frame: no box
        lo, hi = np.nanmin(uv, axis=-2), np.nanmax(uv, axis=-2)  # (F, C, P, 2)
    step = max(1, BLOCK_ELEMENTS // max(len(seg), 1))
    for q in range(P):
        grow = radius[:, :, q, None, None, None]
        inside = np.all((xy >= lo[:, :, q, None, None] - grow) & (xy <= hi[:, :, q, None, None] + grow), axis=-1)
        front = (centre_depth[:, :, q, None, None] < kp_depth) & (centre_depth[:, :, q] > 0)[..., None, None]
        cand = inside & seen & front
        cand[:, :, q] = False
        f, c, p, j = np.nonzero(cand)
        for k in range(0, f.size, step):
            fs, cs, sl = f[k:k + step], c[k:k + step], slice(k, k + step)
            ends = uv[fs, cs, q][:, seg]  # (n, S, 2, 2)
            d = _segment_distance(xy[fs, cs, p[sl], j[sl]][:, None], ends[:, :, 0], ends[:, :, 1])[:, 0]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # no segment known: not on that body
                near = np.nanmin(np.where(np.isfinite(d), d, np.inf), axis=-1) < radius[fs, cs, q]
            out[fs[near], cs[near], p[sl][near], j[sl][near]] = True
    return out


def sigma_ratio(rig: Rig, xy: np.ndarray, X: np.ndarray, usable: np.ndarray, occ: np.ndarray) -> tuple[float, dict]:
    """The noise of occluded keypoints relative to the others, measured on the take: (ratio, record).

    xy (F, C, P, J, 2) the keypoints, X (F, P, J, 3) the persons' first skeletons, usable (F, C, P, J) the
    observations that count, occ (F, C, P, J) :func:`occluded`. Residual: the distance of a keypoint to its
    joint's projection, over the person's size in that view (the diagonal of its projected joints' box)."""
    parts: list = [[], []]  # the residuals of the occluded and the open observations, FRAME_BLOCK frames at a time
    for a in range(0, xy.shape[0], FRAME_BLOCK):
        b = slice(a, a + FRAME_BLOCK)
        uv = np.stack([cam.project(X[b]) for cam in rig.cameras], axis=1)  # (F', C, P, J, 2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a person not seen in a frame: NaN
            size = np.linalg.norm(np.nanmax(uv, axis=-2) - np.nanmin(uv, axis=-2), axis=-1)  # (F', C, P)
            res = np.linalg.norm(xy[b] - uv, axis=-1) / size[..., None]
        ok = usable[b] & np.isfinite(res)
        parts[0].append(res[ok & occ[b]])
        parts[1].append(res[ok & ~occ[b]])
    res_occ, res_open = (np.concatenate(p) if p else np.zeros(0) for p in parts)
    n_occ, n_open = len(res_occ), len(res_open)
    record = {"occluded_observations": n_occ, "open_observations": n_open, "sigma_ratio": 1.0}
    if n_occ < MIN_OCCLUDED or n_open < MIN_OCCLUDED:
        return 1.0, record
    occ_med, open_med = float(np.median(res_occ)), float(np.median(res_open))
    ratio = float(np.clip(occ_med / open_med, 1.0, MAX_RATIO)) if open_med > 0 else 1.0
    record |= {"residual_occluded": occ_med, "residual_open": open_med, "sigma_ratio": ratio}
    return ratio, record


def occlusion_factors(occ: np.ndarray, ratio: float) -> np.ndarray:
    """(F, C, P, J) weight factors: 1 / ratio² where occluded, 1 elsewhere."""
    return np.where(occ, 1.0 / ratio**2, 1.0)


def occlusion_weighting(rig: Rig, kp: Keypoints2D, X: np.ndarray, min_score: float,
                        ratio: float | None = None) -> tuple[np.ndarray, dict]:
    """Several people: (F, C, P, J) factors on the observation weights, 1 / ratio² for a keypoint on the body
    of another person nearer that camera (:func:`occluded`; X (F, P, J, 3) the people's first
    skeletons), and the record (``sigma_ratio``: that noise relative to the others', measured on the take
    unless ``ratio`` is given; how many keypoints were occluded)."""
    occ = occluded(rig, kp.xy, X, kp.keypoint_set)
    usable = observation_weights(kp, min_score) > 0
    if ratio is None:
        ratio, record = sigma_ratio(rig, kp.xy, X, usable, occ)
    else:
        record = {"occluded_observations": int(np.sum(usable & occ)), "sigma_ratio": float(ratio)}
    if ratio > 1:
        log.info("%d keypoints lie on the body of another person nearer the camera: %.2f× the noise of the others, "
                 "weighted by 1/%.1f", record["occluded_observations"], ratio, ratio**2)
    return occlusion_factors(occ, ratio), record
