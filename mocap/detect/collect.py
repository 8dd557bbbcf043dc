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
             hands: dict[str, float], workers: int = 0, keys: list | None = None) -> None:
    """Write each camera once all its chunks are back (in ``gathered``, which outlives a broken pool; a chunk
    that comes back twice is kept once), and mark it complete. With hands, each camera's share of frames with
    at least one hand goes into ``hands`` as it is written (so a later broken pool does not lose it). Once
    fewer chunks are left than ``workers``, a core is free: :func:`mocap.ahead.core_free`.

    A chunk that fails (a video cut short, a damaged file: ``keys``, the futures' (camera, first, end), name its
    camera) does not stop the others: every other camera is detected and kept, then the first failure is raised
    (:func:`failed_cameras`), so that the next run, once the file is mended, detects only that camera. A broken
    pool (a worker that died) is raised at once (the stage retries its chunks)."""
    from concurrent.futures.process import BrokenProcessPool

    from mocap import ahead
    from mocap.io.hdf5 import write_camera

    tail = workers > 0
    index = {id(f): k for f, k in zip(futures, keys or [], strict=False)}
    failed: list[tuple[str | None, Exception]] = []
    for fut in as_completed(futures):
        if tail and sum(not f.done() for f in futures) < workers:
            tail = False
            ahead.core_free()
        try:
            cam, first, end, piece, stats = fut.result()
        except BrokenProcessPool:
            raise
        except Exception as e:  # noqa: BLE001 - raised once the other cameras are in (failed_cameras)
            failed.append(chunk_failed(index.get(id(fut), (None,))[0], e))
            continue
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
        own = len(data)  # its own frames (a shorter camera is padded below)
        stats = {k: sum(s[k] for _, s in pieces) for k in ("frames", "decode_s", "infer_s")}
        if len(data) < F:  # a shorter camera: the missing end stays NaN
            data = np.concatenate([data, np.full((F - len(data),) + data.shape[1:], np.nan, data.dtype)])
        write_camera(work, names.index(cam), data)
        _still(work, cam, [s.get("change") for _, s in pieces], [len(p) for p, _ in pieces])
        seen = np.mean(np.isfinite(data[:own, 0, 0, 0])) if own else 0.0
        log.info("camera %s: %d frames, person in %.1f%%, decode %.1f ms/frame, inference %.1f ms/frame", cam,
                 sum(len(p) for p, _ in pieces), 100 * seen, 1000 * stats["decode_s"] / max(stats["frames"], 1),
                 1000 * stats["infer_s"] / max(stats["frames"], 1))
        if scans := [s["scans"] for _, s in pieces if "scans" in s]:
            log.info("camera %s: %s", cam, scan.describe(scans))
        if data.shape[2] == 75:
            hands[cam] = float(np.mean(np.isfinite(data[:own, :, 33:, 0]).any(axis=(1, 2)))) if own else 0.0
            log.info("camera %s: hands in %.1f%% of frames", cam, 100 * hands[cam])
    if failed:
        raise failed_cameras(failed)


def chunk_failed(camera: str | None, e: Exception) -> tuple[str | None, Exception]:
    """A chunk's failure, said at once (the other cameras go on), as :func:`failed_cameras` takes it."""
    log.error("%s%s; the other cameras go on", f"camera {camera}: " if camera else "", e)
    return camera, e


def failed_cameras(failed: list[tuple[str | None, Exception]]) -> Exception:
    """The error to raise for chunks that failed while the other cameras were kept: the first failure's text (a
    ValueError stays one: a bad input), with which cameras are to be detected again and how."""
    cams = sorted({c for c, _ in failed if c})
    first = failed[0][1]
    which = ", ".join(cams) if cams else "the cameras that failed"
    more = f" ({len(failed) - 1} more chunk(s) failed, see the log)" if len(failed) > 1 else ""
    text = (f"{first}{more}; the other cameras' detections are kept: once the video is replaced or re-encoded, "
            f"the same command detects only {which} again (leaving a camera out instead, its video and its rig "
            "camera removed, detects every camera again)")
    out = ValueError(text) if isinstance(first, ValueError) else RuntimeError(text)
    out.__cause__ = first
    return out


def _still(work: Path, cam: str, changes: list, lengths: list[int]) -> None:
    """The camera's still and quiet frames (:mod:`mocap.detect.repeats`) into the file's ``info["still_frames"]``
    and ``info["quiet_frames"]``, from its chunks' per-frame changes (none recorded, e.g. a stand-in detector:
    nothing written)."""
    if any(c is None or len(c) != n for c, n in zip(changes, lengths, strict=True)):
        return
    record_still(work, cam, np.concatenate([np.asarray(c, float) for c in changes]))


def record_still(work: Path, cam: str, c: np.ndarray) -> None:
    """A camera's per-frame changes ``c`` (NaN: not measured) → its still, quiet and blank frames in ``work``'s info
    (the local pool's and the Dask path's)."""
    from mocap.detect import repeats
    from mocap.io.hdf5 import keypoints2d_info, update_keypoints2d_info

    info = keypoints2d_info(work)
    still, blank = repeats.still_frames(c), repeats.blank_frames(c)
    quiet = sorted(set(repeats.still_frames(c, repeats.QUIET)) | set(blank))  # black: no sign the scene moves
    update_keypoints2d_info(work, still_frames=(info.get("still_frames") or {}) | {cam: still},
                            quiet_frames=(info.get("quiet_frames") or {}) | {cam: quiet},
                            blank_frames=(info.get("blank_frames") or {}) | {cam: blank})
