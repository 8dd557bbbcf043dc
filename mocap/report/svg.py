"""Tiny dependency-free SVG charts for the HTML report (lines over time, bars, skeleton views)."""

from __future__ import annotations

from html import escape

import numpy as np

CHAR_PX = 6.6  # width of a character at font-size 11 (sans-serif), generously
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf"]
# the paler half of a 20-colour palette, after PALETTE: a 16-camera rig's cam11 was cam01's blue; past these,
# colours repeat dashed
PALE = ["#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5"]
SERIES_COLOURS = PALETTE + PALE


def nice_ticks(top: float, most: int = 5) -> list[float]:
    """Tick values from 0 up to ``top`` at a round step (1, 2, 2.5 or 5 × a power of ten), at most ``most`` of them:
    "0, 1, 2, 3" rather than "0, 0.964, 1.93, 2.89, 3.86"."""
    if not top > 0 or not np.isfinite(top):
        return [0.0]
    raw = top / max(most - 1, 1)
    power = 10.0 ** np.floor(np.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    return [float(f"{k * step:.12g}") for k in range(int(np.floor(top / step + 1e-9)) + 1)]


def _frame(w: int, h: int, title: str, body: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
            f'font-family="sans-serif" font-size="11"><rect width="{w}" height="{h}" fill="white"/>'
            f'<text x="{w / 2}" y="14" text-anchor="middle" font-size="13">{escape(title)}</text>{body}</svg>')


def _legend(names: list[str], colours: list[str], x0: float, y0: float, width: float,
            dashed: set[str] | frozenset[str] = frozenset()) -> tuple[str, float]:
    """Names in columns as wide as the longest (never cut), a dashed series' swatch dashed; returns (svg, height
    used)."""
    if not names:
        return "", 0.0
    col = max(len(n) for n in names) * CHAR_PX + 24
    cols = max(1, int(width // col))
    rows = -(-len(names) // cols)
    out = []
    for i, (n, c) in enumerate(zip(names, colours, strict=True)):
        x, y = x0 + (i % cols) * col, y0 + (i // cols) * 14
        swatch = (f'<line x1="{x:.1f}" y1="{y - 6.5:.1f}" x2="{x + 12:.1f}" y2="{y - 6.5:.1f}" stroke="{c}" '
                  f'stroke-width="3" stroke-dasharray="4 3"/>' if n in dashed else
                  f'<rect x="{x:.1f}" y="{y - 8:.1f}" width="12" height="3" fill="{c}"/>')
        out.append(f'{swatch}<text x="{x + 16:.1f}" y="{y:.1f}" fill="{c}">{escape(n)}</text>')
    return "".join(out), rows * 14 + 6


def lines(series: dict[str, np.ndarray], title: str, xlabel: str, ylabel: str, x_scale: float = 1.0,
          w: int = 860, h: int = 280, ymax: float | None = None, dashed: frozenset[str] = frozenset()) -> str:
    """One polyline per series (NaN breaks the line; a name in ``dashed``: a dashed line), the legend
    below the plot with every name whole. The y axis ends at :func:`axis_top` (or ``ymax``): a value above it is
    never hidden: a ▲ at the top edge over each peak cut off (its value in its tooltip), the highest labelled, and
    the title says how many values are above the axis and up to what."""
    L, R, T, B = 50, 16, 24, 34
    colours, base = [], {}
    dashed = set(dashed)
    for name in series:  # a dashed series takes the colour of the series its name starts with
        parent = next((n for n in base if name in dashed and name.startswith(n + " ")), None)
        colours.append(base[parent] if parent else SERIES_COLOURS[len(base) % len(SERIES_COLOURS)])
        if not parent:
            if len(base) >= len(SERIES_COLOURS):  # past the palette: its colours again, dashed
                dashed.add(name)
            base[name] = colours[-1]
    legend, lh = _legend(list(series), colours, L, h + 12, w - L - R, dashed)
    vals = np.concatenate([np.asarray(v, float)[np.isfinite(v)] for v in series.values()] or [np.zeros(1)])
    top = ymax if ymax is not None else axis_top(vals)
    top = top if top > 0 else 1.0
    n = max(len(v) for v in series.values()) if series else 1
    sx = (w - L - R) / max(n - 1, 1)
    sy = (h - T - B) / top
    body = [f'<line x1="{L}" y1="{h - B}" x2="{w - R}" y2="{h - B}" stroke="#444"/>',
            f'<line x1="{L}" y1="{T}" x2="{L}" y2="{h - B}" stroke="#444"/>']
    for y in nice_ticks(top):
        body.append(f'<text x="{L - 4}" y="{h - B - y * sy + 4:.1f}" text-anchor="end">{y:g}</text>')
    for t in nice_ticks((n - 1) * x_scale) if x_scale > 0 else []:  # at round values of the x unit
        body.append(f'<text x="{L + t / x_scale * sx:.1f}" y="{h - B + 14}" text-anchor="middle">{t:g}</text>')
    body.append(f'<text x="{(L + w - R) / 2}" y="{h - 4}" text-anchor="middle">{escape(xlabel)}</text>')
    body.append(f'<text x="12" y="{(T + h - B) / 2}" transform="rotate(-90 12 {(T + h - B) / 2})" '
                f'text-anchor="middle">{escape(ylabel)}</text>')
    above = []  # (value, frame, series name, colour) of each peak above the axis
    for (name, v), colour in zip(series.items(), colours, strict=True):
        dash = ' stroke-dasharray="4 3"' if name in dashed else ""
        xs, ys = envelope(np.asarray(v, float), 2 * (w - L - R))
        for seg in _runs(L + np.asarray(xs) * sx, h - B - np.minimum(ys, top) * sy, np.isfinite(ys)):
            body.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.3"{dash} points="{seg}"/>')
        above += [(val, i, name, colour) for i, val in peaks_above(np.asarray(v, float), top, sx)]
    if above:  # never hidden: a marker at the top edge over each peak cut off, the highest labelled
        vmax, imax, who, _ = max(above)
        for val, i, name, colour in above:
            body.append(f'<text x="{L + i * sx:.1f}" y="{T + 8}" text-anchor="middle" font-size="10" fill="{colour}">'
                        f'▲<title>{escape(name)}: {val:.3g} {escape(ylabel)} in frame {i} ({escape(xlabel)} = '
                        f'{i * x_scale:.3g}), above the axis</title></text>')
        right = L + imax * sx > (L + w - R) / 2
        body.append(f'<text x="{L + imax * sx + (-8 if right else 8):.1f}" y="{T + 8}" fill="#b00" text-anchor='
                    f'"{"end" if right else "start"}">max {vmax:.3g} {escape(ylabel)} ({escape(who)})</text>')
        k = sum(int(np.sum(np.asarray(v, float) > top)) for v in series.values())
        title = (f"{title}: axis cut at {top:.3g} {ylabel}; {k} value{'s' if k > 1 else ''} above it (▲), "
                 f"up to {vmax:.3g} {ylabel} ({who})")
    body.append(legend)
    return _frame(w, int(h + 12 + lh), title, "".join(body))


ROBUST_Q, CUT_SPAN = 99.5, 2.0


def axis_top(vals: np.ndarray) -> float:
    """The y axis's top for finite values ``vals``: their maximum (+5 %) when it is within ``CUT_SPAN`` × the robust
    top (1.1 × the 99.5th percentile), else the robust top: the bulk stays readable, and :func:`lines` marks and
    states what is above it."""
    if not vals.size:
        return 1.0
    robust, vmax = float(np.percentile(vals, ROBUST_Q)) * 1.1, float(vals.max())
    return vmax * 1.05 if vmax <= CUT_SPAN * robust else robust


def peaks_above(v: np.ndarray, top: float, sx: float, px: float = 6.0) -> list[tuple[int, float]]:
    """(frame, value) of the highest value above ``top`` in each run of consecutive frames above it, at most one
    per ``px`` pixels of the plot (``sx``: pixels per frame), in frame order."""
    with np.errstate(invalid="ignore"):
        idx = np.flatnonzero(v > top)
    best: dict[int, tuple[float, int]] = {}
    for run in np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1) if idx.size else []:
        i = int(run[np.argmax(v[run])])
        col = int(i * sx // px)
        if col not in best or v[i] > best[col][0]:
            best[col] = (float(v[i]), i)
    return [(i, val) for val, i in sorted(best.values(), key=lambda b: b[1])]


def _runs(px: np.ndarray, py: np.ndarray, ok: np.ndarray) -> list[str]:
    """The points "x,y x,y …" of each run of consecutive points ``ok`` (NaN breaks a line)."""
    idx = np.flatnonzero(ok)
    if idx.size == 0:
        return []
    text = [f"{x:.1f},{y:.1f}" for x, y in zip(px[idx].tolist(), py[idx].tolist(), strict=True)]
    cuts = (np.flatnonzero(np.diff(idx) > 1) + 1).tolist()
    return [" ".join(text[a:b]) for a, b in zip([0] + cuts, cuts + [len(text)], strict=True)]


def envelope(v: np.ndarray, points: int) -> tuple[np.ndarray, np.ndarray]:
    """(frame positions, values) of a series drawn with at most about ``points`` points: as it is when
    short enough, else per bin of frames its lowest and highest value in time order (spikes survive;
    a bin with no value breaks the line)."""
    n = len(v)
    if n <= points:
        return np.arange(n, dtype=float), v
    edges = np.linspace(0, n, points // 2 + 1).astype(int)
    xs, ys = [], []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        seg = v[a:b]
        ok = np.isfinite(seg)
        if not ok.any():
            xs.append((a + b - 1) / 2)
            ys.append(np.nan)
            continue
        idx = np.flatnonzero(ok)
        lo, hi = idx[np.argmin(seg[ok])], idx[np.argmax(seg[ok])]
        for i in sorted({lo, hi}):
            xs.append(float(a + i))
            ys.append(float(seg[i]))
    return np.array(xs), np.array(ys)


def timeline(spans: dict[str, list[tuple[int, int]]], frames: int, fps: float, w: int = 860) -> str:
    """Who is where: one row per person, a bar over each span of frames [a, b] present."""
    L, R, T, row = 90, 16, 24, 22
    h = T + row * max(len(spans), 1) + 34
    sx = (w - L - R) / max(frames, 1)
    body = []
    for i, (name, runs) in enumerate(spans.items()):
        y = T + i * row
        c = PALETTE[i % len(PALETTE)]
        body.append(f'<text x="{L - 6}" y="{y + 14}" text-anchor="end">{escape(name)}</text>')
        for a, b in runs:
            body.append(f'<rect x="{L + a * sx:.1f}" y="{y + 3}" width="{max((b - a + 1) * sx, 1):.1f}" '
                        f'height="{row - 6}" fill="{c}"><title>{escape(name)}: frames {a}–{b}</title></rect>')
    base = T + row * max(len(spans), 1)
    body.append(f'<line x1="{L}" y1="{base}" x2="{w - R}" y2="{base}" stroke="#444"/>')
    for t in nice_ticks(frames / fps) if fps > 0 else []:
        body.append(f'<text x="{L + t * fps * sx:.1f}" y="{base + 14}" text-anchor="middle">{t:g}</text>')
    body.append(f'<text x="{(L + w - R) / 2}" y="{base + 30}" text-anchor="middle">time (s)</text>')
    return _frame(w, h, "who is where (frames each person is reconstructed)", "".join(body))


NOT_DETECTED = "not detected"


def bars(values: dict[str, float], title: str, unit: str, w: int = 860, h: int = 300) -> str:
    """One bar per name, the names written whole below (rotated); a name without a value (NaN or None: no camera
    detected that joint) gets no bar but "not detected" written upright in its place."""
    L, T = 50, 24
    names = list(values)
    v = np.array([np.nan if values[n] is None else values[n] for n in names], float)
    longest = max((len(n) for n in names), default=4) * 5.6  # font-size 9, rotated 60°
    B, R = int(16 + 0.87 * longest), int(10 + 0.5 * longest)
    h = max(h, B + 180)
    top = float(np.nanmax(v)) * 1.1 if np.isfinite(v).any() and np.nanmax(v) > 0 else 1.0
    bw = (w - L - R) / max(len(names), 1)
    body = [f'<line x1="{L}" y1="{h - B}" x2="{w - R}" y2="{h - B}" stroke="#444"/>']
    for i, (n, x) in enumerate(zip(names, v, strict=True)):
        xl = L + i * bw
        cx = xl + bw / 2
        if np.isfinite(x):
            bh = x / top * (h - B - T)
            body.append(f'<rect x="{xl + 1:.1f}" y="{h - B - bh:.1f}" width="{bw - 2:.1f}" height="{bh:.1f}" '
                        f'fill="{PALETTE[0]}"><title>{escape(n)}: {x:.3g} {escape(unit)}</title></rect>')
        else:  # no value (no camera detected it): no bar, which would read as the best of all
            body.append(f'<text x="{cx + 3:.1f}" y="{h - B - 4}" transform="rotate(-90 {cx + 3:.1f} {h - B - 4})" '
                        f'font-size="9" fill="#888">{NOT_DETECTED}<title>{escape(n)}: {NOT_DETECTED} (no value)'
                        '</title></text>')
        body.append(f'<text x="{cx:.1f}" y="{h - B + 8}" transform="rotate(60 {cx:.1f} {h - B + 8})" '
                    f'font-size="9">{escape(n)}</text>')
    body.append(f'<text x="{L - 4}" y="{T + 4}" text-anchor="end">{top:.3g}</text>')
    body.append(f'<text x="{L - 4}" y="{h - B}" text-anchor="end">0</text>')
    return _frame(w, h, f"{title} ({unit})", "".join(body))


SIDE_COLOURS = ("#555555", "#e62828", "#1e8ce6")  # centre, left, right


def skeleton(X: np.ndarray, limbs, title: str, w: int = 300, h: int = 400, view: str = "front",
             sides=None, axis: np.ndarray | None = None) -> str:
    """One pose (N, 3), Z up, drawn orthographically on the vertical plane whose horizontal axis is
    ``axis`` (a unit vector; default x for ``view="front"``, y for ``"side"``); ``sides`` colours each
    limb (0 centre, 1 left, 2 right)."""
    if axis is None:
        axis = np.array([1.0, 0.0, 0.0]) if view == "front" else np.array([0.0, 1.0, 0.0])
    P = np.stack([X @ np.asarray(axis, float), X[:, 2]], axis=1)
    ok = np.isfinite(P).all(axis=1)
    if not ok.any():
        return _frame(w, h, title, "")
    lo, hi = P[ok].min(axis=0), P[ok].max(axis=0)
    s = min((w - 30) / max(hi[0] - lo[0], 1e-6), (h - 50) / max(hi[1] - lo[1], 1e-6))
    c = (lo + hi) / 2

    def xy(p):
        return w / 2 + (p[0] - c[0]) * s, (h + 20) / 2 - (p[1] - c[1]) * s

    sides = [0] * len(limbs) if sides is None else list(sides)
    body = [f'<line x1="10" y1="{(h + 20) / 2 + (c[1] - lo[1]) * s:.1f}" x2="{w - 10}" '
            f'y2="{(h + 20) / 2 + (c[1] - lo[1]) * s:.1f}" stroke="#bbb"/>']
    for (i, j), side in zip(limbs, sides, strict=True):
        if ok[i] and ok[j]:
            (x1, y1), (x2, y2) = xy(P[i]), xy(P[j])
            body.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
                        f'stroke="{SIDE_COLOURS[int(side)]}" stroke-width="4" stroke-linecap="round"/>')
    for p in P[ok]:
        x, y = xy(p)
        body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="#222"/>')
    return _frame(w, h, title, "".join(body))
