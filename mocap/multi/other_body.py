"""Keypoints of a person's detection that lie on another person's body, found from the people's 3D.

A detection can merge two people where they overlap in a view (the head and an arm of the one behind on
the body of the one in front, a leg on the other's leg), or keep a keypoint that jumped to the other
person. The tracker leaves out the keypoints whose rays pass nearer another person's *predicted* joint of
the same name (:func:`mocap.multi.merged.own_rays`), but only in the views it assigned itself, and a merged
keypoint is often on another *part* of the other body (her arm where his arm is labelled). Once every
person is triangulated, :func:`on_other_body` checks each assigned keypoint in the image: one farther than
``margin_px`` from its person's projected joint and off that joint's part of the body (the body radius of
:mod:`mocap.multi.overlap`), that lies on the projected body of another person (as that module defines it:
near one of its limbs or torso segments), is the other person's. It is left out of this person (the
association's ``keypoint_masks``, :func:`add_masks`), so the person is triangulated, refined and reported
without it. A keypoint far from its joint but on no other body is this person's detector error: kept
(triangulation's outlier rejection handles it).

A detection can also carry another person's whole body side in every view that sees it (people overlapping at
the take's start, before the tracker knows either, so none of its keypoints is told apart): the views agree,
the side is triangulated where that other person stands, metres from this body, and refine's gap filling
then draws it back across the frames that follow. :func:`beyond_reach` finds such joints from the 3D alone: a
joint farther from its body's centre (the per-axis median joint, as a running median over
:data:`REACH_WINDOW_S`, so a frame whose detections mix two people does not move it) than its usual distance
from it plus :data:`REACH_EXCESS_M` is no pose; the keypoints that triangulated it are left out too.
"""

from __future__ import annotations

import warnings

import numpy as np

from mocap.filters import running_median
from mocap.keypoint_sets import get_keypoint_set, hand_joints
from mocap.multi.slots import decode_masks, encode_masks
from mocap.types import Keypoints2D, Rig

BLOCK_ELEMENTS = 1 << 19  # candidates × people × segments measured at once (~50 MB of temporaries at most)
REACH_WINDOW_S = 0.25  # the body's centre at a frame: the median of its per-frame centres over ± this
# a joint this much farther from the body's centre than usual is not this body's: the joints of an adult vary
# their distance from the median joint by ~0.5 m at most (arms overhead, a kick, a split)
REACH_EXCESS_M = 1.0


