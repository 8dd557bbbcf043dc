"""The second pass's crops (:mod:`mocap.detect.recover`) and its last looks on ROIs (:mod:`mocap.detect.recover_roi`):
read and run through the landmark model in this process, or in worker processes, one camera's part of a round
each.

The model is the pass's cost: on Pose2Sim's real two-person take (4 cameras, 100 frames of 1080×1920) a round
looks at ~300 boxes, each a video frame decoded (every frame of the range is, as the video is read in order) and a
crop through MediaPipe's pose landmarker in IMAGE mode (its person detector, then the landmarks: ~55 CPU ms a
crop, twice a tracked frame's), and the first detection pass before it uses every core while this one used one.
What a crop gives depends on the crop alone, so the crops of a round are computed in workers (a camera, or a
contiguous part of one, each) before the round judges them in this process in the order it always has: the
detections written are the same as one process computing them in turn. A box whose view has no free slot when
the round starts is not computed (it could not be written); one whose view fills during the round is computed
and not used, as before it was not computed (rare: two people recovered in one view and frame).
"""

from __future__ import annotations

import logging
import math
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from mocap.detect.boxes import crop_image, to_image
from mocap.detect.worker_log import kept, said

log = logging.getLogger(__name__)
MIN_CROPS = 8  # crops per worker at least (~0.4 CPU s of model each)
MIN_ROIS = 64  # ROI looks per worker at least (the model alone: ~19 CPU ms an ROI; a new worker pays ~1 CPU s to
# import MediaPipe and make its graphs: a pool the crops started takes fewer)
_worker: dict = {}  # in a worker process: its model


def serial(video: Path, items: list[tuple[int, np.ndarray]], model: Callable[[np.ndarray], np.ndarray],
           crop_px: int, threads: int = 0) -> Callable[[int], np.ndarray | None]:
    """found(k) for the ``items`` [(video frame, box)] in frame order, computed when asked (k not decreasing): the
    frames read in order from the first asked, a crop through ``model`` each."""
    boxes = [box for _, box in items]

    def one(image: np.ndarray, k: int) -> np.ndarray:
        return to_image(model(crop_image(image, boxes[k], crop_px)), boxes[k], crop_px)

    return _in_order(video, [i for i, _ in items], one, threads)


def serial_rois(video: Path, items: list[tuple[int, tuple]], model: Callable, threads: int = 0) -> Callable:
    """found(k) for the ``items`` [(video frame, ROI)] in frame order, as :func:`serial` for crops: the pose
    landmark model alone (:class:`~mocap.detect.pose_roi.RoiPose`) on the item's ROI of its frame, (landmarks (33,
    3), pose flag), or None where the video ends before the frame."""
    rois = [roi for _, roi in items]

    def one(image: np.ndarray, k: int) -> tuple[np.ndarray, float]:
        landmarks, presence = model(image, [rois[k]])
        return landmarks[0], float(presence[0])

    return _in_order(video, [i for i, _ in items], one, threads)


def _in_order(video: Path, frames_at: list[int], compute: Callable, threads: int) -> Callable:
    """found(k) = compute(the video's frame ``frames_at[k]``, k), asked with k not decreasing: the frames read in
    order from the first asked; None where the video ends before the frame."""
    from mocap.io import video as video_io  # looked up now: the tests put a stand-in reader there

    frames: Iterator | None = None
    current: tuple[float, np.ndarray | None] = (-1, None)
    asked = [-1]

    def found(k: int):
        nonlocal frames, current
        i = frames_at[k]
        if i < asked[0]:
            raise ValueError(f"recover: frames asked out of order ({i} after {asked[0]})")
        asked[0] = i
        if frames is None:
            extra = {"threads": threads} if threads else {}  # (the tests' stand-in readers take no threads)
            frames = video_io.read_frames(video, 1, i, frames_at[-1] + 1, **extra)
        while current[0] < i:
            current = next(frames, (np.inf, None))
        if current[0] != i:
            return None
        return compute(current[1], k)

    def close() -> None:  # the reader ends now, not when collected (its warnings: said within the caller's block)
        if frames is not None:
            frames.close()

    found.close = close
    return found


