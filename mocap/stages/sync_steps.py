"""A camera whose time offset changes partway through the take: a recording that lost frames (a webcam's driver
under load, a disk that fell behind), or repeated some. One offset for the whole take then fits neither part:
its halves disagree and nothing is applied, or one part is shifted and the other is not.

For a camera whose offset was searched and whose halves disagree by a frame or more, or whose offset leaves a
long run of blocks off (:func:`suspect`, also for a camera whose null offset holds), the take is cut in parts of
constant offset:

1. each block of ``sync.block_s`` gets its own integer lag (:class:`~mocap.stages.sync_search.LagSearch` on the
   block's frames); the cut of the block lags that leaves each side nearest its median (least absolute
   deviation; each side at least ``sync.min_step_s``, the medians a frame or more apart) is a candidate, and
   each side is cut again the same way (``MAX_DEPTH`` levels: up to 7 candidates);
2. each part's offset is estimated on its own frames (integer search, then sub-frame), and every two
   neighbouring parts are tested as the whole take is (:func:`~mocap.stages.sync_search.held_out`: each half of
   a part scored with the other half's estimate), each against the other's offset: both must pass
   (``sync.alpha``, ``sync.min_heldout_gain``, halves agreeing), else the change between them goes and the
   parts are estimated again. An offset that follows what the person does (a camera-pose error taken for a
   lag) makes no change;
3. the frame of a change: within the two blocks around the cut, the frame that splits the per-frame epipolar
   error best between the two offsets (cumulative sums); the frames that neither offset reads right there (the
   change, rounded up, either side of it) have no detection of that camera (:func:`apply_steps`).

Returned as the parts' first frames and offsets; :func:`apply_steps` reads each part at its offset. Also here,
the take's halves (:func:`halves`) and the rules :mod:`mocap.stages.sync` judges a camera's estimates by:
:func:`null_holds`, :func:`halves_apart`, :func:`half_at_null`, :func:`whole_lag`.
"""

from __future__ import annotations

import numpy as np

from mocap.stages.sync_search import EpipolarPair, LagSearch, common_means, held_out

MAX_DEPTH = 3
PER_BLOCK = 4  # coarse frames of the lag search in each block (a lag needs 20 keypoint pairs)
SUSPECT = 2.0  # see suspect()


def find_steps(pair: EpipolarPair, search: LagSearch, block: np.ndarray, cfg, fps: float) -> list | None:
    """[[first frame, offset], ...] of the camera's parts (the first from frame 0; a part's first frames may be
    lost, see :func:`apply_steps`), or None when its offset does not change. ``block``: (F,) every frame's
    block (:func:`halves`); ``cfg``: :class:`mocap.stages.sync.Config`."""
    side = _side(block, cfg, fps)
    if side is None:
        return None
    ids = np.unique(block)
    if len(search.t) < PER_BLOCK * len(ids):  # the whole take's search scores ~150 frames: too few for each block
        search = LagSearch(search.lines, search.nc, int(search.lags[-1]), coarse_frames=PER_BLOCK * len(ids),
                           person_joints=search.person_joints)
    lags = np.array([_lag(search, block == b) for b in ids])
    cuts = sorted(_cuts(lags, 0, len(ids), side, MAX_DEPTH))
    d: list[float] = []
    while cuts:  # every two neighbouring parts must each hold against the other's offset, else they are one
        bounds = [0, *cuts, len(ids)]
        parts = [(block >= ids[bounds[i]]) & (block < (ids[bounds[i + 1]] if bounds[i + 1] < len(ids) else np.inf))
                 for i in range(len(bounds) - 1)]
        d = [_estimate(pair, search, u, cfg.subframe) for u in parts]
        weak = next((i for i in range(len(cuts)) if not (  # a change beyond the search range (frames lost for
            1 <= abs(d[i + 1] - d[i]) <= search.lags[-1]  # longer than sync.max_offset_s): a camera pose's error
            and _holds(pair, search, block, cfg, parts[i], d[i], d[i + 1])
            and _holds(pair, search, block, cfg, parts[i + 1], d[i + 1], d[i]))), None)
        if weak is None:
            break
        del cuts[weak]
    if not cuts:
        return None
    return [[0, d[0]]] + [[_frame(pair, block, ids, c, d[i], d[i + 1]), d[i + 1]] for i, c in enumerate(cuts)]


