"""Tracks of the 3D tracker (:mod:`mocap.multi.track`): one person's state and history, and the joining of
two tracks of one person (duplicates while tracking, and tracks that follow one another in time and space)."""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from mocap.multi.history import FrameStore, ViewSet, merged

if TYPE_CHECKING:
    from mocap.multi.track import TrackConfig

log = logging.getLogger(__name__)
SETTLED_S = 0.5  # where a track ended or began, read also as the median of its body centres over this long (stitch)
STALE_S = 0.5  # a joint not triangulated for this long is no reference when telling whose keypoints are whose
ONE_VIEW_HALF_S = 0.5  # a person's velocity halves in this time while it is seen by one view (0.95 a frame at 27 fps;
# 0.95 a frame at every rate, the velocity died twice as fast at 60 fps as at 30, the depth of a person seen by one
# view stopped moving with it: a 5-person 3-camera take lost two identities at 60 fps, none at 30)


@dataclass
class Track:
    X: np.ndarray  # (J, 3)
    last: int  # last frame seen in any view
    first: int
    vel: np.ndarray = field(default_factory=lambda: np.zeros(3))
    hits: int = 1
    confirmed: bool = False
    frames: list = field(default_factory=list)  # frame indices
    slots: list = field(default_factory=list)  # (C,) slot per view, -1: none
    costs: list = field(default_factory=list)
    dropped_views: int = 0
    max_views: int = 0
    last3d: int = -1  # last frame seen in two views or more, and the skeleton then
    X3d: np.ndarray | None = None
    merged_into: Track | None = None
    X_start: np.ndarray | None = None  # the skeleton where the track began and ended (stitching)
    X_end: np.ndarray | None = None
    path: FrameStore = field(default_factory=FrameStore)  # frame → body centre (3,), in the frames seen by two
    # views or more (a dict given is kept as a FrameStore: the same values in a fraction of the memory)
    own: dict = field(default_factory=dict)  # (frame, view) → (slot, (J,) the keypoints of that detection that
    # are this person's: nearer its joints than another person's), where some are not
    checked: ViewSet = field(default_factory=ViewSet)  # (frame, view, slot) whose keypoints were told from the
    # others' (a set given is kept as a ViewSet)
    skel: FrameStore = field(default_factory=FrameStore)  # frame → (J, 3) the skeleton, in the frames seen by two
    # views or more
    measured: np.ndarray | None = None  # (J,) the last frame each joint was triangulated (not carried over)
    stitched: list = field(default_factory=list)  # (frame lost, frame taken up again) of each stitch into it

    def __post_init__(self) -> None:
        if not isinstance(self.path, FrameStore):
            self.path = FrameStore(self.path)
        if not isinstance(self.skel, FrameStore):
            self.skel = FrameStore(self.skel)
        if not isinstance(self.checked, ViewSet):
            self.checked = ViewSet(self.checked)

    def predict(self, f: int) -> np.ndarray:
        return self.X + self.vel * (f - self.last)

    def fade(self, frames: int, fps: float) -> None:
        """``frames`` frames seen by one view (the depth unknown): the velocity fades (:func:`one_view_fade`)."""
        self.vel = self.vel * one_view_fade(frames, fps)

    def stale(self, f: int, fps: float) -> np.ndarray:
        """(J,) bool: the joints last triangulated more than ``STALE_S`` before frame f (carried over since: their
        prediction may be anywhere; never triangulated counts from the track's first frame)."""
        seen = self.measured if self.measured is not None else np.full(len(self.X), self.first)
        return f - seen > STALE_S * fps

    def triangulated(self, f: int, X: np.ndarray, prior: np.ndarray) -> None:
        """Frame f's skeleton X (J, 3) from two views or more: its joints not carried over from ``prior`` are
        measured now."""
        if self.measured is None:
            self.measured = np.full(len(X), self.first)
        self.measured[np.isfinite(X[:, 0]) & np.any(np.not_equal(X, prior), axis=1)] = f

    def noise(self, recent: int) -> float:
        """The usual cost of this person's detections: the median over the last ``recent`` frames (0: none)."""
        return float(statistics.median(self.costs[-recent:])) if self.costs else 0.0