def computed_rois(run, items: dict[int, list[tuple[int, tuple]]]) -> dict[int, list] | None:
    """The ROI looks of ``run`` (:mod:`mocap.detect.recover_roi`; ``items``: {camera: [(video frame, ROI)]} in frame
    order, those of views with a free slot now) computed in the worker processes: {camera: [(landmarks, pose flag)
    or None]}; None where this process computes them as it goes (one worker and no pool started, or a model that
    cannot be rebuilt in a worker)."""
    spec = getattr(run.model, "spec", None)
    roi_spec = getattr(run.roi_model, "spec", None)
    n = sum(map(len, items.values()))
    workers = workers_for(run.workers, n, MIN_ROIS)
    if run.pool is not None:  # a pool already started takes a few ROIs too (its models are made)
        workers = max(workers, min(run.pool.size, n))
    if spec is None or roi_spec is None or n == 0 or workers < 2 and run.pool is None:
        return None
    run.pool = run.pool or Pool(spec, run.workers)
    return run.pool.run_rois({c: run.videos[run.names[c]] for c in items}, items, roi_spec, workers)


def computed(run, by_camera: dict[int, list], bar) -> dict[int, list] | None:
    """The crops of a round of ``run`` (:class:`mocap.detect.recover._Run`; ``by_camera``: its candidates per
    camera in frame order) computed in worker processes, those of views with a free slot now: {camera: [found or
    None]}; None where the round computes them as it goes (one worker and none started yet, or a model that is no
    :class:`~mocap.detect.blazepose.CropPose`)."""
    from mocap.detect.recover import free_slot

    spec = getattr(run.model, "spec", None)
    free = {c: [k for k, cand in enumerate(cands) if free_slot(run.data[cand.frame, c]) >= 0]
            for c, cands in by_camera.items()}
    crops = sum(map(len, free.values()))
    workers = workers_for(run.workers, crops)
    if run.pool is not None:  # a pool already started takes a round's few crops too (its models are made)
        workers = max(workers, min(run.pool.size, crops))
    if spec is None or crops == 0 or workers < 2 and run.pool is None:
        return None
    items = {c: [(int(run.video_frames[by_camera[c][k].frame]), by_camera[c][k].box) for k in ks]
             for c, ks in free.items()}
    run.pool = run.pool or Pool(spec, run.workers)
    got = run.pool.run({c: run.videos[run.names[c]] for c in items}, items, run.cfg.crop_px, workers, bar.update)
    out = {c: [None] * len(cands) for c, cands in by_camera.items()}
    for c, ks in free.items():
        for k, found in zip(ks, got[c], strict=True):
            out[c][k] = found
    return out


