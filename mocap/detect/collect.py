"""The detect stage's gathering of a pool's chunks (:mod:`mocap.stages.detect`): each camera written into the partial
file once all its chunks are back, and marked complete."""

from __future__ import annotations

import logging
from concurrent.futures import as_completed
from pathlib import Path

import numpy as np

from mocap.detect import scan
from mocap.detect.worker_log import said

log = logging.getLogger("mocap.stages.detect")


def collect(futures, work: Path, names: list[str], F: int, overall, plan: list, gathered: dict,
             hands: dict[str, float], workers: int = 0) -> None:
    """Write each camera once all its chunks are back (in ``gathered``, which outlives a broken pool; a chunk
    that comes back twice is kept once), and mark it complete. With hands, each camera's share of frames with
    at least one hand goes into ``hands`` as it is written (so a later broken pool does not lose it). Once
    fewer chunks are left than ``workers``, a core is free: :func:`mocap.ahead.core_free`."""
    from mocap import ahead
    from mocap.io.hdf5 import write_camera

    tail = workers > 0
    for fut in as_completed(futures):
        if tail and sum(not f.done() for f in futures) < workers:
            tail = False
            ahead.core_free()
        cam, first, end, piece, stats = fut.result()
        if (cam, first, end) in gathered:
            continue
        said(stats.pop("said", None))  # the worker's warnings (a damaged frame): on the console and in the run's log
        gathered[cam, first, end] = (piece, stats)
        overall.update(1)
        mine = sorted(k for k in plan if k[0] == cam)
        if any(k not in gathered for k in mine):
            continue
        pieces = [gathered[k] for k in mine]
        data = np.concatenate([p for p, _ in pieces])
        stats = {k: sum(s[k] for _, s in pieces) for k in ("frames", "decode_s", "infer_s")}
        if len(data) < F:  # a shorter camera: the missing end stays NaN
            data = np.concatenate([data, np.full((F - len(data),) + data.shape[1:], np.nan, data.dtype)])
        write_camera(work, names.index(cam), data)
        _still(work, cam, [s.get("change") for _, s in pieces], [len(p) for p, _ in pieces])
        seen = np.mean(np.isfinite(data[:, 0, 0, 0]))
        log.info("camera %s: %d frames, person in %.1f%%, decode %.1f ms/frame, inference %.1f ms/frame", cam,
                 sum(len(p) for p, _ in pieces), 100 * seen, 1000 * stats["decode_s"] / max(stats["frames"], 1),
                 1000 * stats["infer_s"] / max(stats["frames"], 1))
        if scans := [s["scans"] for _, s in pieces if "scans" in s]:
            log.info("camera %s: %s", cam, scan.describe(scans))
        if data.shape[2] == 75:
            hands[cam] = float(np.mean(np.isfinite(data[:, :, 33:, 0]).any(axis=(1, 2))))
            log.info("camera %s: hands in %.1f%% of frames", cam, 100 * hands[cam])


def _still(work: Path, cam: str, changes: list, lengths: list[int]) -> None:
    """The camera's still and quiet frames (:mod:`mocap.detect.repeats`) into the file's ``info["still_frames"]``
    and ``info["quiet_frames"]``, from its chunks' per-frame changes (none recorded, e.g. a stand-in detector:
    nothing written)."""
    if any(c is None or len(c) != n for c, n in zip(changes, lengths, strict=True)):
        return
    record_still(work, cam, np.concatenate([np.asarray(c, float) for c in changes]))


def record_still(work: Path, cam: str, c: np.ndarray) -> None:
    """A camera's per-frame changes ``c`` (NaN: not measured) → its still and quiet frames in ``work``'s info (the
    local pool's and the Dask path's)."""
    from mocap.detect import repeats
    from mocap.io.hdf5 import keypoints2d_info, update_keypoints2d_info

    info = keypoints2d_info(work)
    still, quiet = repeats.still_frames(c), repeats.still_frames(c, repeats.QUIET)
    update_keypoints2d_info(work, still_frames=(info.get("still_frames") or {}) | {cam: still},
                            quiet_frames=(info.get("quiet_frames") or {}) | {cam: quiet})
