"""Files of earlier settings, or named after another session, moved to ``previous/`` beside them and said once
(the fit's, the retarget's and the export's folders)."""

from __future__ import annotations

import logging
from pathlib import Path


def set_aside(files: list[Path], why: str, logger: logging.Logger, most: int = 4) -> None:
    """Move ``files`` (of one folder) into ``previous/`` beside them, said once by ``logger`` (the stage's) with the
    first ``most`` names: files of earlier settings, or of another session's name, that would pass for current (a
    copied 5-person session's export said so in 20 lines, under the fit's name)."""
    import shutil

    if not files:
        return
    folder = files[0].parent / "previous"
    folder.mkdir(exist_ok=True)
    for f in files:
        shutil.move(f, folder / f.name)
    names = ", ".join(f.name for f in files[:most]) + (f" and {len(files) - most} more" if len(files) > most else "")
    logger.warning("moved %s to %s: %s", names, folder, why)
