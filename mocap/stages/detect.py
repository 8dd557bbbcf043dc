"""Stage: camera videos → 2D keypoints (``pose2d.h5``) on a pool of worker processes, one per core.

The pool takes (camera, frame range) chunks (:mod:`mocap.detect.chunks`): whole cameras, longest first,
unless they cannot keep every worker busy and the detector allows a cut (a stateless one, or
``detect.split`` for a tracker such as BlazePose, whose results then depend on the cut). A worker
creates its detector while the pool starts; each chunk decodes its video on a reader thread while the
detector runs. Finished cameras are written to ``.mocap/pose2d.partial.h5`` and marked complete at
once; when every camera is done, that file replaces ``pose2d.h5``. So an interrupted or failing run
never touches the previous ``pose2d.h5``, and the next run resumes with the cameras still missing;
``overwrite`` starts the partial file again. A worker that dies has its chunks run again once. Once every
result is in, the workers exit in the background (the stage does not wait for them).

Speed options, on the 4-camera demo against full / stride 1 (``python -m mocap.bench.detect options``; distance
to the default's keypoints; CPU ratios from before a slow BGR → RGB copy was replaced): ``detect.stride`` 2: 1.8×
less CPU (skipped frames still decoded), median 2.1-3.5 px, P95 6-10 px (136 px on one camera: the tracker loses
a limb between frames); stride 3: 2.5×, median 3.0-4.9 px, P95 9-13 px (164). The heavy model: 2× the CPU, a
median 6-14 px from full. ``detect.variant = "lite"`` needs its model file (``detect.model_path``): not measured.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from mocap import threads
from mocap.detect import DETECTORS, detector_names, progress, recover, scan
from mocap.detect import resume as detect_resume
from mocap.detect.blazepose import VARIANTS
from mocap.detect.chunks import detect_video
from mocap.detect.collect import collect as _collect  # noqa: F401 (tests call detect._collect)
from mocap.detect.factory import check_persons, make_detector, wants_hands  # noqa: F401 (chunks, tests take them here)
from mocap.io.video import check_footage, find_videos, probe, probe_key
from mocap.stages import Flag
from mocap.warm import import_second_pass

if TYPE_CHECKING:  # imported where used: pool workers import this module and need no session (nor its h5py)
    from mocap.session import Session

log = logging.getLogger(__name__)
NAME = "detect"
HELP = "camera videos → 2D keypoints (BlazePose, ONNX RTMPose/RTMO; resumable)"
RESUMABLE = True
# start later stages' work early, put imports off: no output changes; the camera refinement that guides where the
# second pass looks (its settings are in the key: recover_uses; a change of its code does not re-run the detection)
CODE_IGNORED = ("mocap.ahead", "mocap.warm", "mocap.stages.rig_people", "mocap.detect.progress")
PRESETS = ("keypoints",)  # the shipped presets its outputs depend on (mocap.stage_code)


@dataclass(frozen=True)
class Config:
    detector: str = "blazepose"  # a registered detector: blazepose | onnx (RTMPose / RTMO file in model_path)
    variant: str = "full"  # blazepose: lite | full | heavy
    model_path: str = ""  # landmark model file for variants mediapipe does not ship
    persons: Any = "auto"  # people per frame: a number ≥ 1 or "auto" (≤ AUTO_PERSONS per view); read by later stages
    # persons = auto, BlazePose: people followed on every frame, new ones looked for every scan_every frames
    scan_every: int = 15  # (mocap.detect.scan); 1: MediaPipe's person detector on every frame (+40 % detection CPU)
    stride: int = 1
    start: int = 0
    stop: int | None = None
    workers: int = 0  # 0: one per core, at most one per camera (unless cameras are split)
    # let a tracking detector's (BlazePose's) cameras be cut into frame ranges when whole cameras cannot keep
    # every worker busy (3 cameras on 2 cores): faster, but the results then depend on the cut (see
    # mocap.detect.chunks); a detector without memory is always cut that way (identical results)
    split: bool = False
    overlay: bool = False  # also write review/<camera>_pose2d.mp4 with the detections drawn
    max_length_difference_s: float = 2.0  # cameras may differ this much in length (sync aligns them)
    # 21 keypoints per hand (keypoint set blazepose33_hands); unset: on when the fit skeleton has fingers
    # (a mapping for blazepose33_hands). A whole-body ONNX model gives hands by itself.
    hands: bool | None = None
    # second pass for people the detector missed in a view (one behind another): where the other views place a
    # tracked person, its box is cropped and looked at again (mocap.detect.recover; needs the given rig and
    # BlazePose). auto: on with several people or persons = auto | on | off
    recover: str = "auto"

    def __post_init__(self) -> None:
        recover.check_mode(self.recover, self.detector)
        if self.detector == "blazepose" and self.variant not in VARIANTS:  # refused before any stage runs
            raise ValueError(f"detect: variant must be one of {', '.join(VARIANTS)}, got {self.variant!r}")
        if self.detector not in detector_names():
            raise ValueError(f"detect: unknown detector {self.detector!r} (expected one of {list(detector_names())})")
        p = self.persons
        if p != "auto" and (isinstance(p, bool) or not isinstance(p, int) or p < 1):
            raise ValueError(f"detect: persons must be a number of people ≥ 1 or \"auto\", got {p!r}"
                             + (" (0 people: nothing to capture)" if p == 0 and not isinstance(p, bool) else ""))
        if isinstance(self.scan_every, bool) or not isinstance(self.scan_every, int) or self.scan_every < 1:
            raise ValueError(f"detect: scan_every must be a number of frames ≥ 1, got {self.scan_every!r}")
        if self.stride < 1 or self.start < 0 or (self.stop is not None and self.stop <= self.start):
            raise ValueError(f"detect: need stride ≥ 1, start ≥ 0 and stop > start, got stride {self.stride}, "
                             f"start {self.start}, stop {self.stop}")

    @property
    def slots(self) -> int:
        """Detections kept per view and frame (the persons axis of ``pose2d.h5``)."""
        return AUTO_PERSONS if self.persons == "auto" else int(self.persons)


AUTO_PERSONS = 10  # persons = "auto": up to this many detections per view; association finds who is a person


def persons_arg(text: str) -> int | str:
    """``--persons 3`` or ``--persons auto``."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"persons: expected a number or auto, got {text!r}") from None


