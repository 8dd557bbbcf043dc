"""One identity per person: no new identity where a tracked person already is, and identities that turn out
to be one person joined.

A person whose detections are lost for a few frames (a fast kick outside its gate, a view that took another
person's detection) leaves its own detections free; grouped across views they would start a second identity
on the same body. :func:`births` starts a person only where no tracked person's torso is within
``DUPLICATE_M``; a group there is the tracked person's, which takes it when it explains more views that way
(:func:`reanchor`, also after a lunge beyond its gate). :func:`reacquire` joins a person just confirmed to the
one lost where it is; :func:`merge_coinciding` joins, after tracking, identities whose bodies coincide
wherever both are seen (the same body followed twice). In the output, a detection two people shared goes to
the one with more keypoints of its own in it (:func:`one_owner`), and a person never where three cameras see
is not reconstructed (:func:`drop_outside`), nor a short one two cameras saw (a third at times, with four or
more: :func:`two_views`) where a third camera sees the spot and detects nobody (:func:`drop_unconfirmed`: a
poster or a reflection in two views, or two views' detections of different people or of a body's mirror that
happen to meet in 3D for a moment), nor a longer one there whose two views' detections do not meet as one body,
nor a brief one whose detections do not meet, whatever the other cameras see.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from mocap.geometry.triangulation import reprojection_errors
from mocap.multi.associate import cluster, pair_affinity
from mocap.multi.body import torso_centre
from mocap.multi.seen import BODY_DEPTH_M, centres, contradicted, scored_boxes
from mocap.multi.tracklets import Track, apart, centre, join_tracks, latest_measured

if TYPE_CHECKING:
    from mocap.multi.track import Tracker
    from mocap.types import Rig

log = logging.getLogger(__name__)
DUPLICATE_M = 0.4  # torso centres nearer than this: one body (two people's torsos are at least this far apart)
COINCIDE_M = 0.15  # two identities whose body centres are this near ...
COINCIDE_SHARE = 0.8  # ... in this share of the frames both are seen in 3D are one person
UNCONFIRMED_S = 1.0  # an identity only two cameras saw, for less than this, ...
UNCONFIRMED_SHARE = 0.5  # ... with a third camera seeing the spot empty in this share of its frames: no person
BODY_MIN_M = 0.5  # ... or (however long) whose joints spread less than this (body_extent): no person
APART_RATIO = 3.0  # ... or (however long) whose skeleton misses its own detections by this many times the median
# of the people three cameras or more saw, in pixels and in shares of each detection's size (residuals), and by
APART_MIN_PX = 2.0  # this: its two views' detections do not meet as one body (no detector does much better)


def births(tr: Tracker, f: int, free: np.ndarray) -> None:
    """Detections no person explains, grouped across views (:mod:`mocap.multi.associate`): a group of two
    or more views starts a tentative person unless a tracked person's torso lies within ``DUPLICATE_M`` of
    it and that person is not located in 3D this frame by views of its own (or the group has fewer than three
    views, or lies within ``BODY_DEPTH_M`` of it): then it is that person's (:func:`reanchor`)."""
    cs = np.argwhere(free)
    if len(cs) < 2 or len(set(cs[:, 0])) < 2:
        return
    tr.unexplained_frames += 1
    views = cs[:, 0]
    cost = pair_affinity(tr.origins[views], tr.rays[f, views, cs[:, 1]], views, tr.cfg.min_joints)
    for group in cluster(cost, views, tr.cfg.match_max_m):
        v = [int(views[g]) for g in group]
        s = [int(cs[g, 1]) for g in group]
        X, kept, _ = tr._solve(v, s, f, None)
        if len(kept) < 2:
            continue
        if any(apart(t.predict(f), X) < tr.cfg.track_max_m for t in tr.live):
            continue  # the detections of a person already tracked that its gate missed
        near = nearest_person(tr, f, X)
        # a person located in 3D this frame by views of its own is there: a group seen by three views (two can
        # meet anywhere) whose torso is beyond a body's depth from its torso (and whose skeleton is a track's gate
        # away from every prediction) is another body beside it (a hug, a lift), not its lost detections
        if near is not None and not (near.last3d == f and len(kept) >= 3 and torso_apart(tr, near, X) >= BODY_DEPTH_M):
            reanchor(tr, near, f, {c: s[v.index(c)] for c in kept}, free)
            continue
        slots = np.full(tr.C, -1, np.int16)
        for c in kept:
            slots[c] = s[v.index(c)]
        cost = float(np.median(tr.costs_to(f, kept, [s[v.index(c)] for c in kept], X[None], tr.cfg.track_max_m)))
        t = Track(X, f, f, frames=[f], slots=[slots], costs=[cost], max_views=len(kept), last3d=f, X3d=X,
                  path={f: centre(X)}, skel={f: X})
        t.confirmed = tr.cfg.birth_frames <= 1 and len(kept) >= min(3, tr.C)
        tr.live.append(t)