def on_other_body(rig: Rig, kp: Keypoints2D, X: np.ndarray, min_score: float, margin_px: float) -> np.ndarray:
    """(F, C, P, J) bool: the usable keypoints of person p's detections (``kp``'s persons axis is the identity
    of the 3D people X (F, P, J, 3)) that are another person's: farther than ``margin_px`` and than the body
    radius (:data:`~mocap.multi.overlap.BODY_RADIUS_M` at p's depth) from p's projected joint, and on the
    projected body of another person q (within that radius, at q's depth, of one of its limbs or torso
    segments), nearer it than to p's joint. One person, or no keypoint that far: nothing."""
    from mocap.multi.body import torso_centre, torso_mask
    from mocap.multi.overlap import BODY_RADIUS_M, body_segments, camera_depths, point_segment_distance

    F, C, P, J = kp.shape
    drop = np.zeros((F, C, P, J), bool)
    if P < 2 or X.shape[1] != P:
        return drop
    seg = body_segments(kp.keypoint_set, J)
    uv = np.moveaxis(rig.project(X.reshape(-1, 3)).reshape((C, F, P, J, 2)), 0, 1)  # (F, C, P, J, 2)
    xy = kp.xy
    usable = np.isfinite(kp.score) & (kp.score >= min_score) & np.isfinite(xy).all(axis=-1)
    with np.errstate(invalid="ignore"):
        own = np.linalg.norm(xy - uv, axis=-1)
    fx = np.array([cam.K[0, 0] for cam in rig.cameras])
    depth = np.moveaxis(camera_depths(rig, torso_centre(X, torso_mask(kp.keypoint_set, J))), 0, 1)  # (F, C, P)
    with np.errstate(invalid="ignore", divide="ignore"):
        radius = np.where(depth > 0, fx[None, :, None] * BODY_RADIUS_M / depth, np.nan)  # (F, C, P) pixels
        # beyond the margin and off its own joint's part of the body (NaN: p's joint unknown there, not judged)
        cand = usable & (own > margin_px) & (own > np.where(np.isfinite(radius), radius, 0.0)[..., None])
    f, c, p, j = np.nonzero(cand)
    if not len(f) or not len(seg):
        return drop
    # in blocks of candidates: each is measured against every person's every segment ((n, P, S, 2, 2) and
    # temporaries of that size), and a long take of several people with hands has millions of candidates
    step = max(1, BLOCK_ELEMENTS // (P * len(seg)))
    for lo in range(0, len(f), step):
        b = slice(lo, lo + step)
        fb, cb, pb, jb = f[b], c[b], p[b], j[b]
        x = xy[fb, cb, pb, jb][:, None, None]  # (n, 1, 1, 2)
        ends = uv[fb, cb][:, :, seg]  # (n, P, S, 2, 2)
        d = point_segment_distance(x, ends[..., 0, :], ends[..., 1, :])  # (n, P, S)
        d = np.where(np.isfinite(d), d, np.inf).min(axis=-1)  # (n, P): to each person's body
        with np.errstate(invalid="ignore"):
            on = (d < radius[fb, cb]) & (d < own[fb, cb, pb, jb][:, None])  # (n, P)
        on[np.arange(len(fb)), pb] = False  # another person's body only
        drop[fb, cb, pb, jb] = on.any(axis=-1)
    return drop


def beyond_reach(X: np.ndarray, views: np.ndarray, keypoint_set: str, fps: float) -> np.ndarray:
    """(F, C, P, J) bool: the views that triangulated a joint of person p (X (F, P, J, 3), ``views`` (F, P, J, C)
    as :class:`~mocap.types.Points3D` records them) that lies more than :data:`REACH_EXCESS_M` farther from
    p's body centre than that joint's median distance from it over the take. The centre: the per-axis median
    of the body joints (not the hands), then its running median over ± :data:`REACH_WINDOW_S`."""
    J = X.shape[2]
    body = ~hand_joints(get_keypoint_set(keypoint_set))[:J]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # frames (and joints) never triangulated: NaN
        centre = running_median(np.nanmedian(X[:, :, body], axis=2), max(1, int(round(REACH_WINDOW_S * fps))))
        dist = np.linalg.norm(X - centre[:, :, None], axis=-1)  # (F, P, J)
        usual = np.nanmedian(dist, axis=0)  # (P, J)
    far = dist > usual + REACH_EXCESS_M  # NaN (not triangulated): False
    return np.moveaxis(views & far[..., None], 3, 1)


def left_out(rig: Rig, kp: Keypoints2D, points, min_score: float, margin_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Both rules on the people just triangulated (``points``: :class:`~mocap.types.Points3D` of ``kp``'s
    persons): (F, C, P, J) the keypoints on another person's body (:func:`on_other_body`) and, apart from those,
    the ones that put a joint beyond its body's reach (:func:`beyond_reach`)."""
    drop = on_other_body(rig, kp, points.xyz, min_score, margin_px)
    return drop, beyond_reach(points.xyz, points.views, kp.keypoint_set, kp.fps) & ~drop


def unrepaired(drop: np.ndarray, record: dict | None, keypoint_set: str) -> np.ndarray:
    """``drop`` (F, C, P, J) judged on keypoints whose left/right swaps were repaired, indexed as the detections
    were before (the association's masks are applied before the repair): in each view the swap repair
    exchanged (``record``, its ``swap_repairs``: rows [frame, view, person, group bits]), the joints of the
    exchanged groups take their mirror's entry (a hand follows its arm)."""
    from mocap.geometry.swaps import swap_groups
    from mocap.keypoint_sets import body_keypoint_set, hand_joints

    rows = (record or {}).get("views") or []
    if not rows or not drop.any():
        return drop
    ks = get_keypoint_set(keypoint_set)
    J = drop.shape[3]
    body = get_keypoint_set(body_keypoint_set(ks.name) or ks.name)
    names, member = swap_groups(body)
    groups = list(record.get("groups", names))
    member = np.vstack([member, np.zeros((J - len(member), member.shape[1]), bool)])[:J]
    if "arms" in names and len(body.joints) < J:
        member[hand_joints(ks)[:J], list(names).index("arms")] = True
    flip = np.asarray(ks.flip_permutation)[:J]
    out = drop.copy()
    for f, c, p, bits in rows:
        on = np.array([(bits >> groups.index(n)) & 1 if n in groups else 0 for n in names], bool)
        moved = member[:, on].any(axis=1)
        perm = np.where(moved, flip, np.arange(J))
        out[f, c, p] = drop[f, c, p][perm]
    return out


def add_masks(association: dict, drop: np.ndarray, counter: str = "other_body_keypoints") -> dict:
    """The association record with ``drop`` (F, C, P, J) also left out of each person's detections (its
    ``keypoint_masks``: per (frame, view, person) the keypoints that are the person's) and counted (in
    ``counter``)."""
    J = drop.shape[3]
    masks = decode_masks(association.get("keypoint_masks"), J)
    for f, c, p in zip(*np.nonzero(drop.any(axis=3)), strict=True):
        key = (int(f), int(c), int(p))
        masks[key] = masks.get(key, np.ones(J, bool)) & ~drop[f, c, p]
    out = dict(association)
    out["keypoint_masks"] = encode_masks(masks)
    out[counter] = int(association.get(counter, 0)) + int(drop.sum())
    return out
