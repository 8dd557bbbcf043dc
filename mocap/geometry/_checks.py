"""Shape checks shared by the geometry functions."""

from __future__ import annotations

import numpy as np


def check_trailing(name: str, a: np.ndarray, trailing: tuple[int, ...]) -> np.ndarray:
    """Return ``a`` as a float array after checking that its last dimensions equal ``trailing``."""
    a = np.asarray(a, dtype=float)
    n = len(trailing)
    if a.ndim < n or tuple(a.shape[a.ndim - n :]) != trailing:
        expected = "(..., " + ", ".join(str(t) for t in trailing) + ")"
        raise ValueError(f"{name}: expected shape {expected}, got {a.shape}")
    return a
