"""Several people in the live preview: each update's detections grouped across cameras, each group
triangulated, and every person kept under one number from update to update.

The offline association (:mod:`mocap.multi.track`) follows the whole take, forwards and back; live has only the
detections of this instant. Per update: every camera's detections (up to ``persons`` each: the detector's
several-pose mode; one found twice in a view counted once, :func:`mocap.multi.rays.duplicates`) become world rays
(:func:`mocap.multi.rays.detection_rays`); detections of two cameras whose
rays meet within ``match_max_m`` (median over the joints both see) are grouped by complete linkage with at most
one detection per camera and every pair of a group agreeing (:func:`mocap.multi.associate.cluster`, the offline
births' grouping: consistent around every cycle of three cameras or more). A group of two cameras or more is a
person, triangulated as the single-person preview triangulates (robust DLT with the camera-subset search, joints
no body could have left out: :func:`plausible`); the
``persons`` groups with the most cameras are kept, after joining two groups of different cameras whose points lie
within 0.4 m (one body whose cameras did not all meet: 2 + 2 cameras). Identity: the groups' body centres are
matched to where the people were last seen (Hungarian, gated at :data:`GATE_M` plus :data:`SPEED_MPS` per second
unseen), each person's limbs then held to its own recent lengths (:class:`LimbLengths`), a group that matches
nobody is a new person, and one unseen for :data:`FORGET_S` is forgotten. Live shows
who is where; ``mocap run`` on the recording associates the take offline at full quality.
"""

from __future__ import annotations

import warnings
from collections import deque
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from mocap.geometry.triangulation import triangulate
from mocap.keypoint_sets import get_keypoint_set
from mocap.multi.associate import cluster, pair_affinity
from mocap.multi.rays import detection_rays, duplicates
from mocap.types import Keypoints2D, Rig

MAX_LIMB_M = 0.8  # no two joints joined by a limb of the keypoint set are further apart (femur, torso: ~0.5 m)
LIMB_HISTORY, LIMB_SEEN = 30, 5  # a person's limb: its median over the last 30 updates, once seen 5 times ...
LIMB_SLACK_M, LIMB_RATIO = 0.15, 1.5  # ... bounds it: at most this much (or this many times) longer
GATE_M = 0.5  # a group whose body centre is this far from where a person was last seen can be that person ...
SPEED_MPS = 3.0  # ... plus this much per second the person was unseen (a run)
FORGET_S = 2.0  # a person unseen this long is forgotten (seen again: a new number)


@dataclass
class LivePerson:
    number: int  # shown as "person N"; never reused
    centre: np.ndarray  # (3,) body centre when last seen
    seen_t: float  # when (exposure time of the update)
    lengths: LimbLengths | None = None  # its limbs' recent lengths (see plausible)


