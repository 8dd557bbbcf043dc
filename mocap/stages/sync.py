"""Stage: time offsets between cameras without hardware sync (``sync.json``), applied downstream.

Offset d_c (frames, sub-frame): what the reference camera sees at frame t, camera c sees at t + d_c.
Only the limb joints (shoulders … ankles, ``sync.joints``) are searched and tested: they move the most, so a
lag shows most there, and the search costs a third of what every joint of a 33-keypoint body costs. With several
people (``kp``'s persons axis: one associated person per slot, the same in every view,
:func:`mocap.detect.select.people_in_time`), every person's joints, each against their own in the other views;
per frame the mean of each person's median error, over the people seen at both offsets compared (the coarse
search and the sub-frame fit pool the points: a still person's read the same at every lag).
0. Shortcut: a camera whose sub-frame estimate next to the null offset (0, or the audio offset) is within
   ``null_tolerance`` (0.1 frame) of it, at a sharp minimum of the epipolar error (below half the error
   3 frames either side), keeps the null: no lag search, no test (a synchronised camera, at a fifth of the
   cost). A camera lagging elsewhere has no minimum at the null, a take without motion no sharp one: 1–3.
1. Coarse: the integer lag at which camera c's 2D keypoints best satisfy the epipolar geometry with
   the reference camera's (median distance to the epipolar lines; a moving person makes a sharp
   minimum; every lag ranked on ~150 frames, the best few by the median on a few hundred, see
   :class:`~mocap.stages.sync_search.LagSearch`), or cross-correlation of the audio envelopes when every camera
   has ``videos/<camera>.wav`` (keypoint-speed cross-correlation locked onto the wrong period for repetitive motion).
2. Fine: a search within ±1 frame on the same epipolar error (Cauchy loss), with the tracks cleaned of
   outliers (camera c's left/right swaps read back, :mod:`mocap.stages.sync_swaps`), smoothed, and camera c's
   interpolated in time (it needs only the reference camera, so the cameras do not depend on each other).
3. Significance: an offset is not invented. It is estimated again on each half of the take alone (first
   and second half); each half then scores the other half's estimate against the null offset (0, or the
   audio offset when audio was used). The offset is applied only when the held-out error drops
   significantly (one-sided Wilcoxon signed-rank test over blocks of about 1 s), by a minimum relative
   gain, and the two halves agree (and neither is within ``null_tolerance`` of the null); a whole lag both halves
   find, the held-out median halved (``strong_gain``), lower in two blocks of three of six or more, is applied
   without the test (:func:`~mocap.stages.sync_steps.strong_lag`: a camera out of time mixed its people first).
   A real offset is the same all take long; an offset that buys a lower error by compensating a camera-pose error
   follows what the person does, or gains little: on a hardware-synchronised rig the result is 0. ``sync.json``
   records per camera both halves' estimates, the held-out gain, the p-value, and whether the offset was applied
   (and why not); a lag of a whole 2 frames or more that both halves find, not applied, is said at WARNING
   (``possibly_out_of_time``: a video started late?).
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mocap.geometry.epipolar import normalised
from mocap.geometry.triangulation import reprojection_errors, triangulate
from mocap.io.atomic import atomic_write_text
from mocap.session import Session
from mocap.stages import Flag
from mocap.stages.rig_refine import used_joints
from mocap.stages.sync_audio import audio_offsets
from mocap.stages.sync_log import log_result
from mocap.stages.sync_search import (
    LagSearch,
    epipolar_lag,
    held_out,
    shift_tracks,
    smooth_tracks,
    smoothed,
)
from mocap.stages.sync_steps import (
    find_steps,
    half_at_null,
    halves,
    halves_apart,
    halves_own_gain,
    null_holds,
    strong_lag,
    suspect,
    whole_lag,
    with_steps,
)
from mocap.stages.sync_swaps import mirrors, pairs
from mocap.types import Keypoints2D, Rig

log = logging.getLogger(__name__)
NAME = "sync"
HELP = "camera time offsets (epipolar lag search, sub-frame; or audio), applied only when significant"
WHOLE_FRAME = 0.25  # an estimate this near a whole lag of 2 frames or more, both halves near it, not applied: said
__all__ = ["Config", "apply_offsets", "audio_offsets", "log_result", "read_offsets", "read_steps", "read_timing", "run",
           "main", "shift_tracks", "smooth_tracks", "epipolar_lag"]


@dataclass(frozen=True)
class Config:
    enabled: bool = True
    max_offset_s: float = 2.0
    subframe: bool = True  # refine to a fraction of a frame (epipolar error against the reference camera)
    audio: bool = True  # use videos/<camera>.wav where cameras have one (the first camera's needed)
    min_score: float = 0.2
    joints: str = "limbs"  # keypoints searched and tested: limbs (shoulders … ankles, they move the most:
    # a lag shows most there; when the set has them) | all
    # the held-out test that decides whether an offset is real (see the module's docstring):
    block_s: float = 1.0  # the paired test compares held-out blocks of this length (seconds) ...
    min_blocks: int = 16  # ... shortened so that the take has at least this many blocks
    alpha: float = 0.01  # significance: p-value of the one-sided signed-rank test over held-out blocks
    strong_gain: float = 0.5  # or a whole lag both halves find, lowering the held-out median this much (0: never)
    min_heldout_gain: float = 0.05  # and the held-out median epipolar error must drop by this fraction
    max_half_gap: float = 0.5  # and the two halves' estimates must agree within this many frames, or this share of
    max_half_share: float = 0.1  # the offset, or neither half fit its own min_heldout_gain better than the other's
    min_gain: float = 1.0  # the applied offsets must make the whole take triangulate better in the cameras they
    # move (the median reprojection error of those cameras' detections below min_gain × the error without them;
    # over every view, one moved camera of eight hardly shows, and with 2 % swaps its interpolated neighbours
    # of a swapped frame made a right 0.4-frame offset look worse), or none is applied
    check_frames: int = 500  # ... judged on at most this many frames, evenly spread over the take
    # the shortcut of a synchronised camera: when the whole take's sub-frame estimate next to the null offset
    # is within null_tolerance frames of it, and the null is a sharp minimum (its median epipolar error below
    # null_sharpness × the error null_probe_frames either side), the offset is the null: no lag search, no test
    min_step_s: float = 5.0  # an offset that changes mid-take (frames dropped): each part at least this long,
    # s (0: one offset per take; see mocap.stages.sync_steps)
    null_tolerance: float = 0.1  # frames (0: always search and test); a half's estimate this near the null: no offset
    null_sharpness: float = 0.5
    null_probe_frames: int = 3

    def __post_init__(self) -> None:
        checks = ((self.joints in ("limbs", "all"), f"joints must be limbs or all, got {self.joints!r}"),
                  (self.max_offset_s >= 0, f"max_offset_s must be ≥ 0 s, got {self.max_offset_s}"),
                  (0 <= self.min_score <= 1, f"min_score must be in [0, 1], got {self.min_score}"),
                  (self.min_step_s >= 0, f"min_step_s must be ≥ 0 s (0: one offset per take), got {self.min_step_s}"),
                  (self.check_frames >= 1, f"check_frames must be ≥ 1, got {self.check_frames}"),
                  (0 <= self.max_half_share < 1, f"max_half_share must be in [0, 1), got {self.max_half_share}"),
                  (self.null_tolerance >= 0 and 0 < self.null_sharpness <= 1 and self.null_probe_frames >= 1,
                   f"null_tolerance must be ≥ 0 frames, null_sharpness in (0, 1], null_probe_frames ≥ 1; got "
                   f"{self.null_tolerance}, {self.null_sharpness}, {self.null_probe_frames}"))
        for ok, what in checks:
            if not ok:
                raise ValueError(f"sync: {what}")

FLAGS = (Flag("--off", "enabled", "no synchronisation: the cameras are hardware-synchronised", value=False),
         Flag("--max-offset-s", "max_offset_s", "largest offset searched, s", float))


def audio_files(session: Session) -> list[Path]:
    """The cameras' audio tracks, ``videos/*.wav`` (an input of sync and of rig_refine's check)."""
    return sorted((session.root / "videos").glob("*.wav"))


def inputs(session: Session, settings) -> list[Path]:
    return session.keypoint_inputs(synced=False) + audio_files(session)


def outputs(session: Session, settings) -> list[Path]:
    return [session.sync_file]


def resolved(settings) -> dict:
    """Part of the cache key: with several people (``detect.persons`` ≠ 1), sync runs on the associated people
    who move, associated with triangulate's settings (:func:`mocap.detect.select.people_in_time`)."""
    from mocap.detect.select import association_key

    return association_key(settings)


