"""Left/right swap repair of 2D keypoints, per view and frame.

Detectors exchange the left and right side of a body in one view now and then (a whole body flip, or
one side chain: the arms, the legs). Each view's detections are tested against the other views: the
points are triangulated robustly, then for every camera the 3D points are re-triangulated from the
*other* cameras' inliers and projected into it; the view's detections, as given and with a body-side
group exchanged, are scored against those projections with a truncated quadratic in units of the
camera's noise. Groups (``head``, ``arms``, ``legs``, from the joint names) are decided separately:
their costs are independent sums over their joints. Time enters through a two-state Viterbi per
camera and group (as given / exchanged) with a cost per switch and a dead zone for weak evidence, so
short runs are accepted on clear evidence and a run's ambiguous frames follow its neighbours; a group
with little evidence follows the others of its view. A swapped view also corrupts the references of
the others: the view with the strongest evidence in a frame is left out of them (where it alone shows
evidence, only in frames seen by fewer than ``lone_views`` views: with more, its pull on the others'
references is too weak to hide another), and the frames that changed are evaluated again (``rounds``) with
the repaired views, those changed left out of the references. Cost: every view is first scored on the
point of all views (its own included: one solve); only the joints of the groups whose exchange is not
clearly worse there (``clear_margin``) and a sample of
frames (the noise scale) are tested against the other views' point (one solve per camera): the repairs are
those of testing every view. Where most views of a frame are exchanged at once, the views' consensus is itself
mirrored and outvotes the right ones: those frames are found from the 3D over time
(:mod:`mocap.geometry.swaps_time`); where four views split two against two, the 3D there is one half's
(:mod:`mocap.geometry.swaps_split`). In all about 0.2 s for 2,000 frames × 4 cameras × 33 keypoints.

Where a group is seen by two views only, the test has no evidence; those two views are decided from
continuity in 3D instead (:mod:`mocap.geometry.swaps_two`).

Shapes: F frames, C cameras, J joints, G groups. Observations ``xy`` (F, C, J, 2) pixels (NaN when
missing), weights ``w`` (F, C, J) (0: ignore). Needs three views of a joint to test a view against the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mocap.geometry.camera import pixels_to_normalised
from mocap.geometry.normal_terms import count_views, distance, finite, normal_terms, solve_terms, sum_views
from mocap.geometry.swaps_broken import broken_views
from mocap.geometry.swaps_split import fill_split, may_split
from mocap.geometry.swaps_time import (  # noqa: F401 (viterbi: swaps.viterbi)
    NEAR,
    consensus_points,
    decide,
    mirrored_frames,
    redecide,
    swap_permutations,
    viterbi,
)
from mocap.geometry.swaps_two import decide_two_views
from mocap.geometry.triangulation import normalise_observations
from mocap.types import KeypointSet, Rig

log = logging.getLogger(__name__)

_LEGS = ("hip", "knee", "ankle", "heel", "foot", "toe")
_ARMS = ("shoulder", "elbow", "wrist", "hand", "pinky", "index", "thumb", "finger", "middle", "ring")  # with
# every finger of the hand points (``left_middle_tip``, ``left_ring_mcp``: not the face's group)


@dataclass(frozen=True)
class SwapConfig:
    truncate: float = 4.0  # a joint's error is clipped at this many noise scales (outliers weigh no more)
    dead_zone: float = 12.0  # evidence per frame below this (in squared noise scales) counts as none
    switch: float = 8.0  # cost of entering or leaving a swapped run (squared noise scales)
    follow: float = 40.0  # pull of a body-side group towards the other groups' choice where they agree
    max_reproj_px: float = 15.0  # inlier threshold of the robust reference triangulation
    min_noise_px: float = 0.5  # floor of the per-camera noise scale
    rounds: int = 2  # re-evaluations of the frames that changed, with the repaired views
    clear_margin: float | None = 24.0  # a view whose exchange costs more than dead_zone + this on the point of all
    # views (its own included) in every group keeps that evidence; only the others (and every ``scale_frames``-th
    # part of the take, for the noise scale) are tested against the other views' point (None: every view is)
    scale_frames: int = 100  # the noise scale is measured on about this many frames spread over the take
    mirrored_frames: bool = True  # frames whose views' consensus is mirrored (most views swapped) found in 3D
    lone_views: int | None = 6  # a frame where one view alone shows evidence of an exchange is evaluated again
    # without it (its exchange may hide another view's from the references) only when fewer than this many views
    # see it: with more, one view pulls the others' references by a sixth or less (8 cameras: the same repairs, a
    # fifth less cost with 2 % swaps); None: always
    broken_ratio: float = 5.0  # a camera this many times the others' typical error (and > max_reproj_px) takes
    # no part in the test (:mod:`mocap.geometry.swaps_broken`: a wrong pose, another camera's video)
    two_views: bool = True  # a group seen by two views only: those views decided from continuity in 3D
    # (:mod:`mocap.geometry.swaps_two`), not following their neighbouring frames' decisions

    def __post_init__(self) -> None:
        for k in ("truncate", "max_reproj_px", "min_noise_px"):
            if not getattr(self, k) > 0:
                raise ValueError(f"swaps: {k} must be positive, got {getattr(self, k)}")
        if self.clear_margin is not None and not self.clear_margin >= 0:
            raise ValueError(f"swaps: clear_margin must be ≥ 0 (or None), got {self.clear_margin}")
        if self.scale_frames < 1:
            raise ValueError(f"swaps: scale_frames must be ≥ 1, got {self.scale_frames}")
        if self.lone_views is not None and self.lone_views < 3:
            raise ValueError(f"swaps: lone_views must be ≥ 3 (or None), got {self.lone_views}")
        if not self.broken_ratio > 1:
            raise ValueError(f"swaps: broken_ratio must be > 1, got {self.broken_ratio}")
        if self.rounds < 0:
            raise ValueError(f"swaps: rounds must be ≥ 0, got {self.rounds}")
        for k in ("dead_zone", "switch", "follow"):
            if not getattr(self, k) >= 0:
                raise ValueError(f"swaps: {k} must be ≥ 0, got {getattr(self, k)}")


def swap_groups(ks: KeypointSet) -> tuple[tuple[str, ...], np.ndarray]:
    """Body-side groups of a keypoint set's left/right pairs: names (G,) and membership (J, G) bool
    (both joints of each pair in the group). Legs and arms by joint name, the rest is ``head``."""
    names, member = ("head", "arms", "legs"), np.zeros((len(ks.joints), 3), bool)
    for a, b in ks.pairs:
        n = ks.joints[a]
        g = 2 if any(t in n for t in _LEGS) else 1 if any(t in n for t in _ARMS) else 0
        member[[a, b], g] = True
    keep = member.any(axis=0)
    return tuple(n for n, k in zip(names, keep, strict=True) if k), member[:, keep]


def joint_errors(rig: Rig, xy: np.ndarray, w: np.ndarray, perm: np.ndarray, max_reproj_px: float,
                 trusted: np.ndarray | None = None, xn: np.ndarray | None = None,
                 select: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
                 stash: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each detection's distance to its joint, and to its mirror joint, as seen from the other views.

    The reference of camera c is the least-squares point of the other views that agree (within
    ``max_reproj_px``) with the point of all views, or of all other views when fewer than two agree;
    views not ``trusted`` (F, C) are left out of both while two others remain. xy (F, C, J, 2),
    w (F, C, J), perm (J,) → e_given, e_mirror (F, C, J) px; NaN where the detection is unused or
    fewer than two other views hold both joints. ``xn`` (F, C, J, 2): the undistorted normalised
    coordinates of ``xy`` when already known. ``select``: given the distances to the point of all views
    (its own included: e_given, e_mirror (F, C, J), cheap), the views (F, C) or detections (F, C, J) bool
    that get the other views' reference (a detection's mirror joint with it); the others keep those
    distances (None: every view gets it). ``stash``: filled with
    the normal terms "T" (F·J, C, 9), the views "used" and those agreeing with the point of all views
    "agree" (F·J, C), rows frame-major (what :func:`~mocap.geometry.swaps_time.consensus_points` starts from),
    that point "X" (F·J, 3) (of the ``trusted`` views), its distances to every view "e_all" (F·J, C) and
    the normalised coordinates "xn" (F·J, C, 2).
    """
    F, C, J, _ = xy.shape
    uv = np.moveaxis(xy, 1, 2).reshape(F * J, C, 2)
    ww = np.moveaxis(w, 1, 2).reshape(F * J, C)
    used = (ww > 0) & finite(uv)
    ww = np.where(used, ww, 0.0)
    xn = normalise_observations(rig, uv) if xn is None else np.moveaxis(xn, 1, 2).reshape(F * J, C, 2)
    T = normal_terms(rig, xn, ww)
    trust = used if trusted is None else used & np.repeat(trusted, J, axis=0)
    base = np.where(count_views(trust) >= 2, trust, used)
    total = sum_views(base, T)
    X = solve_terms(total, count_views(base)[:, 0])
    proj = np.stack([cam.project(X) for cam in rig.cameras], axis=1)  # (N, C, 2)
    e_all = distance(proj[..., 0] - uv[..., 0], proj[..., 1] - uv[..., 1])  # (N, C) to the point of all views
    agree = used & (e_all < max_reproj_px)
    if stash is not None:
        stash.update(T=T, used=used, agree=agree, X=X, e_all=e_all, xn=xn)
    e_given = np.full((F, C, J), np.nan)
    e_mirror = np.full((F, C, J), np.nan)

    def distances(c: int, frames: np.ndarray | slice, pc: np.ndarray, given: np.ndarray | None = None) -> None:
        pm = pc[:, perm]  # the mirror joints' projections, gathered once
        ok = (w[frames, c] > 0) & np.isfinite(pc[..., 0]) & np.isfinite(pm[..., 0])
        d = xy[frames, c]
        given = distance(pc[..., 0] - d[..., 0], pc[..., 1] - d[..., 1]) if given is None else given
        e_given[frames, c] = np.where(ok, given, np.nan)
        e_mirror[frames, c] = np.where(ok, distance(pm[..., 0] - d[..., 0], pm[..., 1] - d[..., 1]), np.nan)

    need = None  # (F·J, C) the detections that get the other views' reference (None: all)
    if select is not None:
        p4 = proj.reshape(F, J, C, 2)  # every camera at once, rows frame-major as computed
        pm = p4[:, perm]
        d = uv.reshape(F, J, C, 2)
        seen = finite(proj).reshape(F, J, C)  # in front of the camera, once for a joint and its mirror joint
        ok = (ww.reshape(F, J, C) > 0) & seen & seen[:, perm]
        e_given = np.moveaxis(np.where(ok, e_all.reshape(F, J, C), np.nan), 2, 1).copy()
        dx, dy = pm[..., 0] - d[..., 0], pm[..., 1] - d[..., 1]
        e_mirror = np.moveaxis(np.where(ok, np.sqrt(dx * dx + dy * dy), np.nan), 2, 1).copy()
        views = select(e_given, e_mirror)
        need = np.repeat(views, J, axis=0) if views.ndim == 2 else np.moveaxis(views, 1, 2).reshape(F * J, C)
        if views.ndim == 3:  # a joint's mirror joint gets a reference with it (its distance needs both)
            need = (need.reshape(F, J, C) | need.reshape(F, J, C)[:, perm]).reshape(F * J, C)
        if need.all():
            need = None
    # the reference sets of the rows where some detection gets one (a few when ``select`` picks them)
    some = np.flatnonzero(need.any(axis=1)) if need is not None else np.arange(F * J)
    at = np.full(F * J, -1)
    at[some] = np.arange(some.size)
    part = some if some.size < F * J else slice(None)
    sets, counts, level = _reference_sets(used[part], agree[part], trust[part])
    sums = _set_sums(sets, level, need[part] if need is not None else None, T, some,
                     total[part] if trusted is None else None)  # base = used without ``trusted``
    mirror_rows = (np.arange(F)[:, None] * J + perm).ravel()  # (F·J,) the row of each row's mirror joint
    for c in range(C):
        rows = np.arange(F * J) if need is None else np.flatnonzero(need[:, c])
        if rows.size == 0:
            continue
        sub = at[rows]  # the same rows among ``some``
        k = level[sub, c]
        # the other views of the reference: their set's sum less this view's own term where the set holds it
        S = sums[k, sub] - T[rows, c] * sets[k, sub, c][:, None]
        pc = rig.cameras[c].project(solve_terms(S, counts[k, sub, c]))  # (n, 2)
        if rows.size == F * J:
            distances(c, slice(None), pc.reshape(F, J, 2))
            continue
        pos = np.full(F * J, -1)
        pos[rows] = np.arange(rows.size)
        pm = pc[pos[mirror_rows[rows]]]
        f, j = np.divmod(rows, J)
        d = xy[f, c, j]
        ok = (w[f, c, j] > 0) & np.isfinite(pc[:, 0]) & np.isfinite(pm[:, 0])
        e_given[f, c, j] = np.where(ok, distance(pc[:, 0] - d[:, 0], pc[:, 1] - d[:, 1]), np.nan)
        e_mirror[f, c, j] = np.where(ok, distance(pm[:, 0] - d[:, 0], pm[:, 1] - d[:, 1]), np.nan)
    return e_given, e_mirror