class LivePeople:
    """Groups and follows the people of the live updates (see the module)."""

    def __init__(self, rig: Rig, keypoint_set: str, persons: int, min_score: float, max_reproj_px: float,
                 match_max_m: float = 0.15, min_joints: int = 4):
        if persons < 1:
            raise ValueError(f"live: persons must be at least 1, got {persons}")
        self.rig, self.keypoint_set, self.persons = rig, keypoint_set, int(persons)
        self.min_score, self.max_reproj_px = min_score, max_reproj_px
        self.match_max_m, self.min_joints = match_max_m, min_joints
        self.limbs = get_keypoint_set(keypoint_set).limbs
        self.people: list[LivePerson] = []
        self.numbers = 0

    def fuse(self, detections: dict[int, np.ndarray], t: float
             ) -> tuple[np.ndarray, np.ndarray, list[int], list[int]]:
        """``detections``: rig camera index → its detections (S, J, 3) (x, y, score; NaN: none) of this update;
        ``t``: the update's time (s). Returns the people's points (P, J, 3), mean reprojection errors (P, J),
        numbers (P,) and the cameras each one's points use (P,), ordered by number."""
        C = len(self.rig)
        S = max(d.shape[0] for d in detections.values())
        J = next(iter(detections.values())).shape[1]
        data = np.full((1, C, S, J, 3), np.nan)
        for c, d in detections.items():
            data[0, c, :d.shape[0]] = d
        rays, origins = detection_rays(self.rig, Keypoints2D(data, self.rig.names, self.keypoint_set, 30.0),
                                       self.min_score)
        usable = np.isfinite(rays[0, ..., 0]).sum(axis=-1) >= self.min_joints  # (C, S)
        usable &= ~duplicates(data, self.min_score, self.min_joints)[0]  # one person detected twice in a view
        cs = np.argwhere(usable)
        groups = []
        if len(cs) >= 2:
            views = cs[:, 0]
            cost = pair_affinity(origins[views], rays[0, views, cs[:, 1]], views, self.min_joints)
            groups = [[(int(views[g]), int(cs[g, 1])) for g in grp] for grp in cluster(cost, views, self.match_max_m)]
        solved = [s for s in _merged(self, data[0], groups) if s is not None]
        solved.sort(key=lambda s: s[:2], reverse=True)  # the most cameras first, then the best agreement
        solved = solved[:self.persons]
        numbers = self._identify([np.nanmedian(s[2], axis=0) for s in solved], t)
        if not solved:
            return np.zeros((0, J, 3)), np.zeros((0, J)), [], []
        by_number = {p.number: p for p in self.people}
        for k, n in enumerate(numbers):  # each person's limbs against its own recent lengths
            person = by_number[n]
            person.lengths = person.lengths or LimbLengths(self.limbs, J)
            X = person.lengths.held(solved[k][2])
            solved[k] = (*solved[k][:2], X, np.where(np.isfinite(X[:, 0]), solved[k][3], np.nan), solved[k][4])
        order = np.argsort(numbers)
        return (np.stack([solved[k][2] for k in order]), np.stack([solved[k][3] for k in order]),
                [numbers[k] for k in order], [solved[k][4] for k in order])

    def _solve(self, dets: np.ndarray, grp: list[tuple[int, int]]) -> tuple | None:
        """One group's (cameras, −median error, points (J, 3), errors (J,), cameras its points use) from the
        detections ``dets`` (C, S, J, 3) of its (camera, slot) pairs; None when fewer than ``min_joints`` joints
        are placed."""
        C, J = len(self.rig), dets.shape[2]
        uv = np.full((J, C, 2), np.nan)
        w = np.zeros((J, C))
        for c, s in grp:
            kp = dets[c, s]
            ok = np.isfinite(kp[:, :2]).all(axis=1) & (kp[:, 2] >= self.min_score)
            uv[ok, c], w[ok, c] = kp[ok, :2], kp[ok, 2]
        X, err, views = triangulate(self.rig, uv, w, max_reproj_px=self.max_reproj_px)
        X = plausible(X, self.limbs)
        err = np.where(np.isfinite(X[:, 0]), err, np.nan)
        if np.isfinite(X[:, 0]).sum() < self.min_joints:
            return None
        return len(grp), -float(np.nanmedian(err)), X, err, int(views.any(axis=0).sum())

    def _identify(self, centres: list[np.ndarray], t: float) -> list[int]:
        """Each centre's person number (see the module); updates the people's last positions."""
        self.people = [p for p in self.people if t - p.seen_t <= FORGET_S]
        numbers = [0] * len(centres)
        if centres and self.people:
            d = np.array([[np.linalg.norm(c - p.centre) for p in self.people] for c in centres])
            gate = np.array([GATE_M + SPEED_MPS * max(t - p.seen_t, 0.0) for p in self.people])
            rows, cols = linear_sum_assignment(np.where(d <= gate, d, 1e6))
            for r, k in zip(rows, cols, strict=True):
                if d[r, k] <= gate[k]:
                    numbers[r] = self.people[k].number
                    self.people[k].centre, self.people[k].seen_t = centres[r], t
        for r, c in enumerate(centres):
            if not numbers[r]:
                self.numbers += 1
                numbers[r] = self.numbers
                self.people.append(LivePerson(self.numbers, c, t))
        return numbers


def _merged(live: LivePeople, dets: np.ndarray, groups: list[list[tuple[int, int]]]) -> list[tuple | None]:
    """Each group solved (:meth:`LivePeople._solve`), with those of one body joined first: two groups of different
    cameras whose points' centres lie within :data:`~mocap.multi.identity.DUPLICATE_M` (one person whose cameras'
    detections did not all meet within ``match_max_m``: 2 + 2 cameras, shown twice under two numbers otherwise),
    the nearest first; a group is solved once, and again only when another joins it."""
    from mocap.multi.identity import DUPLICATE_M

    groups = [list(g) for g in groups]
    solved = [live._solve(dets, g) for g in groups]
    while len(groups) > 1:
        centres = [np.nanmedian(s[2], axis=0) if s is not None else np.full(3, np.nan) for s in solved]
        best = None
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                d = float(np.linalg.norm(centres[a] - centres[b]))
                apart = not ({c for c, _ in groups[a]} & {c for c, _ in groups[b]})
                if apart and d < DUPLICATE_M and (best is None or d < best[0]):
                    best = (d, a, b)
        if best is None:
            break
        _, a, b = best
        groups[a] += groups.pop(b)
        solved.pop(b)
        solved[a] = live._solve(dets, groups[a])
    return solved


