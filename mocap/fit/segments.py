"""Keypoints unseen for a while whose segment is still located by its other keypoints.

The smoothing bridges a keypoint's gap (up to ``max_gap_s``) by a straight interpolation in space, which
misses a moving limb (a wrist 155–250 mm off for 54 frames of a swinging arm while the index and pinky
were seen). A keypoint belongs to a segment with the other keypoints that place or orient the same joint
in the skeleton's mapping (the hand: wrist, index, pinky; the foot: ankle, heel, toe; the head: ears,
nose). Where all those others (two or more) are seen across a gap, the keypoint is carried with them: its
offset from them at each edge of the gap, turned as they turn (Kabsch with three or more, the turn of the
line through two), blended between both edges. This is done on the smoothed keypoints (the turn of two
noisy points a few centimetres apart would swing the carried one by as much as the interpolation misses).
"""

from __future__ import annotations

import numpy as np

from mocap.filters import runs
from mocap.geometry.rotations import rotation_between
from mocap.skeletons import SkeletonSpec


def segment_groups(spec: SkeletonSpec, keypoint_set: str, exclude: np.ndarray | None = None) -> list[np.ndarray]:
    """Per joint of the skeleton, the keypoints (indices) in its target or its orientation vectors, when
    there are at least three of them (apart from ``exclude`` (K,) bool)."""
    W, _ = spec.mapping_matrix(keypoint_set)
    vj, A, _ = spec.vector_matrices(keypoint_set)
    keep = np.ones(W.shape[1], bool) if exclude is None else ~np.asarray(exclude, bool)
    out = []
    for j in range(W.shape[0]):
        used = (W[j] != 0) | (A[vj == j] != 0).any(axis=0)
        ks = np.flatnonzero(used & keep)
        if ks.size >= 3:
            out.append(ks)
    return out


def _turn(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Rotations (F, 3, 3) taking the centred points ``src`` (F, N, 3) to ``dst`` (F, N, 3), frame by frame."""
    if src.shape[1] >= 3:
        U, _, Vt = np.linalg.svd(np.einsum("fni,fnj->fij", src, dst))
        d = np.sign(np.linalg.det(np.swapaxes(Vt, -1, -2) @ np.swapaxes(U, -1, -2)))
        D = np.tile(np.eye(3), (len(src), 1, 1))
        D[:, 2, 2] = d
        return np.swapaxes(Vt, -1, -2) @ D @ np.swapaxes(U, -1, -2)
    return rotation_between(src[:, 1] - src[:, 0], dst[:, 1] - dst[:, 0])


def fill_from_segments(pts: np.ndarray, groups: list[np.ndarray], max_gap: int,
                       seen: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(F, K, 3) keypoints → the same with gaps of at most ``max_gap`` frames filled from the keypoint's
    segment (see the module) where all its other keypoints are seen, and (F, K) bool: the filled samples.
    ``seen`` (F, K): where the keypoints were observed, when ``pts`` are already smoothed (and bridged): the
    fill then carries the smoothed keypoint with its smoothed neighbours, whose noise the turn would otherwise
    amplify (default: where finite)."""
    out = pts.copy()
    seen = np.isfinite(pts).all(axis=2) if seen is None else np.asarray(seen, bool)
    filled = np.zeros_like(seen)
    F = len(pts)
    for g in groups:
        for k in g:
            others = np.array([o for o in g if o != k])
            ok = seen[:, others].all(axis=1)
            edge_ok = ok & seen[:, k]
            fr, left, right = [], [], []
            for a, b in runs(~seen[:, k]):
                if b - a > max_gap or not ok[a:b].all():
                    continue
                lo = a - 1 if a > 0 and edge_ok[a - 1] else -1
                hi = b if b < F and edge_ok[b] else -1
                if lo < 0 and hi < 0:
                    continue
                fr.append(np.arange(a, b))
                left.append(np.full(b - a, lo))
                right.append(np.full(b - a, hi))
            if not fr:
                continue
            fr, left, right = np.concatenate(fr), np.concatenate(left), np.concatenate(right)
            cur = pts[fr][:, others]
            c = cur.mean(axis=1)
            est = []
            for e in (np.where(left >= 0, left, right), np.where(right >= 0, right, left)):
                ref = pts[e][:, others]
                m = ref.mean(axis=1)
                R = _turn(ref - m[:, None], cur - c[:, None])
                est.append(c + np.einsum("fij,fj->fi", R, pts[e, k] - m))
            both = (left >= 0) & (right >= 0)
            t = np.where(both, (fr - left) / np.maximum(right - left, 1), 0.0)[:, None]
            out[fr, k] = (1 - t) * est[0] + t * est[1]
            filled[fr, k] = True
    return out, filled