def one_view_fade(frames: int, fps: float) -> float:
    """The factor of a person's velocity after ``frames`` frames seen by one view: halved every ``ONE_VIEW_HALF_S``."""
    return 0.5 ** (frames / (ONE_VIEW_HALF_S * fps))


def centre(X: np.ndarray) -> np.ndarray:
    """The mean of a skeleton's (J, 3) known joints (NaN: none); the sum over the count, as ``mean`` computes it,
    without its overhead (the association asks for thousands of centres)."""
    ok = np.isfinite(X[:, 0])
    n = int(np.count_nonzero(ok))
    return np.add.reduce(X[ok], 0) / n if n else np.full(3, np.nan)


def apart(a: np.ndarray, b: np.ndarray) -> float:
    """Median distance between the joints two skeletons (J, 3) both have (inf: none in common)."""
    d = a - b
    d = np.sqrt(np.sum(d * d, axis=-1))
    d = d[np.isfinite(d)]
    return float(statistics.median(d.tolist())) if len(d) else np.inf


def solved_apart(X: np.ndarray, prior: np.ndarray) -> float:
    """:func:`apart` of a skeleton solved from a frame's views and the prediction ``prior``, over the joints the views
    placed (where they do not meet, its start, here the prediction, fills them): two views of two people whose rays
    met 1.2 m from the prediction read 0 m apart, most joints the prediction's, and took a person onto another's
    detections (then onto junk for 20 frames, and the person came back as another identity). inf where the views
    placed none."""
    placed = np.any(np.not_equal(X, prior), axis=1)
    return apart(X[placed], prior[placed]) if placed.any() else np.inf


def seen_apart(a: Track, b: Track, distance: float, frames: int) -> bool:
    """Whether two tracks were both seen in 3D, their body centres more than ``distance`` apart, in at least
    ``frames`` frames: two people, never one (however near their paths come later)."""
    short, long_ = (a.path, b.path) if len(a.path) <= len(b.path) else (b.path, a.path)
    n = 0
    for f, c in short.items():
        o = long_.get(f)
        if o is not None and np.linalg.norm(c - o) > distance:
            n += 1
            if n >= frames:
                return True
    return False


def join_tracks(old: Track, young: Track) -> None:
    """``young``'s history into ``old`` (per frame, the assignment with more views); old takes its state
    when young was seen last."""
    frames = dict(zip(old.frames, zip(old.slots, old.costs, strict=True), strict=True))
    for f, sl, c in zip(young.frames, young.slots, young.costs, strict=True):
        if f in frames and not np.any((sl >= 0) & (frames[f][0] >= 0)):  # different views: both
            frames[f] = (np.where(sl >= 0, sl, frames[f][0]), min(c, frames[f][1]))
        elif f not in frames or (sl >= 0).sum() > (frames[f][0] >= 0).sum():
            frames[f] = (sl, c)
    order = sorted(frames)
    old.frames = order
    old.slots = [frames[f][0] for f in order]
    old.costs = [frames[f][1] for f in order]
    if young.last >= old.last:
        old.X, old.vel, old.last = young.X, young.vel, young.last
    if young.last3d >= old.last3d:
        old.last3d, old.X3d = young.last3d, young.X3d
    old.path = merged(young.path, old.path)
    old.skel = merged(young.skel, old.skel)
    old.own = {**young.own, **old.own}
    old.checked |= young.checked
    old.dropped_views += young.dropped_views
    old.max_views = max(old.max_views, young.max_views)
    old.stitched += young.stitched
    old.measured = latest_measured(old, young)


def latest_measured(a: Track, b: Track) -> np.ndarray:
    """Per joint the later of two tracks' last triangulations (:attr:`Track.measured`; none yet: the track's first
    frame, as :meth:`Track.stale` counts it), for the track joining them."""
    return np.maximum(*(t.measured if t.measured is not None else np.full(len(t.X), t.first) for t in (a, b)))


SIZE_RATIO = 1.15  # two tracks whose bones differ by more than this factor (median over the bones) are two people
MIN_SIZE_FRAMES = 15  # ... each measured on at least this many frames located in 3D
MAJOR_M = 0.15  # ... on the bones at least this long in both (torso, limbs: not the face's, hands' or feet's)
RESIZED_GAP_S = 0.2  # a track unseen in every view this long may come back as another person (split_resized)
RESIZED_MIN_S = 0.5  # ... told by the body sizes before and after, each measured on this long in 3D