def limb_pairs(limbs, J: int) -> np.ndarray:
    """(L, 2) the limbs (joint pairs) of a keypoint set that lie within J joints."""
    return np.array([p for p in limbs if max(p) < J], int).reshape(-1, 2)


def plausible(X: np.ndarray, limbs, bounds: np.ndarray | None = None) -> np.ndarray:
    """``X`` (J, 3) with the joints no body could have left out (NaN), a copy. A limb (a pair of ``limbs``,
    :func:`limb_pairs`) longer than its bound (``bounds`` (L,), this person's own lengths: :class:`LimbLengths`; at
    most :data:`MAX_LIMB_M`) holds nothing: in each part of the limb graph that has such a limb, the joints the
    limbs within their bounds still join to the most joints of that part stay (of two as many, those with the joint
    nearest the median joint), the others go: a hand whose wrist went 1.9 m off with it, a heel 0.7 m off alone. A
    preview's triangulation of one instant has no swap repair: a view with left and right exchanged that meets
    another view placed the two-person take's wrist 1.9 m from the body."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    X = np.array(X, float)
    J = len(X)
    pairs = limb_pairs(limbs, J)
    if not len(pairs):
        return X
    bound = np.full(len(pairs), MAX_LIMB_M) if bounds is None else np.minimum(bounds, MAX_LIMB_M)
    seen = np.isfinite(X).all(axis=1)
    length = np.linalg.norm(X[pairs[:, 0]] - X[pairs[:, 1]], axis=1)
    long = length > bound  # NaN compares False: a limb with a joint unseen is no evidence either way
    if not long.any():
        return X

    def parts(edges: np.ndarray) -> np.ndarray:
        graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(J, J))
        return connected_components(graph, directed=False)[1]

    whole, held = parts(pairs), parts(pairs[seen[pairs[:, 0]] & seen[pairs[:, 1]] & ~long])
    centre = np.nanmedian(X[seen], axis=0)
    reach = np.where(seen, np.linalg.norm(np.nan_to_num(X) - centre, axis=1), np.inf)
    for part in np.unique(whole[pairs[long, 0]]):
        members = np.flatnonzero((whole == part) & seen)
        labels, sizes = np.unique(held[members], return_counts=True)
        best = labels[sizes == sizes.max()]
        keep = held[members[np.argmin(np.where(np.isin(held[members], best), reach[members], np.inf))]]
        X[members[held[members] != keep]] = np.nan
    return X


class LimbLengths:
    """One person's limb lengths over its recent updates, as triangulated: a limb seen :data:`LIMB_SEEN` times or
    more may be at most :data:`LIMB_SLACK_M` (or :data:`LIMB_RATIO` ×) longer than its median of the last
    :data:`LIMB_HISTORY` (a heel placed 0.7 m from its ankle by one view's error, under :data:`MAX_LIMB_M`, then
    goes)."""

    def __init__(self, limbs, J: int):
        self.pairs = limb_pairs(limbs, J)
        self.recent: deque = deque(maxlen=LIMB_HISTORY)

    def bounds(self) -> np.ndarray:
        if not self.recent:
            return np.full(len(self.pairs), MAX_LIMB_M)
        lengths = np.stack(self.recent)
        seen = np.isfinite(lengths).sum(axis=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a limb never seen: its median is NaN (no bound)
            typical = np.nanmedian(lengths, axis=0)
        own = np.maximum(typical + LIMB_SLACK_M, LIMB_RATIO * typical)
        return np.where(seen >= LIMB_SEEN, np.minimum(own, MAX_LIMB_M), MAX_LIMB_M)

    def add(self, X: np.ndarray) -> None:
        self.recent.append(np.linalg.norm(X[self.pairs[:, 0]] - X[self.pairs[:, 1]], axis=1))

    def held(self, X: np.ndarray) -> np.ndarray:
        """:func:`plausible` ``X`` (J, 3) against this person's recent lengths, then ``X`` added to them as
        triangulated: the median takes a wrong limb now and then, and a body whose limbs differ from the last one's
        (another person under the number) is learnt in half the history."""
        bounds = self.bounds()
        self.add(X)
        return plausible(X, self.pairs, bounds)