def with_steps(info: dict, steps: list | None, null: float, cfg, why: list[str]) -> dict:
    """A camera's sync record (``info``; ``why``: why its whole-take offset was not applied), with the parts of
    a take whose offset changes mid-take (``steps``, :func:`find_steps`): each part at its own offset (a part's
    within ``sync.null_tolerance`` of the null at the null), the first part's the camera's offset."""
    if not steps:
        return info
    steps = [[f, null if abs(d - null) <= cfg.null_tolerance else d] for f, d in steps]
    changes = ", ".join(f"{b[1] - a[1]:+.2f} at frame {b[0]}" for a, b in zip(steps, steps[1:], strict=False))
    whole = info["reason"] if info["halves_frames"] is None else "; ".join(why) or "significant"
    return info | {"estimate_frames": steps[0][1], "steps": steps, "applied": True,
                   "reason": f"the offset changes mid-take (frames dropped or repeated?): {changes}; each part "
                             f"tested against its neighbours' offsets (the whole take: {whole})"}


def suspect(pair: EpipolarPair, null: float, block: np.ndarray, cfg, fps: float) -> bool:
    """A camera whose null offset holds on the whole take may still have lost frames near one end: some
    ``min_step_s`` worth of blocks whose median epipolar error at the null is over twice the take's (then
    :func:`find_steps` searches; a cheap look first, as the null shortcut is there to spare the search)."""
    side = _side(block, cfg, fps)
    if side is None:
        return False
    e = pair.per_frame(null)
    if not np.isfinite(e).any():
        return False
    m = np.nanmedian(e)
    ids = np.unique(block)
    per = np.array([np.median(v) if (v := e[block == b][np.isfinite(e[block == b])]).size else np.nan for b in ids])
    bad = np.concatenate([[0], (per > SUSPECT * m).astype(int), [0]])
    edges = np.flatnonzero(np.diff(bad))  # starts and ends of the runs of bad blocks
    return bool(np.any(edges[1::2] - edges[::2] >= side))  # one run as long as a part: frames lost there


def _side(block: np.ndarray, cfg, fps: float) -> int | None:
    """Blocks each part must have at least (``sync.min_step_s``); None when the take cannot have two."""
    if not cfg.min_step_s > 0 or len(block) == 0:
        return None
    length_s = int(np.sum(block == block[0])) / fps
    side = max(2, int(np.ceil(cfg.min_step_s / length_s - 1e-9)))
    return side if len(np.unique(block)) >= 2 * side else None


def _estimate(pair: EpipolarPair, search: LagSearch, use: np.ndarray, subframe: bool) -> float:
    d = search.best(use)[0]
    return pair.refine(d, use) if subframe else d


def _cuts(lags: np.ndarray, a: int, b: int, side: int, depth: int) -> list[int]:
    """Candidate changes (block indices) in lags[a:b]: the best cut, then the best in each side, ``depth`` deep."""
    c = _cut(lags[a:b], side) if depth > 0 and b - a >= 2 * side else None
    if c is None:
        return []
    return [a + c] + _cuts(lags, a, a + c, side, depth - 1) + _cuts(lags, a + c, b, side, depth - 1)


def _lag(search: LagSearch, use: np.ndarray) -> float:
    d, e = search.best(use)
    return d if np.isfinite(e) else np.nan


def _cut(lags: np.ndarray, side: int) -> int | None:
    """The block index that splits ``lags`` into two runs each nearest its median (least total absolute
    deviation), each at least ``side`` blocks with at least half of them known; None when the medians are
    less than a frame apart."""
    best, where = np.inf, None
    for c in range(side, len(lags) - side + 1):
        a, b = lags[:c], lags[c:]
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        if len(a) < side / 2 or len(b) < side / 2:
            continue
        ma, mb = np.median(a), np.median(b)
        cost = np.abs(a - ma).sum() + np.abs(b - mb).sum()
        if cost < best and abs(ma - mb) >= 1:
            best, where = cost, c
    return where