def torso_apart(tr: Tracker, t: Track, X: np.ndarray) -> float:
    """Distance between the torso centres of track ``t`` as seen now and of the skeleton ``X`` (J, 3)."""
    return float(np.linalg.norm(torso_centre(t.X, tr.torso) - torso_centre(X, tr.torso)))


def nearest_person(tr: Tracker, f: int, X: np.ndarray) -> Track | None:
    """The confirmed person whose torso (as seen this frame, else predicted) is nearest ``X``'s, when within
    ``DUPLICATE_M``."""
    best, best_d = None, DUPLICATE_M
    c = torso_centre(X, tr.torso)
    for t in tr.live:
        if not t.confirmed:
            continue
        d = float(np.linalg.norm(torso_centre(t.X if t.last == f else t.predict(f), tr.torso) - c))
        if d < best_d:
            best, best_d = t, d
    return best


def reanchor(tr: Tracker, t: Track, f: int, group: dict[int, int], free: np.ndarray) -> bool:
    """A group of free detections (view → slot) on a tracked person: solved with the person's own detections
    of this frame (the group's where both have a view), it replaces them when it keeps more views (the person
    had lost them, or held another person's detection). Returns whether it did."""
    mine = {}
    if t.frames and t.frames[-1] == f:
        mine = {c: int(sl) for c, sl in enumerate(t.slots[-1]) if sl >= 0}
    both = {**mine, **group}
    views = sorted(both)
    prior = t.predict(f) if t.last < f else t.X
    X, kept, _ = tr._solve(views, [both[c] for c in views], f, prior, [0.0 if c in group else 1.0 for c in views])
    moved = np.linalg.norm(torso_centre(X, tr.torso) - torso_centre(prior, tr.torso))
    if len(kept) < 2 or len(kept) <= len(mine) or not moved <= DUPLICATE_M:  # a lunge beyond the gate: still it
        return False
    slots = np.full(tr.C, -1, np.int16)
    for c in kept:
        slots[c] = both[c]
        free[c, both[c]] = False
    for c, sl in mine.items():
        if c not in kept or slots[c] != sl:
            free[c, sl] = True  # what it held and the group replaced: back to the pool (for the next frame's view)
    if t.frames and t.frames[-1] == f:
        t.slots[-1] = slots
    else:
        t.frames.append(f)
        t.slots.append(slots)
        t.costs.append(t.noise(30))
        t.hits += 1
    t.X, t.last, t.last3d, t.X3d = X, f, f, X
    t.path[f] = centre(X)
    t.skel[f] = X
    t.max_views = max(t.max_views, len(kept))
    return True


def merge_coinciding(tracks: list[Track]) -> list[Track]:
    """Join identities seen together in 3D whose bodies are within ``COINCIDE_M`` in at least ``COINCIDE_SHARE``
    of those frames (one body followed twice): their centres, or the joints both have (the median distance: a
    partial body's centre is not the whole body's); per frame the assignment with more views, and the end
    (``X_end``) of the one seen in 3D last."""
    tracks = sorted(tracks, key=lambda t: t.frames[0] if t.frames else 0)
    out: list[Track] = []
    for t in tracks:
        for o in out:
            both = sorted(set(o.path) & set(t.path))
            if len(both) < 3:
                continue
            d = [c if (c := np.linalg.norm(o.path[k] - t.path[k])) <= COINCIDE_M else  # the joints only where needed
                 min(c, _joints_apart(o.skel.get(k), t.skel.get(k))) for k in both]
            if np.mean(np.asarray(d) <= COINCIDE_M) >= COINCIDE_SHARE:
                later = t.last3d >= o.last3d
                join_tracks(o, t)
                if later:  # it now ends where t does (stitching measures from there)
                    o.X_end = t.X_end
                break
        else:
            out.append(t)
    return out


