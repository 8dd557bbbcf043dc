"""The detectors a detect pool worker keeps between its chunks (:mod:`mocap.detect.chunks`).

A worker makes its first chunk's detector while the pool starts (:func:`prepare`), so that chunk does not
wait for it. A tracking detector cannot serve a later chunk as it is (a reused MediaPipe graph does not
restart like a new one: see :mod:`mocap.detect.chunks`), but one with a ``restart()`` that makes it a new
detector again can: ``persons = auto``'s :class:`~mocap.detect.scan.ScanningPose` makes a new landmarker and
keeps its person scanner, whose graph has no state between images (0.07 CPU s saved per later chunk, the
keypoints bit-identical). After a chunk that succeeded, its detector is kept (:func:`reuse`) and restarted for
the worker's next chunk with the same settings (:func:`take`); one with other settings gets a new detector.
A detector kept is closed when the worker exits (a multiprocessing finalizer: it runs in a forked worker as in
a spawned one), or when another replaces it.
"""

from __future__ import annotations

import contextlib
import logging

log = logging.getLogger(__name__)

_warm: dict[str, object] = {}  # config key → a detector created ahead, never called
_used: dict[str, object] = {}  # config key → a detector that served a chunk and can restart (at most one)
_finalizer = None  # closes what is kept when the worker exits


def _key(cfg) -> str:
    return repr((cfg.detector, cfg.variant, cfg.model_path, cfg.slots, cfg.hands,
                 cfg.scan_every if cfg.persons == "auto" else None))


def prepare(cfg, make) -> None:
    """Create (``make(cfg)``) the detector the worker's first chunk will use. A failure is left for that
    chunk to report (it creates the detector again and raises there, with the whole message)."""
    try:
        _warm[_key(cfg)] = make(cfg)
    except Exception as e:  # noqa: BLE001 - reported by the chunk that needs the detector
        log.debug("detector not prepared ahead: %s", e)
    _at_exit()


def take(cfg):
    """A detector for ``cfg`` (removed: a detector serves one chunk at a time): the one prepared ahead, else one
    an earlier chunk used, restarted; None when there is neither (or the restart failed: the caller makes one)."""
    key = _key(cfg)
    if key in _warm:
        return _warm.pop(key)
    used = _used.pop(key, None)
    if used is None:
        return None
    try:
        used.restart()
    except Exception as e:  # noqa: BLE001 - a new detector is made instead, and reports its own failure
        log.debug("detector not restarted: %s", e)
        _close(used)
        return None
    return used


def keep(cfg, detector) -> None:
    """Put an unused detector back for the next chunk (the probe only read its attributes)."""
    old = _warm.pop(_key(cfg), None)
    if old is not None:
        old.close()
    _warm[_key(cfg)] = detector


def reuse(cfg, detector) -> bool:
    """Keep ``detector``, which has just served a chunk with ``cfg`` to its end, for the worker's next chunk with
    the same settings, when it can ``restart()`` (False: it cannot, the caller closes it). One is kept: one kept
    for other settings is closed."""
    if not callable(getattr(detector, "restart", None)):
        return False
    while _used:
        _close(_used.popitem()[1])
    _used[_key(cfg)] = detector
    _at_exit()
    return True


def release() -> None:
    """Close every detector kept (the worker's exit)."""
    for store in (_used, _warm):
        while store:
            _close(store.popitem()[1])


def _close(detector) -> None:
    with contextlib.suppress(Exception):  # closing a detector we drop: nothing to report
        detector.close()


def _at_exit() -> None:
    global _finalizer
    if _finalizer is None or not _finalizer.still_active():
        from multiprocessing import util

        _finalizer = util.Finalize(None, release, exitpriority=10)
