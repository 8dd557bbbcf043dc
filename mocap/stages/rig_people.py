"""Several people: associated again through the rig the cameras are refined to (the rig_refine stage's computation).

With several people the refinement runs on every associated person (:func:`mocap.detect.select.all_people`), and
the association goes through a rig. Through the given rig, a camera whose pose is 2–3° off loses detections (its
rays miss the others' by 0.2–0.3 m at 4–5 m, the association's gates are 0.15 / 0.25 m): on Pose2Sim's two-person
demo with cam03 turned 3° (4 cameras) the association gave the woman no detection in cam03, the refinement turned
cam03 to fit the man's alone (2.45° from the reference's refined pose), and the held-out check, on that same
association, left out the detections a better pose explains (cam02 turned 3°: a correction of 2.97° refused, held-out
5.79 → 6.23 px; the reference's own refined rig is refused on that association too, 5.79 → 5.96 px). On synthetic
takes a camera 3° off lost every detection: nothing moved it.

So, with several people:

* when a camera's share of its detections the association gives someone is below ``UNDER`` × the cameras'
  median share (the real demo: 0.92–1 for every camera, 0.46–0.52 for the camera turned 3°), the first
  refinement runs on the people associated through the given rig with gates ``LOOSE`` times wider, then again on
  the people associated (with the usual gates) through that candidate;
* after a refinement (applied or not; not when refused or beyond ``max_move_deg`` / ``max_move_m``) the people are
  associated through its rig and, when that changes more than ``CHANGED`` of some camera's detections (given to
  nobody, to someone else, or new; people matched between the two associations), the cameras are refined again from
  the given rig on it and judged on it; at most ``ROUNDS`` refinements. The last one's verdict stands. A refinement
  that moves every camera's rays at the people by less than ``STILL`` × the association's smallest gate
  (:func:`ray_shift_m`, two cameras' together: a few millimetres on a well-calibrated rig) is not associated through
  again: the same people (a 100 s take of 3 people and 6 cameras: one association of 16 s saved, rig_refine 43 → 24 s).

Results (reference: the unmodified demo's refined rig): cam03 turned 3° about y came back within 0.48° / 12 mm
(was 2.45° / 122 mm; the woman's cam03 median error 32.6 → 10.9 px), 2° within 0.41° (was 2.33°), 3° about x
within 1.09° (was 2.24°). cam02 turned 3° about y was still refused (held-out 6.45 → 6.28 px, 2.6 %): detection's
second look (:mod:`mocap.detect.recover`), guided by the given rig, found the woman in cam02 in 49 frames, not 86;
on the unmodified demo's detections that rig is applied (7.93 → 6.30 px, every camera within 0.22°). That look now
goes through the cameras this computation refines from the first pass (:mod:`mocap.detect.recover_rig`): cam02 turned
3° is applied (held-out 8.24 → 6.60 px, 2026-12-05). Synthetic
(two people, 4 cameras, 5 s, one camera turned 3°, 6 cases): 5 refused before (the camera left 3–3.6° off in 4),
now all applied within 0.05°. On the unmodified demo no camera is under ``UNDER`` and the association through the
refined rig changes at most 2.2 % of a camera's detections: refined once, as before (bit for bit), and that
association is the one sync's check through the refined rig reuses (:func:`mocap.multi.memo.associate_once`).
One person: refined once, as before. The report's ``people_rounds``: each refinement's association (through which
rig, each camera's share, the share changed) and verdict.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import numpy as np

from mocap.stages.rig_refine_kept import rig_off
from mocap.types import Keypoints2D, Rig

log = logging.getLogger(__name__)
ROUNDS = 3  # refinements at most
CHANGED = 0.10  # associated again when some camera's detections change by more than this share
UNDER = 0.7  # a camera whose share of associated detections is below this × the cameras' median: loose gates first
LOOSE = 3.0  # ... this many times the association's match_max_m / track_max_m (a camera 5° off at 5 m: 0.44 m)
MIN_JOINTS = 4  # a detection: this many used joints (the association's min_joints)
# not associated again through a refinement that moves every camera's rays at the people (ray_shift_m) by less than
# half this share of the association's smallest gate (two cameras' rays: their distance changes by under 0.2 × 0.15 m
# = 3 cm, the rays' own scatter at 2-5 px of detector noise)
STILL = 0.2
SAMPLE = 200  # frames the people are triangulated in for ray_shift_m


def candidate(rig: Rig, raw: Keypoints2D, cfg, refined_on: Callable[..., Keypoints2D] | None = None,
              keep_far: bool = True) -> tuple[Rig | None, dict]:
    """:func:`mocap.stages.rig_refine.candidate` on the people of ``raw`` (F, C, P, J, 3) associated through
    ``rig`` by ``refined_on(raw, rig)`` (every associated person one after another; ``refined_on(raw, rig, gates)``:
    with the association's gates that many times wider; None: ``raw`` as it is), then, with several people, through
    the candidate, refined again while that association changes (see the module); ``keep_far``: see
    :func:`mocap.stages.rig_refine_kept.keeping`."""
    from mocap.stages import rig_refine

    first = raw if refined_on is None else refined_on(raw, rig)
    if refined_on is None or _persons(first, raw) < 2:
        return rig_refine.candidate(rig, first, cfg, _persons(first, raw), keep_far)
    shares = associated_share(raw, first, cfg)
    low = [n for n, s in shares.items() if s < UNDER * np.median(list(shares.values()))]
    if low:
        log.info("rig_refine: %s keep%s only %s of %s detections associated through the given rig (a pose off?): "
                 "refined first on the people associated with gates %g times wider", ", ".join(low),
                 "s" if len(low) == 1 else "", ", ".join(f"{100 * shares[n]:.0f} %" for n in low),
                 "its" if len(low) == 1 else "their", LOOSE)
    starts = [(refined_on(raw, rig, LOOSE), f"given rig, gates × {LOOSE:g}")] if low else []
    for kp, through in starts + [(first, "given rig")]:  # loose first; the usual gates when that one is refused
        refined, report = rig_refine.candidate(rig, kp, cfg, _persons(kp, raw), keep_far)
        rounds = [_round(report, through, associated_share(raw, kp, cfg))]
        if refined is not None and not rig_off(report):
            break
        if through != "given rig":
            log.info("rig_refine: on the loosely associated people the refinement was refused or moved a camera "
                     "too far: refined on the people associated with the usual gates")
    loose = kp is not first  # then refined again on the people associated with the usual gates in any case
    via, gate = rig, getattr(refined_on, "gate_m", None) or _gate(None)  # the rig kp was associated through
    while len(rounds) < ROUNDS and refined is not None and not rig_off(report):
        rounds[-1]["ray_shift_m"] = shift = ray_shift_m(via, refined, kp)
        if shift is not None and 2 * shift < STILL * gate and not (loose and len(rounds) == 1):
            break  # two cameras' rays at the people closer or farther by under STILL × the gate: the same people
        again, via = refined_on(raw, refined), refined
        changed = changed_share(kp, again, len(raw.data))
        if not max(changed.values(), default=0.0) > CHANGED and not (loose and len(rounds) == 1):
            rounds[-1]["changed_after"] = changed  # through its own rig: the same people
            break
        log.info("rig_refine: the people associated through the refined cameras differ (%s of the detections): "
                 "the cameras are refined again on that association", ", ".join(
                     f"{n} {100 * s:.0f} %" for n, s in changed.items() if s > CHANGED) or "gates as usual")
        kp = again
        refined, report = rig_refine.candidate(rig, kp, cfg, _persons(kp, raw), keep_far)
        rounds.append(_round(report, f"refinement {len(rounds)}", associated_share(raw, kp, cfg), changed))
    return refined, report | {"people_rounds": rounds}


def run(rig: Rig, raw: Keypoints2D, cfg, refined_on: Callable[..., Keypoints2D] | None = None
        ) -> tuple[Rig | None, dict]:
    """:func:`candidate`, the rig only when applied (rig_refine's ``run``)."""
    refined, report = candidate(rig, raw, cfg, refined_on)
    return (refined if report["applied"] else None), report


def refined_on(settings) -> Callable[..., Keypoints2D]:
    """``refined_on(raw, rig, gates=1)`` for :func:`candidate` with the run's ``settings``: every person of ``raw``
    associated through ``rig`` as triangulate associates them (:func:`mocap.detect.select.all_people`), with the
    association's gates ``gates`` times wider."""
    from mocap.detect.select import all_people, association_args

    a = association_args(settings)
    call = lambda kp, rig, gates=1.0: all_people(rig, kp, a[0], loosened(a[1], gates), a[2])  # noqa: E731
    call.gate_m = _gate(a[1])  # what ray_shift_m is weighed against
    return call


def _gate(association) -> float:
    """The association's smallest gate in metres (``match_max_m``, ``track_max_m``; None: its defaults)."""
    from mocap.multi.track import TrackConfig

    a = association or TrackConfig()
    return float(min(a.match_max_m, a.track_max_m))


def ray_shift_m(a: Rig, b: Rig, kp: Keypoints2D, sample: int = SAMPLE) -> float | None:
    """The most rig ``b`` moves a camera's rays from rig ``a``'s at the people of ``kp`` (every person one after
    another, one slot): per camera, the P95 over the people's joints (triangulated through ``a`` in ``sample``
    frames spread over the take) of how far apart the two rigs project each joint, in pixels, taken back to metres
    at the joint's depth (a turn, a move, the intrinsics refined: all of them); None with no joint triangulated."""
    from mocap.geometry.triangulation import dlt, normalise_observations, observation_weights

    frames = np.unique(np.linspace(0, len(kp.data) - 1, min(sample, len(kp.data))).astype(int))
    uv = np.moveaxis(kp.xy[frames, :, 0], 1, 2).reshape(-1, len(a), 2)  # (frames × joints, C, 2)
    w = np.moveaxis(observation_weights(kp, 0.0)[frames, :, 0], 1, 2).reshape(-1, len(a))
    X = dlt(np.stack([c.cam_from_world for c in a.cameras]), normalise_observations(a, uv), w)
    X = X[np.isfinite(X).all(axis=1)]
    shifts = []
    for ca, cb in zip(a.cameras, b.cameras, strict=True):
        depth = X @ ca.R[2] + ca.t[2]
        px = np.linalg.norm(cb.project(X) - ca.project(X), axis=-1)
        m = (px * depth / np.mean(np.diag(ca.K)[:2]))[np.isfinite(px) & (depth > 0)]
        shifts += [float(np.percentile(m, 95))] if m.size else []
    return max(shifts) if shifts else None


def loosened(association, gates: float):
    """The association's settings (a :class:`mocap.multi.track.TrackConfig`, None: its defaults) with its gates
    (``match_max_m``, ``track_max_m``) ``gates`` times wider."""
    from mocap.multi.track import TrackConfig

    a = association or TrackConfig()
    return a if gates == 1 else dataclasses.replace(a, match_max_m=gates * a.match_max_m,
                                                    track_max_m=gates * a.track_max_m)


def _persons(kp: Keypoints2D, raw: Keypoints2D) -> int:
    return max(1, len(kp.data) // len(raw.data)) if len(raw.data) else 1


def _round(report: dict, through: str, shares: dict[str, float], changed: dict[str, float] | None = None) -> dict:
    errors = report.get("error_px", {})
    return {"associated_through": through, "associated_share": shares, "changed": changed or {},
            "applied": report.get("applied", False), "reason": report.get("reason"), "persons": report.get("persons"),
            "heldout_px": [errors.get("heldout_given"), errors.get("heldout_refined")],
            "moves_deg": report.get("moves_deg")}


def _detections(kp: Keypoints2D, cfg) -> np.ndarray:
    """(F, C, S) whether each slot holds a detection of ``MIN_JOINTS`` used joints (rig_refine's ``min_score``)."""
    from mocap.stages.rig_refine import used_joints

    sub = kp.data[..., used_joints(kp.keypoint_set, cfg.joints), :]
    return ((np.nan_to_num(sub[..., 2], nan=-1.0) >= cfg.min_score) & np.isfinite(sub[..., 0])).sum(-1) >= MIN_JOINTS


def associated_share(raw: Keypoints2D, people: Keypoints2D, cfg) -> dict[str, float]:
    """{camera: the share of its detections in ``raw`` that the association (``people``, every person one after
    another) gives someone}."""
    n = _detections(raw, cfg).sum((0, 2))
    got = _detections(people, cfg).sum((0, 2))
    return {c: float(min(1.0, g / k)) if k else 1.0 for c, g, k in zip(raw.camera_names, got, n, strict=True)}


def changed_share(old: Keypoints2D, new: Keypoints2D, frames: int) -> dict[str, float]:
    """{camera: share of its detections the two associations (people one after another, ``frames`` each, as
    :func:`mocap.detect.select.all_people` gives them) do not give to the same person}: each person of one matched
    to the person of the other sharing the most detections; a detection is the same when a keypoint is (the
    association may leave out different keypoints of it, another body's)."""
    a, b = (k.data[..., 0, :, 0].reshape(-1, frames, *k.data.shape[1:2], k.data.shape[-2]) for k in (old, new))
    seen_a, seen_b = np.isfinite(a).any(-1), np.isfinite(b).any(-1)  # (P, F, C)
    same = np.zeros((len(a), len(b), a.shape[2]))  # (Pa, Pb, C): detections both give to that pair
    for i in range(len(a)):
        for j in range(len(b)):
            same[i, j] = (a[i] == b[j]).any(-1).sum(0)
    from scipy.optimize import linear_sum_assignment  # not at import: building the parser imports every stage

    rows, cols = linear_sum_assignment(-same.sum(-1))
    kept = same[rows, cols].sum(0)
    either = seen_a.sum((0, 1)) + seen_b.sum((0, 1)) - kept  # each camera's detections in one or the other
    return {n: float(1 - kept[c] / either[c]) if either[c] else 0.0 for c, n in enumerate(old.camera_names)}
