"""People tracked in 3D over time; every frame's detections assigned to them across all views.

Per frame: each live track predicts its skeleton (constant velocity of its body centre); each
detection's cost against a track is the mean capped distance, over the joints both have, between the
detection's rays and the predicted joints (metres). Per view, a Hungarian assignment gated by a distance
that grows while a track is unseen (bounded for one seen by one view: :mod:`mocap.multi.gates`): the people
located in 3D the frame before first (a matching cascade), detections mixing two people (:mod:`mocap.multi.merged`),
the people whose position is uncertain, then the tentative ones; a person holding, for frames in a row, two views
that are not one body has a detection exchanged with another person's (a tentative one's too) or a free one
where the pairing meets far better (:mod:`mocap.multi.exchange`). Each track is re-triangulated from its own
keypoints' rays (not those nearer another person), views that disagree with the others are dropped (a wrong
detection; :mod:`mocap.multi.solve`, every person of a frame at once); two tracks once seen apart in 3D are never
joined. Detections no track explains are grouped across views (:mod:`mocap.multi.associate`);
a group seen by two or more views starts a tentative track, which becomes a person after ``birth_frames``
consecutive frames, unless a tracked person's torso is there (:mod:`mocap.multi.identity`). A person unseen by
every view resumes in one view only while its gate has not doubled; unseen for ``coast_max_s``, it ends;
afterwards, identities whose bodies coincide, those made of a person's own partial detections (on its body in
every view: :mod:`mocap.multi.partial`), and tracks that follow one another in time and space, are joined;
each person is then followed back over the frames before it was confirmed or resumed (:mod:`mocap.multi.backward`),
and its last frames seen by one view where the others see its spot empty are left out (:mod:`mocap.multi.gates`).
The torso weighs as much as every joint; another person's keypoints in a detection are kept per person (masks).
"""

from __future__ import annotations

import logging
import statistics
import time
import warnings
from dataclasses import asdict, dataclass

import numpy as np
from tqdm import tqdm