def workers_for(asked: int, crops: int, least: int = MIN_CROPS) -> int:
    """Worker processes for a round of ``crops`` crops: ``asked`` (detect.workers; 0: one per core), each with at
    least ``least`` (:data:`MIN_CROPS`; :data:`MIN_ROIS` for ROI looks: a worker's start, ~0.3 CPU s with its
    model, is then a small share); 1: this process."""
    from mocap.threads import cores

    return max(1, min(asked or cores(), crops // least))


def split(items: dict[int, list], workers: int) -> list[tuple[int, int, int]]:
    """(camera, start, stop) parts of each camera's item list: a camera's items cut into contiguous parts (each
    read from its first frame) so that there are about ``workers`` parts when there are fewer cameras."""
    cams = [c for c, v in items.items() if v]
    per = max(1, math.ceil(workers / max(1, len(cams))))
    out = []
    for c in cams:
        n = len(items[c])
        k = min(per, n)
        edges = np.linspace(0, n, k + 1).round().astype(int)
        out += [(c, int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]
    return sorted(out, key=lambda p: p[1] - p[2])  # the largest first


class Pool:
    """Worker processes computing crops and ROI looks, made on the first round that wants them and kept for the
    pass's next rounds (each worker's model is made once: ~0.3 CPU s). ``spec``:
    :class:`~mocap.detect.blazepose.CropPose`'s arguments; ``asked``: detect.workers (0: one per core)."""

    def __init__(self, spec: dict, asked: int):
        self.spec, self.asked, self._pool, self.size = spec, asked, None, 0

    def run(self, videos: dict[int, Path], items: dict[int, list[tuple[int, np.ndarray]]], crop_px: int,
            workers: int, done: Callable[[int], None] = lambda n: None) -> dict[int, list[np.ndarray]]:
        """Every camera's found skeletons (image pixels), one per item [(video frame, box)] in frame order, in
        ``workers`` processes; ``done(n)``: n more crops computed. Ctrl-C (any error) stops the workers."""
        return self._map(_crops, videos, items, (crop_px,), workers, done)

    def run_rois(self, videos: dict[int, Path], items: dict[int, list[tuple[int, tuple]]], roi_spec: dict,
                 workers: int, done: Callable[[int], None] = lambda n: None) -> dict[int, list]:
        """Every camera's (landmarks, pose flag) of the ROI looks, one per item [(video frame, ROI)] in frame order
        (None past the video's end), in ``workers`` processes: each worker makes the ROI model
        (:class:`~mocap.detect.pose_roi.RoiPose` of ``roi_spec``) on its first ROI."""
        return self._map(_rois, videos, items, (roi_spec,), workers, done)

    def _map(self, task: Callable, videos: dict[int, Path], items: dict[int, list], args: tuple, workers: int,
             done: Callable[[int], None]) -> dict[int, list]:
        from mocap.detect import pool as pool_start

        parts = split(items, workers)
        if self._pool is None or self.size < min(workers, len(parts)):
            self.close()
            self.size = min(workers, len(parts))
            self._pool = ProcessPoolExecutor(max_workers=self.size, mp_context=pool_start.context(),
                                             initializer=_init, initargs=(self.spec,))
        out: dict[int, list] = {c: [None] * len(v) for c, v in items.items()}
        try:
            futures = {self._pool.submit(task, videos[c], items[c][a:b], *args): (c, a) for c, a, b in parts}
            for fut in as_completed(futures):
                c, a = futures[fut]
                found, warned = fut.result()  # None past the video's end
                said(warned, logging.DEBUG)  # detection said them already (a damaged frame): the run's log only
                out[c][a:a + len(found)] = found
                done(len(found))
        except BaseException:
            self.close(stop=True)
            raise
        return out

    def close(self, stop: bool = False) -> None:
        """Let the workers go (``stop``: at once, their crops dropped: a part is minutes of work at most)."""
        if self._pool is None:
            return
        if stop:
            for proc in list((getattr(self._pool, "_processes", None) or {}).values()):
                if proc.is_alive():
                    proc.terminate()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool = None


def _init(spec: dict) -> None:
    """A worker: Ctrl-C is the main process's to handle (it stops the workers); the model made on the first crop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from mocap.detect.blazepose import CropPose

    _worker["model"] = CropPose(**spec)


def _rois(video: Path, items: list[tuple[int, tuple]], roi_spec: dict) -> tuple[list, list]:
    """A worker's part of the ROI looks: :func:`serial_rois` on its items with its ROI model (made on the first)."""
    from mocap.detect.pose_roi import RoiPose

    key = tuple(sorted(roi_spec.items()))
    if _worker.get("roi_key") != key:
        if "roi" in _worker:
            _worker["roi"].close()
        _worker["roi"], _worker["roi_key"] = RoiPose(**roi_spec), key
    return _part(lambda: serial_rois(video, items, _worker["roi"], threads=1), len(items))


def _crops(video: Path, items: list[tuple[int, np.ndarray]], crop_px: int) -> tuple[list[np.ndarray | None], list]:
    """A worker's part: :func:`serial` on its items (one decoder thread: every core is busy inferring), and the
    warnings logged meanwhile (:mod:`mocap.detect.worker_log`)."""
    return _part(lambda: serial(video, items, _worker["model"], crop_px, threads=1), len(items))


def _part(reader: Callable[[], Callable], n: int) -> tuple[list, list]:
    """Every item of a part, ``reader()``'s found(k) for k < ``n`` (its reader closed, also on an error), and the
    warnings logged meanwhile: the same video's as detection's (its damaged frames), for the run's log only."""
    with kept([]) as warned:
        found = reader()
        try:
            out = [found(k) for k in range(n)]
        finally:
            found.close()
    return out, warned
