"""Tiny dependency-free SVG charts for the HTML report (lines over time, bars, skeleton views)."""

from __future__ import annotations

from html import escape

import numpy as np

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf"]


def _frame(w: int, h: int, title: str, body: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
            f'font-family="sans-serif" font-size="11"><rect width="{w}" height="{h}" fill="white"/>'
            f'<text x="{w / 2}" y="14" text-anchor="middle" font-size="13">{escape(title)}</text>{body}</svg>')


def lines(series: dict[str, np.ndarray], title: str, xlabel: str, ylabel: str, x_scale: float = 1.0,
          w: int = 720, h: int = 260, ymax: float | None = None) -> str:
    """One polyline per series (NaN breaks the line)."""
    L, R, T, B = 50, 110, 24, 34
    vals = np.concatenate([v[np.isfinite(v)] for v in series.values()] or [np.zeros(1)])
    top = ymax if ymax is not None else (float(np.percentile(vals, 99.5)) * 1.1 if vals.size else 1.0)
    top = top if top > 0 else 1.0
    n = max(len(v) for v in series.values()) if series else 1
    sx = (w - L - R) / max(n - 1, 1)
    sy = (h - T - B) / top
    body = [f'<line x1="{L}" y1="{h - B}" x2="{w - R}" y2="{h - B}" stroke="#444"/>',
            f'<line x1="{L}" y1="{T}" x2="{L}" y2="{h - B}" stroke="#444"/>']
    for k in range(5):
        y = top * k / 4
        body.append(f'<text x="{L - 4}" y="{h - B - y * sy + 4:.1f}" text-anchor="end">{y:.3g}</text>')
    for k in range(5):
        f = (n - 1) * k / 4
        body.append(f'<text x="{L + f * sx:.1f}" y="{h - B + 14}" text-anchor="middle">{f * x_scale:.3g}</text>')
    body.append(f'<text x="{(L + w - R) / 2}" y="{h - 4}" text-anchor="middle">{escape(xlabel)}</text>')
    body.append(f'<text x="12" y="{(T + h - B) / 2}" transform="rotate(-90 12 {(T + h - B) / 2})" '
                f'text-anchor="middle">{escape(ylabel)}</text>')
    for i, (name, v) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        seg: list[str] = []
        for f, y in enumerate(v):
            if np.isfinite(y):
                seg.append(f"{L + f * sx:.1f},{h - B - min(y, top) * sy:.1f}")
            elif seg:
                body.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1" points="{" ".join(seg)}"/>')
                seg = []
        if seg:
            body.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1" points="{" ".join(seg)}"/>')
        body.append(f'<text x="{w - R + 6}" y="{T + 12 * i + 8}" fill="{colour}">{escape(name[:18])}</text>')
    return _frame(w, h, title, "".join(body))


def bars(values: dict[str, float], title: str, unit: str, w: int = 720, h: int = 260) -> str:
    L, B, T = 50, 80, 24
    names = list(values)
    v = np.array([values[n] for n in names], float)
    top = float(np.nanmax(v)) * 1.1 if np.isfinite(v).any() and np.nanmax(v) > 0 else 1.0
    bw = (w - L - 10) / max(len(names), 1)
    body = [f'<line x1="{L}" y1="{h - B}" x2="{w - 10}" y2="{h - B}" stroke="#444"/>']
    for i, (n, x) in enumerate(zip(names, v, strict=True)):
        if not np.isfinite(x):
            continue
        bh = x / top * (h - B - T)
        xl = L + i * bw
        body.append(f'<rect x="{xl + 1:.1f}" y="{h - B - bh:.1f}" width="{bw - 2:.1f}" height="{bh:.1f}" '
                    f'fill="{PALETTE[0]}"><title>{escape(n)}: {x:.3g} {escape(unit)}</title></rect>')
        cx = xl + bw / 2
        body.append(f'<text x="{cx:.1f}" y="{h - B + 8}" transform="rotate(60 {cx:.1f} {h - B + 8})" '
                    f'font-size="9">{escape(n)}</text>')
    body.append(f'<text x="{L - 4}" y="{T + 4}" text-anchor="end">{top:.3g}</text>')
    body.append(f'<text x="{L - 4}" y="{h - B}" text-anchor="end">0</text>')
    return _frame(w, h, f"{title} ({unit})", "".join(body))


def skeleton(X: np.ndarray, limbs: list[tuple[int, int]], title: str, w: int = 230, h: int = 260,
             view: str = "front") -> str:
    """One pose (J, 3), Z up, seen from the front (x, z) or the side (y, z)."""
    a = 0 if view == "front" else 1
    P = X[:, [a, 2]]
    ok = np.isfinite(P).all(axis=1)
    if not ok.any():
        return _frame(w, h, title, "")
    lo, hi = P[ok].min(axis=0), P[ok].max(axis=0)
    s = min((w - 20) / max(hi[0] - lo[0], 1e-6), (h - 40) / max(hi[1] - lo[1], 1e-6))
    c = (lo + hi) / 2

    def xy(p):
        return w / 2 + (p[0] - c[0]) * s, (h + 16) / 2 - (p[1] - c[1]) * s

    body = []
    for i, j in limbs:
        if ok[i] and ok[j]:
            (x1, y1), (x2, y2) = xy(P[i]), xy(P[j])
            body.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{PALETTE[0]}" '
                        f'stroke-width="2"/>')
    for p in P[ok]:
        x, y = xy(p)
        body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2" fill="{PALETTE[3]}"/>')
    return _frame(w, h, title, "".join(body))
