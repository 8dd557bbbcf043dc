"""Points refine leaves out because one view placed them out of reach of the joints near them.

One view fixes a ray. Where a bone holds the point on it, the bone's length fixes its depth (up to the ray's two
crossings of the bone's sphere); where none does (an eye: the loose bones to the nose hold only while the nose is
seen) the motion model places it, or the start refine was given: from one view of an eye whose face no camera had
seen for a second, refine put the eye 1.9 m behind the head and bridged back to the face over the next 13 frames.
Nothing else in refine's cost says that an eye is a head's width from the nose, so the points are judged after the
solve: no point can be farther from another than the chain of bones between them is long (the triangle
inequality along the chain), so a point fewer than two views measure that lies farther than that, plus
:data:`REACH_MARGIN_M`, from a joint within :data:`REACH_HOPS` bones of it that two views measure in that frame is
out of reach, and left out, with the frames on either side that no view measures (the motion model's bridge to
it). A bone's length is its median over the frames two views measure both its ends (in :data:`REACH_FRAMES` or
more); a pair joined by no chain of such bones is not compared. The chain bounds the distance whatever the pose:
a one-view wrist with the arm stretched further than two views ever saw it is within reach.
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)

REACH_HOPS = 3  # a point is compared with the joints this many bones from it (an eye: the nose, shoulders, elbows)
REACH_MARGIN_M = 0.2  # farther than the chain of bones between them plus this: out of reach
REACH_FRAMES = 20  # frames in which two views measure both ends of a bone that its length needs


def reach_limits(X: np.ndarray, two: np.ndarray, links, hops: int = REACH_HOPS) -> np.ndarray:
    """(J, J) the length of the shortest chain of at most ``hops`` of the ``links`` ((a, b) joint indices: the bones,
    loose ones too) between two joints, each link's length its median over the frames ``two`` (T, J) says two views
    measure both its ends, in :data:`REACH_FRAMES` or more (X (T, J, 3)); inf where no such chain joins them,
    and between a joint and itself."""
    J = X.shape[1]
    W = np.full((J, J), np.inf)
    for a, b in {(min(a, b), max(a, b)) for a, b in links if a != b}:
        both = two[:, a] & two[:, b]
        if both.sum() >= REACH_FRAMES:
            W[a, b] = W[b, a] = float(np.median(np.linalg.norm(X[both, a] - X[both, b], axis=-1)))
    D = W.copy()
    for _ in range(hops - 1):  # chains one link longer each time
        D = np.minimum(D, (D[:, :, None] + W[None, :, :]).min(axis=1))
    np.fill_diagonal(D, np.inf)
    return D


def out_of_reach(X: np.ndarray, views: np.ndarray, links) -> np.ndarray:
    """(T, J) the points X (T, J, 3) fewer than two views measure (``views`` (T, J, C) kept) that lie farther from
    a joint that two views measure in that frame than :func:`reach_limits` allows plus :data:`REACH_MARGIN_M`;
    with the frames no view measures joined to them (the motion model's bridge to them). NaN points are never
    out of reach."""
    T, J, _ = X.shape
    out = np.zeros((T, J), bool)
    two = views.sum(axis=-1) >= 2
    limits = reach_limits(X, two, links)
    a, b = np.nonzero(np.isfinite(limits))
    if not a.size:
        return out
    limit2 = (limits[a, b] + REACH_MARGIN_M) ** 2
    coords = np.moveaxis(X, -1, 0).astype(np.float32)  # (3, T, J): distances to well under a millimetre
    for s in range(0, a.size, 64):  # pairs a few at a time: (T, pairs) arrays of a long take stay small
        pa, pb = a[s:s + 64], b[s:s + 64]
        d2 = sum((c[:, pa] - c[:, pb]) ** 2 for c in coords)  # squared distances (T, pairs), NaN where unplaced
        with np.errstate(invalid="ignore"):
            t, k = np.nonzero((d2 > limit2[s:s + 64]) & two[:, pb] & ~two[:, pa])
        out[t, pa[k]] = True
    if not out.any():
        return out
    run = out | (np.isfinite(X[..., 0]) & ~views.any(axis=-1))  # with the frames no view measures
    start = run & ~np.vstack([np.zeros((1, J), bool), run[:-1]])
    key = (np.cumsum(start, axis=0) + np.arange(J) * (T + 1)) * run  # one number per run of each joint, 0 outside
    hit = np.isin(key, np.unique(key[out])) & run
    log.info("refine: %d points one view placed out of reach of the joints near them left out (%d joint(s))",
             int(hit.sum()), int(hit.any(axis=0).sum()))
    return hit
