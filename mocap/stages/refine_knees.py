"""A leg one camera alone sees below the knee, put back on the side of its ray a knee bends to.

One view places an ankle on a ray; its bone to the knee places it on a sphere round the knee: the ray meets
the sphere twice, the shin bent backwards or forwards along the camera's line of sight, and both fit the
image and the bone equally. Refine follows one of them from the frames before; where the ray passes a
tangent to the sphere the two meet, and the motion can carry on along the wrong one: a foot the other
cameras lost at the bottom of their frames, or behind another person, then swings forwards when it swings
back, the knee bent the way no knee bends, up to a shin's length twice over from the truth (0.9 m on a
synthetic crowd take, for 1.5 s).

:func:`unbend` finds, in a refined person, the one-view ankles whose knee is bent backwards
(hyperextended) by more than :data:`HYPEREXTENDED` (the sine of the shin's bend about the hips' left-right
axis; a knee reaches a few degrees, a noisy straight leg a few more), judged only where two views or more place
the knee and both hips (:func:`_judged`). In each run of frames without two views of that ankle holding one, the
ankle takes the ray's other point at the same distance from the knee there; through the rest of the run each
one-view ankle takes, of its two points, the one that carries on the shin's motion from the frames so decided
(where only one of them bends the knee backwards, the other: :func:`_track`), and an ankle no view sees the shin
interpolated between the frames either side. The keypoints below the ankle (heel, toes: those joined to it by
the keypoint set's bones or limbs, not through the knee) move with it. The stage refines the person again from there
(``refine.knees``, :mod:`mocap.stages.refine`) and keeps that solve when it leaves fewer such knees.
"""

from __future__ import annotations

import numpy as np

from mocap.filters import interpolate_gaps, runs
from mocap.keypoint_sets import get_keypoint_set
from mocap.types import Rig

HYPEREXTENDED = 0.3  # sine of a knee bent backwards (about 17°): beyond what knees and a straight leg's noise do
MOVED_M = 0.01  # an ankle no view sees, whose interpolated start is farther than this from the refined point: moved
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


def unbend(rig: Rig, X: np.ndarray, views: np.ndarray, keypoint_set: str) -> tuple[np.ndarray, np.ndarray]:
    """A refined person's points (X (T, J, 3), views (T, J, C)) with the ankles of knees bent backwards moved
    (see the module); returns the points and (T, 2) the (frame, leg) whose ankle moved."""
    found = legs(keypoint_set)
    moved = np.zeros((len(X), len(found)), bool)
    if not found:
        return X, moved
    hips = _hips(found)
    X = np.array(X, float)
    centres = np.stack([cam.center for cam in rig])
    for g, (hip, knee, ankle, below) in enumerate(found):
        n = views[:, ankle].sum(axis=-1)
        one, judged = n == 1, _judged(views, hips, knee, ankle)
        bend = backward_bend(X, hips, hip, knee, ankle)
        if not np.any(judged & (bend > HYPEREXTENDED)):
            continue
        o = centres[np.argmax(views[:, ankle], axis=-1)]  # (T, 3) the one camera (where there is one)
        ray = X[:, ankle] - o
        with np.errstate(invalid="ignore"):
            ray /= np.linalg.norm(ray, axis=-1, keepdims=True)
        near = o + np.sum((X[:, knee] - o) * ray, axis=-1, keepdims=True) * ray  # the ray's point nearest the knee
        other = X.copy()
        other[:, ankle] = 2 * near - X[:, ankle]  # the ray's other point as far from the knee
        bent = np.stack([bend, backward_bend(other, hips, hip, knee, ankle)], axis=1) > HYPEREXTENDED  # (T, 2)
        sure = judged & (bent[:, 0] != bent[:, 1])  # one side only bends the knee backwards: the other is right
        pick = bent[:, 0].astype(int)
        shins = np.stack([X[:, ankle], other[:, ankle]], axis=1) - X[:, knee, None]  # (T, 2, 3)
        choice = np.zeros(len(X), int)
        for a, b in runs(n <= 1):  # runs without two views of the ankle
            wrong = np.flatnonzero(sure[a:b] & (pick[a:b] == 1)) + a
            if not wrong.size:
                continue
            seen = [f for f in range(a, b) if one[f]]
            k = seen.index(int(wrong[0]))
            choice[wrong[0]] = 1
            _track(seen[k:], shins, sure, pick, choice)  # from there on, and back to the run's start
            _track(seen[k::-1], shins, sure, pick, choice)
            unseen = np.arange(a, b)[n[a:b] == 0]
            if unseen.size:  # no view: the shin between the frames either side (as now chosen)
                shin = np.where((n == 0)[:, None], np.nan, shins[np.arange(len(X)), choice])
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
