"""Where the optional shared test data lives (``$MOCAP_SHARED_DATA`` or ``../shared/data``)."""

from __future__ import annotations

import os
from pathlib import Path


def shared_data_dir() -> Path | None:
    env = os.environ.get("MOCAP_SHARED_DATA")
    candidates = [Path(env)] if env else []
    repo = Path(__file__).resolve().parents[1]
    candidates += [repo.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    for c in candidates:
        if c.is_dir():
            return c
    return None