def apply_offsets(kp: Keypoints2D, offsets: dict[str, float], steps: dict[str, list] | None = None) -> Keypoints2D:
    """Each camera's detections read at t + its offset (sub-frame: interpolated, left and right kept apart,
    :func:`~mocap.stages.sync_shift.shift_views`); a camera in ``steps`` (its offset changes mid-take:
    [[first frame, offset], ...], :func:`~mocap.stages.sync_steps.apply_steps`) at each part's offset."""
    from mocap.stages.sync_shift import shift_views
    from mocap.stages.sync_steps import apply_steps

    data = kp.data.copy()
    for c, name in enumerate(kp.camera_names):
        d = offsets.get(name, 0.0)
        if (steps or {}).get(name):
            data[:, c] = apply_steps(kp.data[:, c], steps[name],
                                     lambda x, o: shift_views(x, o, kp.keypoint_set) if o else x)
        elif d:
            data[:, c] = shift_views(kp.data[:, c], d, kp.keypoint_set)
    return Keypoints2D(data, kp.camera_names, kp.keypoint_set, kp.fps)


def _camera(raw: list[np.ndarray], pair_at, c: int, null: float, max_lag: int, cfg: Config,
            block: np.ndarray, half: np.ndarray, audio: bool, fps: float) -> dict:
    """Camera c's offset against the reference camera on the whole take and on each half, and the held-out test of
    it. ``raw``: every camera's detections xy undistorted and normalised (homogeneous); ``pair_at``: lag → the pair
    of cameras with camera c's left/right swaps at that lag read back (:func:`~mocap.stages.sync_swaps.pairs`)."""
    pair = pair_at(null)
    held = null_holds(pair, null, cfg, len(half))
    if held is not None and (audio or not suspect(pair, null, block, cfg, fps)):
        return held
    search = None if audio else LagSearch(pair_at.lines, raw[c], max_lag, person_joints=pair_at.person_joints)
    if held is not None:  # near one end, some seconds at another offset (frames lost there)?
        return with_steps(held, find_steps(pair, search, block, cfg, fps), null, cfg, [])
    whole = None if audio else search.best()[0]  # the whole take's coarse lag: the swaps read back at it
    pair = pair if audio else pair_at(whole)

    def estimate(use: np.ndarray, coarse: float | None = None) -> float:
        d = null if audio else coarse if coarse is not None else search.best(use)[0]
        return pair.refine(d, use) if cfg.subframe else d

    d_all, d_a, d_b = estimate(np.ones(len(half), bool), whole), estimate(half == 0), estimate(half == 1)
    test = held_out(pair, (d_a, d_b), null, block, half)
    why = []
    late = strong_lag(test, d_all, d_a, d_b, null, WHOLE_FRAME, cfg.strong_gain)
    if not test.p_value < cfg.alpha and late is None:
        why.append(f"not significant (p = {test.p_value:.3g}, {test.blocks} blocks)")
    if test.gain < cfg.min_heldout_gain:
        why.append(f"held-out gain {100 * test.gain:.1f} % < {100 * cfg.min_heldout_gain:.0f} %")
    gap = max(cfg.max_half_gap, cfg.max_half_share * abs(d_all - null))
    if apart := (abs(d_a - d_b) > gap and halves_apart(pair, d_a, d_b, half, cfg.min_heldout_gain)):  # it matters
        why.append(f"the halves disagree ({d_a:+.2f} / {d_b:+.2f} frames)")
    elif not min(d_a, d_b) - cfg.max_half_gap <= d_all <= max(d_a, d_b) + cfg.max_half_gap:  # the value applied is
        why.append(f"the whole take's {d_all:+.2f} frames is not what its halves found and tested")  # the tested one
    elif half_at_null(d_a, d_b, null, cfg.null_tolerance):  # within max_half_gap, yet one half finds no offset
        why.append(f"a half finds the null offset ({d_a:+.2f} / {d_b:+.2f} frames)")
    if search is not None and max(abs(d_all), abs(d_a), abs(d_b)) >= max_lag - 1:  # a lag of 150 read as 120
        why.append(f"the best lag is at the edge of the search (±{max_lag} frames: sync.max_offset_s, at most a third "
                   "of the take): the true one may lie beyond it")
    info = {"estimate_frames": d_all, "halves_frames": [d_a, d_b], "null_frames": null,
            "heldout_gain": test.gain, "p_value": test.p_value, "blocks": test.blocks,
            "heldout_px": list(test.error_px), "epipolar_px": pair.median(d_all, np.ones(len(half), bool)),
            "applied": not why, "reason": "; ".join(why) if why else "significant" if test.p_value < cfg.alpha else (
                f"a whole lag of {late:+d} frames both halves find, the held-out median {100 * test.gain:.0f} % lower, "
                f"lower in {100 * test.favoured:.0f} % of the {test.blocks} blocks (p = {test.p_value:.3g})")}
    if why and not apart and (lag := whole_lag(d_all, d_a, d_b, null, WHOLE_FRAME)) is not None:
        info["whole_lag_frames"] = lag  # not proven, yet what a video started late looks like: said (log_result)
    if (gain := halves_own_gain(pair, d_a, d_b, half, cfg.block_s * fps)) is not None:  # frames lost? (log_result)
        info["halves_own_gain"] = gain
    # the halves a frame or more apart, or a long run of blocks off at the offset taken: frames lost mid-take?
    look = search is not None and (abs(d_a - d_b) >= 1 or suspect(pair, null if why else d_all, block, cfg, fps))
    return with_steps(info, find_steps(pair, search, block, cfg, fps) if look else None, null, cfg, why)


