"""Measuring helpers shared by the benchmarks.

Every benchmark's JSON goes through :func:`write_json`, which adds how the figures were obtained
(:func:`run_record`): the command's wall and CPU time (this process, its children and the detect pool's
workers under the multiprocessing fork server), the load average
at its start and at its end, the cores it could use and the machine (CPU model, memory, platform).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mocap.threads import cores

_IMPORTED = time.monotonic()
_LOAD_AT_IMPORT = os.getloadavg() if hasattr(os, "getloadavg") else None


def _rss_mb(pid: int | str = "self") -> float:
    """Resident memory of a process and all its descendants (worker pools included), MB."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            total = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                total += sum(_rss_mb(child) for child in f.read().split())
    except OSError:  # a child that just ended
        return 0.0
    return total


def _child(fn: Callable[[], Any], conn, every: float) -> None:
    rss0 = peak = _rss_mb()
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(every):
            peak = max(peak, _rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        t0 = time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - t0
        done.set()
        sampler.join()
        conn.send(("ok", out, seconds, max(peak, _rss_mb()) - rss0))
    except BaseException as e:  # noqa: BLE001 - handed to the parent, which re-raises (SystemExit too)
        conn.send(("error", f"{type(e).__name__}: {e}", 0.0, 0.0))
    finally:
        conn.close()


def measure(fn: Callable[[], Any], every: float = 0.005) -> tuple[Any, float, float]:
    """Run ``fn`` in a forked process; return (result, wall seconds, peak extra resident MB).

    A fresh process per method keeps the memory figures apart and the timings free of
    instrumentation overhead; the RSS is sampled every ``every`` s (reading it costs about 0.3 ms per
    process: for work spread over a pool of processes sample less often, e.g. 0.1 s). A process that dies
    without answering (killed, a crash in native code) raises :class:`RuntimeError` with its exit code.
    """
    ctx = multiprocessing.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(fn, send, every))
    proc.start()
    send.close()  # the child holds the only send end left: its death ends recv() with EOFError
    try:
        status, out, seconds, mem = recv.recv()
    except EOFError:
        proc.join()
        code = proc.exitcode
        how = f" ({signal.Signals(-code).name})" if code is not None and -code in signal.valid_signals() else ""
        raise RuntimeError(f"benchmarked method's process died without a result: exit code {code}{how}") from None
    finally:
        recv.close()
    proc.join()
    if status != "ok":
        raise RuntimeError(f"benchmarked method failed: {out}")
    return out, seconds, mem


def position_errors(X: np.ndarray, truth: np.ndarray) -> dict:
    """MPJPE, 95th percentile (mm) and the share of points reconstructed, for (F, J, 3) arrays."""
    e = np.linalg.norm(X - truth, axis=-1)
    ok = np.isfinite(e)
    return {"mpjpe_mm": float(np.mean(e[ok]) * 1000) if ok.any() else float("nan"),
            "p95_mm": float(np.percentile(e[ok], 95) * 1000) if ok.any() else float("nan"),
            "reconstructed": float(ok.mean())}


def bone_std_mm(X: np.ndarray, bones) -> float:
    """Mean over bones of the standard deviation of the bone's length across frames (mm)."""
    stds = []
    for a, b in bones:
        n = np.linalg.norm(X[:, a] - X[:, b], axis=-1)
        n = n[np.isfinite(n)]
        if n.size > 1:
            stds.append(np.std(n))
    return float(np.mean(stds) * 1000) if stds else float("nan")


