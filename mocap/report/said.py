"""The report's warnings about cameras: flagged, seeing no one, seeing the person behind it, repeating frames, losing
the people, out of time (read from ``metrics.json``'s records, after the page's tables are made)."""

from __future__ import annotations

import logging

from mocap.report.cameras import flag_text
from mocap.report.repeated import log_repeated

log = logging.getLogger("mocap.report")


def log_cameras(metrics: dict) -> None:
    """A warning for each camera flagged, seeing no one or seeing the person behind it: for every person (the
    first person's cameras only were told before) or, with one, the performer."""
    people = metrics.get("persons") or []
    for who, q in [(f"{q['name']}: ", q) for q in people] if people else [("", metrics)]:
        for name, row in (q.get("cameras") or {}).items():
            of = f" ({who[:-2]})" if who else ""
            if row.get("flagged"):
                log.warning("camera flagged: %s%s; %s", who, flag_text(name, row), row["hint"])
            elif row.get("unseen"):
                log.warning("camera %s saw no one%s: %s", name, of, row["hint"])
            elif row.get("behind"):
                log.warning("camera %s%s: %s", name, of, row["hint"])
    log_repeated(metrics)
    for name, lost in (metrics.get("lost_cameras") or {}).items():  # a flagged one's or one seeing no one's said
        rows = [(q.get("cameras") or {}).get(name, {}) for q in people or [metrics]]
        if not any(r.get("flagged") or r.get("unseen") or r.get("behind") for r in rows):  # its own text (the
            log.warning("camera %s: %s", name, next((r["hint"] for r in rows if lost["text"] in (r.get("hint") or "")),
                                                    lost["text"]))  # dark footage's prefix with it), not another's
    for name, late in (metrics.get("late_cameras") or {}).items():  # a flagged camera's hint said it already
        if not any((q.get("cameras") or {}).get(name, {}).get("flagged") for q in people or [metrics]):
            log.warning("camera %s: %s", name, late["text"])