def _joints_apart(a: np.ndarray | None, b: np.ndarray | None, least: int = 4) -> float:
    """The median distance between the joints two skeletons (J, 3) both have; inf with fewer than ``least``."""
    ok = np.zeros(0, bool) if a is None or b is None else np.isfinite(a[:, 0]) & np.isfinite(b[:, 0])
    return float(np.median(np.linalg.norm(a[ok] - b[ok], axis=1))) if ok.sum() >= least else np.inf


def one_owner(slots: np.ndarray, tracks: list[Track], n_joints: int) -> int:
    """A detection two people shared while tracking (one hidden behind the other, :mod:`mocap.multi.merged`)
    goes, in the output ``slots`` (F, C, P), to the person with more keypoints of its own in it: the other
    would otherwise be triangulated from the keypoints of the body in front. Returns how many views were
    taken from a person."""
    taken = 0
    P = slots.shape[2]
    for p in range(P):
        for q in range(p + 1, P):
            same = (slots[:, :, p] >= 0) & (slots[:, :, p] == slots[:, :, q])
            for f, c in zip(*np.nonzero(same), strict=True):
                key = (int(f), int(c))
                sl = slots[f, c, p]
                mine, theirs = (int(np.sum(t.own[key][1])) if key in t.own and t.own[key][0] == sl else n_joints
                                for t in (tracks[p], tracks[q]))
                slots[f, c, q if mine >= theirs else p] = -1
                taken += 1
    return taken


def outside_volume(rig: Rig, tracks: list[Track]) -> list[bool]:
    """Per identity: whether it was never where ``min(3, C)`` cameras see (its body centre in front of them
    and inside their images) in any frame it was located in 3D: someone beyond the capture volume (a
    bystander seen by two cameras across the room), whom the other cameras cannot confirm."""
    need = min(3, len(rig))
    out = []
    for t in tracks:
        P = np.array([p for p in t.path.values() if np.isfinite(p).all()]).reshape(-1, 3)
        seen = np.zeros(len(P), int)
        for cam in rig.cameras:
            depth = (P @ cam.R.T + cam.t)[:, 2]
            uv = cam.project(P)
            w, h = cam.size
            seen += (depth > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)
        out.append(bool(len(P)) and not np.any(seen >= need))
    return out


def drop_outside(rig: Rig, tracks: list[Track]) -> tuple[list[Track], int]:
    """The identities not :func:`outside_volume` (those are reported), and how many were."""
    outside = outside_volume(rig, tracks)
    if any(outside):
        log.warning("%d people never where %d cameras see (beyond the capture volume, e.g. a bystander seen by two "
                    "cameras across the room): not reconstructed", sum(outside), min(3, len(rig)))
    return [t for t, o in zip(tracks, outside, strict=True) if not o], int(sum(outside))


def body_extent(t: Track, min_joints: int = 4) -> float:
    """How far ``t``'s joints spread: per frame it was located in 3D (with ``min_joints`` joints or more) the 90th
    percentile of the distances between two of its joints (a few outlying joints aside), the median over those
    frames (m); NaN without such a frame. An adult 1.2–1.4 m, a child 1 m tall 0.85 m."""
    frames, ext = list(t.skel), []
    for i in range(0, len(frames), 512):  # (512, J, J) distances at once
        X = np.stack([t.skel[f] for f in frames[i: i + 512]])  # (n, J, 3)
        d = np.sqrt(((X[:, :, None] - X[:, None]) ** 2).sum(-1)).reshape(len(X), -1)  # NaN: a joint unknown
        enough = np.isfinite(X[..., 0]).sum(axis=1) >= min_joints
        if enough.any():
            ext.append(np.nanpercentile(d[enough], 90, axis=1))
    return float(np.median(np.concatenate(ext))) if ext else float("nan")