from mocap.keypoint_sets import get_keypoint_set
from mocap.multi.associate import pair_affinity
from mocap.multi.backward import extend_back
from mocap.multi.body import body_cost, torso_mask
from mocap.multi.exchange import exchange_views
from mocap.multi.gates import assign, assign_gate, drop_lone_tails, met_better, met_depth, took_over
from mocap.multi.identity import births, drop_outside, drop_unconfirmed, merge_coinciding, one_owner, reacquire
from mocap.multi.merged import NOISE_COSTS, RECENT, assign_merged, check_unchecked, own_rays
from mocap.multi.mirrored import rejoin_mirrored
from mocap.multi.partial import merge_partial
from mocap.multi.rays import FrameRays, point_ray_distance, robust_median
from mocap.multi.reidentify import join_to_persons
from mocap.multi.slots import encode_masks
from mocap.multi.solve import Job, solve_people, solve_person
from mocap.multi.tracklets import Track, apart, centre, join_tracks, seen_apart, solved_apart, split_resized, stitch
from mocap.multi.warn import warn_summary
from mocap.types import Keypoints2D, Rig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrackConfig:
    min_joints: int = 4  # a detection needs this many usable keypoints (and two views this many in common)
    match_max_m: float = 0.15  # two views' detections are one person when their rays meet within this (median)
    track_max_m: float = 0.25  # a keypoint's ray this far from the predicted joint is an outlier (costs this);
    # a detection belongs to a track when its mean capped distance is under half of it
    coast_speed: float = 1.5  # m/s: how fast the gate of an unseen track grows
    coast_max_s: float = 1.0  # a track unseen this long ends
    birth_frames: int = 3  # consecutive frames in ≥ 2 views before a new person is confirmed
    min_person_frames: int = 10  # identities reconstructed in fewer frames are dropped (reported)
    stitch_max_s: float = 2.0  # a track ending and one starting nearby within this are one person

    def __post_init__(self) -> None:
        for name in ("match_max_m", "track_max_m", "coast_speed", "coast_max_s", "stitch_max_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"association: {name} must be positive, got {getattr(self, name)}")
        for name in ("min_joints", "birth_frames", "min_person_frames"):
            if getattr(self, name) < 1:
                raise ValueError(f"association: {name} must be ≥ 1, got {getattr(self, name)}")


BIRTH_GRACE_FRAMES = 2  # a tentative person missing a second view this many frames is kept, not dropped
TWO_VIEW_BIRTH = 4  # a person only ever seen by two views is confirmed after this many times birth_frames


def _others(P: np.ndarray | None, me: int) -> np.ndarray | None:
    """The rows of the people's predictions P (U, J, 3) but ``me`` (-1: all of them); None where none is left."""
    if P is None or (me >= 0 and len(P) == 1):
        return None
    return P if me < 0 else P[np.arange(len(P)) != me]


class Tracker:
    def __init__(self, rig: Rig, kp: Keypoints2D, cfg: TrackConfig, min_score: float,
                 two_view_birth: int = TWO_VIEW_BIRTH):
        self.cfg = cfg
        self.two_view_birth = two_view_birth
        self.rays = FrameRays(rig, kp, min_score, cfg.min_joints)  # rays[f, c, s] (J, 3), computed by blocks
        self.origins, self.usable = self.rays.origins, self.rays.usable  # (C, 3), (F, C, S)
        self.F, self.C, self.S, self.J = kp.shape
        self.torso = torso_mask(kp.keypoint_set, self.J)  # (J,) the joints that move with the body
        self.fps = kp.fps
        self.live: list[Track] = []
        self.done: list[Track] = []
        self.unexplained_frames = 0
        self.suspect: dict[int, tuple[Track, int]] = {}  # id → (track, frames in a row its views did not meet)

    def _gate(self, t: Track, f: int) -> float:
        since = f - (t.last3d if t.last3d >= 0 else t.last) - 1  # one view alone leaves the depth unknown
        return self.cfg.track_max_m + self.cfg.coast_speed * max(0, since) / self.fps

    def costs_to(self, f: int, views: list[int], slots: list[int], skeletons: np.ndarray, cap) -> np.ndarray:
        """(U, V) the tracker's cost (:func:`body_cost`, joints capped at ``cap``: a float or (V,)) of frame f's
        detections (one per view: ``views``, ``slots``) against skeletons (U, J, 3)."""
        R = self.rays[f, views, slots]  # (V, J, 3)
        d = point_ray_distance(skeletons[:, None], self.origins[views][None, :, None], R[None])  # (U, V, J)
        return body_cost(d, np.asarray(cap, float)[..., None], self.torso, self.cfg.min_joints)

    def _assign(self, tracks: list[Track], f: int, free: np.ndarray, out: dict,
                rivals: list[Track] | None = None) -> None:
        """Hungarian per view of ``tracks`` against the free detections (:func:`~mocap.multi.gates.assign`)."""
        assign(self, tracks, f, free, out, rivals)

    def _solve(self, views: list[int], slots: list[int], f: int, prior: np.ndarray | None,
               costs: list[float] | None = None, others: np.ndarray | None = None,
               near: float = 0.0, stale: np.ndarray | None = None) -> tuple[np.ndarray, list[int], dict]:
        """:func:`~mocap.multi.solve.solve_person` (one person's skeleton from its detections in frame f)."""
        return solve_person(self, views, slots, f, prior, costs, others, near, stale)

    def step(self, f: int) -> None:
        free = self.usable[f].copy()
        out: dict = {}
        confirmed = [t for t in self.live if t.confirmed]
        tentative = [t for t in self.live if not t.confirmed]
        # matching cascade: people located in 3D the frame before choose first (tight gates), then those whose
        # position is uncertain (unseen, or seen by one view: their gates wide enough to take anyone's detection)
        located = [t for t in confirmed if t.last3d >= f - 1]
        self._assign(located, f, free, out)
        shared = assign_merged(self, confirmed, f, free, out)
        seen = [t for t in confirmed if t.last >= f - 1]  # ... and none takes a detection one seen explains better
        self._assign([t for t in confirmed if t.last3d < f - 1], f, free, out, seen)
        self._assign(tentative, f, free, out)
        moved = exchange_views(self, f, confirmed + tentative, out, free, shared)  # {id: skeleton}: views exchanged
        survivors = []
        stale = {id(t): t.stale(f, self.fps) for t in self.live}
        preds = {id(t): moved[id(t)] if id(t) in moved else np.where(stale[id(t)][:, None], np.nan, t.predict(f))
                 for t in confirmed}
        row = {k: r for r, k in enumerate(preds)}
        usable_kp = np.isfinite(self.rays[f][..., 0]).sum(axis=-1)  # (C, S)

        def job_of(t: Track) -> Job | None:  # t's detections this frame and what solving them takes (None: unseen)
            got = out.get(id(t))
            views = sorted(got) if got else []
            prior = t.predict(f)  # or its new views' triangulation, where they see a joint (an exchange)
            prior = np.where(np.isfinite(moved[id(t)]), moved[id(t)], prior) if id(t) in moved else prior
            return Job(views, [got[c][0] for c in views], prior, [got[c][1] for c in views],
                       row.get(id(t), -1), NOISE_COSTS * t.noise(RECENT), stale[id(t)]) if views else None

        jobs = {id(t): job for t in self.live if (job := job_of(t))}
        P = np.stack(list(preds.values())) if preds else None  # (U, J, 3) the confirmed people's predictions
        solved = dict(zip(jobs, solve_people(self, f, list(jobs.values()), P), strict=True))
        for t in self.live:
            got = out.get(id(t), {})
            job = jobs.get(id(t))  # t itself changes only after its views are settled below
            if job is None:  # unseen in every view
                views, X, kept, own, others = [], None, [], {}, None
            else:
                views, prior, near = job.views, job.prior, job.near
                others = _others(P, job.me)  # the other people's predictions (None: nobody else)
                # a weak view (mostly another person's keypoints) is not this person's detection: back to the pool
                X, kept, own = solved.get(id(t)) or self._solve(views, job.slots, f, prior, job.costs, others, near,
                                                                job.stale)
            # keypoints of a view nearer another person (the other body in a merged detection): not this person's
            t.own.update({(f, c): (got[c][0], own[c]) for c in views if own[c].sum() < usable_kp[c, got[c][0]]})
            if others is not None:
                t.checked.update((f, c, got[c][0]) for c in views)
            if t.confirmed and len(kept) >= 2 and not apart(X, prior) <= self._gate(t, f):
                # two views whose rays each pass near the prediction yet meet far from it (nearly parallel rays,
                # one of them another person's): the depth is the prediction's, seen by the view that fits best
                best = min(kept, key=lambda c: got[c][1])
                X, kept, _ = self._solve([best], [got[best][0]], f, prior, [got[best][1]], others, near)
            t.dropped_views += len(views) - len(kept)
            for c in views:
                if c not in kept and (c, got[c][0]) not in shared:
                    free[c, got[c][0]] = True  # back to the pool
            gated = list(kept)  # the views measured against the prediction (an extension's meet its view's rays)
            if t.confirmed and len(kept) == 1:
                X, kept = self._extend(t, f, kept[0], got, free, X, others, near, out)
                if len(kept) == 1 and self.cfg.coast_speed * (f - t.last - 1) / self.fps > self.cfg.track_max_m:
                    free[kept[0], got[kept[0]][0]], kept = True, []  # unseen by all for longer than doubles its
                    # gate: one view cannot tell it is this person (two can; the walk back then takes such frames)
            if not t.confirmed and len(kept) < 2:
                if f - t.last <= BIRTH_GRACE_FRAMES:  # a tentative track survives a frame or two in < 2 views
                    survivors.append(t)
                continue
            if kept:
                if len(kept) >= 2:
                    # joints measured now (not the prediction's), against the last two-view fix (one view's depth
                    # was the prediction's: a fix after it read 18 m/s where another's clutter joined one view)
                    ref, since = (t.X3d, f - t.last3d) if t.last3d >= 0 else (t.X, f - t.last)
                    common = np.isfinite(X[:, 0]) & np.isfinite(ref[:, 0]) & np.any(np.not_equal(X, prior), axis=1)
                    if common.any() and id(t) not in moved:  # not across an exchange: the mixture's skeleton
                        # per axis: the median of the joints' moves (robust_median: np.median's values, cheaper)
                        step = robust_median((X[common] - ref[common]).T, 1) / since
                        t.vel = step if t.hits == 1 else 0.5 * t.vel + 0.5 * step
                    t.hits += 1
                    t.last3d, t.X3d = f, X
                    t.triangulated(f, X, prior if id(t) not in moved else t.predict(f))  # measured: not carried over
                    t.path[f] = centre(X)
                    t.skel[f] = X
                else:  # one view: its depth is the prediction's; the motion model fades out
                    t.fade(f - t.last, self.fps)
                t.X, t.last = X, f
                slots = np.full(self.C, -1, np.int16)
                for c in kept:
                    slots[c] = got[c][0]
                t.frames.append(f)
                t.slots.append(slots)
                t.costs.append(statistics.median([got[c][1] for c in kept if c in gated]))  # as the gate's
                t.max_views = max(t.max_views, len(kept))
                if not t.confirmed and t.hits >= self.cfg.birth_frames and (
                        t.max_views >= min(3, self.C) or t.hits >= self.two_view_birth * self.cfg.birth_frames):
                    t.confirmed = True
                    if reacquire(self, t, f):  # t's history joined a track that may come later in this loop
                        b = t.merged_into
                        solved.pop(id(b), None)
                        if id(b) in jobs:
                            jobs[id(b)] = job_of(b)
                        continue
            if f - t.last > self.cfg.coast_max_s * self.fps:
                self.done.append(t)
                continue
            survivors.append(t)
        self.live = self._dedup(survivors, f)
        births(self, f, free)

    def _dedup(self, tracks: list[Track], f: int) -> list[Track]:
        """Two confirmed tracks on one person (one seen this frame, the skeletons within ``match_max_m``; or
        the older unseen now where a track confirmed less than ``coast_max_s`` ago is): the younger joins
        the older, which keeps the views of each frame where it had more."""
        conf = [t for t in tracks if t.confirmed]
        if len(conf) < 2:
            return tracks
        gone = set()
        P = np.stack([t.predict(f) for t in conf])
        # a pair with no joint in common (median inf): not the same
        near = robust_median(np.linalg.norm(P[:, None] - P[None], axis=-1), 1) < self.cfg.match_max_m
        for i, a in enumerate(conf):
            for k, b in enumerate(conf[i + 1:], i + 1):
                if id(a) in gone or id(b) in gone or (a.last != f and b.last != f):
                    continue
                old, young = (a, b) if a.first <= b.first else (b, a)
                same = bool(near[i, k])
                if not same and (old.last < f or old.last3d < young.first) and \
                        f <= young.first + self.cfg.coast_max_s * self.fps:
                    # a person just confirmed took over from one that lost it (unseen now, or seen by one view
                    # only, its depth unknown, since before the new one appeared): where that one is expected
                    same = apart(old.predict(f), young.X) <= self._gate(old, f) and took_over(self, old, young, f)
                if not same or seen_apart(a, b, self.cfg.match_max_m, self.cfg.birth_frames):
                    continue
                join_tracks(old, young)
                gone.add(id(young))
        return [t for t in tracks if id(t) not in gone]

    def _extend(self, t: Track, f: int, c0: int, got: dict, free: np.ndarray,
                X: np.ndarray, others: np.ndarray | None = None, near: float = 0.0,
                out: dict | None = None) -> tuple[np.ndarray, list[int]]:
        """A track seen by one view only (its depth uncertain, so other views' detections fell outside
        its gate): free detections in other views that meet that view's detection (median ray distance
        within ``match_max_m`` over the joints its view sees, one the other does not see counting as far:
        :func:`pair_affinity` ``cover``) and land near the prediction join it, unless another person's
        prediction explains one at half the cost or less, or another person seen by one view this frame (in ``out``)
        meets it better (:func:`~mocap.multi.gates.met_better`)."""
        s0 = got[c0][0]
        cand = np.argwhere(free)
        cand = cand[cand[:, 0] != c0]
        if not len(cand):
            return X, [c0]
        views = np.concatenate([[c0], cand[:, 0]])
        O = self.origins[views]
        rays = np.concatenate([self.rays[f, c0, s0][None], self.rays[f, cand[:, 0], cand[:, 1]]])
        prior = t.predict(f)
        ref = np.concatenate([prior[None], met_depth(O, rays, prior)])  # (1 + N, J, 3): the depth is unknown
        rays = own_rays(rays[:, None], O[:, None], ref, others, near)[:, 0]  # (told from where the views meet)
        aff = pair_affinity(O, rays, views, self.cfg.min_joints, cover=True)[0, 1:]
        pick: dict[int, tuple[int, float]] = {}
        at: dict[int, int] = {}
        for k, ((c, sl), a) in enumerate(zip(cand, aff, strict=True)):
            if a <= self.cfg.match_max_m and (c not in pick or a < pick[c][1]):
                pick[int(c)], at[int(c)] = (int(sl), float(a)), k + 1
        if pick and others is not None:  # a detection far nearer (half the cost) another person's prediction than
            # where it meets this one's view is that person's (one on the same line of sight from that view)
            cost = {c: self.costs_to(f, [c], [pick[c][0]], np.concatenate([ref[at[c]][None], others]),
                                     self._gate(t, f))[:, 0] for c in pick}  # (1 + others,)
            pick = {c: pick[c] for c in pick if not np.any(cost[c][1:] < 0.5 * cost[c][0])}
        pick = met_better(self, f, (c0, s0), pick, out or {}, id(t))
        if not pick:
            return X, [c0]
        vs = [c0] + sorted(pick)
        sls = [s0] + [pick[c][0] for c in vs[1:]]
        met = np.stack([ref[at[c]] for c in vs[1:]])  # where its views meet (the mean over the picks)
        n = np.isfinite(met).sum(axis=0)
        start = np.where(n > 0, np.nansum(met, axis=0) / np.maximum(n, 1), prior)
        X2, kept, _ = self._solve(vs, sls, f, start, [got[c0][1]] + [pick[c][1] for c in vs[1:]], others, near)
        if len(kept) < 2 or c0 not in kept or not solved_apart(X2, prior) <= assign_gate(self, t, f):  # its depth
            return X, [c0]
        for c in kept[1:] if kept[0] == c0 else [k for k in kept if k != c0]:
            got[c] = pick[c]
            free[c, pick[c][0]] = False
        return X2, kept


def in_order(tracks: list, fps: float) -> list:
    """The people in order of appearance (the first frame two views see them, not a lone detection walked back onto),
    those within half a second of the one before (a chain) by place: along the world axis their first positions spread
    most (by first frame alone "person1" was the man in some runs of a two-person take, the woman in others)."""
    if len(tracks) < 2:
        return list(tracks)
    with warnings.catch_warnings():  # a body without a located joint: its place unknown (0, the middle)
        warnings.simplefilter("ignore", RuntimeWarning)
        start = np.nan_to_num(np.array([np.nanmedian(t.X_start if getattr(t, "X_start", None) is not None else t.X,
                                                     axis=0) for t in tracks]))  # (N, 3) each one's first centre
    first = [next((f for f, v in zip(t.frames, t.slots, strict=True) if np.sum(np.asarray(v) >= 0) > 1), t.frames[0])
             for t in tracks]
    by_time = sorted(range(len(tracks)), key=lambda i: first[i])
    group, groups = 0, {}
    for prev, i in zip([None, *by_time], by_time, strict=False):
        if prev is not None and first[i] - first[prev] > 0.5 * fps:
            group += 1
        groups[i] = group
    axis = int(np.argmax(np.ptp(start, axis=0)))  # the world axis their first positions spread most along
    return [tracks[i] for i in sorted(by_time, key=lambda i: (groups[i], float(start[i, axis])))]


def associate_take(rig: Rig, kp: Keypoints2D, persons: int | str = "auto", cfg: TrackConfig = TrackConfig(),
                   min_score: float = 0.2, progress: bool = True,
                   two_view_birth: int = TWO_VIEW_BIRTH, quiet: bool = False) -> tuple[np.ndarray, dict]:
    """Identities of the people in a take. Returns slots (F, C, P): the detector slot of each person in
    each view and frame (-1: not seen), persons ordered by first appearance, and a summary.
    ``two_view_birth``: a person only ever seen by two views is confirmed after this many times
    ``cfg.birth_frames`` (the detect stage's second pass, which only looks where a person would be, uses 1).
    ``quiet``: an intermediate association (the detect stage's second pass, the camera refinement on the
    given rig) does not warn about its result (:func:`warn_summary`); the one the capture keeps does."""
    if tuple(kp.camera_names) != rig.names:
        raise ValueError(f"association: keypoint cameras {list(kp.camera_names)} differ from rig {list(rig.names)}")
    if len(rig) < 2:
        raise ValueError(f"association: several people need at least 2 cameras, got {len(rig)}")
    if two_view_birth < 1:
        raise ValueError(f"association: two_view_birth must be ≥ 1, got {two_view_birth}")
    t0, tr, t1 = time.perf_counter(), Tracker(rig, kp, cfg, min_score, two_view_birth), time.perf_counter()
    for f in tqdm(range(tr.F), desc="associate", unit="frame", disable=None if progress else True, leave=False):
        tr.step(f)
    limbs = get_keypoint_set(kp.keypoint_set).limbs  # another person in a track lost for a while: its own
    tracks = split_resized([t for t in tr.done + tr.live if t.confirmed], kp.fps, limbs)
    for t in tracks:
        t.X_end = t.X3d if t.X3d is not None else t.X
        k = next((k for k, sl in enumerate(t.slots) if (sl >= 0).sum() >= 2), 0)
        v = [c for c in range(tr.C) if t.slots[k][c] >= 0]
        t.X_start = tr._solve(v, [int(t.slots[k][c]) for c in v], t.frames[k], None)[0]
    tracks, inside = merge_partial(tr, merge_coinciding(tracks))  # a person's partial views
    tracks = stitch(tracks, cfg, kp.fps, limbs)
    seconds = time.perf_counter() - t0
    kept = [t for t in tracks if sum(int((s >= 0).sum() >= 2) for s in t.slots) >= cfg.min_person_frames]
    dropped = len(tracks) - len(kept)
    kept, outside = drop_outside(rig, kept)
    kept, unconfirmed, not_people, small, apart = drop_unconfirmed(rig, kp, kept, min_score, two_view_birth)
    kept, joined = join_to_persons(kept, persons, kp.fps, limbs)  # one lost > stitch_max_s, N people asked for
    before_start = extend_back(tr, kept)  # the frames before each was confirmed (or found again)
    lone_tails = drop_lone_tails(tr, kept) if two_view_birth > 1 else 0  # (see drop_unconfirmed: not in detect's)
    kept = in_order(kept, kp.fps)
    slots, people = np.full((tr.F, tr.C, len(kept)), -1, np.int16), []
    for p, t in enumerate(kept):
        slots[t.frames, :, p] = np.stack(t.slots)
    shared = one_owner(slots, kept, tr.J)
    mirrored = rejoin_mirrored(tr, kept, slots, kp.keypoint_set)  # a detection mirrored as a whole: its person's
    masks = {(f, c, p): m for p, t in enumerate(kept) for (f, c), (sl, m) in t.own.items() if slots[f, c, p] == sl}
    unchecked = check_unchecked(tr, kept, slots, masks)
    for p, t in enumerate(kept):
        n_views = (slots[:, :, p] >= 0).sum(axis=1)
        seen = np.flatnonzero(n_views >= 2)
        people.append({"frames_present": int(len(seen)), "first": int(seen[0]) if len(seen) else None,
                       "last": int(seen[-1]) if len(seen) else None, "frames_single_view": int(np.sum(n_views == 1)),
                       "views_mean": float(n_views[n_views > 0].mean()) if (n_views > 0).any() else 0.0,
                       "track_cost_mm": 1000 * float(np.median(t.costs)) if t.costs else None,
                       "views_rejected": int(t.dropped_views),
                       "stitched": [[int(a), int(b)] for a, b in t.stitched]})
    taken = np.zeros((tr.F, tr.C, tr.S), bool)
    f_, c_, p_ = np.nonzero(slots >= 0)
    taken[f_, c_, slots[f_, c_, p_]] = True
    lone = (tr.usable & ~taken).any(axis=2).sum(axis=0)  # frames with a detection no person explains
    summary = {"persons_requested": persons if persons == "auto" else int(persons), "persons_found": len(kept),
               "people": people, "tracks_dropped_short": dropped, "identities_joined": joined,
               "persons_outside_volume": outside, "persons_unconfirmed": unconfirmed, "partial_identities": inside,
               "unconfirmed_not_body_sized": small, "unconfirmed_apart": apart, "views_not_people": not_people,
               "shared_views_given_to_one": shared, "keypoint_masks": encode_masks(masks),
               "views_checked_after_tracking": unchecked, "mirrored_views_rejoined": mirrored,
               "detections_before_start": before_start, "one_view_tail_frames_dropped": lone_tails, "frames": tr.F,
               "cameras": tr.C, "slots_per_view": tr.S, "frames_with_unexplained_detections": tr.unexplained_frames,
               "unexplained_frames_per_camera": dict(zip(rig.names, lone.tolist(), strict=True)),
               "ms_per_frame": 1000 * seconds / max(tr.F, 1), "ms_per_frame_rays": 1000 * (t1 - t0) / max(tr.F, 1),
               "config": asdict(cfg)}
    if not quiet:
        warn_summary(summary)
    log.info("association: %d people in %d frames, %.2f ms/frame", len(kept), tr.F, summary["ms_per_frame"])
    return slots, summary
