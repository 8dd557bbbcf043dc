"""A leg one camera alone sees below the knee, put back on the side of its ray a knee bends to.

One view places an ankle on a ray; its bone to the knee places it on a sphere round the knee: the ray meets
the sphere twice, the shin bent backwards or forwards along the camera's line of sight, and both fit the
image and the bone equally. Refine follows one of them from the frames before; where the ray passes a
tangent to the sphere the two meet, and the motion can carry on along the wrong one: a foot the other
cameras lost at the bottom of their frames, or behind another person, then swings forwards when it swings
back, the knee bent the way no knee bends, up to a shin's length twice over from the truth (0.9 m on a
synthetic crowd take, for 1.5 s).

:func:`unbend` finds, in a refined person, the one-view ankles on the side of their ray the evidence rules out, of
three kinds: the knee bent backwards (hyperextended) by more than :data:`HYPEREXTENDED` (the sine of the shin's bend
about the hips' left-right axis; a knee reaches a few degrees, a noisy straight leg a few more) where the other side
does not, judged only where two views or more place the knee and both hips (:func:`_judged`); a point another camera
would have seen well inside its image (:data:`EDGE_SHARE` in from its edges, where no other person's box covers it)
while it detected the person and that leg's knee there and not the ankle, where the other side lies outside every
such camera's image (a foot the other cameras lost at their images' edges: on a 3-camera take refine followed the
ray to its side in front of them, the knee bent the right way on both, 0.43 m off); and two views that triangulated
the ankle a shin's length from the knee (within :data:`SHIN_TOLERANCE` of its length where two views place both)
that refine left out (one view or none holds the ankle there), its point farther than :data:`DROPPED_SHARE` of a
shin from theirs (a run it carried on the wrong side across six frames that two cameras saw within 13 mm: 0.64 m
off). In each run of frames without two views of that ankle holding one, the ankle takes the other side there (the
two views' point at such an anchor); through the rest of the run each one-view ankle takes, of its two points, the
one that carries on the shin's motion from the frames so decided (where the evidence rules one out, the other:
:func:`_track`), and an ankle no view sees the shin interpolated between the frames either side. The keypoints below
the ankle (heel, toes: those joined to it by the keypoint set's bones or limbs, not through the knee) move with it.
The stage refines the person again from there (``refine.knees``, :mod:`mocap.stages.refine`) and keeps that solve
when it leaves fewer such ankles (:func:`implausible`), the ankles it leaves out counted against it
(:func:`lost_ankles`). The camera and two-view kinds count only where they hold in :data:`MIN_RUN` frames or more of
a run (:func:`_lasting`). A foot on the wrong side that nothing rules out (both sides outside the other images, no
two views) stays where refine put it.
"""

from __future__ import annotations

import numpy as np

from mocap.filters import interpolate_gaps, runs
from mocap.keypoint_sets import get_keypoint_set
from mocap.types import Rig

HYPEREXTENDED = 0.3  # sine of a knee bent backwards (about 17°): beyond what knees and a straight leg's noise do
MOVED_M = 0.01  # an ankle no view sees, whose interpolated start is farther than this from the refined point: moved
MIN_SEEN = 3  # a camera with this many of the person's keypoints detected in a frame sees the person there
EDGE_SHARE = 0.03  # "well in its image": this share of the image's smaller side in from its edges
SHIN_TOLERANCE = 0.2  # two views' ankle within this share of the shin's length of it, from the knee: an anchor ...
DROPPED_SHARE = 0.25  # ... where refine's ankle is farther from it than this share of the shin's length
MIN_RUN = 3  # the evidence of cameras that would have seen an ankle, or of two views: in this many frames of a run
BOX_PAD = 0.1  # another person's box (its keypoints' extent, each side padded by this share) may hide an ankle
LEGS = (("left_hip", "left_knee", "left_ankle"), ("right_hip", "right_knee", "right_ankle"))


