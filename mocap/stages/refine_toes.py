"""A toe one camera alone sees, put back on the side of its ray the foot points to.

One view places the toe (``foot_index``, ``big_toe``) on a ray; its bone to the ankle places it on a sphere round
the ankle: the ray meets the sphere twice, and refine follows one of them from the frames before, as it does an
ankle round its knee (:mod:`mocap.stages.refine_knees`). On the wrong one the foot points up the shin, or
sideways: on 28 synthetic takes with feet that one camera saw for a while (3-camera rigs, zoomed cameras that cut
the feet), 522 one-view toes were over 150 mm from the truth, most of them on that side.

The foot's direction from the ankle is nearly fixed in the shin's frame (the shin, and the hips' left-right axis
square to it): an ankle flexes some tens of degrees. :func:`wrong_toes` takes the foot's usual direction there
(the median over the frames two views measure the toe, the ankle, the knee and both hips, :data:`MIN_FRAMES` or
more) and finds the one-view toes, their ankle and knee seen, whose direction is more than :data:`OFF_DEG` from
it while the ray's other crossing of the sphere is :data:`GAIN_DEG` nearer to it. :func:`with_toes` moves them
there (:data:`MIN_TOES` or more), refines the person again from there and keeps that solve when it leaves fewer
such toes, judged on the first solve's views, every point it no longer places counted against it (``refine.toes``,
:mod:`mocap.stages.refine`). Measured on those takes, per frame before the second solve: of 273 toes moved, 189
came within 50 mm of the truth and 49 moved further off (an ankle on its wrong side too); median 243 → 14 mm.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from mocap.keypoint_sets import get_keypoint_set
from mocap.stages.refine_knees import other_side
from mocap.types import Rig

log = logging.getLogger(__name__)

OFF_DEG = 50.0  # a foot this far from its usual direction in the shin's frame ...
GAIN_DEG = 20.0  # ... whose ray's other crossing is this much nearer to it: on the wrong side
MIN_FRAMES = 20  # frames two views measure a foot in that its usual direction needs
MIN_TOES = 3  # fewer wrong toes in a person than this are not worth refining it again
TOES = ("foot_index", "big_toe")


def feet(keypoint_set: str) -> list[tuple[int, int, int, int, int]]:
    """(knee, ankle, toe, left hip, right hip) of each leg of the set, left then right; [] when it names no toes."""
    ks = get_keypoint_set(keypoint_set)
    idx = {n: i for i, n in enumerate(ks.joints)}
    out = []
    for side in ("left", "right"):
        toe = next((idx[f"{side}_{t}"] for t in TOES if f"{side}_{t}" in idx), None)
        names = (f"{side}_knee", f"{side}_ankle", "left_hip", "right_hip")
        if toe is None or not all(n in idx for n in names):
            return []
        knee, ankle, lh, rh = (idx[n] for n in names)
        out.append((knee, ankle, toe, lh, rh))
    return out


def shin_frames(X: np.ndarray, knee: int, ankle: int, lh: int, rh: int) -> np.ndarray:
    """(T, 3, 3) each frame's shin frame as columns: the hips' left-right axis square to the shin, the third axis,
    the shin (ankle to knee); NaN where a point is unknown."""
    with np.errstate(invalid="ignore", divide="ignore"):
        z = X[:, knee] - X[:, ankle]
        z = z / np.linalg.norm(z, axis=-1, keepdims=True)
        x = X[:, lh] - X[:, rh]
        x = x - np.sum(x * z, axis=-1, keepdims=True) * z
        x = x / np.linalg.norm(x, axis=-1, keepdims=True)
    return np.stack([x, np.cross(z, x), z], axis=-1)


def _angle(B: np.ndarray, d: np.ndarray, usual: np.ndarray) -> np.ndarray:
    """Degrees between the directions d (T, 3) (world) and ``usual`` (3,) (shin frame B (T, 3, 3))."""
    with np.errstate(invalid="ignore", divide="ignore"):
        local = np.einsum("tij,ti->tj", B, d / np.linalg.norm(d, axis=-1, keepdims=True))
        return np.degrees(np.arccos(np.clip(local @ usual, -1.0, 1.0)))


def wrong_toes(rig: Rig, X: np.ndarray, views: np.ndarray, keypoint_set: str) -> tuple[np.ndarray, np.ndarray]:
    """(T, legs) the one-view toes of a refined person (X (T, J, 3), views (T, J, C) kept) on the wrong side of
    their ray (see the module), and (T, legs, 3) the ray's other crossing of the sphere round the ankle there."""
    found = feet(keypoint_set)
    T = len(X)
    wrong, other = np.zeros((T, len(found)), bool), np.full((T, len(found), 3), np.nan)
    n = views.sum(axis=-1)
    for leg, (knee, ankle, toe, lh, rh) in enumerate(found):
        B = shin_frames(X, knee, ankle, lh, rh)
        d = X[:, toe] - X[:, ankle]
        measured = (n[:, [knee, ankle, toe, lh, rh]] >= 2).all(axis=1) & np.isfinite(B).all(axis=(1, 2))
        if measured.sum() < MIN_FRAMES:
            continue
        local = np.einsum("tij,ti->tj", B[measured], d[measured] / np.linalg.norm(d[measured], axis=-1, keepdims=True))
        usual = np.median(local, axis=0)
        usual /= np.linalg.norm(usual)
        one = (n[:, toe] == 1) & (n[:, ankle] >= 1) & (n[:, knee] >= 1) & np.isfinite(B).all(axis=(1, 2))
        t = np.flatnonzero(one)
        if not t.size:
            continue
        across = other_side(rig, X, views, toe, ankle)[t]
        now, then = _angle(B[t], d[t], usual), _angle(B[t], across - X[t, ankle], usual)
        bad = (now > OFF_DEG) & (then < now - GAIN_DEG)
        wrong[t[bad], leg] = True
        other[t[bad], leg] = across[bad]
    return wrong, other


