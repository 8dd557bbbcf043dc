"""A person's own partial detections followed as a second person: joined back to that person.

A performer partly out of two views (cut by the image border, behind a wall or a dark area) is detected there
as a partial body, which a detector often squeezes into the part it sees: its keypoints are no longer where that
person's joints project, so the tracker leaves them out of the person, and the two views' leftovers (a facing
pair's rays meet almost anywhere along the line between the cameras) start an identity of their own, tens of
centimetres to a metre from the body along that line. Its 3D body does not coincide with the person's
(:func:`mocap.multi.identity.merge_coinciding` does not join it), but each of its detections lies on the person's
body in its view, and the person's other views see nobody where it is said to be.

:func:`merge_partial` joins such an identity into the person whose projected body holds its detections (every
view's, in ``INSIDE_SHARE`` of the frames both are seen), when the views that do not see it see its spot empty
(:func:`~mocap.multi.seen.contradicted`): its views go to that person where the person has no detection
of its own in them, with the keypoints that fit the person's skeleton (:func:`absorb`; all of them where the
person was lost). Two real people stay two: however close, a person is beside the other in some view, and the
views that do not see it see someone there (the other person's detection covers it, or its own).

On the reviewer's take (the single-person Pose2Sim demo, two facing cameras blacked out over part of the image
from frame 60) the performer was two identities: one made of its squeezed detections in those two views (27
frames, a metre from the body, not usable), and the performer built from the other two cameras alone.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from mocap.multi.identity import UNCONFIRMED_SHARE
from mocap.multi.rays import point_ray_distance
from mocap.multi.seen import contradicted, scored_boxes
from mocap.multi.tracklets import Track
from mocap.types import Rig

if TYPE_CHECKING:
    from mocap.multi.track import Tracker

log = logging.getLogger(__name__)
BOX_MARGIN = 0.05  # a person's projected body: the box of its projected joints, grown by this share of its size
KEYPOINTS_INSIDE = 0.9  # a detection lies on a person's body when this share of its keypoints is inside that box
INSIDE_SHARE = 0.8  # an identity whose detections lie on another person's body in this share of them ...
MIN_FRAMES = 3  # ... over at least this many frames where the other person is located in 3D, and ...
# ... whose spot the other views see empty in UNCONFIRMED_SHARE of its frames in 3D: that person's partial views


def inside_share(rig: Rig, kp, t: Track, o: Track, min_score: float) -> tuple[float, int]:
    """The share of ``t``'s detections lying on ``o``'s body (``KEYPOINTS_INSIDE`` of their keypoints scored
    ``min_score`` or more inside the box of ``o``'s skeleton projected in that view, grown by ``BOX_MARGIN``), over
    the frames ``t`` is seen in and ``o`` located in 3D, in the view where it is least (every view must agree: one
    beside the body is another person); and how many such frames there are."""
    pick = [k for k, f in enumerate(t.frames) if f in o.skel and (t.slots[k] >= 0).any()]
    if not pick:
        return 0.0, 0
    frames = np.array([t.frames[k] for k in pick])
    slots = np.stack([t.slots[k] for k in pick])  # (n, C)
    X = np.stack([o.skel[f] for f in frames])  # (n, J, 3)
    inside = []
    for c in range(slots.shape[1]):
        rows = np.flatnonzero(slots[:, c] >= 0)
        if not len(rows):
            continue
        xy, _, _ = scored_boxes(kp.data[frames[rows], c, slots[rows, c]], min_score)  # (m, J, 2)
        uv = rig[c].project(X[rows])  # (m, J, 2); NaN: unknown or behind
        with np.errstate(invalid="ignore"):
            lo, hi = np.nanmin(uv, axis=1, initial=np.inf), np.nanmax(uv, axis=1, initial=-np.inf)  # (m, 2)
            grow = BOX_MARGIN * (hi - lo)
            ok = np.all((xy >= (lo - grow)[:, None]) & (xy <= (hi + grow)[:, None]), axis=-1)  # (m, J)
        seen = np.isfinite(xy).all(axis=-1)
        n = seen.sum(axis=1)
        inside.append((n > 0) & ((ok & seen).sum(axis=1) >= KEYPOINTS_INSIDE * np.maximum(n, 1)))
    return min(float(x.mean()) for x in inside), len(pick)


def absorb(tr: Tracker, o: Track, t: Track) -> int:
    """``t``'s detections into ``o``, in the views ``o`` has none in. Where ``o`` is located in 3D, only their
    keypoints whose rays pass within ``match_max_m`` of ``o``'s joints (a keypoint mask; at least ``min_joints`` of
    them, else not the view), the others being where the detector squeezed the part it did not see: ``o``'s
    skeleton stays its own. Where ``o`` is not (lost, or seen by one view), they are its only views there: given
    as they are, ``t``'s skeleton not (tens of centimetres to a metre off: triangulate solves the views again).
    Returns how many views were given."""
    mine = dict(zip(o.frames, zip(o.slots, o.costs, strict=True), strict=True))
    masks_of: dict[int, dict] = {}  # frame → view → t's (slot, keypoint mask) there
    for (f, c), v in t.own.items():
        masks_of.setdefault(f, {})[c] = v
    given = 0
    for f, sl, cost in zip(t.frames, t.slots, t.costs, strict=True):
        have = mine[f][0] if f in mine else np.full(len(sl), -1, sl.dtype)
        views = np.flatnonzero((sl >= 0) & (have < 0))
        if not len(views):
            continue
        if f in o.skel:
            d = point_ray_distance(o.skel[f], tr.origins[views][:, None], tr.rays[f, views, sl[views]])  # (V, J)
            with np.errstate(invalid="ignore"):
                near = d <= tr.cfg.match_max_m
            views, masks = views[near.sum(axis=1) >= tr.cfg.min_joints], near[near.sum(axis=1) >= tr.cfg.min_joints]
            o.own.update({(f, int(c)): (int(sl[c]), m) for c, m in zip(views, masks, strict=True)})
        else:
            o.own.update({(f, c): v for c, v in masks_of.get(f, {}).items() if c in views and v[0] == sl[c]})
        if len(views):
            have = have.copy()
            have[views] = sl[views]
            mine[f] = (have, mine[f][1] if f in mine else cost)
            given += len(views)
    if t.last3d > o.last3d and t.last3d in o.skel:  # it ends where t does (stitching measures from there)
        o.last3d, o.X3d, o.X_end = t.last3d, t.X3d, t.X_end
    o.frames = sorted(mine)
    o.slots, o.costs = [mine[f][0] for f in o.frames], [mine[f][1] for f in o.frames]
    o.max_views = max(o.max_views, max(int((s >= 0).sum()) for s in o.slots))
    return given


def merge_partial(tr: Tracker, tracks: list[Track]) -> tuple[list[Track], int]:
    """Identities whose detections lie on another person's body in every view they are seen in (see the module)
    joined into that person (:func:`absorb`), the one lying most on a body first; returns the tracks left and how
    many were joined. None for the detect stage's second pass (``two_view_birth`` 1): every identity is where it
    looks for the detections the views missed (as :func:`~mocap.multi.identity.drop_unconfirmed` drops none)."""
    if len(tracks) < 2 or tr.two_view_birth <= 1:
        return tracks, 0
    rig, kp, min_score = tr.rays.rig, tr.rays.kp, tr.rays.min_score
    pairs, views = [], 0
    for i, t in enumerate(tracks):
        for k, o in enumerate(tracks):
            if i != k and len(t.skel) <= len(o.skel):
                share, n = inside_share(rig, kp, t, o, min_score)
                if n >= max(MIN_FRAMES, len(t.frames) / 2) and share >= INSIDE_SHARE:  # judged on most of t
                    pairs.append((share, n, i, k))
    gone: set[int] = set()
    into: dict[int, int] = {}
    for _share, _n, i, k in sorted(pairs, reverse=True):
        while k in into:  # o itself joined another person
            k = into[k]
        if i in gone or i == k or contradicted(rig, kp, tracks[i], min_score) < UNCONFIRMED_SHARE:
            continue
        views += absorb(tr, tracks[k], tracks[i])
        gone.add(i)
        into[i] = k
    if gone:
        log.info("%d identities made of another person's partial detections (on its body in every view, their spot "
                 "seen empty by the other views): joined into that person (%d views given)", len(gone), views)
    return [t for i, t in enumerate(tracks) if i not in gone], len(gone)
