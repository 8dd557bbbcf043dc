"""Text that OpenCV's Hershey fonts can draw on images (``mocap view``, the report's overlay videos, ``mocap live``):
ASCII only. Accents are dropped (a camera named "kaméra 2" was drawn "kam??ra 2", now "kamera 2"); what has no ASCII
letter (相机三) stays a "?" a character."""

from __future__ import annotations

import unicodedata


def drawable(text: str) -> str:
    """``text`` with accented letters as their base letters and other non-ASCII characters as "?"."""
    folded = unicodedata.normalize("NFKD", str(text))
    return "".join(c if ord(c) < 128 else "" if unicodedata.combining(c) else "?" for c in folded)