def body_size(t: Track, segments: list[tuple[int, int]]) -> np.ndarray:
    """(S,) the median length of each segment (a, b) over the frames ``t`` was located in 3D; NaN with fewer than
    ``MIN_SIZE_FRAMES`` of them, or for a segment never seen."""
    out = np.full(len(segments), np.nan)
    if len(t.skel) < MIN_SIZE_FRAMES or not segments:
        return out
    a, b = np.array(segments).T
    X = np.stack(list(t.skel.values()))  # (n, J, 3)
    d = np.linalg.norm(X[:, a] - X[:, b], axis=-1)  # (n, S)
    seen = np.isfinite(d).any(axis=0)
    out[seen] = np.nanmedian(d[:, seen], axis=0)
    return out


def size_difference(sa: np.ndarray, sb: np.ndarray) -> float:
    """|log| of the median ratio of two bodies' segment lengths (:func:`body_size`) over the major bones both have
    (``MAJOR_M``, three at least); NaN when they cannot be compared."""
    ok = np.isfinite(sa) & np.isfinite(sb) & (sa >= MAJOR_M) & (sb >= MAJOR_M)
    return float(abs(np.log(np.median(sb[ok] / sa[ok])))) if ok.sum() >= 3 else float("nan")


def other_size(sa: np.ndarray, sb: np.ndarray) -> bool:
    """Whether two bodies' segment lengths differ by more than ``SIZE_RATIO`` (:func:`size_difference`): a child
    and an adult, a tall actor and a short one, never one person."""
    return bool(size_difference(sa, sb) > np.log(SIZE_RATIO))


def stitch(tracks: list[Track], cfg: TrackConfig, fps: float,
           segments: list[tuple[int, int]] | None = None) -> list[Track]:
    """Join a track that starts after another ends, near where it ended (one person lost for a while), unless
    their bodies differ in size (``segments``: the keypoint set's bones, :func:`other_size`)."""
    def first3d(t: Track) -> int:
        return next((f for f, sl in zip(t.frames, t.slots, strict=True) if (sl >= 0).sum() >= 2), t.frames[0])

    tracks = sorted(tracks, key=first3d)
    size = {id(t): body_size(t, segments or []) for t in tracks}
    ends = {id(t): settled(t, fps, True) for t in tracks}
    going = {id(t): moving(t, fps, True, cfg.coast_speed) for t in tracks}
    out: list[Track] = []
    for t in tracks:
        best, best_d = None, np.inf
        begun, coming = settled(t, fps, False), moving(t, fps, False, cfg.coast_speed)
        for a in out:
            gap = first3d(t) - max(a.last3d, a.first)
            if gap <= 0 or gap > cfg.stitch_max_s * fps:
                continue
            (p_a, v_a), (p_t, v_t) = going[id(a)], coming  # each carried on to the middle of the gap
            d = np.fmin.reduce([np.linalg.norm(centre(a.X_end) - centre(t.X_start)),
                                np.linalg.norm(ends[id(a)] - begun),
                                np.linalg.norm(p_a + v_a * (gap / 2) - (p_t - v_t * (gap / 2)))])
            near = d <= cfg.track_max_m + cfg.coast_speed * gap / fps
            if near and d < best_d and not other_size(size[id(a)], size[id(t)]):
                best, best_d = a, d
        if best is None:
            out.append(t)
        else:
            best.stitched.append((max(best.last3d, best.first), first3d(t)))
            join_tracks(best, t)
            best.X_end, best.last3d = t.X_end, t.last3d
            size[id(best)], ends[id(best)], going[id(best)] = body_size(best, segments or []), ends[id(t)], going[id(t)]
    return out


def settled(t: Track, fps: float, end: bool) -> np.ndarray:
    """Where track ``t`` ended (``end``) or began: the median of its body centres over its last (first)
    :data:`SETTLED_S` seen in two views or more (NaN: none). Its last skeleton alone can be a pairing of two
    people's partial views: a person half hidden by another for 0.3 s on real footage ended 0.55 m from where she
    stood, came back there as another identity (:func:`stitch` reads both)."""
    frames = list(t.path)
    if not frames:
        return np.full(3, np.nan)
    edge = frames[-1] if end else frames[0]
    near = [f for f in frames if abs(f - edge) <= SETTLED_S * fps]
    return np.median(np.stack([t.path[f] for f in near]), axis=0)