def legs(keypoint_set: str) -> list[tuple[int, int, int, tuple[int, ...]]]:
    """(hip, knee, ankle, the keypoints below the ankle) of each leg of the set, left then right; [] when it
    names no such legs. Below the ankle: the joints its bones and limbs reach from there, not through the knee."""
    ks = get_keypoint_set(keypoint_set)
    idx = {n: i for i, n in enumerate(ks.joints)}
    if not all(n in idx for leg in LEGS for n in leg):
        return []
    out = []
    for hip, knee, ankle in LEGS:
        stop = {idx[knee], idx[hip]}
        seen, todo = {idx[ankle]}, [idx[ankle]]
        while todo:
            j = todo.pop()
            for a, b in (*ks.bones, *ks.limbs):  # (halpe26 joins its small toes by limbs only)
                for u, v in ((a, b), (b, a)):
                    if u == j and v not in seen and v not in stop:
                        seen.add(v)
                        todo.append(v)
        out.append((idx[hip], idx[knee], idx[ankle], tuple(sorted(seen - {idx[ankle]}))))
    return out


def other_side(rig: Rig, X: np.ndarray, views: np.ndarray, joint: int, centre: int) -> np.ndarray:
    """(T, 3) where the ray of the one view of ``joint`` (``views`` (T, J, C)) meets the sphere round ``centre``
    through its point X[:, joint] a second time (X (T, J, 3)): the other point the bone's length and that view allow;
    NaN in the frames with no view or several."""
    one = views[:, joint].sum(axis=-1) == 1
    o = np.stack([cam.center for cam in rig])[np.argmax(views[:, joint], axis=-1)]  # (T, 3) that view's camera
    with np.errstate(invalid="ignore", divide="ignore"):
        ray = X[:, joint] - o
        ray /= np.linalg.norm(ray, axis=-1, keepdims=True)
        near = o + np.sum((X[:, centre] - o) * ray, axis=-1, keepdims=True) * ray  # the ray's point nearest the centre
    return np.where(one[:, None], 2 * near - X[:, joint], np.nan)


