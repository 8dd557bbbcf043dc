"""Detection and whole sessions on a Dask cluster (``mocap run --scheduler``, ``mocap batch``).

Where the work runs is not a setting of any stage: it does not enter the stages' fingerprints, so a
session detected on a cluster is up to date for a later local ``mocap run`` and the other way round.

Detection: :func:`use_scheduler` makes a client current for the process; while it is, the detect stage
hands its pending cameras to :func:`detect_on_cluster`, which splits them into (camera, frame range)
chunks, submits them, and writes each camera into the partial ``pose2d.h5`` once all its chunks are back
(so an interrupted run resumes camera by camera, as a local one). A chunk is computed by one task;
a task whose worker dies is run again by the scheduler on another worker, and a chunk that comes back
twice is written once. By default a chunk is a whole camera, which gives results identical to a local
run for every detector, tracking ones included. With ``chunk_frames`` > 0 a camera is split into
ranges of that many frames; each chunk first runs its detector on the ``warmup`` frames before its
range (results discarded) so that a tracking detector starts warm: results are then identical for
stateless detectors and can differ at chunk starts for trackers (BlazePose's landmark smoothing has
a long memory).

The workers must see the session's files at the same paths (a shared file system).
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mocap.detect.worker_log import kept, said

log = logging.getLogger(__name__)
CONNECT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class ClusterOptions:
    chunk_frames: int = 0  # 0: one chunk per camera (identical to a local run for every detector)
    warmup: int = 30  # frames run (and discarded) before a chunk's range, for tracking detectors
    retries: int = 2  # a chunk whose task raised is tried this many more times

    def __post_init__(self) -> None:
        if self.chunk_frames < 0 or self.warmup < 0 or self.retries < 0:
            raise ValueError(f"cluster options: chunk_frames, warmup and retries must be ≥ 0, got {self.chunk_frames}, "
                             f"{self.warmup}, {self.retries}")


_active: list[tuple[object, ClusterOptions]] = []


def connect(address: str, timeout_s: float = CONNECT_TIMEOUT_S):
    """A Dask client of the scheduler at ``address``; a clear error after ``timeout_s`` when it cannot be
    reached (never a hang)."""
    import socket

    from distributed import Client

    def fail(e: BaseException) -> RuntimeError:
        return RuntimeError(f"could not reach the Dask scheduler at {address!r} within {timeout_s:g} s "
                            f"({type(e).__name__}: {str(e) or 'no answer'}); start one (`dask scheduler`, see "
                            "README: Scale-out on Dask), check the address, or leave out --scheduler to run on this "
                            "machine")

    def not_scheduler(why: str) -> RuntimeError:  # e.g. the dashboard's HTTP port given for the scheduler's
        return RuntimeError(f"{address!r} answered but is not a Dask scheduler: {why}; check the address (a "
                            "scheduler listens on tcp://HOST:8786 by default, its dashboard, HTTP, on 8787), or leave "
                            "out --scheduler to run on this machine")

    from distributed.comm.addressing import parse_address, parse_host_port
    from distributed.comm.registry import backends

    reached = False
    try:  # checked before a Client exists (a Client that failed to connect complains again when collected)
        scheme, location = parse_address(address)
        if scheme not in backends:
            raise ValueError(f"unknown address scheme {scheme!r} (known: {sorted(backends)})")
        if scheme == "tcp":  # a refused or unroutable address fails here, quietly and within the timeout
            host, port = parse_host_port(location)
            socket.create_connection((host, port), timeout=timeout_s).close()
            reached = True
        _probe(address, timeout_s)  # something that accepts but never answers would hang a Client
    except NotASchedulerError as e:
        raise not_scheduler(str(e)) from None
    except Exception as e:  # noqa: BLE001 — anything that is not a scheduler answering in time is this error
        if reached and not isinstance(e, OSError | TimeoutError):  # it answered, in something else than Dask's protocol
            raise not_scheduler("its reply is not Dask's protocol (another service on that port: a web server, an "
                                "HTTP proxy?)") from None
        raise fail(e) from None
    try:
        return Client(address, timeout=f"{timeout_s}s", set_as_default=False)
    except Exception as e:  # noqa: BLE001 — anything that is not a scheduler (even garbage replies) is this error
        raise fail(e) from None


def _probe(address: str, timeout_s: float) -> None:
    """Ask ``address`` who it is (Dask's ``identity``), in a thread given ``timeout_s``: a TimeoutError when
    nothing answers in time, a NotASchedulerError when the answer is not a scheduler's."""
    import asyncio
    import threading

    from distributed.core import rpc

    result: dict = {}

    async def ask():
        r = rpc(address, timeout=timeout_s)
        try:
            return await r.identity()
        finally:
            await r.close_rpc()

    def run() -> None:
        try:
            result["identity"] = asyncio.run(asyncio.wait_for(ask(), timeout_s))
        except BaseException as e:  # noqa: BLE001 — handed to the caller's thread
            result["error"] = e

    thread = threading.Thread(target=run, daemon=True, name="dask-probe")
    thread.start()
    thread.join(timeout_s + 1.0)
    if thread.is_alive():
        raise TimeoutError(f"no answer within {timeout_s:g} s")
    if "error" in result:
        raise result["error"]
    kind = result["identity"].get("type") if isinstance(result["identity"], dict) else None
    if kind != "Scheduler":
        raise NotASchedulerError(f"it answered as {kind!r}")


class NotASchedulerError(ValueError):
    """A server that answered Dask's identity request as something else (a worker, a nanny)."""


@contextmanager
def client_for(address: str | None = None, workers: int = 0, timeout_s: float = CONNECT_TIMEOUT_S):
    """A client of the scheduler at ``address``, or of a new ``LocalCluster`` of ``workers`` processes (one
    thread each; default one per core) closed on exit. Local workers are not daemonic, so a session's
    detection may start its own processes in them."""
    if address:
        client = connect(address, timeout_s)
        try:
            yield client
        finally:
            client.close()
        return
    import dask
    from distributed import Client, LocalCluster

    n = workers or os.cpu_count() or 1
    with dask.config.set({"distributed.worker.daemon": False}), _workers_ignore_ctrl_c():
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR)
    try:
        client = Client(cluster, set_as_default=False)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()


