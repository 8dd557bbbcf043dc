"""The BLAS thread pools of this process (OpenBLAS: NumPy's, SciPy's, any other loaded), limited for a while.

The stages after detection solve many small problems: batches of matrices of at most a few dozen columns, one
call after another. OpenBLAS hands the few products large enough to a second thread, and that thread then
spins waiting for the next one (OpenBLAS's thread timeout, about 0.1 s of busy waiting after each use), so on
the 100-frame demo those stages used about twice their wall time in CPU (0.83 CPU s for 0.47 s), the second
core busy doing nothing that detection's tail, the overlay renders or another process could have used, and on
a loaded machine the main thread also waits for a worker the scheduler has not run yet. :func:`limited` caps
every loaded OpenBLAS at one thread and puts the counts back afterwards; results change only in the last bits
(a threaded product sums in another order). Long takes gain nothing from more threads either: on an idle 16-core
machine refine on 20,000 frames took 43 s wall (267 CPU s) with 16 threads, 39 s with one (README, bench after).

Only OpenBLAS is known (by its ``openblas_[gs]et_num_threads`` functions, with the ``64_`` suffix of NumPy's
ILP64 build and the ``scipy_`` prefix of SciPy's wheels), only where the process's mapped libraries can be
listed (Linux' ``/proc/self/maps``); elsewhere :func:`limited` changes nothing.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

# (get, set) pairs, the first one a library has wins
_SYMBOLS = (("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
            ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
            ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
            ("openblas_get_num_threads", "openblas_set_num_threads"))
_MAPS = Path("/proc/self/maps")
_found: dict[str, tuple | None] = {}  # library path → its (get, set), None: not an OpenBLAS we can drive
_lock = threading.Lock()


def _loaded() -> list[str]:
    """The paths of the OpenBLAS libraries mapped in this process (empty where that cannot be told)."""
    try:
        text = _MAPS.read_text()
    except OSError:
        return []
    paths = {line.split(maxsplit=5)[-1] for line in text.splitlines() if "openblas" in line}
    return sorted(p for p in paths if p.startswith("/") and "openblas" in Path(p).name)


def _functions(path: str) -> tuple | None:
    if path not in _found:
        _found[path] = None
        try:
            lib = ctypes.CDLL(path)  # already loaded: the same handle, nothing initialised again
        except OSError as e:
            log.debug("BLAS threads: %s cannot be opened: %s", path, e)
            return None
        for get_name, set_name in _SYMBOLS:
            try:
                get, set_ = getattr(lib, get_name), getattr(lib, set_name)
            except AttributeError:
                continue
            get.restype, get.argtypes = ctypes.c_int, []
            set_.restype, set_.argtypes = None, [ctypes.c_int]
            _found[path] = (get, set_)
            break
    return _found[path]


def pools() -> dict[str, int]:
    """Each loaded OpenBLAS library's thread count (by its file name)."""
    out = {}
    for path in _loaded():
        if (f := _functions(path)) is not None:
            out[Path(path).name] = f[0]()
    return out


@contextmanager
def limited(threads: int = 1):
    """Every loaded OpenBLAS at most ``threads`` threads inside the block; each gets its count back after it
    (a library loaded inside the block keeps its own). A block inside another one changes nothing."""
    if threads < 1:
        raise ValueError(f"BLAS threads: expected a count ≥ 1, got {threads}")
    lowered = []
    with _lock:
        for path in _loaded():
            f = _functions(path)
            if f is not None and (n := f[0]()) > threads:
                f[1](threads)
                lowered.append((path, f, n))
    if lowered:
        log.debug("BLAS threads: %s at %d", ", ".join(f"{Path(p).name} ({n})" for p, _, n in lowered), threads)
    try:
        yield
    finally:
        with _lock:
            for _, f, n in lowered:
                f[1](n)