def backward_bend(X: np.ndarray, hips: tuple[int, int], hip: int, knee: int, ankle: int) -> np.ndarray:
    """(...,) the sine of the knee's bend about the hips' left-right axis, positive when the shin bends
    forwards of the thigh's line (a knee bent backwards, hyperextended); NaN where a point is unknown.
    X (..., J, 3); hips: (left, right) hip."""
    lateral = X[..., hips[1], :] - X[..., hips[0], :]
    thigh, shin = X[..., knee, :] - X[..., hip, :], X[..., ankle, :] - X[..., knee, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.linalg.norm(lateral, axis=-1) * np.linalg.norm(thigh, axis=-1) * np.linalg.norm(shin, axis=-1)
        return np.sum(np.cross(thigh, shin) * lateral, axis=-1) / scale


def _hips(found: list) -> tuple[int, int]:
    """(left, right) hip of :func:`legs`."""
    return found[0][0], found[1][0]


def hyperextended(X: np.ndarray, views: np.ndarray, keypoint_set: str) -> int:
    """How many (frame, leg) of a person (X (T, J, 3), views (T, J, C)) have a one-view ankle whose knee bends
    backwards by more than :data:`HYPEREXTENDED` (where :func:`_judged`)."""
    found = legs(keypoint_set)
    if not found:
        return 0
    hips = _hips(found)
    bad = [_judged(views, hips, knee, ankle) & (backward_bend(X, hips, hip, knee, ankle) > HYPEREXTENDED)
           for hip, knee, ankle, _ in found]
    return int(np.sum(bad))


def _judged(views: np.ndarray, hips: tuple[int, int], knee: int, ankle: int) -> np.ndarray:
    """(T,) the frames a leg's knee is judged in: its ankle seen by one view, its knee and both hips by two or more
    (a knee or a hip one view places can be off along its own ray: the bend measures nothing then)."""
    n = views.sum(axis=-1)
    return (n[:, ankle] == 1) & (n[:, knee] >= 2) & (n[:, hips[0]] >= 2) & (n[:, hips[1]] >= 2)


def _track(frames: list[int], shins: np.ndarray, sure: np.ndarray, pick: np.ndarray, choice: np.ndarray) -> None:
    """``choice[f]`` (0: the refined point, 1: the ray's other point) along ``frames`` (the first one decided):
    where ``sure``, ``pick``; elsewhere the candidate whose shin (``shins`` (T, 2, 3), ankle less knee) is
    nearer the shin the last two chosen frames extrapolate to (the last one alone at the start); a frame without
    both shins (a point refine left out) is passed over."""
    done: list[int] = [frames[0]]
    for f in frames[1:]:
        if not np.isfinite(shins[f]).all():  # a point refine left out (or its knee): no shin to go by
            continue
        if sure[f]:
            choice[f] = pick[f]
        else:
            g1 = done[-1]
            guess = shins[g1, choice[g1]]
            if len(done) > 1:
                g2 = done[-2]
                guess = guess + (guess - shins[g2, choice[g2]]) * (f - g1) / (g1 - g2)
            choice[f] = int(np.argmin(np.linalg.norm(shins[f] - guess, axis=-1)))
        done.append(f)


def _seen_empty(rig: Rig, P: np.ndarray, seen: np.ndarray, knee: int, ankle: int, own: np.ndarray, todo: np.ndarray,
                others: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(empty, visible) (T,) each, in the frames ``todo`` (T,) bool: whether a camera other than ``own`` (T,) (the one
    view; -1: none) that detected the person and this leg's knee but not its ankle (``seen`` (T, C, J): the
    detections used) would see the points P (T, 3) well inside its image (:data:`EDGE_SHARE` in from its edges) where
    no other person's box of ``others`` (T, C, Q, 4: x0, y0, x1, y1; NaN: none) covers them (empty: nothing hides
    the ankle there), or anywhere in its image, covered or not (visible)."""
    empty, visible = np.zeros(len(P), bool), np.zeros(len(P), bool)
    sees = (seen.sum(axis=2) >= MIN_SEEN) & seen[:, :, knee] & ~seen[:, :, ankle]  # (T, C)
    for c, cam in enumerate(rig):
        at = np.flatnonzero(todo & sees[:, c] & (own != c) & np.isfinite(P).all(axis=-1))
        if not at.size:
            continue
        uv = cam.project(P[at])
        w, h = cam.size
        m = EDGE_SHARE * min(w, h)
        with np.errstate(invalid="ignore"):
            inside = (uv[:, 0] >= m) & (uv[:, 0] <= w - 1 - m) & (uv[:, 1] >= m) & (uv[:, 1] <= h - 1 - m)
            anywhere = (uv[:, 0] >= 0) & (uv[:, 0] <= w - 1) & (uv[:, 1] >= 0) & (uv[:, 1] <= h - 1)
        covered = np.zeros(at.size, bool)
        if others is not None and others.shape[2]:
            b = others[at, c]  # (n, Q, 4)
            with np.errstate(invalid="ignore"):
                covered = ((uv[:, None, 0] >= b[..., 0]) & (uv[:, None, 0] <= b[..., 2]) & (uv[:, None, 1] >= b[..., 1])
                           & (uv[:, None, 1] <= b[..., 3])).any(axis=1)
        empty[at[inside & ~covered]] = True
        visible[at[anywhere]] = True
    return empty, visible


def person_boxes(xy: np.ndarray, used: np.ndarray, pad: float = BOX_PAD) -> np.ndarray:
    """(F, C, P, 4) each person's box in each view (x0, y0, x1, y1 of its used keypoints, each side padded by
    ``pad`` of its size; NaN where none): xy (F, C, P, J, 2), used (F, C, P, J) bool."""
    out = np.full(xy.shape[:3] + (4,), np.nan)
    for p in range(xy.shape[2]):  # one person at a time, no copy of its keypoints (a long take's are large)
        m = used[:, :, p, :, None] & np.isfinite(xy[:, :, p])
        lo = np.min(xy[:, :, p], axis=2, where=m, initial=np.inf)
        hi = np.max(xy[:, :, p], axis=2, where=m, initial=-np.inf)
        size = hi - lo
        box = np.concatenate([lo - pad * size, hi + pad * size], axis=-1)
        out[:, :, p] = np.where(np.isfinite(box), box, np.nan)
    return out


def _lasting(mask: np.ndarray, n: np.ndarray) -> np.ndarray:
    """``mask`` (T,) kept only in the runs of frames without two views of the ankle (``n`` (T,) its views) where it
    holds in :data:`MIN_RUN` frames or more: a camera missing a keypoint in a frame or two (a dropout), two views
    meeting by chance in a frame, are no evidence."""
    out = np.zeros_like(mask)
    for a, b in runs(n <= 1):
        if mask[a:b].sum() >= MIN_RUN:
            out[a:b] = mask[a:b]
    return out


def _evidence(rig: Rig, X: np.ndarray, views: np.ndarray, hips: tuple[int, int], leg: tuple, seen, tri,
              others=None):
    """One leg's evidence (see the module): (n (T,) the views of its ankle, other (T, J, 3) X with the ankle on
    its other candidate, sure (T,) the frames where one candidate only is contradicted, pick (T,) which is not
    (0: the refined point), anchor (T,) the frames where the other candidate is the two views' point, bent (T,)
    the frames where the refined point bends the knee backwards, judged (:func:`_judged`))."""
    hip, knee, ankle, _ = leg
    T = len(X)
    n = views[:, ankle].sum(axis=-1)
    one, judged = n == 1, _judged(views, hips, knee, ankle)
    own = np.where(one, np.argmax(views[:, ankle], axis=-1), -1)
    other = X.copy()
    other[:, ankle] = other_side(rig, X, views, ankle, knee)
    bent = np.stack([backward_bend(X, hips, hip, knee, ankle), backward_bend(other, hips, hip, knee, ankle)],
                    axis=1) > HYPEREXTENDED  # (T, 2)
    sure = judged & (bent[:, 0] != bent[:, 1])  # one side only bends the knee backwards: the other is right
    pick = bent[:, 0].astype(int)
    knee_placed = views[:, knee].sum(axis=-1) >= 2
    if seen is not None:  # one side where another camera saw the person's knee and not this ankle, well in its image
        # and in the open, the other side out of every such camera's image (not merely where someone may hide it)
        todo = one & knee_placed
        (e0, v0), (e1, v1) = (_seen_empty(rig, P[:, ankle], seen, knee, ankle, own, todo, others) for P in (X, other))
        empty = np.stack([e0, e1], axis=1)
        free = _lasting(todo & ((e0 & ~v1) | (e1 & ~v0)), n)
        clash = free & sure & (pick != empty[:, 0])  # the two kinds disagree: neither is sure
        sure, pick = (sure | free) & ~clash, np.where(free, empty[:, 0].astype(int), pick)
    anchor = np.zeros(T, bool)
    if tri is not None:  # two views triangulated it a shin's length from the knee, refine left them far from it
        tx, tv = tri
        two = tv[:, ankle].sum(axis=-1) >= 2
        both = (n >= 2) & knee_placed
        shin = np.linalg.norm(X[:, ankle] - X[:, knee], axis=-1)
        if both.any():
            length = float(np.nanmedian(shin[both])) if np.isfinite(shin[both]).any() else np.nan
            to_knee = np.linalg.norm(tx[:, ankle] - X[:, knee], axis=-1)
            with np.errstate(invalid="ignore"):
                anchor = (two & (n < 2) & knee_placed & (np.abs(to_knee - length) < SHIN_TOLERANCE * length)
                          & (np.linalg.norm(tx[:, ankle] - X[:, ankle], axis=-1) > DROPPED_SHARE * length))
            anchor = _lasting(anchor, n)
            other[anchor, ankle] = tx[anchor, ankle]
            sure, pick = sure | anchor, np.where(anchor, 1, pick)
    return n, other, sure, pick, anchor, judged & bent[:, 0]


def implausible(rig: Rig, X: np.ndarray, views: np.ndarray, keypoint_set: str, seen: np.ndarray | None = None,
                tri: tuple[np.ndarray, np.ndarray] | None = None, others: np.ndarray | None = None) -> int:
    """How many (frame, leg) of a person (X (T, J, 3), views (T, J, C)) have a one-view ankle whose knee bends
    backwards by more than :data:`HYPEREXTENDED` (where :func:`_judged`), or (with ``seen`` (T, C, J), the
    person's detections used; ``others`` (T, C, Q, 4): the other people's boxes, :func:`person_boxes`, where
    they may hide it) whose refined point only, of the ray's two, another camera would have seen, or
    (with ``tri``: the triangulated points (T, J, 3) and views (T, J, C)) that two views place elsewhere."""
    found = legs(keypoint_set)
    if not found:
        return 0
    hips = _hips(found)
    count = 0
    for leg in found:
        _, _, sure, pick, _, bent = _evidence(rig, X, views, hips, leg, seen, tri, others)
        count += int(np.sum(bent | (sure & (pick == 1))))
    return count


def lost_ankles(before: np.ndarray, after: np.ndarray, keypoint_set: str) -> int:
    """How many (frame, leg) ankles a solve ``after`` (T, J, 3) left out that ``before`` placed: a solve that drops
    an ankle's one view has no side left to judge there, which is no mending."""
    return int(sum(np.sum(np.isfinite(before[:, a]).all(axis=-1) & ~np.isfinite(after[:, a]).all(axis=-1))
                   for _, _, a, _ in legs(keypoint_set)))