persons_arg.__name__ = "persons (a number or auto)"


FLAGS = (Flag("--detector", "detector", "2D detector", str, choices=detector_names()),
         Flag("--variant", "variant", "BlazePose model", str, choices=VARIANTS),
         Flag("--model-path", "model_path", "BlazePose lite/heavy landmark .tflite, or the RTMPose / RTMO .onnx file",
              str, aliases=("--model",)),
         Flag("--persons", "persons", "people per frame: a number or auto", persons_arg),
         Flag("--scan-every", "scan_every", "persons = auto: look for new people every N frames (1: every frame)", int),
         Flag("--stride", "stride", "every N-th frame", int),
         Flag("--start", "start", "first frame", int),
         Flag("--stop", "stop", "stop before this frame", int),
         Flag("--workers", "workers", "processes (default: one per core, ≤ cameras)", int),
         Flag("--split", "split", "cut cameras into frame ranges to keep every worker busy (BlazePose: results "
              "then depend on the cut)"),
         Flag("--overlay", "overlay", "also write review/<camera>_pose2d.mp4"),
         Flag("--hands", "hands", "also detect 21 keypoints per hand (blazepose33_hands)"),
         Flag("--recover", "recover", "second pass on the boxes of people the detector missed: auto, on, off", str,
              choices=recover.MODES))


