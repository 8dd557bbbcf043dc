"""Whether the other cameras see a person's spot empty: in their image, in front of them, and no detection there
that could be that person or someone hiding it. What tells a person from two views' detections of something else
meeting in 3D (:func:`mocap.multi.identity.drop_unconfirmed`, :mod:`mocap.multi.partial`) and a person's last
frames seen by one view from that view's detections of something else after it left
(:func:`mocap.multi.gates.drop_lone_tails`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mocap.multi.tracklets import Track

if TYPE_CHECKING:
    from mocap.multi.track import Tracker
    from mocap.types import Rig

BODY_DEPTH_M = 0.2  # torso centres nearer than this cannot be two people, even hugging (a torso's depth)
SOMEONE_COVER = 0.5  # a detection whose box covers this share of a projected skeleton's may be that person (or
# someone in front of it)
EMPTY_VIEWS = 2  # a person seen by one view whose spot this many other cameras see empty: not that view's detection


def scored_boxes(det: np.ndarray, min_score: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detections (..., J, 3) → their keypoints scored ``min_score`` or more (..., J, 2) (NaN the others) and the
    corners of their box, lo and hi (..., 2) (inf and -inf where none is)."""
    with np.errstate(invalid="ignore"):
        xy = np.where((det[..., 2] >= min_score)[..., None], det[..., :2], np.nan)
    return xy, np.nanmin(xy, axis=-2, initial=np.inf), np.nanmax(xy, axis=-2, initial=-np.inf)


def contradicted(rig: Rig, kp, t: Track, min_score: float, centres: dict | None = None) -> float:
    """The share of ``t``'s frames in 3D in which a camera that did not see it has at least half its skeleton
    inside its image (in front of it) and no detection there: no box of a detection (its keypoints scored
    ``min_score`` or more) covers ``SOMEONE_COVER`` of the box of the skeleton's projection in the image (a person
    hidden behind another in that view: the other's box, as large or larger, covers it). ``centres``: (frame, view,
    slot) → the body centre (3,) of the person that detection is, where known: a person farther from that camera
    than ``t`` (by more than a body's depth) cannot hide it (in a packed group every spot is inside someone's
    box)."""
    frames = list(t.skel)
    if not frames:
        return 0.0
    mine = {f: {c for c in range(len(rig)) if t.slots[k][c] >= 0} for k, f in enumerate(t.frames)}
    _, lo, hi = scored_boxes(kp.data[frames], min_score)  # (n, C, S, 2)
    S = np.stack([t.skel[f] for f in frames])  # (n, J, 3)
    empty = np.zeros(len(frames), bool)
    for c, cam in enumerate(rig.cameras):
        in_view, cover = _spot(cam, cam.project(S), lo[:, c], hi[:, c])  # (n,), (n, S)
        if centres:
            mid = np.linalg.norm(np.nanmedian(S, axis=1) - cam.center, axis=-1)  # (n,) t's depth from the camera
            for i, s in zip(*np.nonzero(cover), strict=True):
                other = centres.get((frames[i], c, int(s)))
                cover[i, s] = other is None or np.linalg.norm(other - cam.center) < mid[i] + BODY_DEPTH_M
        overlap = cover.any(axis=1)
        missed = np.array([c not in mine.get(f, ()) for f in frames])
        empty |= in_view & missed & ~overlap
    return float(empty.mean())


def _spot(cam, uv: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For skeletons projected in ``cam`` (uv (n, J, 2), NaN behind it): (n,) whether half their joints are in its
    image, and (n, S) which detection boxes (lo, hi (n, S, 2)) cover ``SOMEONE_COVER`` of the box of their part in
    the image (a detection's box is of what the image shows: one at its edge covers only the part there)."""
    w, h = cam.size
    with np.errstate(invalid="ignore"):
        inside = (uv[..., 0] >= 0) & (uv[..., 0] < w) & (uv[..., 1] >= 0) & (uv[..., 1] < h)
    a = np.clip(np.nanmin(uv, axis=1, initial=np.inf), 0, cam.size)[:, None]  # (n, 1, 2)
    b = np.clip(np.nanmax(uv, axis=1, initial=-np.inf), 0, cam.size)[:, None]
    with np.errstate(invalid="ignore"):
        inter = np.prod(np.clip(np.minimum(b, hi) - np.maximum(a, lo), 0, None), axis=-1)  # (n, S)
        cover = inter >= SOMEONE_COVER * np.prod(b - a, axis=-1)  # NaN (none): False
    return inside.sum(axis=1) >= 0.5 * uv.shape[1], cover


def centres(tracks: list[Track], frames: set) -> dict:
    """(frame, view, slot) → the body centre (3,) of the identity that detection is, in ``frames`` where that
    identity was located in 3D (a candidate's own detections are in views it saw: :func:`contradicted` skips
    those)."""
    out = {}
    for u in tracks:
        for f, sl in zip(u.frames, u.slots, strict=True):
            if f in frames and f in u.path:
                centre = u.path[f]
                out.update({(f, c, int(s)): centre for c, s in enumerate(sl) if s >= 0})
    return out


def seen_empty(tr: Tracker, f: int, X: np.ndarray, c0: int) -> bool:
    """Whether ``EMPTY_VIEWS`` cameras or more besides ``c0`` have half of the skeleton X (J, 3), a person seen by
    view c0 alone, in front of them and inside their image, and no detection of frame f whose box covers
    ``SOMEONE_COVER`` of the box of its projection's part in the image (someone in front may hide it; a detection at
    the image's edge covers only its part there)."""
    ok = np.isfinite(X[:, 0])
    if ok.sum() < tr.cfg.min_joints:
        return False
    _, lo, hi = scored_boxes(tr.rays.kp.data[f], tr.rays.min_score)  # (C, S, 2)
    empty = 0
    for c, cam in enumerate(tr.rays.rig.cameras):
        if c == c0:
            continue
        in_view, cover = _spot(cam, cam.project(X[ok])[None], lo[c][None], hi[c][None])  # (1,), (1, S)
        if not in_view[0] or cover.any():
            continue
        empty += 1
        if empty >= EMPTY_VIEWS:
            return True
    return False
