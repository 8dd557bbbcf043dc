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
unseen), a group that matches nobody is a new person, and one unseen for :data:`FORGET_S` is forgotten. Live shows
who is where; ``mocap run`` on the recording associates the take offline at full quality.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from mocap.geometry.triangulation import triangulate
from mocap.keypoint_sets import get_keypoint_set
from mocap.multi.associate import cluster, pair_affinity
from mocap.multi.rays import detection_rays, duplicates
from mocap.types import Keypoints2D, Rig

MAX_LIMB_M = 0.8  # no two joints joined by a limb of the keypoint set are further apart (femur, torso: ~0.5 m)
GATE_M = 0.5  # a group whose body centre is this far from where a person was last seen can be that person ...
SPEED_MPS = 3.0  # ... plus this much per second the person was unseen (a run)
FORGET_S = 2.0  # a person unseen this long is forgotten (seen again: a new number)


@dataclass
class LivePerson:
    number: int  # shown as "person N"; never reused
    centre: np.ndarray  # (3,) body centre when last seen
    seen_t: float  # when (exposure time of the update)


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
        solved = [s for s in (self._solve(data[0], grp) for grp in _merged(self, data[0], groups)) if s is not None]
        solved.sort(key=lambda s: s[:2], reverse=True)  # the most cameras first, then the best agreement
        solved = solved[:self.persons]
        numbers = self._identify([np.nanmedian(s[2], axis=0) for s in solved], t)
        if not solved:
            return np.zeros((0, J, 3)), np.zeros((0, J)), [], []
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


def _merged(live: LivePeople, dets: np.ndarray, groups: list[list[tuple[int, int]]]) -> list[list[tuple[int, int]]]:
    """The groups with those of one body joined: two groups of different cameras whose points' centres lie within
    :data:`~mocap.multi.identity.DUPLICATE_M` (one person whose cameras' detections did not all meet within
    ``match_max_m``: 2 + 2 cameras, shown twice under two numbers otherwise), the nearest first."""
    from mocap.multi.identity import DUPLICATE_M

    groups = [list(g) for g in groups]
    while len(groups) > 1:
        centres = []
        for g in groups:
            got = live._solve(dets, g)
            centres.append(np.nanmedian(got[2], axis=0) if got is not None else np.full(3, np.nan))
        best = None
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                d = float(np.linalg.norm(centres[a] - centres[b]))
                apart = not ({c for c, _ in groups[a]} & {c for c, _ in groups[b]})
                if apart and d < DUPLICATE_M and (best is None or d < best[0]):
                    best = (d, a, b)
        if best is None:
            return groups
        _, a, b = best
        groups[a] += groups.pop(b)
    return groups


def plausible(X: np.ndarray, limbs) -> np.ndarray:
    """``X`` (J, 3) with the joints no body could have left out (NaN), a copy: while a limb (a pair of ``limbs``)
    is longer than :data:`MAX_LIMB_M`, its end further from the median joint goes, then every joint whose limbs
    all lead to joints that went. A preview's triangulation of one instant has no swap repair: a view with left
    and right exchanged that meets another view placed the two-person take's wrist 1.9 m from the body."""
    X = np.array(X, float)
    pairs = np.array([p for p in limbs if max(p) < len(X)], int).reshape(-1, 2)
    if not len(pairs):
        return X
    centre = np.nanmedian(X, axis=0) if np.isfinite(X).any() else np.zeros(3)
    reach = np.linalg.norm(X - centre, axis=1)
    linked = np.zeros(len(X), bool)
    linked[pairs.ravel()] = True
    gone = np.zeros(len(X), bool)
    while True:
        length = np.linalg.norm(X[pairs[:, 0]] - X[pairs[:, 1]], axis=1)
        long = np.flatnonzero(length > MAX_LIMB_M)  # NaN compares False: a limb with a joint gone is no evidence
        if not len(long):
            break
        a, b = pairs[long[np.argmax(length[long])]]
        far = a if reach[a] >= reach[b] else b
        X[far], gone[far] = np.nan, True
    if gone.any():  # a joint left joined only to joints that went cannot be told right: it goes too
        seen = np.isfinite(X[:, 0])
        kept_by = np.zeros(len(X), bool)
        both = seen[pairs[:, 0]] & seen[pairs[:, 1]]
        kept_by[pairs[both].ravel()] = True
        touches = np.zeros(len(X), bool)
        touches[pairs[gone[pairs[:, 0]] | gone[pairs[:, 1]]].ravel()] = True
        X[seen & linked & touches & ~kept_by] = np.nan
    return X