def _reference_sets(used: np.ndarray, agree: np.ndarray, trust: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The candidate view sets of the references (4, N, C) (all used, agree, trusted, agree and trusted:
    the last that keeps two other views wins), their counts without each camera (4, N, C) (a set's count
    less its own view: made once for every camera), and the set chosen per point and camera (N, C)."""
    sets = np.stack([used, agree & used, trust & used, agree & trust & used])
    counts = np.stack([count_views(v) for v in sets]) - sets
    level = np.zeros(used.shape, np.intp)
    for k in range(1, len(sets)):
        level[counts[k] >= 2] = k
    return sets, counts, level


def _set_sums(sets: np.ndarray, level: np.ndarray, need: np.ndarray | None, T: np.ndarray, some: np.ndarray,
              used_sum: np.ndarray | None) -> np.ndarray:
    """The normal terms summed over each reference set (4, n, 9) (:func:`_reference_sets`: the used views and
    subsets of them) of the rows ``some`` (n,) where a detection that gets a reference (``need`` (n, C),
    None: all) takes that set (``level`` (n, C)); zeros elsewhere. A camera's reference is then its set's sum
    less its own term: one gather per camera, not a sum over the views. A subset's sum is the used views'
    less the few views it leaves out (outliers, distrusted views): the same points to rounding.
    ``used_sum`` (n, 9): the sum over the used views, when known."""
    K, n = sets.shape[:2]
    used = sets[0]
    if used_sum is None:
        used_sum = sum_views(used, T[some])
    sums = np.zeros((K, n, T.shape[-1]))
    for k in range(K):
        taken = ((level == k) if need is None else (level == k) & need).any(axis=1)  # (n,)
        if not taken.any():
            continue
        sums[k, taken] = used_sum[taken]
        if k == 0:
            continue
        out = used & ~sets[k] & taken[:, None]  # the used views this set leaves out
        for c in np.flatnonzero(out.any(axis=0)):
            r = np.flatnonzero(out[:, c])
            sums[k, r] -= T[some[r], c]
    return sums


def group_costs(e_given: np.ndarray, e_mirror: np.ndarray, member: np.ndarray, scale: np.ndarray,
                truncate: float) -> tuple[np.ndarray, np.ndarray]:
    """Truncated squared errors in noise units, summed per group: (F, C, J) ×2, member (J, G), scale
    (C,) px → cost as given, cost exchanged (F, C, G)."""
    s = scale[None, :, None]

    def rho(e: np.ndarray) -> np.ndarray:  # NaN (no evidence) → 0; in place on one temporary (nan_to_num
        r = np.minimum(e / s, truncate)  # checks for infinities too and costs as much again)
        r *= r
        r[np.isnan(r)] = 0.0
        return r

    m = member.astype(float)
    return rho(e_given) @ m, rho(e_mirror) @ m


def find_swaps(rig: Rig, xy: np.ndarray, w: np.ndarray, ks: KeypointSet, cfg: SwapConfig = SwapConfig(),
               fps: float | None = None, work: dict | None = None) -> tuple[np.ndarray, tuple[str, ...]]:
    """Which body-side groups of which views to exchange.

    xy (F, C, J, 2) pixels, w (F, C, J) weights (0: unused) → swapped (F, C, G) bool and the group
    names (G,). Nothing is exchanged with fewer than three cameras. Frames whose views' consensus is
    mirrored are found from the 3D over time (:mod:`mocap.geometry.swaps_time`; ``fps`` for its gaps).
    ``work``: filled with what triangulation can reuse (of the keypoints as given, rows frame-major):
    "xn" (F·J, C, 2) the undistorted normalised coordinates of the used detections (NaN elsewhere), "X"
    (F·J, 3) the weighted DLT point of all used views and "err" (F·J, C) its pixel distances to every view.
    """
    F, C, J, _ = xy.shape
    names, member = swap_groups(ks)
    if C < 3 or not names or F == 0:
        return np.zeros((F, C, len(names)), bool), names
    perm = ks.flip_permutation
    rows = np.full((F, J, C, 2), np.nan)  # undistorted where used (the others never count), made row-major as
    for c, cam in enumerate(rig.cameras):  # joint_errors reads it: xn (F, C, J, 2) is a view of it
        use = (w[:, c] > 0) & finite(xy[:, c])
        rows[:, :, c][use] = pixels_to_normalised(cam, xy[:, c][use])
    xn = np.moveaxis(rows, 2, 1)
    sample = np.arange(F) % max(1, F // cfg.scale_frames) == 0  # the frames the noise scale is measured on

    def suspicious(e_given: np.ndarray, e_mirror: np.ndarray) -> np.ndarray:
        """(F, C, J) the detections of the groups whose exchange is not clearly worse on the distances to
        the point of all views (their own included), and every detection of the sample frames: they get
        the reference of the others (in units of the noise scale of the sample frames). A joint in no group
        counts nowhere else than in the noise scale."""
        g, m = group_costs(e_given, e_mirror, member, _noise(e_given[sample], cfg), cfg.truncate)
        clear = (g - m < -(cfg.dead_zone + cfg.clear_margin)) | ((g == 0) & (m == 0))  # or no evidence
        return ((~clear).astype(np.float32) @ member.T.astype(np.float32) > 0) | sample[:, None, None]

    select = suspicious if cfg.clear_margin is not None else None
    # a camera far off the others takes no part: as a reference it would make the good views look exchanged
    broken = broken_views(rig, xy, xn, w, perm, sample, cfg.broken_ratio, cfg.max_reproj_px)
    if broken.any():
        w = np.where(broken[None, :, None], 0.0, w)
        rows[:, :, broken] = np.nan  # xn is a view of it
    first: dict = {}  # the first pass's normal terms and agreeing views: the consensus of unchanged frames
    e_given, e_mirror = joint_errors(rig, xy, w, perm, cfg.max_reproj_px, xn=xn, select=select, stash=first)
    if work is not None and not broken.any():  # else triangulation does its own search, on every view
        work.update(xn=first["xn"], X=first["X"], err=first["e_all"])
    scale = _noise(e_given[sample], cfg)
    cg, cs = group_costs(e_given, e_mirror, member, scale, cfg.truncate)

    def again(frames: np.ndarray, flip: np.ndarray, trusted: np.ndarray) -> None:
        """Evidence of ``frames`` once more, with ``flip`` (n, C, G) applied and only ``trusted``
        (n, C) views in the references, written back in the given order."""
        idx = swap_permutations(perm, member, flip)
        e2g, e2m = joint_errors(rig, np.take_along_axis(xy[frames], idx[..., None], axis=2),
                                np.take_along_axis(w[frames], idx, axis=2), perm, cfg.max_reproj_px, trusted,
                                np.take_along_axis(xn[frames], idx[..., None], axis=2))
        g2, s2 = group_costs(e2g, e2m, member, scale, cfg.truncate)
        cg[frames], cs[frames] = np.where(flip, s2, g2), np.where(flip, g2, s2)

    # a swapped view makes the others look swapped where it is in their references: the view with the strongest
    # evidence in a frame is left out of them (with ``lone_views`` or more views, one view's pull is too weak to hide
    # a second swapped view: a frame where only one view shows evidence keeps it as it is)
    strength = np.maximum(cg - cs - cfg.dead_zone, 0.0).sum(axis=2)  # (F, C)
    many = (w > 0).any(axis=2).sum(axis=1) >= (cfg.lone_views or C + 1)  # (F,) frames seen by lone_views views
    evident = (strength > 0).sum(axis=1)
    frames = np.flatnonzero((evident > 0) & ~((evident == 1) & many))
    if frames.size:
        suspect = np.arange(C) == strength[frames].argmax(axis=1)[:, None]
        again(frames, np.zeros((frames.size, C, len(names)), bool), ~suspect)
        # a group three views see: the suspect left out leaves the others one view each, their references fell
        # back to every view, the suspect's included: their evidence is its pull, none; with none, the decision over
        # frames carried a neighbouring run's exchange across them, so they are as given at a switch per frame
        seen = ((w[frames] > 0).astype(np.float32) @ member.astype(np.float32) > 0).sum(axis=1)  # (n, G) views
        three = (seen <= 3)[:, None, :] & ~suspect[..., None]
        cg[frames] = np.where(three, 0.0, cg[frames])
        cs[frames] = np.where(three, cfg.dead_zone + cfg.switch, cs[frames])
    swapped = decide(cg, cs, cfg)
    seen = np.zeros_like(swapped)  # the exchanges each frame's evidence was last found with (none: as given)
    for _ in range(cfg.rounds):  # again where views changed, against references of the views left as they are
        # a frame's evidence depends only on its own exchanges: those found with the same ones are kept (and
        # those of a frame with one view exchanged among lone_views or more: it pulls the others' too little)
        lone = (swapped.any(axis=2).sum(axis=1) == 1) & many
        frames = np.flatnonzero((swapped != seen).any(axis=(1, 2)) & swapped.any(axis=(1, 2)) & ~lone)
        if not frames.size:
            break
        again(frames, swapped[frames], ~swapped[frames].any(axis=2))
        seen[frames] = swapped[frames]
        swapped = decide(cg, cs, cfg)
    if cfg.mirrored_frames:  # most views of a frame exchanged: seen in 3D over time
        candidates = ((cg - cs > cfg.dead_zone) | swapped).any(axis=1)  # (F, G) some view looks exchanged

        def as_given(frames: np.ndarray) -> np.ndarray:  # their consensus, from the first pass's terms
            rows = (frames[:, None] * J + np.arange(J)).ravel()
            return consensus_points(rig, xy[frames], xn[frames], w[frames], cfg.max_reproj_px,
                                    (first["T"], first["used"][rows], first["agree"][rows]), rows, first["X"])

        # where four views split two against two, one half's point (it may be the mirrored one: a candidate)
        maybe = may_split(xy, w, first["agree"], member)
        some = np.flatnonzero(maybe)
        Xs, split = fill_split(rig, xy[some], xn[some], w[some], as_given(some), member, perm, cfg.max_reproj_px)
        candidates[some] |= split
        even = np.zeros_like(candidates)  # where the point is one half's, as likely the mirrored one as not
        even[some] = split
        # the candidates' frames and NEAR around ('same' would return the kernel's length on a shorter take)
        near = np.convolve(candidates.any(axis=1), np.ones(2 * NEAR + 1))[NEAR : NEAR + F] > 0
        X = np.full((F, J, 3), np.nan)
        X[some[near[some]]] = Xs[near[some]]
        frames = np.flatnonzero(near & ~maybe & ~swapped.any(axis=(1, 2)))  # as given (those of ``some``: above)
        X[frames] = as_given(frames)
        frames = np.flatnonzero(near & swapped.any(axis=(1, 2)))  # their views exchanged back: a new consensus
        idx = swap_permutations(perm, member, swapped[frames])[..., None]
        xy2, xn2, w2 = (np.take_along_axis(a[frames], i, axis=2) for a, i in ((xy, idx), (xn, idx), (w, idx[..., 0])))
        X[frames] = fill_split(rig, xy2, xn2, w2, consensus_points(rig, xy2, xn2, w2, cfg.max_reproj_px), member,
                               perm, cfg.max_reproj_px)[0]
        mirrored = mirrored_frames(X, perm, member, fps, candidates, even)
        X = np.where((mirrored.astype(float) @ member.T > 0)[..., None], X[:, perm], X)  # the mirrors undone
        # every view of those frames decided against that point (a view with no clear evidence turns
        # over in a mirrored frame, keeps its decision elsewhere)
        swapped = redecide(rig, xy, w, X, candidates | mirrored, swapped, perm, member, scale, cfg.truncate,
                           cfg.dead_zone, mirrored)
    if cfg.two_views:  # a group seen by two views: no evidence above, decided from the 3D over time
        swapped = decide_two_views(rig, xy, xn, w, swapped, perm, member, scale, cfg.truncate, cfg.switch,
                                   cfg.max_reproj_px, fps, np.asarray(ks.bones, int))
    return swapped, names


def _noise(e_given: np.ndarray, cfg: SwapConfig) -> np.ndarray:
    """(C,) σ px per camera from the median of its distances (F, C, J) (Rayleigh median → σ), floored."""
    C = e_given.shape[1]
    known = [e_given[:, c][np.isfinite(e_given[:, c])] for c in range(C)]  # np.nanmedian costs twice as much
    med = np.array([np.median(e) if e.size else np.nan for e in known])
    return np.maximum(np.nan_to_num(med / 1.1774, nan=1.0), cfg.min_noise_px)
