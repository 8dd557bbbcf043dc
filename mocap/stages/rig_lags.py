"""Camera refinement on a rig whose cameras are not synchronised (the rig_refine stage's computation).

The refinement runs before sync (sync's lag search needs the refined poses: on a pose 1–2° off, an offset buys
a lower epipolar error by compensating the pose, and sync invented one on a hardware-synchronised rig). But on
keypoints a lagging camera has not been shifted back on, the refinement turns and moves that camera to make up
for the lag instead: `mocap bench robustness --shift 10` (4 cameras, CMU 01_03) gave camera centres 30 mm and
rotations 0.71° off (target 5 mm, 0.05°) and an MPJPE 1.15× the true rig's, although sync then found the lag
within 0.01 frame. So after refining, sync's own test (:func:`mocap.stages.sync.run`, its settings, on the people
it uses) is run on the refined rig; when it applies an offset, the refinement is done again from the given rig
on the keypoints shifted back, and sync's test again on that rig, until the offsets it finds are those the rig
was refined with (an offset estimated on a rig that made up for the lag falls a little short: 7.84 frames for
a true 8, that rig's cameras 4 mm off; one round later 8.00 frames and 1.1 mm, as with no lag). A synchronised
rig (sync applies nothing) is refined once, as before, and the sync stage reuses the result of the last test
when it runs in the same process on the same rig and keypoints (:func:`mocap.stages.sync.remembered_run`), so
it costs nothing more.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mocap.stages.rig_refine_kept import rig_off
from mocap.types import Keypoints2D, Rig

log = logging.getLogger(__name__)
ROUNDS = 5  # sync's test at most this many times, each followed by a refinement again while the offsets move
SAME_FRAMES = 0.1  # offsets that differ by no more than this (what sync resolves, sync.null_tolerance) are the same
ROUND_KEYS = ("applied", "reason", "moves_deg", "moves_mm", "error_px")  # what the report keeps of each round before
EXPLORE_FRAMES = 1.0  # a lag sync found but could not prove, at least this far from the null: tried (see below)
MAX_CONTRACTION = 0.75  # the secant step assumes the refinement absorbs at most this share of a lag
LENGTH_FRAMES = 2  # a camera whose detections end at least this many frames before or after the first camera's


def refine_with_lags(rig: Rig, raw: Keypoints2D, cfg, sync_cfg, audio: dict[str, Path] | None = None,
                     refined_on: Callable[[Keypoints2D, Rig], Keypoints2D] | None = None,
                     synced_on: Callable[[Keypoints2D, Rig], Keypoints2D] | None = None
                     ) -> tuple[Rig | None, dict]:
    """rig_refine's (refined rig or None, report) for the raw keypoints ``raw`` (F, C, P, J, 3), given that
    sync (``sync_cfg``, None or switched off: no check) may shift cameras in time afterwards. ``refined_on``: the
    keypoints the refinement works on, associated through a rig (every associated person one after another,
    :func:`mocap.detect.select.all_people`; associated again through the refined rig, :mod:`mocap.stages.rig_people`;
    None: the keypoints as they are), ``synced_on``: the ones sync works on (the people who move, each in its
    own slot, associated through the rig given with them, :func:`mocap.detect.select.people_in_time`; None: the
    keypoints as they are, one detection per view). The report's ``lags``: what the check found, whether the
    cameras were refined again.

    On a short take the first refinement absorbs much of a real lag (the real demo, 100 frames, one video started
    10 frames late: the refined rig turned that camera 2.6° / 189 mm, and sync on it saw -5.7 frames, halves
    disagreeing, not applied). So a lag sync finds but does not prove (at least ``EXPLORE_FRAMES`` from the null,
    both halves on its side, a held-out gain) is tried as well: the cameras are refined again on the keypoints
    shifted by it, and so on; each round the rig absorbs less and the estimate comes closer (a secant step per
    camera from the last two rounds). The tried offsets stand only when sync's test on the rig they end with
    applies them; else the first refinement and no offset, as before. A camera whose detections end
    ``LENGTH_FRAMES`` or more before (after) the first camera's (a video started late is that much shorter: padded as
    missing) is tried at that lag in the first round too where sync applied none and found none to try (then
    followed like the others; :func:`length_lags`: the
    real demo with cam03's video started 5 frames late: sync on the first refinement saw −2.38 frames, held-out
    gain 3 %, nothing tried; from the lengths −5.62 applied, cam03 P95 86 → 41 px)."""
    check_people(raw, synced_on)
    synced_on = synced_on or _as_they_are  # one detection per view: sync works on them as they are
    refined, report, kp = _with_lags(rig, raw, cfg, sync_cfg, audio, refined_on, synced_on)
    return _applied(*_keep_far(rig, kp, cfg, refined_on, refined, report))


def check_people(kp: Keypoints2D, synced_on: Callable | None) -> None:
    """Raw detector slots of several people (slot k is not the same person in every view) without ``synced_on``, the
    people associated across the views: refused (read as one person, slot 0 mixed people)."""
    if synced_on is None and kp.shape[2] > 1:
        raise ValueError("rig_refine: keypoints with several detections per view need synced_on (the people "
                         "associated across the views, mocap.detect.select.people_in_time)")


def _as_they_are(kp: Keypoints2D, rig: Rig) -> Keypoints2D:
    return kp


def _with_lags(rig: Rig, raw: Keypoints2D, cfg, sync_cfg, audio, refined_on, synced_on
               ) -> tuple[Rig | None, dict, Keypoints2D]:
    """:func:`refine_with_lags`' rounds, every camera refined (a lagging camera moved too far is what sync's check
    reads its lag from): (the candidate, its report, the keypoints it was refined on)."""
    from mocap.stages import rig_people, sync

    refined, report = rig_people.candidate(rig, raw, cfg, refined_on, keep_far=False)
    if sync_cfg is None or not sync_cfg.enabled or not cfg.enabled:
        return refined, report, raw
    kp = raw  # the keypoints the rig at hand was refined on
    first = (refined, report)
    used: dict[str, float] = {}  # the offsets the keypoints of the rig at hand were shifted back by
    last: dict[str, tuple[float, float]] = {}  # per camera, the previous round's (offset refined with, estimate)
    rounds, tried = [], False
    reach = min(sync_cfg.max_offset_s * raw.fps, raw.data.shape[0] / 3)  # what sync searches (a person who left
    lengths = {n: d for n, d in length_lags(raw).items() if abs(d) <= reach}  # one view long before: not a lag)
    for r in range(ROUNDS + 1):
        now = _judge(rig, refined, report)
        check = sync.remembered_run(now, synced_on(raw, now), sync_cfg, audio)
        offsets = {n: d for n, d in check["offsets_frames"].items() if d}
        unproven = {n: d for n, d in _unproven(check, sync_cfg).items() if n not in offsets}
        if r == 0:  # the first round only: a later one follows what sync finds on the rig refined with them
            unproven |= {n: d for n, d in lengths.items() if n not in offsets and n not in unproven}
        proposed = offsets | unproven
        if r == ROUNDS or not proposed or all(abs(proposed.get(n, 0.0) - used.get(n, 0.0)) <= SAME_FRAMES
                                              for n in proposed.keys() | used.keys()):
            break  # sync's offsets on this rig are those it was refined with, or none is left to try (refined
            # again without the shift, the rig was the first one: 5 rounds alternated between two), or no more rounds
        tried |= bool(unproven)
        log.info("rig_refine: sync finds cameras lagging (%s frames%s): the cameras are refined again on the "
                 "keypoints shifted back", ", ".join(f"{n} {d:+.2f}" for n, d in proposed.items()),
                 "; not proven yet: " + ", ".join(unproven) if unproven else "")
        rounds.append({"offsets_frames": proposed, "unproven": sorted(unproven)}
                      | {k: report.get(k) for k in ROUND_KEYS})
        step = {n: _secant(used.get(n, 0.0), d, last.get(n)) for n, d in proposed.items()}
        last = {n: (used.get(n, 0.0), d) for n, d in proposed.items()}
        used = step
        kp = sync.apply_offsets(raw, used)
        refined, report = rig_people.candidate(rig, kp, cfg, refined_on, keep_far=False)
    if used and (unproven or not offsets):
        # the lags tried (or applied on the first rig) are not significant on the rig they lead to: the first stands
        log.info("rig_refine: the lags tried (%s frames) are not significant on the cameras refined with them (%s): "
                 "the first refinement is kept", ", ".join(f"{n} {d:+.2f}" for n, d in used.items()),
                 "; ".join(f"{n}: {check['cameras'].get(n, {}).get('reason', '?')}" for n in used))
        (refined, report), kp = first, raw
        now = _judge(rig, refined, report)
        check = sync.remembered_run(now, synced_on(raw, now), sync_cfg, audio)  # what the sync stage reuses
        offsets = {n: d for n, d in check["offsets_frames"].items() if d}
        used = {}
    parts = check.get("steps")
    if parts:  # a camera whose offset changes mid-take (frames lost): the cameras refined on each part read right
        kp = sync.apply_offsets(raw, check["offsets_frames"], parts)
        refined, report = rig_people.candidate(rig, kp, cfg, refined_on, keep_far=False)
        now = _judge(rig, refined, report)
        check = sync.remembered_run(now, synced_on(raw, now), sync_cfg, audio)  # what the sync stage reuses
        offsets = {n: d for n, d in check["offsets_frames"].items() if d}
    report["lags"] = {"offsets_frames": used, "applied_frames": offsets, "refined_again": len(rounds),
                      "method": check["method"], "tried_unproven": tried, "before": rounds, "from_lengths": lengths,
                      "refined_on_parts": sorted(parts or {})}
    return refined, report, kp


def _keep_far(rig: Rig, kp: Keypoints2D, cfg, refined_on, refined: Rig | None, report: dict
              ) -> tuple[Rig | None, dict]:
    """Once the lags are settled (found on the refinement of every camera: a lagging camera moved too far is what
    sync's check reads the lag from), a minority of cameras the refinement would move too far keep their given
    poses and the others are refined without them (:func:`mocap.stages.rig_refine_kept.keeping`), or the cameras are
    refined about another reference (:mod:`mocap.stages.rig_refine_reference`: the first camera is the one off)."""
    from mocap.stages import rig_people

    if not report.get("moved_too_far") or report.get("moved_too_far_kept"):
        return refined, report
    again, new = rig_people.candidate(rig, kp, cfg, refined_on)
    if not new.get("moved_too_far_kept") and not new.get("reference_from"):
        return refined, report
    return again, new | {k: report[k] for k in ("lags",) if k in report}


def _unproven(check: dict, sync_cfg) -> dict[str, float]:
    """The cameras whose offset sync estimated but did not apply, at least ``EXPLORE_FRAMES`` from the null, both
    halves' estimates on its side (at least half as far) and a held-out gain: {camera: estimate}."""
    out = {}
    for n, c in check.get("cameras", {}).items():
        if c.get("applied") or c.get("halves_frames") is None or c.get("estimate_frames") is None:
            continue
        null, d = c.get("null_frames", 0.0), c["estimate_frames"]
        a, b = (h - null for h in c["halves_frames"])
        far = abs(d - null)
        if far >= EXPLORE_FRAMES and min(a * np.sign(d - null), b * np.sign(d - null)) >= 0.5 * far and (
                c.get("heldout_gain", 0.0) >= sync_cfg.min_heldout_gain):
            out[n] = float(d)
    return out


def length_lags(raw: Keypoints2D) -> dict[str, float]:
    """The lags the cameras' lengths suggest: a camera whose last frame with a detection is at least
    ``LENGTH_FRAMES`` before (or after) the first camera's, by that many frames ({camera: −N}, sync's sign). Only
    evidence: a camera stopped early, or a person who left one view first, read alike, and a lag tried from it
    stands only where sync's test proves it."""
    seen = (np.nan_to_num(raw.data[..., 2]) > 0).any(axis=(2, 3))  # (F, C): any detection
    last = [int(np.flatnonzero(seen[:, c])[-1]) if seen[:, c].any() else None for c in range(seen.shape[1])]
    if not last or last[0] is None:
        return {}
    return {n: float(e - last[0]) for n, e in zip(raw.camera_names[1:], last[1:], strict=True)
            if e is not None and abs(e - last[0]) >= LENGTH_FRAMES}


def _secant(used: float, estimate: float, last: tuple[float, float] | None) -> float:
    """The offset to refine with next: the estimate, or, from the last two rounds (offset refined with, estimate),
    the fixed point of the line through them (the refinement absorbs a share ``a`` of the lag left: estimate =
    a · offset used + (1 − a) · lag) when that share is plausible (0 < a ≤ ``MAX_CONTRACTION``)."""
    if last is None or abs(used - last[0]) < 1e-9 or abs(estimate - used) < EXPLORE_FRAMES:
        return estimate  # near the fixed point the estimates' own noise (0.1-0.2 frame on real takes) would dominate
    a = (estimate - last[1]) / (used - last[0])
    if not 0 < a <= MAX_CONTRACTION:
        return estimate
    return (estimate - a * used) / (1 - a)


def _judge(given: Rig, refined: Rig | None, report: dict) -> Rig:
    """The rig sync's test runs on: the refined one when applied, or when the limits on how far a camera may move
    refused it while its held-out frames improve (a lag of a few frames makes the refinement move the lagging
    camera that far, and on the given rig, off by a degree or two, sync finds no significant offset: neither
    would ever come right); else the given one (the rig the sync stage then works on: its result is reused)."""
    if refined is None or not (report["applied"] or rig_off(report)):
        return given
    errors = report.get("error_px", {})
    return refined if report["applied"] or errors.get("heldout_refined", np.inf) < errors.get(
        "heldout_given", -np.inf) else given


def _applied(refined: Rig | None, report: dict) -> tuple[Rig | None, dict]:
    return (refined if report["applied"] else None), report
