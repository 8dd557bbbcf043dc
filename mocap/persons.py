"""The people of a take: one naming rule for every file, table and armature.

A take with one person keeps today's names (``motion/body22.npz``, ``export/<session>_body22.bvh``).
With several, person ``p`` (0-based index on the persons axis of ``points3d/*.h5``) is called
``person{p+1}`` and every per-person file carries it: ``motion/body22_person2.npz``,
``export/<session>_person2_body22.bvh``, the report's sections and the Blender armatures.
"""

from __future__ import annotations


def person_name(p: int) -> str:
    """``person1`` for index 0."""
    if p < 0:
        raise ValueError(f"person index must be ≥ 0, got {p}")
    return f"person{p + 1}"


def person_suffix(p: int, persons: int) -> str:
    """``""`` in a one-person take, else ``_person{p+1}`` (appended to a file stem)."""
    return "" if persons == 1 else f"_{person_name(p)}"