def run(rig: Rig, kp: Keypoints2D, cfg: Config = Config(), audio: dict[str, Path] | None = None) -> dict:
    """Offsets of every camera relative to the first (frames), and how they were found and tested. ``kp``
    (F, C, P, J): P people, each in its own slot in every view (one person: P = 1)."""
    if tuple(kp.camera_names) != rig.names:
        raise ValueError(f"sync: keypoint cameras {list(kp.camera_names)} differ from rig {list(rig.names)}")
    F, C = kp.shape[:2]
    max_lag = int(min(cfg.max_offset_s * kp.fps, F // 3))
    names = list(kp.camera_names)
    joints = used_joints(kp.keypoint_set, cfg.joints)
    P = kp.shape[2]  # every person's joints one after another (each person in its own slot in every view)
    sub = np.take(kp.data, joints, axis=3).reshape(F, C, P * len(joints), 3)  # one gather of the joints, not two
    xy = np.where(sub[..., 2:] >= cfg.min_score, sub[..., :2], np.nan)  # (F, C, J, 2)
    heard = audio_offsets(audio, kp.fps, cfg.max_offset_s) if audio and cfg.audio else {}
    if deaf := [n for n in names if heard and heard.get(n) is None]:  # no distinct peak: searched on the keypoints
        log.warning("sync: no usable audio for %s (no videos/<camera>.wav, silent, or without the sound the others "
                    "heard): timed on the 2D keypoints alone", ", ".join(deaf))
    use_audio = any(heard.get(n) is not None for n in names)
    null = {n: heard.get(n) or 0.0 for n in names}
    method = ("audio, refined on the epipolar consistency of the 2D keypoints" if use_audio else
              "epipolar consistency of the 2D keypoints")
    own = np.isfinite(xy[..., 0]).reshape(F, C, P, len(joints)).any(axis=3)  # (F, C, P): who each camera sees
    seen = own.any(axis=2)  # (F, C): frames each camera sees someone in
    raw = [normalised(rig, c, xy[:, c]) for c in range(C)]  # undistorted once, not once per use
    smooth = smoothed(raw, [cam.K[0, 0] for cam in rig.cameras])
    counts = seen.sum(axis=0)  # the cameras are timed against the first, or, where it sees anyone in under
    ref = 0 if 2 * counts[0] >= counts.max() else int(np.argmax(counts))  # half the frames another does, that one
    cameras, offsets, base = {}, {names[ref]: null[names[ref]]}, null[names[ref]]
    for c in (k for k in range(C) if k != ref):
        n = names[c]
        block, half = halves(F, kp.fps, cfg.block_s, cfg.min_blocks, (own[:, ref] & own[:, c]).any(axis=1))
        by_audio = use_audio and heard.get(n) is not None and heard.get(names[ref]) is not None
        pair_at = pairs(rig, raw, smooth, c, ref, mirrors(kp.keypoint_set, joints))  # left/right swaps read back
        info = cameras[n] = _camera(raw, pair_at, c, null[n] - base, max_lag, cfg, block, half, by_audio, kp.fps)
        offsets[n] = info["estimate_frames"] + base if info["applied"] else null[n]
    shift = offsets[names[0]] if ref else 0.0  # back to the first camera's time (it was off by the reference's audio)
    offsets = {n: offsets[n] - shift for n in names}
    steps = {n: [[f, d + base - shift] for f, d in info["steps"]] for n, info in cameras.items() if info.get("steps")}
    result = {"reference": names[0], "offsets_frames": offsets, "method": method, "cameras": cameras,
              "fps": kp.fps, "config": asdict(cfg)} | ({"steps": steps} if steps else {}) | (
        {"timed_against": names[ref]} if ref else {})
    result["applied"] = any(info["applied"] for info in cameras.values())
    if late := {n: info["whole_lag_frames"] for n, info in cameras.items() if "whole_lag_frames" in info}:
        result["possibly_out_of_time"] = late  # {camera: whole frames}
    if any(offsets.values()) or steps:  # a last check on the whole take, all offsets together
        frames = np.arange(0, F, max(1, -(-F // cfg.check_frames)))  # evenly spread: a median needs no more
        moved = np.array([offsets[n] != 0 or n in steps for n in names])  # the error in the views they move
        shifted = apply_offsets(kp, offsets, steps)  # both read where the shifted views still have a detection (parts
        kept = np.isfinite(shifted.score)  # shifted far off empty frames: the median of the rest read as a gain)
        before = _triangulation_error(rig, _masked(kp, kept), cfg, frames, moved)
        after = _triangulation_error(rig, shifted, cfg, frames, moved)
        result["triangulation_px"] = {"without": before, "with": after}
        if not after < cfg.min_gain * before:
            result["offsets_frames"] = {n: 0.0 for n in names}
            result.pop("steps", None)
            result["applied"] = False
            for info in cameras.values():
                if info["applied"]:
                    info["applied"], info["reason"] = False, "the whole take triangulates no better with it"
    return result


def _masked(kp: Keypoints2D, keep: np.ndarray) -> Keypoints2D:
    """``kp`` with the detections where ``keep`` (F, C, P, J) is False made missing."""
    return Keypoints2D(np.where(keep[..., None], kp.data, np.nan), kp.camera_names, kp.keypoint_set, kp.fps)


def _triangulation_error(rig: Rig, kp: Keypoints2D, cfg: Config, frames: np.ndarray | None = None,
                         cameras: np.ndarray | None = None) -> float:
    """Median reprojection error (px) of the keypoints of ``frames`` (all by default) triangulated (weighted
    DLT): over the detections of the ``cameras`` (C,) bool, or, None, each point's mean over its views."""
    frames = np.arange(kp.shape[0]) if frames is None else frames
    w = np.where(np.isfinite(kp.score) & (kp.score >= cfg.min_score), kp.score, 0.0)[frames]
    uv = np.moveaxis(kp.xy[frames], 1, 3).reshape(-1, kp.shape[1], 2)  # every person's points
    w = np.moveaxis(w, 1, 3).reshape(-1, kp.shape[1])
    X, err, _ = triangulate(rig, uv, w)
    if cameras is None:
        return float(np.nanmedian(err))
    e = reprojection_errors(rig, X, uv)[:, cameras]
    e = e[(w[:, cameras] > 0) & np.isfinite(e)]
    return float(np.median(e)) if e.size else float("nan")


_remembered: list[tuple[tuple, dict]] = []  # the last (key, result) of remembered_run: one take at a time


def remembered_run(rig: Rig, kp: Keypoints2D, cfg: Config = Config(), audio: dict[str, Path] | None = None) -> dict:
    """:func:`run`, the last result kept for the same rig, keypoints, settings and audio files (their paths, sizes
    and times): the camera refinement runs sync's test on the rig it ends with (:mod:`mocap.stages.rig_lags`)
    and the sync stage, next in the same process on the same rig, reuses it."""
    from mocap.stages.keypoints_memo import array_digest, rig_digest

    files = [(c, str(p), p.stat().st_size, p.stat().st_mtime_ns) for c, p in sorted((audio or {}).items())]
    key = (rig_digest(rig), array_digest(kp.data, kp.camera_names, kp.keypoint_set, kp.fps, asdict(cfg), files))
    if _remembered and _remembered[0][0] == key:
        log.debug("sync: the result of the same rig and keypoints reused")
        return copy.deepcopy(_remembered[0][1])
    result = run(rig, kp, cfg, audio)
    _remembered[:] = [(key, copy.deepcopy(result))]
    return result


def forget_remembered() -> None:
    """Drop what :func:`remembered_run` kept (a benchmark timing the test again)."""
    _remembered.clear()


def read_timing(session: Session) -> tuple[dict[str, float], dict[str, list]]:
    """``sync.json`` read once: each camera's offset (frames), and the cameras whose offset changes mid-take,
    {camera: [[first frame, offset], ...]} (see :func:`apply_offsets`); both empty without the file."""
    if not (record := _record(session)):
        return {}, {}
    return ({k: float(v) for k, v in record["offsets_frames"].items()},
            {k: [[int(f), float(d)] for f, d in v] for k, v in (record.get("steps") or {}).items()})


def read_halves(session: Session) -> dict[str, list[float]]:
    """{camera: [first half's, second half's estimate (frames, less the null: 0, or audio's)]} from ``sync.json``
    where sync tested them."""
    return {k: [float(d) - float(v.get("null_frames") or 0.0) for d in v["halves_frames"]]
            for k, v in _record(session).get("cameras", {}).items() if v.get("halves_frames")}


def _record(session: Session) -> dict:
    """``sync.json`` as written ({} without it)."""
    path = session.root / "sync.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def read_offsets(session: Session) -> dict[str, float]:
    return read_timing(session)[0]


def read_steps(session: Session) -> dict[str, list]:
    return read_timing(session)[1]


def session_audio(session: Session, names) -> dict[str, Path] | None:
    """``videos/<camera>.wav`` of the cameras that have one, the first camera's among them (the offsets are
    from it), else None (no audio sync; said when some camera has one). A camera without one is timed on its
    keypoints (it took them all: one missing track left every camera's audio unused, without a word)."""
    names = list(names)
    wavs = {c: p for c in names if (p := session.root / "videos" / f"{c}.wav").is_file()}
    if wavs and names[0] not in wavs:
        log.warning("sync: audio tracks for %s but none for the first camera %s (the offsets are from it): audio "
                    "not used", ", ".join(wavs), names[0])
        return None
    return wavs or None


def main(session: Session | str | Path, settings=None, overwrite: bool = False) -> Path:
    """``settings``: the pipeline's Settings, or this stage's Config."""
    from mocap.settings import as_settings

    session = session if isinstance(session, Session) else Session(Path(session))
    cfg = as_settings(settings).sync
    out = session.sync_file
    if out.exists() and not overwrite:
        log.info("%s exists, skipping synchronisation", out)
        return out
    rig = session.rig()
    kp = session.keypoints2d(rig)
    if kp.shape[2] > 1:  # several people per view: each in its own slot, never two mixed
        from mocap.detect.select import association_args, people_in_time

        kp = people_in_time(rig, kp, *association_args(as_settings(settings)))  # associated as triangulate does
    audio = session_audio(session, rig.names)
    if not cfg.enabled:
        result = {"reference": rig.names[0], "offsets_frames": {c: 0.0 for c in rig.names}, "method": "disabled",
                  "fps": kp.fps, "config": asdict(cfg)}
    else:
        result = remembered_run(rig, kp, cfg, audio)
        log_result(result)
    return atomic_write_text(out, json.dumps(result, indent=1))