def with_toes(solve: Callable[[np.ndarray], tuple], rig: Rig, solved: tuple, keypoint_set: str) -> tuple:
    """A refined person (``solved``: points, errors, views, summary) → refined again (``solve(start)``) from its
    :func:`wrong_toes` (:data:`MIN_TOES` or more) moved to their ray's other side, kept when that leaves fewer such
    toes, judged on the first solve's views (a toe whose one view the second solve dropped is no mending), the
    points it no longer places counted against it; returns the solve kept and how many toes were moved (0: the
    first solve)."""
    X, err, v, s = solved
    wrong, other = wrong_toes(rig, X, v, keypoint_set)
    before = int(wrong.sum())
    if before < MIN_TOES:
        return X, err, v, s, 0
    start = X.copy()
    for leg, (_, _, toe, _, _) in enumerate(feet(keypoint_set)):
        start[wrong[:, leg], toe] = other[wrong[:, leg], leg]
    try:
        again = solve(start)
    except ValueError as e:  # the first solve stands
        log.warning("refined again from its one-view toes moved, the solve failed (%s): the first kept", e)
        return X, err, v, s, 0
    lost = int(np.sum(np.isfinite(X[..., 0]) & ~np.isfinite(again[0][..., 0])))  # any point it no longer places
    after = int(wrong_toes(rig, again[0], v, keypoint_set)[0].sum()) + lost  # judged on the first solve's views
    log.info("%d one-view toes on the side of their ray the foot does not point to (over %.0f° from its usual "
             "direction along the shin, the other side %.0f° nearer): moved, refined again: %d left or unplaced "
             "(%s)", before, OFF_DEG, GAIN_DEG, after, "kept" if after < before else "the first solve kept")
    return (*again, before) if after < before else (X, err, v, s, 0)