def _holds(pair, search, block, cfg, use: np.ndarray, d: float, other: float) -> bool:
    """The frames ``use`` (one side, its offset ``d``) have an offset of their own against ``other`` (the other
    side's): the held-out test of each half of the side with the other half's estimate, as
    :mod:`mocap.stages.sync` tests a whole take against its null offset."""
    frames = np.flatnonzero(use)
    mid = frames[len(frames) // 2]
    half = (np.arange(len(block)) >= mid).astype(int)
    d_a, d_b = (_estimate(pair, search, use & (half == h), cfg.subframe) for h in (0, 1))
    test = held_out(pair, (d_a, d_b), other, block, half, use)
    return bool(test.p_value < cfg.alpha and test.gain >= cfg.min_heldout_gain
                and abs(d_a - d_b) <= max(cfg.max_half_gap, cfg.max_half_share * abs(d - other)))


def _frame(pair: EpipolarPair, block: np.ndarray, ids: np.ndarray, cut: int, d_left: float, d_right: float) -> int:
    """The frame where the offset changes: in the blocks either side of the cut, the split that leaves the
    least per-frame error with ``d_left`` before it and ``d_right`` from it."""
    near = np.flatnonzero((block >= ids[cut - 1]) & (block <= ids[cut]))
    e_l, e_r = (e[near] for e in common_means(pair.per_person(d_left), pair.per_person(d_right)))
    both = np.isfinite(e_l) & np.isfinite(e_r)  # a frame one offset cannot read would count as no error for it
    e_l, e_r = np.where(both, e_l, 0.0), np.where(both, e_r, 0.0)
    cost = np.concatenate([[0.0], np.cumsum(e_l)]) + (e_r.sum() - np.concatenate([[0.0], np.cumsum(e_r)]))
    return int(near[0] + np.argmin(cost))


def apply_steps(data: np.ndarray, parts: list, shift) -> np.ndarray:
    """One camera's detections (F, P, J, 3) with each part [first, offset] read at its offset (``shift(data,
    offset)``: :func:`~mocap.stages.sync_shift.shift_views`); the frames around a change that neither offset
    reads right (the change's size rounded up, either side of it) are NaN."""
    out = np.full_like(data, np.nan)
    F = len(data)
    for k, (first, offset) in enumerate(parts):
        end = parts[k + 1][0] if k + 1 < len(parts) else F
        out[first:end] = shift(data, offset)[first:end]
    for k in range(1, len(parts)):
        lost = int(np.ceil(abs(parts[k][1] - parts[k - 1][1])))
        at = parts[k][0]
        out[max(0, at - lost):min(F, at + lost)] = np.nan
    return out


# a whole lag both halves find (:func:`whole_lag`) is applied without the blocks' test when it lowers the held-out
# median by sync.strong_gain (half) or more, and the error in STRONG_SHARE of the blocks, of STRONG_BLOCKS or more: a
# camera out of time mixes the people it sees with the others' before sync, and the few blocks where it did, far
# worse at the right lag, sank the signed-rank test (15 frames late on a 10 s take of three people: held-out median
# 15.5 → 1.2 px, both halves −14.9, 7 of 9 blocks lower, p = 0.08: refused)
STRONG_BLOCKS = 6
STRONG_SHARE = 2 / 3
HALVES_OWN_GAIN = 0.2  # halves apart are frames lost when each is this much better at its own offset (sync's log)


def halves_own_gain(pair: EpipolarPair, d_a: float, d_b: float, half: np.ndarray, least_frames: float
                    ) -> list[float] | None:
    """How much better each half triangulates at its own offset than at the other's ([first, second]: 1 − own /
    other median epipolar error), when the halves are 2 frames or more apart and each holds ``least_frames`` (a
    second of motion: a lag searched on half a second fits the noise, +0.4 / +8 frames on a 60-frame cut of a synced
    real take); else None. Frames lost mid-take: 80-90 % each (2 frames); halves apart on noise alone: 1-15 %."""
    if abs(d_a - d_b) < 2 or min(np.sum(half == 0), np.sum(half == 1)) < least_frames:
        return None
    return [1.0 - a / b if np.isfinite(a) and b > 0 else 0.0 for a, b in _own_and_other(pair, d_a, d_b, half)]


def _own_and_other(pair: EpipolarPair, d_a: float, d_b: float, half: np.ndarray) -> list[tuple[float, float]]:
    """Each half's median epipolar error at its own estimate and at the other half's: [(first), (second)]."""
    return [(pair.median(d_a, half == 0), pair.median(d_b, half == 0)),
            (pair.median(d_b, half == 1), pair.median(d_a, half == 1))]


def strong_lag(test, d_all: float, d_a: float, d_b: float, null: float, near: float, gain: float = 0.5) -> int | None:
    """The whole lag (frames from the null) applied without the blocks' significance: both halves find it (what a
    video started late looks like, :func:`whole_lag`), it lowers the held-out median by ``gain`` or more (0: never)
    and the error in :data:`STRONG_SHARE` of the blocks or more, of :data:`STRONG_BLOCKS` or more; None else."""
    if not gain > 0 or test.gain < gain or test.favoured < STRONG_SHARE or test.blocks < STRONG_BLOCKS:
        return None
    return whole_lag(d_all, d_a, d_b, null, near)


def whole_lag(d_all: float, d_a: float, d_b: float, null: float, near: float) -> int | None:
    """The whole lag of 2 frames or more (from the null) that the whole take's estimate ``d_all`` is within
    ``near`` of and each half's (``d_a``, ``d_b``) within a frame of: what a video started late looks like; None
    else (halves 0 / +2 and the whole take +2, a person leaving part of one view: not "both halves find +2")."""
    lag = int(round(d_all - null))
    ok = abs(lag) >= 2 and abs(d_all - null - lag) <= near and max(abs(d_a - null - lag), abs(d_b - null - lag)) < 1
    return lag if ok else None


def halves(F: int, fps: float, block_s: float, min_blocks: int,
           seen: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Block index of every frame (blocks of ``block_s`` seconds, shorter when the take would otherwise
    have fewer than ``min_blocks``) and its half: 0 for the first half of the take, 1 for the second. The
    halves are contiguous, as far apart in time as the take allows: a real offset is the same in both, an
    offset that compensates a camera-pose error follows what the person does, and the halves disagree.
    ``seen`` (F,) bool: the frames both cameras see the same person in; the blocks are sized on their span and the
    halves split the blocks holding them (a person who enters late or leaves early is in both halves: an empty
    half estimated nothing, its offset the null, and every offset was refused for the halves' disagreement)."""
    frames = np.flatnonzero(seen) if seen is not None and np.any(seen) else np.arange(F)
    span = int(frames[-1] - frames[0] + 1) if len(frames) else F
    length = max(1, min(int(round(block_s * fps)), span // max(1, min_blocks)))
    block = np.arange(F) // length
    held = np.unique(block[frames]) if len(frames) else np.zeros(1, int)
    return block, (block >= held[(len(held) + 1) // 2] if len(held) > 1 else block > held[0]).astype(int)


def half_at_null(d_a: float, d_b: float, null: float, tolerance: float) -> bool:
    """Whether a half's estimate (``d_a``, ``d_b``) is within ``tolerance`` (``sync.null_tolerance``, what sync
    resolves) of the null offset: that half finds no offset, whatever the halves' gap (under ``sync.max_half_gap``
    for a sub-frame offset). On Pose2Sim's hardware-synchronised two-person take, timed on both people: +0.30
    frames, halves +0.24 / -0.00 (a camera-pose error the offset compensated in half the take), held-out gain 8 %,
    p 0.003 while each frame's people were taken as seen at each offset."""
    return any(abs(d - null) <= tolerance for d in (d_a, d_b))


def halves_apart(pair: EpipolarPair, d_a: float, d_b: float, half: np.ndarray, min_gain: float) -> bool:
    """Whether the halves' estimates differ by more than matters: either half fits its own estimate ``min_gain``
    (``sync.min_heldout_gain``, what an offset must gain to be applied) better than the other half's (1 − own /
    other median epipolar error on its frames). An offset that compensates a camera-pose error follows what the
    person does, and each half fits its own far better (+0.37 / −6.00 frames on a synchronised real take: 61 / 41 %;
    a person barely moving, −3.51 / −0.96: 30 %). On a short take a half's estimate is noisy: a true 5-frame lag, 50
    frames a half, read −4.50 / −5.40 frames, each half 3 % better or worse at its own, and was refused for it."""
    own = _own_and_other(pair, d_a, d_b, half)
    return any(not (np.isfinite(a) and b > 0) or 1.0 - a / b >= min_gain for a, b in own)


def null_holds(pair: EpipolarPair, null: float, cfg, F: int) -> dict | None:
    """Camera c's record when the null offset holds (``Config.null_tolerance``), else None: the sub-frame estimate
    next to the null is within ``null_tolerance`` of it (below what sync resolves), at a sharp minimum of the
    epipolar error (a camera whose true lag is elsewhere has none there, a slow take no sharp one: searched)."""
    if not cfg.null_tolerance > 0:
        return None
    everything = np.ones(F, bool)
    if cfg.subframe:
        d = pair.refine(null, everything)
    else:  # whole frames: the lag of least error next to the null (a camera 0.7 frame late is 1 frame late)
        near = [pair.median(null + s, everything) for s in (0, -1, 1)]
        d = null + (0, -1, 1)[int(np.argmin(near))] if np.isfinite(near).any() else null
    if not abs(d - null) <= cfg.null_tolerance:
        return None
    e0 = pair.median(null, everything)
    around = [pair.median(null + s * cfg.null_probe_frames, everything) for s in (-1, 1)]
    around = [e for e in around if np.isfinite(e)]
    if not (np.isfinite(e0) and around and e0 < cfg.null_sharpness * min(around)):
        return None
    return {"estimate_frames": d, "halves_frames": None, "null_frames": null, "heldout_gain": 0.0, "p_value": None,
            "blocks": 0, "heldout_px": None, "epipolar_px": e0, "probe_px": around, "applied": False,
            "reason": f"the null offset holds: the estimate {d:+.2f} frames is within {cfg.null_tolerance} of it, "
                      f"at a sharp minimum ({e0:.2f} px, {min(around):.2f} px {cfg.null_probe_frames} frames away)"}