def residuals(rig: Rig, kp, t: Track, min_score: float) -> tuple[float, float]:
    """The median distance of ``t``'s skeleton, projected, to the keypoints of its own detections (scored
    ``min_score`` or more), over the frames it was located in 3D, its views there and their joints: in pixels,
    and in units of each detection's size (the diagonal of its keypoints' box; a detector misses by about a
    share of the body it sees, a near person by more pixels than a far one). NaN: none. A person seen by two
    views sits within the noise of both (nearer than one seen by three: two views leave a point one degree of
    freedom less to miss by); two views' detections of different things meet in 3D nowhere near both."""
    pick = [(k, f) for k, f in enumerate(t.frames) if f in t.skel]
    if not pick:
        return float("nan"), float("nan")
    S = np.stack([t.skel[f] for _, f in pick])  # (n, J, 3)
    slots = np.stack([t.slots[k] for k, _ in pick])  # (n, C)
    n, C = slots.shape
    det = kp.data[np.array([f for _, f in pick])[:, None], np.arange(C), np.maximum(slots, 0)]  # (n, C, J, 3)
    det[slots < 0] = np.nan  # views it was not seen in
    xy, lo, hi = scored_boxes(det, min_score)
    J = xy.shape[2]
    d = reprojection_errors(rig, S.reshape(-1, 3), np.moveaxis(xy, 1, 2).reshape(-1, C, 2))  # (n·J, C)
    d = np.moveaxis(d.reshape(n, J, C), 2, 1)  # (n, C, J); NaN: no scored keypoint, or no joint in 3D
    size = np.hypot(*np.moveaxis(hi - lo, -1, 0))[..., None]  # (n, C, 1) the box's diagonal (inf where none)
    ok = np.isfinite(d)
    with np.errstate(invalid="ignore", divide="ignore"):
        px, rel = d[ok], (d / size)[ok & (size > 0)]
    return (float(np.median(px)) if px.size else float("nan"),
            float(np.median(rel)) if rel.size else float("nan"))


def two_views(t: Track, cameras: int) -> bool:
    """``t`` was seen by two cameras (with four ``cameras`` or more, a third at times: in under half of its frames
    in 3D): what two views' detections of something else can make (a 12-camera take of 6,000 frames: three
    cameras' clutter met in 18 of a phantom's 95 frames in 3D, and it was kept as a sixth actor of five). With
    three cameras, one all three saw at times was seen by every camera there is."""
    if t.max_views <= 2:
        return True
    if cameras < 4:
        return False
    views = [int((s >= 0).sum()) for f, s in zip(t.frames, t.slots, strict=True) if f in t.skel]
    return bool(views) and 2 * sum(v > 2 for v in views) < len(views)


