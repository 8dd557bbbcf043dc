"""The detect stage's work: (camera, frame range) chunks, and what a pool worker keeps warm and runs.

A chunk is ``(camera, first, end)``: output frames ``[first, end)`` of one camera. :func:`plan_chunks`
lays the cameras end to end and cuts that line into one equal share per worker (McNaughton's
wrap-around rule), so at most ``workers - 1`` cameras are cut, and only when whole cameras cannot keep
every worker busy (4 cameras on 2 workers: none; 3 cameras: one, in two halves).

Cutting is exact only for a detector without memory (``stateless = True`` on its class). BlazePose
tracks: each frame's crop comes from the previous frame's landmarks, and its landmark smoothing
(one-euro filters) has a memory longer than any warm-up we measured. On the 4-camera demo, a chunk cut
at frame 50 or 75 that first runs its detector over the K frames before its range (discarded) differs
from the unchunked run by (median / P95 over its keypoints): K = 0: 2.4-5.0 / 8-75 px; K = 20:
1.2-3.2 / 4-64 px; K = 40: 0.8-3.7 / 3-147 px; K = 60: 1.4-2.7 / 4.6-20 px (``python -m
mocap.bench.detect warmup``): more warm-up stops helping after about 20 frames, and it never comes
within 0.5 px. Its first timestamp matters too (a graph whose first frame is at 0 ms skips one filter
step, so even a reused graph cannot restart as a new one). So a tracking detector's cameras are cut
only when ``detect.split`` asks for it (faster when cameras do not divide among the workers, at that
cost, with WARMUP_FRAMES of warm-up); by default results do not depend on the number of workers.

A worker creates its detector while the pool starts (:func:`prepare`), so the first chunk it takes
does not wait for it; later chunks get a fresh one (a reused graph does not restart like a new one), or the
last chunk's restarted when it can be (:mod:`mocap.detect.pool_detectors`).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import math
import multiprocessing
import os
import queue
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mocap.detect import progress, repeats
from mocap.detect.pool_detectors import keep, prepare, reuse, take
from mocap.detect.worker_log import kept
from mocap.io.video import probe, read_frames, remember
from mocap.warm import DEFERRED, defer_import  # noqa: F401 - defer_import: also imported from here

log = logging.getLogger(__name__)
Chunk = tuple[str, int, int]
MIN_PIECE = 10  # output frames: a cut that would leave less than this on one side is not made


def plan_chunks(frames: dict[str, int], workers: int, split: bool) -> list[Chunk]:
    """Chunks covering every camera, longest first (the order a pool should take them). Without ``split``,
    whole cameras; with it, the cameras cut into ``workers`` equal shares (fewest cuts)."""
    if workers < 1:
        raise ValueError(f"detect: need at least 1 worker, got {workers}")
    cameras = sorted(frames, key=lambda c: -frames[c])  # stable: rig order on ties
    if not split or workers == 1:
        return [(c, 0, frames[c]) for c in cameras]
    share = max(MIN_PIECE, math.ceil(sum(frames[c] for c in cameras) / workers))
    out: list[Chunk] = []
    room = share
    for cam in cameras:
        first, n = 0, frames[cam]
        if n <= 0:
            out.append((cam, 0, 0))  # detect_video says the camera gave no frames
        while first < n:
            left = n - first
            take = min(left, room)
            if left - take < MIN_PIECE:  # the rest would be a sliver: this share runs a little over
                take = left
            elif take < MIN_PIECE:  # this share's room is a sliver: the camera goes on in the next share
                room = share
                continue
            out.append((cam, first, first + take))
            first += take
            room -= take
            if room <= 0:
                room = share
    return sorted(out, key=lambda c: -(c[2] - c[1]))


def chunk_range(first: int, end: int, warmup: int) -> tuple[int, int]:
    """The output frames a chunk runs its detector on: ``warmup`` frames before ``first`` (discarded), then
    its own range."""
    return max(0, first - warmup), end


def is_stateless(name: str, hands: bool) -> bool:
    """Whether the registered detector ``name`` declares that a frame's result does not depend on the
    frames before (a class attribute ``stateless = True``). Hands are tracked: never stateless."""
    import importlib

    from mocap.detect import DETECTORS

    if hands or name not in DETECTORS:
        return False
    module, cls = DETECTORS[name].split(":")
    return getattr(getattr(importlib.import_module(module), cls), "stateless", False) is True


def timeline_summary(chunks: list[dict], started_at: float, wall_s: float, workers: int, cameras: int) -> dict:
    """Where a pooled detection's wall went, from each chunk's timings: ``startup_s`` (pool start to a
    worker's first frame request, averaged over workers), ``tail_s`` (the end with workers idle: the last
    chunk's end minus the first worker to run out of chunks), ``after_last_chunk_s`` (the last chunk's end to
    the end: its result written, the workers' exit), the CPU seconds of decoding, inference and writing the
    proxies (:mod:`mocap.io.proxy`), the seconds spent creating detectors, and the workers' process CPU
    seconds before their first chunk (``worker_startup_cpu_s``: interpreter, imports, the first detector) and
    at the end of their last (``worker_cpu_s``)."""
    by_pid: dict[int, list[dict]] = {}
    for c in chunks:
        by_pid.setdefault(c["pid"], []).append(c)
    firsts = [min(c["start"] for c in cs) - started_at for cs in by_pid.values()]
    lasts = [max(c["end"] for c in cs) for cs in by_pid.values()]
    # a worker's process CPU before its first chunk (imports, its first detector) and at its last chunk's end
    before = [min(c.get("process_cpu_start", 0.0) for c in cs) for cs in by_pid.values()]
    total = [max(c.get("process_cpu_end", 0.0) for c in cs) for cs in by_pid.values()]
    return {"wall_s": wall_s, "workers": workers, "cameras": cameras, "chunks": len(chunks),
            "startup_s": sum(firsts) / len(firsts) if firsts else 0.0,
            "tail_s": max(lasts) - min(lasts) if lasts else 0.0,
            "after_last_chunk_s": started_at + wall_s - max(lasts) if lasts else 0.0,
            "decode_cpu_s": sum(c["decode_cpu_s"] for c in chunks),
            "infer_cpu_s": sum(c["infer_cpu_s"] for c in chunks),
            "proxy_cpu_s": sum(c.get("proxy_cpu_s", 0.0) for c in chunks),
            "setup_s": sum(c["setup_s"] for c in chunks),
            "worker_startup_cpu_s": sum(before), "worker_cpu_s": sum(total)}


def stop_pool(pool) -> None:
    """Ctrl-C: drop the chunks not started and wait for the running ones to stop at their next frame
    (their cameras are not marked complete, so the next run redoes them). Workers are told again in
    case the signal reached only this process."""
    import signal

    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        if proc.is_alive():
            os.kill(proc.pid, signal.SIGINT)
    pool.shutdown(wait=True, cancel_futures=True)


def camera_frames(frames: int, cfg) -> int:
    """Output frames of a camera with ``frames`` video frames under the detect config."""
    stop = frames if cfg.stop is None else min(cfg.stop, frames)
    return len(range(cfg.start, stop, cfg.stride))


def frames_to_detect(frames: dict[str, int], cfg) -> dict[str, int]:
    """Each camera's output frames (:func:`camera_frames`) from its video frames; a shorter camera that ends
    before ``detect.start`` is said to be left missing (its empty chunk: :func:`detect_chunk`)."""
    out = {c: camera_frames(n, cfg) for c, n in frames.items()}
    for c, n in frames.items():
        if n > 0 and out[c] == 0 and any(out.values()):
            log.warning("camera %s: its video ends at frame %d, before detect.start = %d: left missing (NaN)", c, n,
                        cfg.start)
    return out


# ----- inside a pool worker -------------------------------------------------------------------------

@dataclass
class WorkerState:
    started: bool = False  # this process is a pool worker
    slot: int = 0  # its progress-bar line
    stop_requested: bool = False  # Ctrl-C: the chunk ends at its next frame
    decoder_threads: int = 0  # its video decoder's threads (0: FFmpeg's choice, one per core)


worker = WorkerState()


def worker_init(detectors: dict[str, str] | None = None, slots=None, cfg=None, env: dict | None = None,
                decoder_threads: int = 0, counts=None) -> None:
    """Ctrl-C reaches the whole process group: a worker only notes it, ends its chunk at the next frame
    and stays quiet (no traceback per worker); the main process reports it once. ``detectors``: the
    parent's registry (detectors added with register_detector reach the workers). ``slots``: a queue of
    progress-bar lines, one taken per worker. ``cfg``: the detect config whose detector is created now,
    while the pool starts, for the worker's first chunk. ``env``: the parent's environment now (a worker forked
    from the fork server would otherwise see the server's, from when it started: see :func:`take_environment`).
    ``decoder_threads``: its video decoder's, the cores per worker (1 with a worker per core, each busy inferring:
    FFmpeg's own threads would only add their hand-offs, 0.2-0.3 CPU s on the demo's 400 frames). ``counts``: the
    shared frame counts its frames go into (:mod:`mocap.detect.progress`)."""
    import signal

    from mocap.detect import DETECTORS

    if env is not None:
        take_environment(env)

    def request_stop(signum, frame) -> None:
        worker.stop_requested = True

    signal.signal(signal.SIGINT, request_stop)
    worker.started = True
    worker.decoder_threads = max(0, int(decoder_threads))
    for name, target in (detectors or {}).items():
        DETECTORS.setdefault(name, target)
    if slots is not None:
        with contextlib.suppress(queue.Empty):
            worker.slot = slots.get(timeout=5.0)
    progress.attach(counts)
    for name in DEFERRED:
        defer_import(name)
    if multiprocessing.parent_process() is not None:  # a pool's child (not a test calling this in its process)
        atexit.register(exit_now)  # before the detectors' own handlers, which then run first
    if cfg is not None:
        from mocap.stages.detect import make_detector

        prepare(cfg, make_detector)


def take_environment(env: dict[str, str]) -> None:
    """Make this process's environment ``env`` (what the pool's parent has), but for the quiet settings for
    the native libraries (:data:`mocap.quiet.QUIET_ENV`) that the fork server set before importing them."""
    from mocap.quiet import QUIET_ENV

    for k in [k for k in os.environ if k not in env and k not in QUIET_ENV]:
        del os.environ[k]
    for k, v in env.items():
        if os.environ.get(k) != v:
            os.environ[k] = v


def exit_now() -> None:
    """A pool worker's last exit handler: no interpreter teardown (0.05-0.06 CPU s with mediapipe loaded); its
    results are sent (its queues joined), the detectors' handlers run; status 0, as a pool worker's always is.
    A spawned worker's only: one forked from the fork server (:mod:`mocap.detect.pool`) ends with ``os._exit``
    and runs no exit handler."""
    import sys

    logging.shutdown()  # registered before this handler: it would not run
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, OSError, ValueError):
            stream.flush()
    os._exit(0)


def detect_video(camera: str, path: Path, cfg, position: int = 0,
                 overlay: Path | None = None, proxy: tuple | None = None) -> tuple[str, np.ndarray, dict]:
    """Run the detector on one video. Returns (camera, (F, P, J, 3), timings); with ``overlay``, also
    writes that review video; with ``proxy`` (session root, camera, size), the reader thread also writes
    the frames it decodes, shrunk, as a segment of that camera's proxy (:mod:`mocap.io.proxy`). The reader
    thread starts first, so frames are decoded while the detector is created; in a pool worker, the
    detector prepared at its start is used when there is one."""
    from mocap.detect.overlay import OverlayWriter, draw_keypoints
    from mocap.io import proxy as proxies
    from mocap.keypoint_sets import get_keypoint_set
    from mocap.stages.detect import make_detector

    t_start, cpu_start = time.time(), time.process_time()
    info = probe(path)
    stop = info.frames if cfg.stop is None else min(cfg.stop, info.frames)
    indices = list(range(cfg.start, stop, cfg.stride))
    frames: queue.Queue = queue.Queue(maxsize=16)
    decode_s = decode_cpu = proxy_cpu = 0.0

    halt = threading.Event()  # the detector stopped early (an error, Ctrl-C): the reader ends too

    def put(item) -> bool:
        while not halt.is_set():
            try:
                frames.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    changes = repeats.Changes()  # each frame's change from the one before (mocap.detect.repeats)

    def reader() -> None:
        nonlocal decode_s, decode_cpu, proxy_cpu
        source = read_frames(path, cfg.stride, cfg.start, stop, threads=worker.decoder_threads)
        segment, done = None, False
        try:
            segment = proxies.open_segment(proxy, path, cfg.start, cfg.stride, info.fps)
            t, c = time.perf_counter(), time.thread_time()
            for item in source:
                changes.add(item[1])
                decode_s += time.perf_counter() - t
                decode_cpu += time.thread_time() - c
                if segment is not None:
                    c = time.thread_time()
                    segment = proxies.write_or_drop(segment, *item)  # before the detector's loop may draw on the image
                    proxy_cpu += time.thread_time() - c
                if not put(item):
                    return
                t, c = time.perf_counter(), time.thread_time()
            done = True
            put(None)
        except Exception as e:  # noqa: BLE001 - raised again by the detector's loop, which would otherwise wait forever
            put(e)
        finally:
            source.close()  # releases the decoder in this thread
            if segment is not None:
                proxies.close_quietly(segment, done)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    detector = review = None
    out = None
    infer_s = 0.0
    ok = False
    try:
        t = time.perf_counter()
        detector = take(cfg) or make_detector(cfg)
        setup_s = time.perf_counter() - t
        if hasattr(body := getattr(detector, "body", detector), "phase"):  # persons = auto: scans on the frames the
            body.phase = cfg.start // cfg.stride  # whole camera scans, whatever the chunk (video frame // stride)
        review = OverlayWriter(overlay, (info.fps or 30.0) / cfg.stride, info.size) if overlay else None
        kps = get_keypoint_set(detector.keypoint_set)
        cpu0, decode_cpu0, proxy_cpu0 = time.process_time(), decode_cpu, proxy_cpu
        with tqdm(total=len(indices), desc=f"{camera:>10}", position=position, leave=False, unit="frame",
                  disable=None) as bar:
            k = 0
            while (item := frames.get()) is not None:
                if isinstance(item, Exception):
                    raise item
                i, img = item
                if worker.stop_requested:
                    raise KeyboardInterrupt
                t = time.perf_counter()
                det = detector(img, int(round(i * 1000.0 / (info.fps or 30.0))))
                infer_s += time.perf_counter() - t
                if out is None:
                    out = np.full((len(indices),) + det.shape, np.nan)
                out[k] = det
                if review is not None:
                    review.write(draw_keypoints(img, det, kps))
                k += 1
                bar.update(1)
                progress.tick(worker.slot)
        infer_cpu = time.process_time() - cpu0 - (decode_cpu - decode_cpu0) - (proxy_cpu - proxy_cpu0)
        scans = dict(getattr(getattr(detector, "body", detector), "stats", None) or {})  # persons = auto's scans
        ok = True
    finally:
        halt.set()
        thread.join()
        if detector is not None and not (ok and worker.started and reuse(cfg, detector)):
            detector.close()  # kept instead, in a pool worker, for its next chunk when it can restart
        if review is not None:
            review.close(ok)
    if out is None:
        raise ValueError(f"camera {camera!r}: {path} gave no frames")
    return camera, out, {"frames": len(indices), "decode_s": decode_s, "infer_s": infer_s, "setup_s": setup_s,
                         "decode_cpu_s": decode_cpu, "infer_cpu_s": infer_cpu, "proxy_cpu_s": proxy_cpu,
                         "start": t_start, "end": time.time(), "pid": os.getpid(),
                         "process_cpu_start": cpu_start, "process_cpu_end": time.process_time(),
                         "change": changes.values[:len(indices)], **({"scans": scans} if scans else {})}


def detect_chunk(camera: str, path: Path, cfg, first: int, end: int, warmup: int, position: int = -1,
                 overlay: Path | None = None, proxy: tuple | None = None,
                 probed: tuple | None = None) -> tuple[str, int, int, object, dict]:
    """Output frames [first, end) of one camera, after running the detector over the ``warmup`` frames before
    (discarded). ``position`` -1: this worker's progress-bar line; ``proxy``: see :func:`detect_video`;
    ``probed``: the caller's (:func:`mocap.io.video.probe_key`, info), not read again here (~15 ms CPU)."""
    from mocap.stages import detect  # its detect_video: a test may stand in for it

    if probed is not None:
        remember(*probed)

    a, b = chunk_range(first, end, warmup)
    if a == b and probe(path).frames > 0:  # a shorter camera ending before --start: missing (frames_to_detect)
        from mocap.keypoint_sets import get_keypoint_set

        joints = len(get_keypoint_set(probe_detector(cfg)).joints)
        now, cpu = time.time(), time.process_time()
        stats = {"frames": 0, "start": now, "end": now, "pid": os.getpid(), "process_cpu_start": cpu,
                 "process_cpu_end": cpu} | dict.fromkeys(("decode_s", "infer_s", "setup_s", "decode_cpu_s",
                                                          "infer_cpu_s", "proxy_cpu_s"), 0.0)
        return camera, first, end, np.full((0, cfg.slots, joints, 3), np.nan), stats
    part = replace(cfg, start=cfg.start + a * cfg.stride, stop=cfg.start + b * cfg.stride)
    label = camera if (a, b) == (0, end) else f"{camera}[{first}:{end}]"
    said: list = []  # a pool worker's warnings, logged by the run (mocap.detect.worker_log)
    with kept(said) if worker.started else contextlib.nullcontext():
        _, data, stats = detect.detect_video(label, path, part, worker.slot if position < 0 else position, overlay,
                                             **({"proxy": proxy} if proxy else {}))
    stats["change"] = stats.get("change", [])[first - a:]  # the warm-up frames' left out, as their detections
    return camera, first, end, data[first - a:], stats | ({"said": said} if said else {})


def probe_detector(cfg) -> str:
    """The detector's keypoint set, after checking that it can be made and fill ``persons``: a bad model
    fails before any frame. In a pool worker, the detector is kept for the worker's first chunk."""
    from mocap.stages.detect import check_persons, make_detector

    detector = (take(cfg) if worker.started else None) or make_detector(cfg)
    keypoint_set = detector.keypoint_set
    try:
        check_persons(detector, cfg.detector, cfg.persons)
    except ValueError:
        detector.close()
        raise
    if worker.started:
        keep(cfg, detector)
    else:
        detector.close()
    return keypoint_set
