"""Measuring helpers shared by the benchmarks."""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


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


def _child(fn: Callable[[], Any], conn) -> None:
    rss0 = peak = _rss_mb()
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.005):
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
    except Exception as e:  # noqa: BLE001 - handed to the parent, which re-raises
        conn.send(("error", f"{type(e).__name__}: {e}", 0.0, 0.0))


def measure(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """Run ``fn`` in a forked process; return (result, wall seconds, peak extra resident MB).

    A fresh process per method keeps the memory figures apart and the timings free of
    instrumentation overhead; the RSS is sampled every 5 ms.
    """
    ctx = multiprocessing.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(fn, send))
    proc.start()
    status, out, seconds, mem = recv.recv()
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


def write_json(data: dict, path: str | Path | None) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(data, indent=2, default=float))