def moving(t: Track, fps: float, end: bool, top_speed: float) -> tuple[np.ndarray, np.ndarray]:
    """Where track ``t`` ended (``end``) or began and how it moved there: its body centre at that edge and its
    velocity (per frame, at most ``top_speed`` m/s), both robust over its last (first) :data:`SETTLED_S` seen in two
    views or more (the median of the steps between its centres, then the median of its centres carried to the edge
    by it); NaN with under half of that. A walker's last skeleton can be a bad pairing of partial views, and the
    median over half a second lags a walker by 0.3 m: one person lost for 0.1 s was read 0.36 m from where she came
    back, and split in two."""
    frames = sorted(t.path)
    edge = frames[-1] if end and frames else frames[0] if frames else 0
    near = np.array([f for f in frames if abs(f - edge) <= SETTLED_S * fps])
    if len(near) < max(3, SETTLED_S * fps / 2):
        return np.full(3, np.nan), np.full(3, np.nan)
    X = np.stack([t.path[int(f)] for f in near])
    v = np.median(np.diff(X, axis=0) / np.diff(near)[:, None], axis=0)
    v *= min(1.0, top_speed / fps / max(float(np.linalg.norm(v)), 1e-12))
    return np.median(X - v * (near - edge)[:, None], axis=0), v


def split_resized(tracks: list[Track], fps: float, segments: list[tuple[int, int]],
                  gap_s: float = RESIZED_GAP_S) -> list[Track]:
    """Each track cut where it was unseen in every view for ``gap_s`` or more and its body before differs in size
    from its body after (:func:`other_size`): another person walked in where it was lost and took its identity
    (a child where an adult left), each measured in 3D for ``RESIZED_MIN_S`` or more (a body re-measured on a few
    frames of a partial view may read bigger or smaller); the parts go on as tracks of their own (:func:`stitch`
    does not join them)."""
    out, need = [], RESIZED_MIN_S * fps
    for t in tracks:
        f = np.asarray(t.frames)
        seen = np.array([(sl >= 0).any() for sl in t.slots], bool)
        fs = f[seen]
        gaps = np.flatnonzero(np.diff(fs) > max(1, gap_s * fps)) if len(fs) > 1 else []
        cuts, start = [], fs[0] if len(fs) else 0
        for i, g in enumerate(gaps):
            end = fs[gaps[i + 1]] + 1 if i + 1 < len(gaps) else f[-1] + 1
            before, after = _part(t, start, fs[g] + 1), _part(t, fs[g + 1], end)
            if min(len(before.skel), len(after.skel)) >= need and \
                    other_size(body_size(before, segments), body_size(after, segments)):
                cuts.append(fs[g + 1])
                start = fs[g + 1]
        if not cuts:
            out.append(t)
            continue
        log.info("a person lost for a while came back with another body's size: another person (%d identities)",
                 len(cuts) + 1)
        bounds = [t.frames[0]] + cuts + [t.frames[-1] + 1]
        out += [_part(t, a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    return out


def _part(t: Track, a: int, b: int) -> Track:
    """Track ``t`` in frames a … b − 1, a track of its own (its state: where it was last seen there)."""
    keep = [i for i, f in enumerate(t.frames) if a <= f < b]
    frames = [t.frames[i] for i in keep]
    skel = FrameStore({f: t.skel[f] for f in t.skel if a <= f < b})
    in3d = [f for f in skel]
    last3d = in3d[-1] if in3d else -1
    X = skel[last3d] if in3d else t.X
    return Track(np.array(X), frames[-1] if frames else a, frames[0] if frames else a, hits=len(frames),
                 confirmed=True, frames=frames, slots=[t.slots[i] for i in keep], costs=[t.costs[i] for i in keep],
                 max_views=max((int((t.slots[i] >= 0).sum()) for i in keep), default=0), last3d=last3d,
                 X3d=np.array(X) if in3d else None, path={f: t.path[f] for f in t.path if a <= f < b}, skel=skel,
                 own={k: v for k, v in t.own.items() if a <= k[0] < b},
                 checked=[k for k in t.checked if a <= k[0] < b])