def unbend(rig: Rig, X: np.ndarray, views: np.ndarray, keypoint_set: str, seen: np.ndarray | None = None,
           tri: tuple[np.ndarray, np.ndarray] | None = None, others: np.ndarray | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
    """A refined person's points (X (T, J, 3), views (T, J, C)) with the ankles of knees bent backwards moved
    (see the module; ``seen``, ``tri``, ``others``: the other evidence, see :func:`implausible`); returns the points and
    (T, 2) the (frame, leg) whose ankle moved."""
    found = legs(keypoint_set)
    moved = np.zeros((len(X), len(found)), bool)
    if not found:
        return X, moved
    hips = _hips(found)
    X = np.array(X, float)
    for g, leg in enumerate(found):
        _, knee, ankle, below = leg
        n, other, sure, pick, anchor, _ = _evidence(rig, X, views, hips, leg, seen, tri, others)
        if not np.any(sure & (pick == 1)):
            continue
        placed = (n == 1) | anchor  # the frames with two candidates
        shins = np.stack([X[:, ankle], other[:, ankle]], axis=1) - X[:, knee, None]  # (T, 2, 3)
        choice = np.zeros(len(X), int)
        for a, b in runs(n <= 1):  # runs without two views of the ankle
            wrong = np.flatnonzero(sure[a:b] & (pick[a:b] == 1)) + a
            if not wrong.size:
                continue
            tracked = [f for f in range(a, b) if placed[f]]
            k = tracked.index(int(wrong[0]))
            choice[wrong[0]] = 1
            _track(tracked[k:], shins, sure, pick, choice)  # from there on, and back to the run's start
            _track(tracked[k::-1], shins, sure, pick, choice)
            unseen = np.arange(a, b)[~placed[a:b]]
            if unseen.size:  # no view: the shin between the frames either side (as now chosen)
                shin = np.where(~placed[:, None], np.nan, shins[np.arange(len(X)), choice])
                other[unseen, ankle] = X[unseen, knee] + interpolate_gaps(shin, None, None)[unseen]
                choice[unseen] = np.linalg.norm(other[unseen, ankle] - X[unseen, ankle], axis=-1) > MOVED_M
        t = np.flatnonzero(choice == 1)
        moved[t, g] = True
        step = other[t, ankle] - X[t, ankle]
        X[t, ankle] = other[t, ankle]
        for j in below:  # heel and toes follow, unless two views place them
            follow = views[t, j].sum(axis=-1) < 2
            X[t[follow], j] += step[follow]
    return X, moved