def format_table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """A plain-text table; columns: (key, header, format)."""
    cells = [[h for _, h, _ in columns]]
    for r in rows:
        cells.append([("—" if r.get(k) is None else format(r[k], f)) if f else str(r.get(k, ""))
                      for k, _, f in columns])
    widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
    lines = ["  ".join(c[i].ljust(widths[i]) if i == 0 else c[i].rjust(widths[i]) for i in range(len(c)))
             for c in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _process_wall_s() -> float:
    """Seconds since this process started (Linux: /proc), else since this module was imported."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22, starttime
        with open("/proc/uptime") as f:
            up = float(f.read().split()[0])
        return up - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return time.monotonic() - _IMPORTED


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024 ** 2, 1)
    except (OSError, ValueError):
        pass
    return None


def machine() -> dict:
    """What the figures were measured on."""
    return {"cpu": _cpu_model(), "logical_cpus": os.cpu_count(), "cores": cores(), "memory_gb": _memory_gb(),
            "platform": platform.platform(), "python": platform.python_version()}


def fork_server_cpu_s() -> float:
    """CPU seconds of this process's multiprocessing fork server (:mod:`mocap.detect.pool`) and of all its
    children: the detect pool's workers, reaped (counted in the server's own children's time) or still
    running. They are the server's children, not this process's, so ``os.times()`` here counts none of it;
    0 when no server runs (one stopped was reaped by this process: ``os.times()`` counts it then)."""
    from mocap.detect import pool

    pid = pool.server_pid()
    if pid is None:
        return 0.0
    own, reaped = pool.server_cpu()
    live = 0.0
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                live += sum(sum(pool.process_cpu(child)) for child in f.read().split())
    except OSError:  # no /proc, or the server just ended
        pass
    return own + reaped + live


def run_record() -> dict:
    """How this process's figures were obtained: ``wall_s`` (since the process started), ``cpu_s`` (user +
    system of the whole process tree: this process, its children that ended and the fork server with the
    detect pool's workers, of which ``fork_server_cpu_s`` is the part), the load average (1, 5, 15 min) now
    and when the benchmark module was loaded, the cores and the machine."""
    t = os.times()
    server = fork_server_cpu_s()
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"wall_s": round(_process_wall_s(), 3),
            "cpu_s": round(t.user + t.system + t.children_user + t.children_system + server, 3),
            "fork_server_cpu_s": round(server, 3),
            "load_avg_1_5_15": [round(v, 2) for v in load] if load else None,
            "load_avg_1_5_15_at_start": [round(v, 2) for v in _LOAD_AT_IMPORT] if _LOAD_AT_IMPORT else None,
            "cores": cores(), "machine": machine()}


def with_run_record(data: dict) -> dict:
    """``data`` with :func:`run_record`'s keys added (a ``machine`` table it has is completed, not replaced; its own
    ``wall_s`` and ``cpu_s`` kept, the process's then as ``process_wall_s`` and ``process_cpu_s``: ``mocap live``'s
    CPU of its loop was replaced by the whole process's, which its printed summary did not match)."""
    out = dict(data)
    for key, value in run_record().items():
        if key == "machine" and isinstance(out.get(key), dict):
            out[key] = value | out[key]
        elif key == "cores" and key in out:
            continue  # the benchmark's own count (the same affinity)
        elif key in ("wall_s", "cpu_s") and key in out:
            out[f"process_{key}"] = value
        else:
            out[key] = value
    return out


def write_json(data: dict, path: str | Path | None) -> None:
    """Write a benchmark's result with :func:`run_record` (wall and CPU time, load, cores, machine)."""
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(with_run_record(data), indent=2, default=float))


@dataclass(frozen=True)
class SyntheticTakeConfig:
    """The synthetic take of ``mocap bench triangulation`` and ``mocap bench robustness``: a BVH clip seen by a
    ring of cameras, σ ``noise_px``, outliers, dropouts and left/right swaps (``mocap synth keypoints``)."""

    bvh: str = ""
    frames: int = 2000
    fps: float = 60.0
    cameras: int = 4
    noise_px: float = 2.0
    outliers: float = 0.05
    dropouts: float = 0.10
    swaps: float = 0.0  # share of views with left and right exchanged
    seed: int = 0

    def take(self):
        """The :class:`mocap.synth.SyntheticTake` these settings describe."""
        from mocap.synth import CorruptionSpec, RigSpec, make_take

        return make_take(self.bvh, self.frames, self.fps, RigSpec(n_cameras=self.cameras),
                         CorruptionSpec(self.noise_px, self.outliers, self.dropouts, swaps=self.swaps, seed=self.seed))