def needed(session: Session, settings) -> str | None:
    if session.videos():
        return None
    if session.pose2d_h5.is_file() or session.pose2d_json.is_dir():
        return "2D keypoints given"
    from mocap.io.video import VIDEO_SUFFIXES

    beside = sorted(p.name for p in session.root.glob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    hint = (f"; {len(beside)} video(s) lie in the session folder itself ({', '.join(beside[:4])}"
            f"{', …' if len(beside) > 4 else ''}): move them into {session.root / 'videos'}/" if beside else "")
    raise FileNotFoundError(f"session {session.root}: no camera videos in {session.root / 'videos'} and no 2D "
                            f"keypoints ({session.pose2d_h5.name} or {session.pose2d_json.name}/){hint}")


def inputs(session: Session, settings) -> list[Path]:
    rig = session.given_rig_path()  # not the refined rig: rig_refine runs after detection
    return session.videos() + ([rig] if rig.is_file() else [])


def outputs(session: Session, settings) -> list[Path]:
    return [session.pose2d_h5]


def checked_inputs(session: Session, settings) -> list[Path]:
    """The inputs a resumed run checks itself (each camera's video, :mod:`mocap.detect.resume`): the runner
    resumes an interrupted detection whose other inputs, settings and code are unchanged (one video replaced:
    that camera again)."""
    return session.videos()


def partial_path(session: Session) -> Path:
    return session.root / ".mocap" / "pose2d.partial.h5"


def resolved(settings) -> dict:
    """Part of the cache key: hand detection switched on by the fit skeleton (``detect.hands`` unset), so choosing
    body52 re-runs detection; with the second pass (``detect.recover``, BlazePose only: with another detector every
    triangulate setting re-ran detection), the triangulate settings its association uses (it writes into the
    detections, so changing them re-runs detection)."""
    out = {"hands": True} if settings.detect.hands is None and wants_hands(settings) else {}
    d = settings.detect
    if recover.recovering(d.recover, d.persons) and d.detector == "blazepose":  # as recover.wanted, without its log
        t = settings.triangulate
        out["recover_uses"] = {"association": asdict(t.association), "min_score": t.min_score,
                               "max_reproj_px": t.max_reproj_px, "rig_refine": _guide_key(settings.rig_refine)}
    return out


# resolved values a finished detection may turn out not to depend on (see unused): the pipeline then keys it without
MAYBE_UNUSED = ("recover_uses",)


def unused(session, settings, again: bool = False) -> tuple[str, ...]:
    """Of :data:`MAYBE_UNUSED`, what the finished ``pose2d.h5`` did not depend on: the triangulate settings of the
    second pass when it was skipped with one person slot per view (``persons = auto`` on a single-person take,
    the default): changing a triangulate setting then does not re-run detection. ``again`` (the pipeline, before
    skipping detection under other settings): only while the association under ``settings`` still tracks fewer
    than 2 people (it decides the skip: a later run that would find 2 runs the pass)."""
    return ("recover_uses",) if recover.skipped_alone(session, settings.triangulate, again) else ()


run = detect_video  # the computation of one camera's video; main spreads cameras over processes


def main(session: Session | str | Path, settings=None, overwrite: bool = False) -> Path:
    """``settings``: the pipeline's Settings, or this stage's Config. ``overwrite=False`` resumes."""
    # not at the top: pool workers import this module and need no h5py (0.04 CPU s each)
    from mocap.io.hdf5 import create_keypoints2d, keypoints2d_status
    from mocap.session import Session
    from mocap.settings import as_settings

    session = session if isinstance(session, Session) else Session(Path(session))
    settings = as_settings(settings)
    cfg = dataclasses.replace(settings.detect, hands=wants_hands(settings))
    try:
        rig = session.rig()
    except FileNotFoundError:
        rig = None
    videos = find_videos(session.root / "videos", rig.names if rig is not None else None)
    from mocap import distributed
    from mocap.detect import pool as pool_start

    if pool_start.warm_for(session.pose2d_h5, overwrite) and recover.recovering(cfg.recover, cfg.persons):
        import_second_pass()  # while the fork server starts (after the pool: 0.4 s the stage waited on)
    keys = {c: probe_key(p) for c, p in videos.items()}  # before probing: a file changed since is probed again
    infos = {c: probe(p) for c, p in videos.items()}
    n_frames, fps = check_footage(infos, cfg.max_length_difference_s, rig, rig and session.rig_path())
    stop = n_frames if cfg.stop is None else min(cfg.stop, n_frames)
    F = len(range(cfg.start, stop, cfg.stride))
    out = session.pose2d_h5
    config = asdict(cfg)  # settings at no effect left out: files read as before they existed (resumable)
    for key, idle in (("hands", not cfg.hands), ("recover", not recover.recovering(cfg.recover, cfg.persons)),
                      ("split", not cfg.split), ("scan_every", cfg.persons != "auto")):  # only auto scans
        if idle:
            config.pop(key)
    work = partial_path(session)
    if not overwrite and not work.exists() and out.exists() and keypoints2d_status(out)[1] == config:
        work = out  # a finished file (or one from before partial files): resumed in place; another config's is redone
    resume = work.exists() and not overwrite
    complete = np.zeros(len(videos), bool)
    sources = detect_resume.identities(videos)
    if resume:
        complete, started = keypoints2d_status(work)
        if started != config:
            raise ValueError(f"{work} was started with another detection config {started}; use --overwrite")
        complete = detect_resume.still_valid(work, sources, F, complete, work == out)  # changed videos: again
        if complete is None:  # other cameras or frames: nothing to resume
            work, resume, complete = partial_path(session), False, np.zeros(len(videos), bool)
    pending = [c for c, done in zip(videos, complete, strict=True) if not done]
    if not pending:
        log.info("%s complete, skipping detection", out)
        _second_pass(session, cfg, settings, work, videos)  # an interrupted second pass is done now
        return _finish(work, out, cfg)
    names = list(videos)
    if resume and cfg.persons == "auto":  # a finished file cut to its people, resumed: every slot again first
        scan.fit_persons_axis(work, cfg.slots)

    def create(keypoint_set: str) -> None:
        work.parent.mkdir(parents=True, exist_ok=True)
        create_keypoints2d(work, F, names, cfg.slots, keypoint_set, fps / cfg.stride, config, {"videos": sources})

    if distributed.active():  # mocap run --scheduler: (camera, frame range) chunks on a Dask cluster
        if not resume:
            from mocap.detect.chunks import probe_detector

            create(probe_detector(cfg))  # fails here, not on the cluster, on a bad model
        distributed.detect_on_cluster({c: videos[c] for c in pending}, infos, cfg, work, names, F,
                                      session.root / "review" if cfg.overlay else None)
        _second_pass(session, cfg, settings, work, videos)
        return _finish(work, out, cfg)
    from mocap.detect import chunks

    stateless = chunks.is_stateless(cfg.detector, cfg.hands)
    split = (cfg.split or stateless) and not cfg.overlay  # an overlay video is written by one whole-camera chunk
    workers = cfg.workers or min(threads.cores(), len(pending) if not split else threads.cores())
    plan = chunks.plan_chunks(chunks.frames_to_detect({c: infos[c].frames for c in pending}, cfg), workers, split)
    workers = min(workers, len(plan))  # more workers than chunks: the extra ones are not started
    warmup = 0 if stateless else WARMUP_FRAMES
    review = session.root / "review"
    overlays = {c: review / f"{c}_pose2d.mp4" if cfg.overlay else None for c in pending}
    from mocap.io import proxy

    proxies = proxy.for_detection(session.root, settings.report, cfg, {c: infos[c] for c in pending})
    t0, started_at = time.perf_counter(), time.time()
    gathered: dict[tuple, tuple] = {}  # chunk → (its frames, its timings), kept over a worker's death
    overall = tqdm(total=len(plan), desc="   cameras" if len(plan) == len(pending) else "    chunks", unit="chunk",
                   position=workers, disable=None)
    hands: dict[str, float] = {}
    counts, lines = progress.for_pool(pool_start.context(), workers, plan, warmup, gathered)  # lines without bars
    for attempt in range(WORKER_RETRIES + 1):
        todo = [k for k in plan if k not in gathered]
        ctx = pool_start.context()  # Linux: forked from a server that has imported the workers' modules
        slots = ctx.Queue()
        for k in range(workers):
            slots.put(k)
        try:
            pool = ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=ctx,
                                       initializer=chunks.worker_init,
                                       initargs=(dict(DETECTORS), slots, cfg, dict(os.environ),
                                                 max(1, threads.cores() // min(workers, len(todo))), counts))
            done = False
            try:
                futures = []
                try:
                    pool_start.prestart(pool, min(workers, len(todo)))  # every worker starting now, not after the probe
                    if not resume:  # a bad model fails here, before any frame
                        create(pool.submit(chunks.probe_detector, cfg).result())
                        resume = True
                    futures = [pool.submit(chunks.detect_chunk, c, videos[c], cfg, a, b, warmup, -1, overlays[c],
                                           proxies[c], (keys[c], infos[c])) for c, a, b in todo]
                    with lines:
                        _collect(futures, work, names, F, overall, plan, gathered, hands, workers, keys=todo)
                    done = True
                except KeyboardInterrupt:
                    chunks.stop_pool(pool)
                    raise
                except BaseException:
                    for f in futures:  # a broken pool, an error in the stage: the chunks not started are dropped
                        f.cancel()
                    raise
            finally:
                # every result in: the workers exit in the background (0.1 s each, joined by concurrent.futures at
                # the latest when this process ends) while the stage finishes its file and the next stage starts
                pool.shutdown(wait=not done)
            break
        except BrokenProcessPool as e:
            left = [f"{c}[{a}:{b}]" for c, a, b in plan if (c, a, b) not in gathered]
            if attempt == WORKER_RETRIES:
                raise RuntimeError(f"detect: a worker process died {attempt + 1} times (killed, out of memory or a "
                                   f"crash in the detector); chunks not done: {left}. The cameras finished are kept: "
                                   "run again to resume") from e
            log.warning("detect: a worker process died (%s); %d unfinished chunks %s run again in a new pool", e,
                        len(left), left)
    overall.close()
    timeline = [stats | {"camera": c, "first": a} for (c, a, _), (_, stats) in gathered.items()]
    last_run.clear()
    last_run.update(chunks.timeline_summary(timeline, started_at, time.perf_counter() - t0, workers, len(pending)))
    log.info("detection of %d cameras took %.1fs (%d workers, %d chunks; start-up %.1fs, idle tail %.1fs; CPU: "
             "decoding %.1fs, inference %.1fs, proxies %.1fs)", len(pending), last_run["wall_s"], workers, len(plan),
             last_run["startup_s"], last_run["tail_s"], last_run["decode_cpu_s"], last_run["infer_cpu_s"],
             last_run["proxy_cpu_s"])
    _second_pass(session, cfg, settings, work, videos)
    if cfg.hands and hands and not any(hands.values()):
        log.warning("hands: no hand detected in any frame of cameras %s; the hand keypoints stay empty (the body "
                    "is unaffected, fingers are left to the fit's rest pose)", sorted(hands))
    return _finish(work, out, cfg)


def _second_pass(session: Session, cfg: Config, settings, work: Path, videos: dict[str, Path]) -> None:
    """Every camera detected: look again where the other views place a missed person (detect.recover), once
    (its summary in the file's info says it ran; a pass interrupted by Ctrl-C is done by the next run)."""
    from mocap.io.hdf5 import keypoints2d_info

    if recover.wanted(cfg) and "recover" not in keypoints2d_info(work):
        recover.recover_session(session, cfg, settings.triangulate, work, videos, guide=_guide(settings))


def _guide_key(rr) -> dict:
    """The rig_refine settings the second pass's camera refinement reads (:func:`_guide`): not the search for a
    camera moved mid-take (``moves_*``), which it does not run; only that it is off when it is."""
    return {k: v for k, v in asdict(rr).items() if not k.startswith("moves_")} if rr.enabled else {"enabled": False}


def _guide(settings):
    """The camera refinement the second pass places people through (:mod:`mocap.detect.recover_rig`): the rig_refine
    stage's computation with the run's settings; None when it is switched off."""
    rr = getattr(settings, "rig_refine", None)
    if rr is None or not rr.enabled:
        return None
    from mocap.stages import rig_people

    on = rig_people.refined_on(settings)
    return lambda rig, kp: rig_people.run(rig, kp, rr, on)


WARMUP_FRAMES = 30  # detect.split with a tracking detector: frames run (and discarded) before a cut chunk
WORKER_RETRIES = 1  # a pool whose worker died is started again this many times for the chunks not done
last_run: dict = {}  # this process's last pooled detection: wall, start-up, idle tail (for mocap bench detect)


def _finish(work: Path, out: Path, cfg: Config) -> Path:
    """Every camera is done: the partial file becomes ``pose2d.h5`` (one rename). With ``persons = auto``, its
    persons axis is first cut to the slots some view filled (at least 1): a take with one person gives the file
    ``persons = 1`` gives."""
    if cfg.persons == "auto":
        scan.fit_persons_axis(work)
    if work != out:
        os.replace(work, out)
    return out