def drop_unconfirmed(rig: Rig, kp, tracks: list[Track], min_score: float, two_view_birth: int = 2
                     ) -> tuple[list[Track], int, list, int, int]:
    """The identities but those no third camera confirms: seen by two cameras (:func:`two_views`), in at least
    ``UNCONFIRMED_SHARE`` of their frames in 3D in another camera's view with no detection there
    (:func:`contradicted`), and either in 3D for less than ``UNCONFIRMED_S``, or not body-sized (:func:`body_extent`
    under ``BODY_MIN_M``: a static false detection in each of two views meeting as a blob, however long), or with
    detections that do not meet as one body (:func:`residuals` over ``APART_RATIO`` times the median of the
    identities three cameras or more saw, in pixels and in shares of the detections' size, and over
    ``APART_MIN_PX``: a poster or a reflection in each of two views, however long; counted as such when not
    body-sized too); one in 3D for less than ``UNCONFIRMED_S`` whose detections do not meet, whatever the other
    cameras see. Returns them, how many were dropped (reported), their detections [frame, view, slot] (not a
    person's: :func:`mocap.detect.select.performer` does not take them back), how many of them were not
    body-sized and how many did not meet. None dropped for the detect stage's second pass (``two_view_birth`` 1):
    a two-view person is where it looks for the detections the other views missed."""
    if two_view_birth <= 1 or len(rig) < 3:
        return tracks, 0, [], 0, 0
    short = int(np.ceil(UNCONFIRMED_S * kp.fps))
    judged = [two_views(t, len(rig)) for t in tracks]
    two = [t for t, j in zip(tracks, judged, strict=True) if j]
    if two:  # the median residuals (px, share) of the identities three cameras or more saw (most of the time;
        # else at least once)
        ref = [u for u, j in zip(tracks, judged, strict=True) if not j] or [u for u in tracks if u.max_views > 2]
        own = np.array([residuals(rig, kp, u, min_score) for u in ref]).reshape(-1, 2)
        seen3 = np.array([np.nanmedian(v) if np.isfinite(v).any() else np.nan for v in own.T])
    gone, candidates = [], []
    for t in two:
        brief = len(t.skel) < short
        px, share = residuals(rig, kp, t, min_score)
        apart = bool(np.isfinite(seen3).all() and px > max(APART_RATIO * seen3[0], APART_MIN_PX)
                     and share > APART_RATIO * seen3[1])  # no one seen by three: none apart
        why = "apart" if apart else "short" if brief else "small" if body_extent(t) < BODY_MIN_M else None
        if apart and brief:
            gone.append((t, why))  # brief and not one body: nothing to confirm
        elif why is not None:
            candidates.append((t, why))
    near = centres(tracks, set().union(*(t.skel for t, _ in candidates))) if candidates else {}
    gone += [(t, why) for t, why in candidates if contradicted(rig, kp, t, min_score, near) >= UNCONFIRMED_SHARE]
    count = {w: sum(why == w for _, why in gone) for w in ("short", "small", "apart")}
    if gone:
        empty = "where another camera saw the spot and detected nobody"
        reasons = [f"{n} {text}" for n, text in (
            (count["short"], f"seen for under {UNCONFIRMED_S:.0f} s {empty}"),
            (count["small"], f"not body-sized {empty}"),
            (count["apart"], f"whose two views' detections do not meet as one body (over {APART_RATIO:.0f}x the "
                             "reprojection error of the people three cameras or more saw, in pixels and in shares "
                             f"of the detections' size, and over {APART_MIN_PX:.0f} px), briefly or {empty}")) if n]
        log.warning("%d identities seen by two cameras (in most frames) were not reconstructed (a poster or a "
                    "reflection, or detections of different things meeting in 3D): %s", len(gone), "; ".join(reasons))
    views = [[int(f), c, int(s)] for t, _ in gone for f, sl in zip(t.frames, t.slots, strict=True)
             for c, s in enumerate(sl) if s >= 0]
    left = [t for t in tracks if not any(t is g for g, _ in gone)]
    return left, len(gone), views, count["small"], count["apart"]


def reacquire(tr: Tracker, new: Track, f: int) -> bool:
    """A person just confirmed where a tracked person, unseen since before it appeared, is expected:
    the same person found again (its history joins that track). Returns whether it joined."""
    best, best_d = None, np.inf
    ended = {id(t) for t in tr.done}
    for o in tr.live:
        if o is new or not o.confirmed or o.last >= new.first or id(o) in ended:  # not one ended this frame
            continue
        d = apart(o.predict(f), new.X)
        if d <= tr._gate(o, f) and d < best_d:
            best, best_d = o, d
    if best is None:
        return False
    best.frames += new.frames
    best.slots += new.slots
    best.costs += new.costs
    best.path.update(new.path)
    best.skel.update(new.skel)
    best.own.update(new.own)
    best.checked |= new.checked
    best.X, best.vel, best.last = new.X, new.vel, f
    if new.last3d >= best.last3d:  # its last two-view fix is now: the gate closes again
        best.last3d, best.X3d = new.last3d, new.X3d
    best.hits += new.hits
    best.max_views = max(best.max_views, new.max_views)
    best.measured = latest_measured(best, new)
    new.merged_into = best
    return True