@contextmanager
def _workers_ignore_ctrl_c():
    """While a LocalCluster starts its processes: SIGINT ignored, which they inherit (Python installs no
    KeyboardInterrupt handler where it starts ignored). Ctrl-C reaches the whole process group: this process
    cancels the sessions and closes the cluster, which ends its workers; interrupted themselves, every nanny and
    worker printed its own tracebacks (hundreds of lines for one Ctrl-C). A detection pool inside a worker still
    takes the signal (its workers install their own handler and stop at their next frame)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# loggers of the libraries under Dask whose errors after a Ctrl-C are their own shutdown races, not the user's: e.g.
# distributed's ``sync`` cancels the call Ctrl-C interrupted in a loop callback that can run before its future exists
# (``NameError: cannot access free variable 'future'``), which tornado logged with a traceback, once in a few runs
SHUTDOWN_NOISE = ("tornado.application", "asyncio", "distributed")


@contextmanager
def quiet_after_ctrl_c(loggers: tuple[str, ...] = SHUTDOWN_NOISE):
    """While inside: once Ctrl-C arrives (SIGINT, in the main thread, whose handler then runs as before: Python's own
    raises KeyboardInterrupt; nothing changes where SIGINT is ignored), the records of level ERROR and above of the
    ``loggers`` (and their children) are dropped by the root logger's handlers (their warnings still show): the
    interrupt is said in one line by the command, not by the libraries' tracebacks as they stop. Yields the event that
    is set at Ctrl-C."""
    import signal
    import threading

    stopping = threading.Event()
    previous = signal.getsignal(signal.SIGINT) if threading.current_thread() is threading.main_thread() else None
    if not callable(previous):  # not the main thread, or SIGINT ignored (a background job) or left to the system
        yield stopping
        return

    def on_ctrl_c(signum, frame):
        stopping.set()
        previous(signum, frame)  # Python's own raises KeyboardInterrupt

    class _Quiet(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return not (stopping.is_set() and record.levelno >= logging.ERROR and
                        any(record.name == n or record.name.startswith(n + ".") for n in loggers))

    quiet = _Quiet()  # on the handlers: a logger's own filter does not see its children's records
    handlers = list(logging.getLogger().handlers)
    for h in handlers:
        h.addFilter(quiet)
    signal.signal(signal.SIGINT, on_ctrl_c)
    try:
        yield stopping
    finally:
        signal.signal(signal.SIGINT, previous)
        for h in handlers:
            h.removeFilter(quiet)


@contextmanager
def use_scheduler(address: str | None, options: ClusterOptions = ClusterOptions(),
                  timeout_s: float = CONNECT_TIMEOUT_S):
    """While inside, the detect stage of this process sends its chunks to the scheduler at ``address``
    (``None``: nothing changes)."""
    if not address:
        yield None
        return
    with client_for(address, timeout_s=timeout_s) as client:
        _active.append((client, options))
        try:
            yield client
        finally:
            _active.pop()


def active():
    """(client, options) made current by :func:`use_scheduler`, or None."""
    return _active[-1] if _active else None


def plan_chunks(frames: dict[str, int], chunk_frames: int) -> list[tuple[str, int, int]]:
    """(camera, first, end) output-frame ranges covering every camera; ``chunk_frames`` 0 → whole cameras. A
    camera with no output frame (its video ends before ``detect.start``) gets one empty chunk, as a local run
    (:func:`mocap.detect.chunks.plan_chunks`): it is then written missing and marked complete."""
    out = []
    for cam, n in frames.items():
        step = chunk_frames or max(n, 1)
        out += [(cam, k, min(k + step, n)) for k in range(0, n, step)] if n > 0 else [(cam, 0, 0)]
    return out


def detect_chunk(camera: str, path: str, cfg_fields: dict, first: int, end: int, warmup: int,
                 detectors: dict[str, str], overlay: str | None = None) -> tuple[str, int, int, np.ndarray, dict]:
    """Task: output frames [first, end) of one camera (after ``warmup`` earlier frames, discarded); with
    ``overlay`` (whole cameras only), also that review video."""
    from mocap.detect import DETECTORS
    from mocap.stages import detect

    for name, target in detectors.items():  # detectors registered in the client process (plugins, tests)
        DETECTORS.setdefault(name, target)
    cfg = detect.Config(**cfg_fields)
    if first == end:  # a camera ending before detect.start: missing, as in a local run (an empty video still fails)
        from mocap.detect import chunks

        cam, a, b, data, stats = chunks.detect_chunk(camera, Path(path), cfg, first, end, 0, position=0)
        return cam, a, b, data, stats | {"host": os.uname().nodename, "pid": os.getpid()}
    a = max(0, first - warmup)
    chunk = replace(cfg, start=cfg.start + a * cfg.stride, stop=cfg.start + end * cfg.stride)
    with kept([]) as warned:  # the worker's warnings (a damaged frame), logged by the client (worker_log.said)
        _, data, stats = detect.detect_video(camera, Path(path), chunk, overlay=Path(overlay) if overlay else None)
    stats["change"] = stats.get("change", [])[first - a:]  # each frame's change (mocap.detect.repeats), no warm-up
    return camera, first, end, data[first - a:], stats | {"host": os.uname().nodename, "pid": os.getpid(),
                                                         "said": warned}


def camera_frames(frames: int, cfg) -> int:
    """Output frames of a camera with ``frames`` video frames under the detect config."""
    stop = frames if cfg.stop is None else min(cfg.stop, frames)
    return len(range(cfg.start, stop, cfg.stride))


def detect_on_cluster(videos: dict[str, Path], infos: dict, cfg, work: Path, names: list[str], F: int,
                      review: Path | None = None) -> None:
    """Detect ``videos`` (the cameras still missing) on the current cluster and write each camera into
    ``work`` (the partial pose2d file) when all its chunks are back; with ``review`` (a folder), each
    camera's overlay video goes there (whole-camera chunks)."""
    from dataclasses import asdict

    from distributed import as_completed
    from tqdm import tqdm

    from mocap.detect import DETECTORS
    from mocap.detect.chunks import frames_to_detect
    from mocap.detect.collect import chunk_failed, failed_cameras, record_still
    from mocap.io.hdf5 import write_camera
    from mocap.io.rig_files import check_camera_name

    client, opts = active()
    frames = frames_to_detect({c: infos[c].frames for c in videos}, cfg)  # warns of a camera ending before start
    chunks = plan_chunks(frames, 0 if review else opts.chunk_frames)  # an overlay video needs whole cameras
    fields = asdict(cfg)
    overlays = {c: str((review / f"{check_camera_name(review, c)}_pose2d.mp4").resolve()) if review else None
                for c in videos}
    futures = [client.submit(detect_chunk, cam, str(Path(videos[cam]).resolve()), fields, a, b, opts.warmup,
                             dict(DETECTORS), overlays[cam], key=f"mocap-detect-{cam}-{a}-{b}-{os.urandom(4).hex()}",
                             pure=False, retries=opts.retries) for cam, a, b in chunks]
    log.info("detection: %d chunks of %d cameras sent to %s", len(chunks), len(videos), client.scheduler.address)
    buffers: dict[str, np.ndarray] = {}
    changes = {c: np.full(F, np.nan) for c in videos}  # each frame's change from the one before (repeated frames)
    missing = {c: {(a, b) for cc, a, b in chunks if cc == c} for c in videos}
    bar = tqdm(total=len(chunks), desc="    chunks", unit="chunk", disable=None)
    chunk_of = {f.key: k for f, k in zip(futures, chunks, strict=True)}
    failed: list[tuple[str | None, Exception]] = []  # a camera that fails does not cost the others (as locally)
    try:
        for fut in as_completed(futures, loop=client.loop):
            try:
                cam, a, b, data, stats = fut.result()
            except Exception as e:  # noqa: BLE001 - raised once the other cameras are in (failed_cameras)
                failed.append(chunk_failed(chunk_of.get(fut.key, (None,))[0], e))
                continue
            if (a, b) not in missing[cam]:
                log.debug("chunk %s %d-%d came back twice; kept once", cam, a, b)
                continue
            said(stats.pop("said", None))
            if cam not in buffers:
                buffers[cam] = np.full((F,) + data.shape[1:], np.nan)
            buffers[cam][a:a + len(data)] = data
            if len(data) and len(change := stats.get("change") or []) == len(data):
                changes[cam][a:a + len(data)] = change
            missing[cam].discard((a, b))
            bar.update(1)
            log.debug("chunk %s %d-%d on %s (pid %s): decode %.1f s, inference %.1f s", cam, a, b, stats["host"],
                      stats["pid"], stats["decode_s"], stats["infer_s"])
            if not missing[cam]:
                write_camera(work, names.index(cam), buffers.pop(cam))
                record_still(work, cam, changes[cam])
                log.info("camera %s detected on the cluster (%d frames)", cam, frames[cam])
        if failed:
            raise failed_cameras(failed)
    except BaseException:
        client.cancel(futures)
        raise
    finally:
        bar.close()
